r"""Cheaper training for the controls experiment (issue 11): the seeds of an arm trained together
(jax.vmap over the seeds' states and batches), or one process per CPU core (each pinned to its core, as
`launch/experiment.py --parallel_runs` does), against one seed at a time in one process: steps per second
of the controls config's training step.

    python benchmarks/bench_seed_vmap.py [--method=agcc] [--seeds=5] [--steps=20] [--repeats=3] [--tiny]

Every variant runs the trainer's own step (`objective.make_train_step`) on the same random batches (one
batch per seed: each seed has its own data order), after compiling outside the timing. `sequential` runs
the seeds' steps one after the other with one compiled step, on all cores; `vmapped` runs one compiled
step over the seeds' stacked states and batches; `pinned` starts one process per core (this script with
--pinned_worker, its affinity set to that core before JAX starts), all at once, each running the
sequential loop over its share of the seeds; its round time is the slowest process's. Reported: seconds
per round (one step of every seed), best and median of --repeats, the speed-ups, and the load average
(other processes on a shared machine take cores).
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artser_jax import experiment
from artser_jax import objective
from artser_jax import train_state
from artser_jax.configs import controls
from artser_jax.models import segment_model

_METHOD = flags.DEFINE_string("method", "agcc", "Arm whose step is timed.")
_SEEDS = flags.DEFINE_integer("seeds", 5, "Seeds trained together.")
_STEPS = flags.DEFINE_integer("steps", 20, "Rounds per timing.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timings per variant.")
_TINY = flags.DEFINE_bool("tiny", False, "The tiny config (a smoke run).")
_PINNED_WORKER = flags.DEFINE_list("pinned_worker", None, "Internal: time these seeds' sequential loop only.")


def _batch(rng, rows, config, with_label):
    samples = int(config.input.max_seconds * config.input.sample_rate)
    segments = config.segments.max_segments
    starts = np.sort(rng.uniform(0.0, config.input.max_seconds - 0.1, (rows, segments)), axis=1)
    batch = {"audio": rng.normal(size=(rows, samples)).astype(np.float32) * 0.1,
             "audio_mask": np.ones((rows, samples), bool), "seg_start": starts.astype(np.float32),
             "seg_end": (starts + 0.08).astype(np.float32),
             "seg_mask": np.arange(segments)[None] < rng.integers(8, segments, (rows, 1)),
             "seg_cluster": rng.integers(-1, 8, (rows, segments)).astype(np.int32)}
    if with_label:
        batch["label"] = rng.integers(0, 4, rows).astype(np.int32)
    return batch


def _state(config, seed):
    model = train_state.build_model(config, 4, nnx.Rngs(params=seed, dropout=seed + 1))
    optimizer = nnx.Optimizer(model, train_state.build_optimizer(config),
                              wrt=segment_model.trainable_filter(model))
    return nnx.split((model, optimizer))


def _time(run, steps, repeats):
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(steps)
        timings.append((time.perf_counter() - started) / steps)
    return min(timings), float(np.median(timings))


def _pinned(seeds, cores):
    """Per-core processes, started together, each timing the sequential loop of its share of the seeds."""
    workers = []
    for index, core in enumerate(cores):
        share = [str(s) for s in seeds[index::len(cores)]]
        if not share:
            continue
        command = [sys.executable, __file__, f"--method={_METHOD.value}", f"--steps={_STEPS.value}",
                   f"--repeats={_REPEATS.value}", f"--pinned_worker={','.join(share)}"] + (["--tiny"] if _TINY.value else [])
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                        preexec_fn=lambda core=core: os.sched_setaffinity(0, {core})))
    timings = [json.loads(worker.communicate()[0].strip().splitlines()[-1]) for worker in workers]
    if any(worker.returncode for worker in workers):
        raise RuntimeError("a pinned worker failed")
    return max(t[0] for t in timings), max(t[1] for t in timings)


def main(argv):
    del argv
    config = controls.get_config(f"method={_METHOD.value}" + (",tiny" if _TINY.value else ""))
    rng = np.random.default_rng(0)
    all_seeds = list(range(_SEEDS.value))
    batches = [{"source": _batch(rng, config.input.source_batch_size, config, True),
                "target": _batch(rng, config.input.target_batch_size, config, False)} for _ in all_seeds]
    seeds = [int(s) for s in _PINNED_WORKER.value] if _PINNED_WORKER.value else all_seeds
    graphdef, _ = _state(config, 0)
    states = {seed: _state(config, seed)[1] for seed in seeds}
    step = objective.make_train_step(graphdef, config, jnp.ones(8, bool), None)

    one = jax.jit(step)
    for i in seeds:  # compile
        states[i], metrics = one(states[i], batches[i])
    jax.block_until_ready(metrics)

    def sequential(steps):
        for _ in range(steps):
            for i in seeds:
                states[i], metrics = one(states[i], batches[i])
        jax.block_until_ready(metrics)

    if _PINNED_WORKER.value:
        print(json.dumps(_time(sequential, _STEPS.value, _REPEATS.value)))
        return
    stacked_state = jax.tree.map(lambda *xs: jnp.stack(xs), *states.values())
    stacked_batch = jax.tree.map(lambda *xs: jnp.stack(xs), *batches)
    together = jax.jit(jax.vmap(step))
    holder = {"state": together(stacked_state, stacked_batch)[0]}  # compile

    def vmapped(steps):
        for _ in range(steps):
            holder["state"], metrics = together(holder["state"], stacked_batch)
        jax.block_until_ready(metrics)

    cores = experiment.available_cores()
    result = {"method": _METHOD.value, "seeds": _SEEDS.value, "steps": _STEPS.value, "tiny": _TINY.value,
              "cores": len(cores), "load_average": os.getloadavg(), "devices": str(jax.devices())}
    result["sequential_s_per_round"] = _time(sequential, _STEPS.value, _REPEATS.value)
    result["vmapped_s_per_round"] = _time(vmapped, _STEPS.value, _REPEATS.value)
    result["pinned_s_per_round"] = _pinned(all_seeds, cores)
    for variant in ("vmapped", "pinned"):
        result[f"{variant}_speedup_best"] = result["sequential_s_per_round"][0] / result[f"{variant}_s_per_round"][0]
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
