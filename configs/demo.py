r"""AG-CC on the generated demo corpora (artser_jax/demo_corpora), small enough for a 2-core CPU.

The whole pipeline (generate corpora, prepare, fit gestures, train AG-CC and source-only, evaluate,
print a table) is `python launch/demo.py`. One training run on its own:

  python launch/train.py --config=configs/demo.py:direction=crema_to_msp,method=agcc \
      --config.data_dir=DEMO/data --config.gestures_path=DEMO/gestures_crema_to_msp.npz --workdir=DEMO/runs/x

Arguments (`:key=value,...`): direction = crema_to_msp | msp_to_crema; method = a registered method
(agcc | source_only | phoneme_anchored | layer_anchored); tiny (flag) shrinks everything further for unit
tests (seconds). The settings live in artser_jax/configs/demo.py.

Hardware: CPU (2 cores). Runtime and result: launch/demo.py prints them; the numbers measured on the
reference 2-core machine are in the README (they are not repeated here, so they cannot go stale).
"""

from artser_jax.configs.demo import get_config  # noqa: F401  (the entry point)
