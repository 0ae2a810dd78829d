r"""AG-CC, CREMA-D (labelled source) -> MSP-IMPROV (unlabelled target), real corpora:
configs/real_corpora.py with the direction fixed.

  python launch/train.py --config=configs/crema_to_msp.py:method=agcc,encoder=logmel \
      --config.data_dir=$DATA --config.gestures_path=$DATA/gestures_crema_msp.npz --workdir=runs/crema_to_msp_agcc

Arguments, hardware and runtime: see configs/real_corpora.py.
"""

from artser_jax.configs import real_corpora


def get_config(arg=None):
    return real_corpora.get_config(arg, direction="crema_to_msp")
