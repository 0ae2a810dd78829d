r"""Re-runs every evaluator of a config on a checkpoint of a training run.

    python launch/evaluate.py --config=configs/demo.py:direction=crema_to_msp --config.data_dir=DATA \
        --workdir=RUN [--step=N] [--out_dir=DIR]

Default step: the best kept checkpoint by source-dev UAR. Reports (report.json, predictions.csv, confusion
PNGs) go to DIR (default RUN/evaluate/step_N/<evaluator>/).
"""

import json
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from artser_jax import extensions
from artser_jax import library_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "The run's config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The training run directory.", required=True)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: best by source-dev UAR).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where to write the reports.")
_EXTENSION_MODULES = extensions.define_flag()


def main(argv):
    del argv
    logging.set_verbosity(logging.INFO)
    from artser_jax import train  # pylint: disable=g-import-not-at-top
    library_logs.quiet_library_logs()

    try:
        scalars = train.evaluate_checkpoint(_CONFIG.value, _WORKDIR.value, _STEP.value, _OUT_DIR.value)
    except (train.ConfigError, FileNotFoundError) as error:
        print(f"launch/evaluate.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(scalars, indent=2))


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    extensions.import_from_argv(sys.argv)
    app.run(main)
