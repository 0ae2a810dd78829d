r"""The demo: does AG-CC move the target where the paper's premise holds? End to end, on a CPU.

    python launch/demo.py --out_dir=/tmp/artser_demo

The premise-present pair of the controls experiment (docs/controls.md), at the small `demo` size and
with its own generator seed (controls.DEMO_GENERATOR_SEED): generator version 2, where each emotion's
articulation style shows in the mouth the same way in both corpora. Stages (each shows progress and is
skipped when its output exists, so a rerun resumes):
  1. generate the CREMA-D-like and MSP-IMPROV-like corpora (artser_jax/demo_corpora);
  2. build both TFDS datasets (audio, MediaPipe mouth landmarks on every frame, phones, labels);
  3. measure the premise (cluster-emotion NMI on the training splits) and fit the gesture space;
  4. train source-only and AG-CC for each seed with the controls recipe (configs/controls.py), runs in
     parallel, one per CPU core;
  5. print and save the table: target-test UAR, mean ± std over seeds, and AG-CC's delta-UAR over
     source-only with its paired bootstrap 95% interval (test utterances and seeds resampled).
Results: OUT_DIR/results.md and OUT_DIR/results.json; each run under OUT_DIR/runs/<pair>/<direction>/.
The full experiment, with its premise-absent pair, more arms and seeds, and the power to read the
interval, is `launch/experiment.py --experiment=controls`.
"""

import logging

from absl import app
from absl import flags

from artser_jax import library_logs
from artser_jax.configs import common
from artser_jax.configs import controls

_OUT_DIR = flags.DEFINE_string("out_dir", "/tmp/artser_demo", "Where corpora, datasets, runs and results go.")
_SIZE = flags.DEFINE_enum("size", "demo", ["tiny", "demo"], "Corpus size (tiny: a quick smoke run).")
_DIRECTIONS = flags.DEFINE_list("directions", ["crema_to_msp"], "crema_to_msp and/or msp_to_crema.")
_METHODS = flags.DEFINE_list("methods", ["source_only", "agcc"],
                             f"Arms to train, of {', '.join(controls.ARMS['present'])}; source_only always runs.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds; the table gives mean ± std over them.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Processes for corpus rendering and landmark extraction.")
_PARALLEL_RUNS = flags.DEFINE_integer("parallel_runs", None, "Training runs at once (default: one per CPU core on a "
                                      "CPU backend; one on an accelerator).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.INFO)
    library_logs.quiet_library_logs()
    unknown = sorted(set(_METHODS.value) - set(controls.ARMS["present"]))
    if unknown:
        raise app.UsageError(f"unknown methods {unknown}; choose from {', '.join(controls.ARMS['present'])}")
    try:
        for direction in _DIRECTIONS.value:
            common.parse_direction(direction)
    except ValueError as error:
        raise app.UsageError(str(error))
    from artser_jax import experiment  # pylint: disable=g-import-not-at-top
    from artser_jax import train  # pylint: disable=g-import-not-at-top

    try:
        results, text = experiment.run_controls(
            _OUT_DIR.value, size=_SIZE.value, seeds=[int(s) for s in _SEEDS.value], role="demo",
            directions=_DIRECTIONS.value, num_workers=_NUM_WORKERS.value, arms=_METHODS.value,
            conditions=("present",), parallel_runs=_PARALLEL_RUNS.value)
    except experiment.RunInterrupted as interrupted:
        print(f"{interrupted}; rerun launch/demo.py with the same --out_dir to resume")
        raise SystemExit(train.PREEMPTED_EXIT_STATUS) from None
    print(text)
    print(f"This invocation took {results['wall_time_s'] / 60:.1f} min (a rerun skips the stages already "
          f"finished); details in {_OUT_DIR.value}/results.md and {_OUT_DIR.value}/runs")


if __name__ == "__main__":
    app.run(main)
