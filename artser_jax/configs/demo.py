"""The demo experiment: AG-CC on the generated demo corpora, small enough for a 2-core CPU.

`configs/demo.py` is its entry point (with the commands); `launch/demo.py` runs the whole demo.
"""

from artser_jax.configs import common


def get_config(arg=None):
    args = common.parse_arg(arg, direction="crema_to_msp", method="agcc", tiny=False)
    source, target = common.parse_direction(args.direction)
    config = common.base_config(source=source, target=target, method=args.method)
    common.generated_corpora_scale(config)
    config.input.eval_batch_size = 32
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_steps = 30
    config.total_steps = 300
    config.log_every = 25
    config.eval_every = 50
    config.checkpoint.save_every = 50
    if args.tiny:
        common.shrink_for_tests(config)
        config.log_every = 1
        config.eval_every = 2
        config.checkpoint.save_every = 2
        config.checkpoint.async_save = False
    return config
