r"""AG-CC, MSP-IMPROV (labelled source) -> CREMA-D (unlabelled target), real corpora:
configs/real_corpora.py with the direction fixed.

  python launch/train.py --config=configs/msp_to_crema.py:method=agcc,encoder=logmel \
      --config.data_dir=$DATA --config.gestures_path=$DATA/gestures_msp_crema.npz --workdir=runs/msp_to_crema_agcc

Arguments, hardware and runtime: see configs/real_corpora.py.
"""

from artser_jax.configs import real_corpora


def get_config(arg=None):
    return real_corpora.get_config(arg, direction="msp_to_crema")
