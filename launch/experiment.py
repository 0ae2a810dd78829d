r"""Runs a whole controlled experiment (issue 11, docs/controls.md) and prints its table.

    python launch/experiment.py --experiment=controls --out_dir=/tmp/controls [--size=tiny|controls] \
        [--seeds=0,1,2,3,4] [--dev_generator_seed=1] [--test_generator_seed=2] [--pair=test|dev]

--pair=test (default) reports on the test pairs (premise present and absent, generator seed
--test_generator_seed); --pair=dev runs the same arms on the development pairs, where the recipe is
chosen. Writes OUT_DIR/results.md, OUT_DIR/results.json and OUT_DIR/figures/; reruns resume.
--prepare_only generates and builds the pairs, fits their gesture models and writes their premise
(OUT_DIR/premise.md), then stops before any training: commit those tables, then run without it.
"""

import logging

from absl import app
from absl import flags

from artser_jax import library_logs
from artser_jax.configs import controls

_EXPERIMENT = flags.DEFINE_enum("experiment", "controls", ["controls"], "Which experiment.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where corpora, datasets, runs and results go.", required=True)
_SIZE = flags.DEFINE_enum("size", "controls", ["tiny", "controls"], "Corpus size (tiny: a smoke run).")
_SEEDS = flags.DEFINE_list("seeds", [str(s) for s in controls.TRAINING_SEEDS], "Training seeds (>= 5 to report).")
_DEV_SEED = flags.DEFINE_integer("dev_generator_seed", controls.DEV_GENERATOR_SEED, "Development pair's seed.")
_TEST_SEED = flags.DEFINE_integer("test_generator_seed", controls.TEST_GENERATOR_SEED, "Test pair's seed.")
_PAIR = flags.DEFINE_enum("pair", "test", ["test", "dev"], "Which pairs to run the arms on.")
_DIRECTIONS = flags.DEFINE_list("directions", ["crema_to_msp", "msp_to_crema"], "Directions.")
_ARMS = flags.DEFINE_list("arms", None, "Only these arms (smoke tests; default: every arm). source_only always runs.")
_CONDITIONS = flags.DEFINE_list("conditions", ["present", "absent"], "Premise conditions whose pairs run.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Processes for rendering and landmark extraction.")
_PREPARE_ONLY = flags.DEFINE_bool("prepare_only", False, "Stop after the pairs' premise tables (OUT_DIR/premise.md), "
                                   "before any training.")
_PARALLEL_RUNS = flags.DEFINE_integer("parallel_runs", None, "Training runs at once (default: one per CPU core on a "
                                      "CPU backend, each pinned to its core; one on an accelerator).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.INFO)
    library_logs.quiet_library_logs()
    from artser_jax import experiment  # pylint: disable=g-import-not-at-top

    if _DEV_SEED.value == _TEST_SEED.value:
        raise app.UsageError("--dev_generator_seed and --test_generator_seed must differ")
    from artser_jax import train  # pylint: disable=g-import-not-at-top

    try:
        results, text = experiment.run_controls(
            _OUT_DIR.value, size=_SIZE.value, seeds=[int(s) for s in _SEEDS.value], role=_PAIR.value,
            dev_generator_seed=_DEV_SEED.value, test_generator_seed=_TEST_SEED.value,
            directions=_DIRECTIONS.value, num_workers=_NUM_WORKERS.value, arms=_ARMS.value,
            conditions=_CONDITIONS.value, parallel_runs=_PARALLEL_RUNS.value, prepare_only=_PREPARE_ONLY.value)
    except experiment.RunInterrupted as interrupted:
        print(interrupted)
        raise SystemExit(train.PREEMPTED_EXIT_STATUS) from None
    print(text)
    if _PREPARE_ONLY.value:
        print(f"{_OUT_DIR.value}/premise.md written; no run trained. Commit the premise tables before the runs.")
        return
    print(f"wall time {results['wall_time_s'] / 60:.1f} min; {_OUT_DIR.value}/results.md and results.json")


if __name__ == "__main__":
    app.run(main)
