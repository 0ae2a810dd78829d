r"""The whole AG-CC demo on generated corpora, end to end, on a CPU.

    python launch/demo.py --out_dir=/tmp/artser_demo

Stages (each shows progress, and each is skipped when its output already exists, so a rerun resumes):
  1. generate the CREMA-D-like and MSP-IMPROV-like demo corpora (artser_jax/demo_corpora);
  2. build both TFDS datasets (audio, MediaPipe mouth landmarks, phones, labels);
  3. fit the shared gesture cluster space per direction (k-means on mouth descriptors);
  4. train and evaluate each method for each seed (configs/demo.py);
  5. print and save a table: UAR / WA / macro-F1, mean +- std over seeds, on source-dev (model selection)
     and target-test (cross-corpus).
Results: OUT_DIR/results.md and OUT_DIR/results.json; each run's reports under OUT_DIR/runs/.
"""

import json
import logging
import pathlib
import sys
import time

from absl import app
from absl import flags

from artser_jax import library_logs
from artser_jax.configs import common
from artser_jax.configs import demo as demo_config

_OUT_DIR = flags.DEFINE_string("out_dir", "/tmp/artser_demo", "Where corpora, datasets, runs and results go.")
_SIZE = flags.DEFINE_enum("size", "demo", ["tiny", "demo"], "Demo-corpus size (tiny: a quick smoke run).")
_DIRECTIONS = flags.DEFINE_list("directions", ["crema_to_msp"], "crema_to_msp and/or msp_to_crema.")
_METHODS = flags.DEFINE_list("methods", ["source_only", "agcc"], "Methods to train (names of artser_jax.methods).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds; the table gives mean +- std over them.")
_TOTAL_STEPS = flags.DEFINE_integer("total_steps", None, "Override the demo config's training steps.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Processes for corpus rendering and landmark extraction.")

DEMO_CORPORA = ("crema_d", "msp_improv")  # the corpora artser_jax.demo_corpora generates
METRICS = ("uar", "wa", "macro_f1")
EVALUATORS = ("source_dev", "target_test")


def _stage(number, title):
    logging.info("=" * 20 + " [%d/5] %s " + "=" * 20, number, title)


def make_datasets(out_dir, size, num_workers):
    from artser_jax.data import prepare  # pylint: disable=g-import-not-at-top
    from artser_jax.demo_corpora import generate_demo_corpora  # pylint: disable=g-import-not-at-top

    _stage(1, f"demo corpora ({size})")
    summary = generate_demo_corpora(out_dir / "corpora", size, seed=0, num_workers=num_workers)
    logging.info("corpora: %s", json.dumps(summary))
    _stage(2, "TFDS datasets (MediaPipe landmarks on every video frame)")
    for corpus in DEMO_CORPORA:
        prepare.prepare_dataset(corpus, out_dir / "corpora" / corpus, out_dir / "data",
                                 config_names=("emotion4",), num_workers=num_workers, progress=True)


def fit_gestures(out_dir, direction):
    from artser_jax.gestures import cluster_space  # pylint: disable=g-import-not-at-top
    from artser_jax.gestures import fitting  # pylint: disable=g-import-not-at-top

    path = out_dir / f"gestures_{direction}.npz"
    if path.exists():
        logging.info("gesture model %s exists; kept", path)
        return path
    from artser_jax.data import corpora  # pylint: disable=g-import-not-at-top

    source, target = common.parse_direction(direction)
    model = fitting.fit_gesture_model(corpora.get(source).tfds_name, corpora.get(target).tfds_name,
                                      out_dir / "data", cluster_space.GestureConfig())
    model.save(path)
    logging.info("gesture model %s: %d clusters, common %s, counts %s", path, model.num_clusters,
                 model.common.astype(int).tolist(), model.counts.tolist())
    return path


def train_run(out_dir, direction, method, seed, gestures_path, total_steps):
    """Trains one run (or finds it finished) and returns its final reports {evaluator: report}."""
    from artser_jax import train  # pylint: disable=g-import-not-at-top

    workdir = out_dir / "runs" / direction / method / f"seed{seed}"
    reports = {name: workdir / "final" / name / "report.json" for name in EVALUATORS}
    if not all(path.exists() for path in reports.values()):
        config = demo_config.get_config(f"direction={direction},method={method}")
        config.data_dir = str(out_dir / "data")
        config.gestures_path = str(gestures_path)
        config.seed = seed
        if total_steps:
            config.total_steps = total_steps
        logging.info("training %s %s seed %d -> %s", direction, method, seed, workdir)
        started = time.perf_counter()
        result = train.train_and_evaluate(config, workdir)
        if result["preempted"]:
            print("interrupted; rerun launch/demo.py with the same --out_dir to resume", file=sys.stderr)
            sys.exit(train.PREEMPTED_EXIT_STATUS)
        logging.info("run finished in %.0f s", time.perf_counter() - started)
    return {name: json.loads(path.read_text()) for name, path in reports.items()}


def summarise(results):
    """{(direction, method): {evaluator: {metric: (mean, std, n)}}} from per-seed reports."""
    import numpy as np  # pylint: disable=g-import-not-at-top

    table = {}
    for (direction, method), runs in results.items():
        table[(direction, method)] = {
            name: {m: (float(np.mean([r[name][m] for r in runs])), float(np.std([r[name][m] for r in runs])),
                       len(runs)) for m in METRICS}
            for name in EVALUATORS}
    return table


def format_table(table):
    header = ("| direction | method | seeds | " + " | ".join(f"{e} {m.upper()}" for e in EVALUATORS for m in METRICS)
              + " |")
    lines = [header, "|" + "---|" * (3 + len(EVALUATORS) * len(METRICS))]
    for (direction, method), row in table.items():
        cells = [f"{row[e][m][0]:.1f} ± {row[e][m][1]:.1f}" for e in EVALUATORS for m in METRICS]
        lines.append(f"| {direction} | {method} | {row[EVALUATORS[0]]['uar'][2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    del argv
    started = time.perf_counter()
    logging.getLogger().setLevel(logging.INFO)
    from artser_jax import methods  # pylint: disable=g-import-not-at-top

    library_logs.quiet_library_logs()
    try:
        for direction in _DIRECTIONS.value:
            common.parse_direction(direction)
        for method in _METHODS.value:
            methods.get(method)
    except ValueError as error:
        raise app.UsageError(str(error))
    seeds = [int(s) for s in _SEEDS.value]
    out_dir = pathlib.Path(_OUT_DIR.value).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    import jax  # pylint: disable=g-import-not-at-top

    # Seeds and methods share step shapes: compiled executables are reused across the runs.
    jax.config.update("jax_compilation_cache_dir", str(out_dir / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    timings = {}

    make_datasets(out_dir, _SIZE.value, _NUM_WORKERS.value)
    timings["corpora and datasets"] = time.perf_counter() - started
    _stage(3, "gesture cluster spaces")
    gesture_paths = {d: fit_gestures(out_dir, d) for d in _DIRECTIONS.value}
    timings["gestures"] = time.perf_counter() - started - sum(timings.values())
    _stage(4, f"training {len(_DIRECTIONS.value) * len(_METHODS.value) * len(seeds)} runs")
    results = {}
    for direction in _DIRECTIONS.value:
        for method in _METHODS.value:
            results[(direction, method)] = [
                train_run(out_dir, direction, method, seed, gesture_paths[direction], _TOTAL_STEPS.value)
                for seed in seeds]
    timings["training and evaluation"] = time.perf_counter() - started - sum(timings.values())

    _stage(5, "results")
    table = summarise(results)
    text = format_table(table)
    total = time.perf_counter() - started
    timing_text = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    (out_dir / "results.md").write_text(
        f"{text}\n\nUAR / WA / macro-F1 in %, mean ± std over seeds {seeds}. Model selection: best source-dev "
        f"UAR checkpoint. This invocation took {total / 60:.1f} min ({timing_text}); stages finished by an "
        f"earlier invocation were skipped.\n")
    (out_dir / "results.json").write_text(json.dumps(
        {"seeds": seeds, "wall_time_s": total, "stage_seconds": timings,
         "table": [{"direction": d, "method": m, **{f"{e}/{k}": v for e, row in r.items() for k, v in row.items()}}
                   for (d, m), r in table.items()]}, indent=2))
    print(text)
    print(f"\nmean ± std over seeds {seeds}; this invocation took {total / 60:.1f} min ({timing_text}); "
          f"details in {out_dir / 'results.md'} and {out_dir / 'runs'}")


if __name__ == "__main__":
    app.run(main)
