"""Issue 11's controlled experiment, end to end (docs/controls.md): `run_controls(...)`.

Per corpus pair (generator version 2; premise present and premise absent, one generator seed):
generate the corpora, check their generator record and content hash, build both datasets, measure the
premise on the training splits (cluster-emotion NMI), fit the gesture space per direction, train every
arm for every seed, compute the anchoring diagnostics at every evaluated checkpoint, and compare each arm
with source-only by a paired bootstrap interval of delta-UAR over test utterances and seeds.
Everything is resumable: finished corpora, datasets, gesture models and runs are found and reused.
"""

from concurrent import futures
import csv
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
import time

import numpy as np

from artser_jax import diagnostics
from artser_jax import premise
from artser_jax import statistics
from artser_jax.configs import common
from artser_jax.configs import controls

CORPORA = ("crema_d", "msp_improv")
DIRECTIONS = ("crema_to_msp", "msp_to_crema")


@dataclasses.dataclass(frozen=True)
class Pair:
    """One generated corpus pair: its role (dev: recipe chosen on it; test: reported) and premise."""
    role: str
    condition: str
    generator_seed: int
    premise_strength: float

    @property
    def name(self):
        return f"{self.role}_{self.condition}"

    @property
    def folder(self):
        return f"seed{self.generator_seed}-premise{self.premise_strength:g}"


def experiment_pairs(role, dev_generator_seed, test_generator_seed, conditions=("present", "absent")):
    seed = {"dev": dev_generator_seed, "test": test_generator_seed, "demo": controls.DEMO_GENERATOR_SEED}[role]
    strengths = {"present": controls.PREMISE_PRESENT, "absent": controls.PREMISE_ABSENT}
    unknown = sorted(set(conditions) - set(strengths))
    if unknown:
        raise ValueError(f"unknown premise conditions {unknown}; choose from {', '.join(strengths)}")
    return [Pair(role, condition, seed, strengths[condition]) for condition in ("present", "absent")
            if condition in conditions]


class CorpusMismatchError(ValueError):
    """A corpus folder holds corpora other than the experiment expects."""


def corpus_content_hash(root):
    """sha256 over every file under `root` (relative path and bytes, in sorted path order)."""
    root = pathlib.Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_corpora(corpora_dir, pair, size, expected_hashes=None):
    """Refuses corpora whose generator record or content hash differ from the expected ones (naming both).

    The expected hash of a corpus is `expected_hashes["<size>/seed<s>/premise<p>/<corpus>"]` when given,
    else the hash recorded in `corpora_dir/content_hashes.json` when the corpora were first generated.
    """
    corpora_dir = pathlib.Path(corpora_dir)
    expected_record = {"size": size, "seed": pair.generator_seed, "parameters_version": controls.PARAMETERS_VERSION,
                       "premise_strength": float(pair.premise_strength)}
    record_path = corpora_dir / ".demo_generator" / "run.json"
    found = json.loads(record_path.read_text()) if record_path.is_file() else None
    if found != expected_record:
        raise CorpusMismatchError(f"{corpora_dir}: generator record {found} differs from the expected {expected_record}")
    recorded_path = corpora_dir / "content_hashes.json"
    recorded = json.loads(recorded_path.read_text()) if recorded_path.is_file() else {}
    hashes = {}
    for corpus in CORPORA:
        key = f"{size}/seed{pair.generator_seed}/premise{pair.premise_strength:g}/{corpus}"
        hashes[corpus] = corpus_content_hash(corpora_dir / corpus)
        expected = (expected_hashes or {}).get(key) or recorded.get(corpus)
        if expected is not None and expected != hashes[corpus]:
            raise CorpusMismatchError(f"{corpora_dir / corpus}: content hash {hashes[corpus]} differs from the "
                                      f"expected {expected} ({key})")
    if not recorded:
        recorded_path.write_text(json.dumps(hashes, indent=2))
    return hashes


def prepare_pair(out_dir, pair, size, num_workers):
    """Generated (or found) and checked corpora and built datasets of one pair; returns the data dir."""
    from artser_jax.data import prepare
    from artser_jax.demo_corpora import generate_demo_corpora

    corpora_dir = out_dir / "corpora" / pair.folder
    summary = generate_demo_corpora(corpora_dir, size, seed=pair.generator_seed, num_workers=num_workers,
                                    parameters_version=controls.PARAMETERS_VERSION,
                                    premise_strength=pair.premise_strength)
    logging.info("%s corpora: %s", pair.name, json.dumps(summary))
    hashes = check_corpora(corpora_dir, pair, size, controls.EXPECTED_CONTENT_HASHES)
    logging.info("%s content hashes: %s", pair.name, hashes)
    data_dir = out_dir / "data" / pair.folder
    for corpus in CORPORA:
        prepare.prepare_dataset(corpus, corpora_dir / corpus, data_dir, config_names=("emotion4",),
                                num_workers=num_workers, progress=True)
    return data_dir, hashes


def _tfds_names():
    from artser_jax.data import corpora

    return tuple(corpora.get(name).tfds_name for name in CORPORA)


def measure_pair(out_dir, pair, data_dir):
    """The premise measurement of a pair's training splits (cached in out_dir/premise/<pair>.json)."""
    path = out_dir / "premise" / f"{pair.folder}.json"
    if not path.is_file():
        result = premise.measure_premise(_tfds_names(), CORPORA, data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
    return json.loads(path.read_text())


def fit_gestures(out_dir, pair, direction, data_dir):
    from artser_jax.data import corpora
    from artser_jax.gestures import cluster_space
    from artser_jax.gestures import fitting

    path = out_dir / "gestures" / f"{pair.folder}_{direction}.npz"
    if not path.is_file():
        source, target = common.parse_direction(direction)
        model = fitting.fit_gesture_model(corpora.get(source).tfds_name, corpora.get(target).tfds_name,
                                          data_dir, cluster_space.GestureConfig())
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
    return path


def read_predictions(path, class_names):
    """(utterance ids, true label indices, predicted indices) of a predictions.csv."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    index = {name: i for i, name in enumerate(class_names)}
    return ([r["utterance"] for r in rows], np.array([index[r["true"]] for r in rows]),
            np.array([index[r["predicted"]] for r in rows]))


class RunInterrupted(RuntimeError):
    """A training run stopped on SIGTERM after saving; rerunning the experiment resumes it."""


def _run_config(direction, method, seed, data_dir, gestures_path, tiny):
    config = controls.get_config(f"direction={direction},method={method}" + (",tiny" if tiny else ""))
    config.data_dir = str(data_dir)
    config.gestures_path = str(gestures_path)
    config.seed = seed
    return config


def _diagnostics_assigner(config):
    """The run's own cluster assigner, or (arms without one) the gesture clusters AG-CC would use."""
    from artser_jax import methods
    from artser_jax.methods import agcc

    assigner = methods.get(config.method).cluster_assigner
    return assigner(config) if assigner is not None else agcc.load_gesture_clusters(config)


def train_arm(run_dir, config, figure_path=None):
    """Trains one run (or finds it finished); writes diagnostics.json; returns its summary."""
    from artser_jax import train

    predictions = run_dir / "final" / "target_test" / "predictions.csv"
    if not predictions.is_file():
        logging.info("training %s seed %d -> %s", config.method, config.seed, run_dir)
        result = train.train_and_evaluate(config, run_dir)
        if result["preempted"]:
            raise RunInterrupted(f"{run_dir}: interrupted; rerun the same command to resume")
    diagnostics_path = run_dir / "diagnostics.json"
    if not diagnostics_path.is_file() or (figure_path is not None and not figure_path.is_file()):
        assigner = _diagnostics_assigner(config)
        batch = diagnostics.diagnostics_batch(config, assigner)
        common_clusters = np.asarray(assigner.common)
        rows = diagnostics.checkpoint_diagnostics(config, run_dir, batch, common_clusters)
        diagnostics_path.write_text(json.dumps(rows, indent=2))
        if figure_path is not None:
            best = json.loads((run_dir / "final" / "source_dev" / "report.json").read_text())["step"]
            before, after = (diagnostics.segment_space(model, batch)
                             for _, model in diagnostics.restored_models(config, run_dir, [None, best]))
            diagnostics.plot_embedding_projection(figure_path, before, after,
                                                  f"{run_dir.parent.parent.name} {config.method} seed {config.seed}")
    reports = {name: json.loads((run_dir / "final" / name / "report.json").read_text())
               for name in ("source_dev", "target_test")}
    ids, labels, predicted = read_predictions(predictions, list(config.labels))
    return {"best_step": reports["source_dev"]["step"], "source_dev_uar": reports["source_dev"]["uar"],
            "target_uar": reports["target_test"]["uar"], "ids": ids, "labels": labels, "predicted": predicted,
            "diagnostics": json.loads(diagnostics_path.read_text())}


def compare_arms(runs, baseline=controls.BASELINE, resamples=2000):
    """{arm: {'uars', 'mean', 'std', 'delta_uar_ci'}} from {arm: [run summary per seed]} (seeds aligned)."""
    reference = runs[baseline]
    table = {}
    for arm, arm_runs in runs.items():
        uars = [r["target_uar"] for r in arm_runs]
        entry = {"uars": uars, "mean": float(np.mean(uars)), "std": float(np.std(uars)),
                 "source_dev_uars": [r["source_dev_uar"] for r in arm_runs],
                 "best_steps": [r["best_step"] for r in arm_runs]}
        if arm != baseline:
            for run, base in zip(arm_runs, reference):
                if run["ids"] != base["ids"]:
                    raise ValueError(f"{arm} and {baseline} were evaluated on different target utterances")
            interval = statistics.paired_bootstrap_delta_uar(
                reference[0]["labels"], [r["predicted"] for r in arm_runs], [r["predicted"] for r in reference],
                num_classes=len(common.EMOTIONS), resamples=resamples)
            entry["delta_uar_ci"] = interval.as_dict()
        last = [r["diagnostics"][-1] for r in arm_runs]
        entry["final_diagnostics"] = {key: float(np.nanmean([row[key] for row in last]))
                                      for key in last[0] if key != "step"}
        table[arm] = entry
    return table


def compare_conditions(present_runs, absent_runs, resamples=2000):
    """{direction: {arm: delta-UAR interval}} of each arm trained on both pairs of one generator seed, premise
    present minus premise absent, paired over the target-test utterances (the pairs share their audio and
    labels; only the mouth differs) and training seeds: how much of an arm's effect needs the premise."""
    table = {}
    for direction, arms in present_runs.items():
        for arm, runs in arms.items():
            if arm == controls.BASELINE or arm not in absent_runs.get(direction, {}):
                continue
            others = absent_runs[direction][arm]
            if ([list(r["ids"]) for r in runs] != [list(r["ids"]) for r in others]
                    or not np.array_equal(runs[0]["labels"], others[0]["labels"])):
                raise ValueError(f"{direction} {arm}: the premise-present and -absent pairs' target test sets differ; "
                                 "they must come from one generator seed")
            interval = statistics.paired_bootstrap_delta_uar(
                runs[0]["labels"], [r["predicted"] for r in runs], [r["predicted"] for r in others],
                num_classes=len(common.EMOTIONS), resamples=resamples)
            table.setdefault(direction, {})[arm] = interval.as_dict()
    return table


def format_results(results):
    lines = []
    for pair_name, pair in results["pairs"].items():
        lines.append(f"### {pair_name} (generator seed {pair['generator_seed']}, premise strength "
                     f"{pair['premise_strength']:g})\n")
        lines.append("Cluster-emotion NMI (train splits): " +
                     ", ".join(f"{c} {pair['premise'][c]['nmi']:.3f}" for c in CORPORA) + "\n")
        lines += ["| direction | arm | source-dev UAR | target UAR (mean ± std) | seeds' UARs | delta-UAR [95% CI] | "
                  "anchor gap | nearest-in-cluster | method grad share |", "|---" * 9 + "|"]
        for direction, table in pair["directions"].items():
            for arm, entry in table.items():
                ci = entry.get("delta_uar_ci")
                delta = f"{ci['delta']:+.1f} [{ci['low']:+.1f}, {ci['high']:+.1f}]" if ci else "(baseline)"
                diag = entry["final_diagnostics"]
                share = f"{diag[f'grad_share/{arm}']:.2f}" if f"grad_share/{arm}" in diag else "-"
                name = f"{arm} (DIAGNOSTIC)" if arm == "oracle_emotion" else arm
                dev = entry["source_dev_uars"]
                lines.append(f"| {direction} | {name} | {np.mean(dev):.1f} ± {np.std(dev):.1f} | "
                             f"{entry['mean']:.1f} ± {entry['std']:.1f} | "
                             f"{', '.join(f'{u:.1f}' for u in entry['uars'])} | {delta} | "
                             f"{diag['anchor_distance_gap']:+.3f} | {diag['nearest_source_in_cluster']:.2f} | "
                             f"{share} |")
        lines.append("")
    if results.get("premise_dependence"):
        lines += ["### Premise present minus premise absent (same target utterances and training seeds)\n",
                  "| direction | arm | delta-UAR [95% CI] |", "|---|---|---|"]
        for direction, table in results["premise_dependence"].items():
            lines += [f"| {direction} | {arm} | {ci['delta']:+.1f} [{ci['low']:+.1f}, {ci['high']:+.1f}] |"
                      for arm, ci in table.items()]
        lines.append("")
    return "\n".join(lines)


def available_cores():
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def default_parallel_runs():
    """One run per CPU core on a CPU backend (a run of the small recipe model does not use several cores
    well; docs/controls.md "Cost"), one at a time on an accelerator."""
    import jax  # pylint: disable=g-import-not-at-top

    return len(available_cores()) if jax.default_backend() == "cpu" else 1


def use_compilation_cache(cache_dir):
    """Arms and seeds share step shapes: a persistent cache reuses the compiled executables across runs."""
    import jax  # pylint: disable=g-import-not-at-top

    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _start_run_worker(core_sets, compilation_cache_dir):
    """Pins this worker to its share of the cores before JAX starts, so XLA sizes its thread pools to it."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, core_sets.get())
    logging.getLogger().setLevel(logging.INFO)
    from artser_jax import library_logs  # pylint: disable=g-import-not-at-top

    library_logs.quiet_library_logs()
    use_compilation_cache(compilation_cache_dir)


def _run_job(job):
    run_dir, config_args, figure = job
    return train_arm(run_dir, _run_config(*config_args), figure)


def run_jobs(jobs, parallel_runs, compilation_cache_dir):
    """train_arm over `jobs` [(run_dir, _run_config args, figure path)], in order; `parallel_runs` > 1 runs
    that many in worker processes, each pinned to its own share of the cores (the caller's process uses
    `compilation_cache_dir` already)."""
    if parallel_runs <= 1 or len(jobs) <= 1:
        return [_run_job(job) for job in jobs]
    cores = available_cores()
    parallel_runs = min(parallel_runs, len(jobs), len(cores))
    context = multiprocessing.get_context("spawn")
    core_sets = context.Queue()
    for worker in range(parallel_runs):
        core_sets.put(set(cores[worker::parallel_runs]))
    # A worker that dies (out of memory, killed) breaks the pool with an error instead of a hang.
    with futures.ProcessPoolExecutor(parallel_runs, mp_context=context, initializer=_start_run_worker,
                                     initargs=(core_sets, compilation_cache_dir)) as pool:
        return list(pool.map(_run_job, jobs))


def run_controls(out_dir, size="controls", seeds=controls.TRAINING_SEEDS, role="test",
                 dev_generator_seed=controls.DEV_GENERATOR_SEED, test_generator_seed=controls.TEST_GENERATOR_SEED,
                 directions=DIRECTIONS, num_workers=2, arms=None, conditions=("present", "absent"), parallel_runs=None,
                 prepare_only=False):
    """The whole experiment on the `role` pairs (dev, test, or demo: the README demo's premise-present pair);
    writes results.md, results.json and figures; returns (results, the table as Markdown).

    Every pair's premise (cluster-emotion NMI and tables of its training splits) is written to
    OUT_DIR/premise.md. `prepare_only` stops there, before any training, and returns (results, premise
    tables), so the tables of new generator seeds can be committed before the first comparison run.

    `arms` (default: every arm of `controls.ARMS`) and `conditions` restrict the arms and premise
    conditions, for development work and smoke tests; source-only is always trained, as every comparison
    needs it. `parallel_runs` trains that many runs at once (`run_jobs`; default `default_parallel_runs()`).
    Compiled executables are cached in OUT_DIR/jax_cache.
    """
    started = time.perf_counter()
    out_dir = pathlib.Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    compilation_cache_dir = out_dir / "jax_cache"
    use_compilation_cache(compilation_cache_dir)
    parallel_runs = parallel_runs or default_parallel_runs()
    tiny = size == "tiny"
    stages = {}
    results = {"size": size, "role": role, "seeds": list(seeds), "arms": list(arms) if arms else "all", "parameters_version": controls.PARAMETERS_VERSION,
               "recipe": controls.RECIPE, "pairs": {}}
    pairs = experiment_pairs(role, dev_generator_seed, test_generator_seed, conditions)
    prepared = {}
    for pair in pairs:
        mark = time.perf_counter()
        data_dir, hashes = prepare_pair(out_dir, pair, size, num_workers)
        premise_result = measure_pair(out_dir, pair, data_dir)
        gestures_paths = {direction: fit_gestures(out_dir, pair, direction, data_dir) for direction in directions}
        stages[f"{pair.name}: corpora, datasets, premise, gesture models"] = time.perf_counter() - mark
        prepared[pair] = data_dir, gestures_paths
        results["pairs"][pair.name] = {"generator_seed": pair.generator_seed, "premise_strength": pair.premise_strength,
                                       "content_hashes": hashes, "premise": premise_result, "directions": {}}
    premise_text = "\n".join(premise.format_premise(f"{pair.name} (generator seed {pair.generator_seed}, premise "
                                                     f"strength {pair.premise_strength})",
                                                     results["pairs"][pair.name]["premise"]) for pair in pairs)
    (out_dir / "premise.md").write_text(f"# The premise of the {role} pairs (size {size})\n\n{premise_text}")
    if prepare_only:
        return results, premise_text
    runs_by_condition = {}
    for pair in pairs:
        data_dir, gestures_paths = prepared[pair]
        entry = results["pairs"][pair.name]
        mark = time.perf_counter()
        keys, jobs = [], []
        for direction in directions:
            gestures_path = gestures_paths[direction]
            for arm in controls.ARMS[pair.condition]:
                if arms is not None and arm not in arms and arm != controls.BASELINE:
                    continue
                for seed in seeds:
                    run_dir = out_dir / "runs" / pair.folder / direction / arm / f"seed{seed}"
                    figure = (out_dir / "figures" / f"{pair.folder}_{direction}_{arm}_seed{seed}.png"
                              if seed == seeds[0] else None)
                    keys.append((direction, arm))
                    jobs.append((run_dir, (direction, arm, seed, data_dir, gestures_path, tiny), figure))
        runs = runs_by_condition[pair.condition] = {}
        for (direction, arm), summary in zip(keys, run_jobs(jobs, parallel_runs, compilation_cache_dir)):
            runs.setdefault(direction, {}).setdefault(arm, []).append(summary)
        for direction, direction_runs in runs.items():
            entry["directions"][direction] = compare_arms(direction_runs)
        stages[f"{pair.name}: training, diagnostics, statistics"] = time.perf_counter() - mark
    if {"present", "absent"} <= runs_by_condition.keys():
        results["premise_dependence"] = compare_conditions(runs_by_condition["present"], runs_by_condition["absent"])
    results["stage_seconds"] = stages
    results["wall_time_s"] = time.perf_counter() - started
    text = format_results(results)
    timing = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in stages.items())
    (out_dir / "results.md").write_text(
        f"# Controls experiment ({role} pairs, size {size}, seeds {list(seeds)})\n\n{text}\n"
        f"UAR in %, mean ± std over seeds (source-dev: the selected checkpoint's); delta-UAR = arm - source_only with a paired bootstrap 95% "
        f"interval over target-test utterances and seeds (premise present minus absent: the same arm on the "
        f"two pairs of one generator seed, paired the same way). oracle_emotion is a DIAGNOSTIC that reads target "
        f"labels. Diagnostics: at the last evaluated checkpoint, mean over seeds. Wall time "
        f"{results['wall_time_s'] / 60:.1f} min ({timing}).\n")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results, text
