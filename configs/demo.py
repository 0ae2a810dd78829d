r"""AG-CC on the generated demo corpora (artser_jax/demo_corpora), small enough for a 2-core CPU.

The whole pipeline (generate corpora, prepare, fit gestures, train AG-CC and source-only, evaluate,
print a table) is `python launch/demo.py`. One training run on its own:

  python launch/train.py --config=configs/demo.py:direction=crema_to_msp,method=agcc \
      --config.data_dir=DEMO/data --config.gestures_path=DEMO/gestures_crema_to_msp --workdir=DEMO/runs/x

Arguments (`:key=value,...`): direction = crema_to_msp | msp_to_crema; method = agcc | source_only |
phoneme_anchored | layer_anchored; tiny (flag) shrinks everything further for unit tests (seconds).

Hardware: CPU (2 cores). Runtime and result: launch/demo.py prints them; the numbers measured on the
reference 2-core machine are in the README (they are not repeated here, so they cannot go stale).
"""

import os
import sys

# Config files are loaded by path, so the shared defaults next to them are imported by path too.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  pylint: disable=g-import-not-at-top

DIRECTIONS = {"crema_to_msp": ("crema_d", "msp_improv"), "msp_to_crema": ("msp_improv", "crema_d")}


def get_config(arg=None):
    args = common.parse_arg(arg, direction="crema_to_msp", method="agcc", tiny=False)
    if args.direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {args.direction!r}; expected one of {sorted(DIRECTIONS)}")
    source, target = DIRECTIONS[args.direction]
    config = common.base_config(source=source, target=target, method=args.method)
    # The demo corpora ship exact phone timings, so the paper's phone segments are used.
    config.segments.method = "phones"
    config.segments.max_segments = 40
    config.input.max_seconds = 3.0
    config.input.source_batch_size = 16
    config.input.target_batch_size = 16
    config.input.eval_batch_size = 32
    config.model.encoder = "logmel"
    config.model.logmel.n_mels = 40
    config.model.logmel.width = 64
    config.model.transformer_layers = 1
    config.model.transformer_width = 64
    config.model.transformer_heads = 4
    config.model.classifier_hidden = 64
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_steps = 30
    config.total_steps = 300
    config.log_every = 25
    config.eval_every = 50
    config.checkpoint.save_every = 50
    if args.tiny:
        config.segments.max_segments = 24
        config.input.max_seconds = 1.5
        config.input.source_batch_size = 8
        config.input.target_batch_size = 8
        config.input.eval_batch_size = 8
        config.model.logmel.n_mels = 16
        config.model.logmel.width = 16
        config.model.logmel.num_blocks = 1
        config.loss.coral_layers = (0, 1)  # the tiny encoder has 2 selectable layers
        config.model.transformer_width = 16
        config.model.transformer_heads = 2
        config.model.classifier_hidden = 16
        config.optimizer.warmup_steps = 1
        config.total_steps = 4
        config.log_every = 1
        config.eval_every = 2
        config.checkpoint.save_every = 2
        config.checkpoint.async_save = False
    return config
