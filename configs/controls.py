r"""Issue 11's controlled experiment on generated corpora (premise present, absent, and the oracle
diagnostic), docs/controls.md. The whole experiment is one command:

  python launch/experiment.py --experiment=controls --out_dir=DIR [--size=tiny|controls] \
      [--seeds=0,1,2,3,4] [--dev_generator_seed=1] [--test_generator_seed=2] [--pair=test|dev]

One training run on its own (corpora and gesture model from that command's DIR):

  python launch/train.py --config=configs/controls.py:direction=crema_to_msp,method=agcc \
      --config.data_dir=DIR/data/<pair> --config.gestures_path=DIR/gestures/<pair>_crema_to_msp.npz \
      --workdir=DIR/runs/x

Arguments (`:key=value,...`): direction = crema_to_msp | msp_to_crema; method = source_only | agcc |
phoneme_anchored | layer_anchored | oracle_emotion (a DIAGNOSTIC that reads target labels); tiny (flag)
for unit tests. The settings and the recipe live in artser_jax/configs/controls.py.

Hardware: CPU. Runtime and results: launch/experiment.py prints them (docs/controls.md).
"""

from artser_jax.configs.controls import get_config  # noqa: F401  (the entry point)
