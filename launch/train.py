r"""Trains and evaluates one AG-CC (or baseline) run.

    python launch/train.py --config=configs/demo.py:direction=crema_to_msp,method=agcc \
        --config.data_dir=DATA --config.gestures_path=GESTURES.npz --workdir=RUN

Any config field can be overridden (`--config.loss.gamma=0.3`); an unknown field is an error before any
work starts, as is any field that breaks its rule (exit status 2, one line per field). Rerunning with
the same --workdir resumes from its newest readable checkpoint (a damaged one is moved aside to
checkpoints_unreadable/); a second run into a workdir in use fails at once. SIGTERM saves a checkpoint and
exits with status 75 ("preempted, resumable": schedulers should rerun the same command); a finished run
exits 0. Multi-host: every process runs this command; on TPU pods and managed clusters add
--multihost, elsewhere give --coordinator_address, --num_processes and --process_id.
Your own method, encoder or corpus registers itself from a module named by
--extension_modules=my_method.py (see docs/design.md).
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from artser_jax import extensions
from artser_jax import library_logs
from artser_jax import sharding

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py[:args]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: checkpoints, metrics, reports, export.",
                               required=True)
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() with auto-detection.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host).")
_EXTENSION_MODULES = extensions.define_flag()


def main(argv):
    del argv
    if _CONFIG.value is None:
        raise app.UsageError("--config is required")
    sharding.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                    auto=_MULTIHOST.value)
    logging.set_verbosity(logging.INFO)
    from artser_jax import checkpoint  # pylint: disable=g-import-not-at-top  (after distributed init)
    from artser_jax import train  # pylint: disable=g-import-not-at-top
    from artser_jax import workdir_lock  # pylint: disable=g-import-not-at-top
    from artser_jax.gestures import cluster_space  # pylint: disable=g-import-not-at-top
    library_logs.quiet_library_logs()

    try:
        result = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except (train.ConfigError, workdir_lock.WorkdirLockedError, checkpoint.NoReadableCheckpointError,
            cluster_space.GestureArtifactError) as error:
        print(f"launch/train.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    if result["preempted"]:
        logging.warning("Stopped early at step %d after SIGTERM; rerun the same command to resume (exit "
                        "status %d).", result["step"], train.PREEMPTED_EXIT_STATUS)
        sys.exit(train.PREEMPTED_EXIT_STATUS)


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    extensions.import_from_argv(sys.argv)
    app.run(main)
