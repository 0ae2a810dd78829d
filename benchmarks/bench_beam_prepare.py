"""Dataset build throughput: Apache Beam's DirectRunner against the process pool, same workers, same corpora.

    python benchmarks/bench_beam_prepare.py --corpora_dir=DIR [--corpora=crema_d,msp_improv] [--workers=2] \
        [--out=results.json]

DIR holds crema_d/ and msp_improv/ as `launch/make_demo_corpora.py` writes them (or the real corpora in
those folder names). Each corpus's `emotion4` dataset is built twice into fresh data dirs, each with an
empty landmark cache, so MediaPipe runs on every frame both times:
- `pool`: `prepare.prepare_dataset(num_workers=--workers)`, the default process pool;
- `beam`: the same call with `beam_runner="DirectRunner"` and "--direct_num_workers=<workers>
  --direct_running_mode=multi_processing" (Beam's worker start-up included).
One run each (the whole build: audio checks, landmark extraction, example writing). Reported in video
frames per second (the frames of every track in the cache afterwards, which must be the same for both), and
`beam_to_pool_ratio` = beam frames/s / pool frames/s. The load average is printed too: on a shared machine
other processes take cores away from either.
"""

import json
import os
import pathlib
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from artser_jax.data import prepare

_CORPORA_DIR = flags.DEFINE_string("corpora_dir", None, "Folder holding crema_d/ and msp_improv/.", required=True)
_CORPORA = flags.DEFINE_list("corpora", ["crema_d", "msp_improv"], "Corpora to build (folder names in --corpora_dir).")
_WORKERS = flags.DEFINE_integer("workers", 2, "Worker processes of the pool and of the DirectRunner.")
_OUT = flags.DEFINE_string("out", None, "Also write the results as JSON here.")


def cached_frames(cache_dir):
    """Frames of every landmark track in a cache."""
    total = 0
    for entry in sorted(pathlib.Path(cache_dir).glob("*.npz")):
        with np.load(entry) as track:
            total += len(track["valid"])
    return total


def build_seconds(data_dir, **build):
    """Wall seconds to build every --corpora into `data_dir` (its own, empty landmark cache)."""
    start = time.perf_counter()
    for corpus in _CORPORA.value:
        prepare.prepare_dataset(corpus, pathlib.Path(_CORPORA_DIR.value) / corpus, data_dir, progress=False, **build)
    return time.perf_counter() - start


def main(argv):
    del argv
    workers = _WORKERS.value
    beam = dict(beam_runner="DirectRunner",
                beam_options=f"--direct_num_workers={workers} --direct_running_mode=multi_processing")
    results = {"corpora": _CORPORA.value, "workers": workers, "cpu_count": os.cpu_count(),
               "load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as scratch:
        frames = {}
        for name, build in (("pool", dict(num_workers=workers)), ("beam", beam)):
            data_dir = pathlib.Path(scratch) / name
            seconds = build_seconds(data_dir, **build)
            frames[name] = cached_frames(data_dir / "landmark_cache")
            results[f"{name}_seconds"] = seconds
            results[f"{name}_fps"] = frames[name] / seconds
        if frames["pool"] != frames["beam"]:
            raise SystemExit(f"error: the builds extracted different frame counts: {frames}")
    results["frames"] = frames["pool"]
    results["beam_to_pool_ratio"] = results["beam_fps"] / results["pool_fps"]
    results["load_average_after"] = os.getloadavg()[0]
    for key, value in results.items():
        print(f"{key:>22}: {value:.3f}" if isinstance(value, float) else f"{key:>22}: {value}")
    if _OUT.value:
        pathlib.Path(_OUT.value).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    app.run(main)
