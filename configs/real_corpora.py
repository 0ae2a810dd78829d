r"""AG-CC on the real corpora, either direction: CREMA-D <-> MSP-IMPROV.

Align, prepare both datasets and fit the gesture model first (README, "Real corpora"; DATA is the
--data_dir of launch/prepare_data.py), then:

  python launch/train.py --config=configs/real_corpora.py:direction=crema_to_msp,method=agcc,encoder=logmel \
      --config.data_dir=$DATA --config.gestures_path=$DATA/gestures_crema_msp.npz --workdir=runs/crema_to_msp_agcc

Arguments (`:key=value,...`): direction = crema_to_msp | msp_to_crema (or <source>_to_<target> of the
corpus registry); method = a registered method (agcc | source_only | phoneme_anchored | layer_anchored);
encoder = a registered encoder (logmel | wav2vec2 | wavlm; wav2vec2/wavlm also need
--config.model.pretrained_dir, a local Hugging Face folder). The settings live in
artser_jax/configs/real_corpora.py and artser_jax/configs/common.py.

Hardware: one accelerator (GPU/TPU) or a pod slice; the batch is sharded over all devices.
Runtime and expected result: not measured; the real corpora are not available to the authors of this
config. The demo config is what was actually run (see configs/demo.py).
"""

from artser_jax.configs.real_corpora import get_config  # noqa: F401  (the entry point)
