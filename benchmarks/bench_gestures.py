"""Benchmark: time to fit the gesture cluster space on, and to assign, 200,000 segments.

    python -m benchmarks.bench_gestures [--num_segments=200000 --num_clusters=8 --n_init=4]

(run from the repository root, as a module: it reuses the planted tracks of tests/fixture_gestures.py)

Utterances are synthetic landmark tracks with planted mouth shapes (tests/fixture_gestures.py), 10
phone segments each, from a pool of distinct utterances reused until `num_segments` segments are
reached (descriptor cost does not depend on which utterance it is). Measured, single process:
1. descriptors: segmentation + mouth descriptors of every utterance (the per-example work of the fit);
2. fit: speaker statistics, scaler, k-means++ (`kmeans` and `minibatch`), common clusters;
3. assign: `GestureModel.assign_example` per utterance (what the input pipeline calls) and
   `assign_table` on the whole table.
Prints one JSON object with wall-clock and process CPU seconds of each step.
"""

import json
import time

from absl import app
from absl import flags
import numpy as np

from artser_jax.gestures import cluster_space
from artser_jax.gestures import descriptors
from artser_jax.gestures import fitting
from tests import fixture_gestures as planted

_NUM_SEGMENTS = flags.DEFINE_integer("num_segments", 200_000, "Segments to fit on and assign.")
_NUM_CLUSTERS = flags.DEFINE_integer("num_clusters", 8, "K.")
_N_INIT = flags.DEFINE_integer("n_init", 4, "k-means++ restarts.")
_POOL = flags.DEFINE_integer("pool_utterances", 600, "Distinct synthetic utterances (per corpus: half).")
_SPEAKERS = flags.DEFINE_integer("speakers_per_corpus", 30, "Synthetic speakers per corpus.")
_ALGORITHMS = flags.DEFINE_list("algorithms", ["kmeans", "minibatch"], "k-means variants to time.")

SEGMENTS_PER_UTTERANCE = 10


class Timer:
    """Wall-clock and process CPU seconds of a block (CPU time is what a shared machine cannot inflate;
    it sums all threads, so k-means can show more CPU than wall time)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def record(self, result, name):
        result[f"{name}_wall_s"] = round(self.wall, 3)
        result[f"{name}_cpu_s"] = round(self.cpu, 3)


def synthetic_corpora(rng, pool_utterances, speakers_per_corpus):
    """Per corpus: the pool of examples and their planted shape per segment."""
    return [planted.planted_corpus(rng, corpus, speakers_per_corpus,
                                   max(1, pool_utterances // 2 // speakers_per_corpus),
                                   SEGMENTS_PER_UTTERANCE)
            for corpus in ("corpus_a", "corpus_b")]


def repeated(examples, count):
    return [examples[i % len(examples)] for i in range(count)]


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    pools = synthetic_corpora(rng, _POOL.value, _SPEAKERS.value)
    per_corpus = _NUM_SEGMENTS.value // SEGMENTS_PER_UTTERANCE // 2
    corpora = [repeated(examples, per_corpus) for examples, _ in pools]
    truth = np.concatenate([np.concatenate(repeated(truths, per_corpus)) for _, truths in pools])
    result = {"num_segments": 2 * per_corpus * SEGMENTS_PER_UTTERANCE, "utterances": 2 * per_corpus,
              "num_clusters": _NUM_CLUSTERS.value, "n_init": _N_INIT.value,
              "descriptor_dim": descriptors.NUM_DESCRIPTORS}

    base = cluster_space.GestureConfig(num_clusters=_NUM_CLUSTERS.value, n_init=_N_INIT.value)
    with Timer() as timer:
        tables = [descriptors.descriptor_table(examples, base) for examples in corpora]
    timer.record(result, "descriptors")
    result["valid_segments"] = int(sum(len(t.descriptors) for t in tables))
    if result["valid_segments"] != len(truth):
        raise RuntimeError("every planted segment should have a valid descriptor")

    models = {}
    for algorithm in _ALGORITHMS.value:
        config = cluster_space.GestureConfig(num_clusters=_NUM_CLUSTERS.value, n_init=_N_INIT.value,
                                             algorithm=algorithm)
        with Timer() as timer:
            model, labels, _ = fitting.fit_from_tables(*tables, config, ("corpus_a", "corpus_b"))
        timer.record(result, f"fit_{algorithm}")
        result[f"fit_{algorithm}_purity"] = round(float(fitting.cluster_purity(labels, truth)), 4)
        models[algorithm] = model
    model = models[_ALGORITHMS.value[0]]

    with Timer() as timer:
        for examples in corpora:
            for example in examples:
                model.assign_example(example, base.segments(example))
    timer.record(result, "assign_example")
    result["assign_example_cpu_us_per_utterance"] = round(1e6 * timer.cpu / result["utterances"], 1)

    with Timer() as timer:
        for table in tables:
            model.assign_table(table)
    timer.record(result, "assign_table")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    app.run(main)
