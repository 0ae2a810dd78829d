"""Forward-pass speed of our Flax wav2vec2 against transformers' PyTorch Wav2Vec2Model, same weights.

Builds a wav2vec2-base sized model (12 layers, width 768, group-norm extractor, post-LN transformer) with
random weights in transformers, saves it, loads it through `artser_jax.models.hf_loader`, checks the two
agree, then times both on the same random audio (no padding) for each batch size and length
(optionally also both in bfloat16: our bf16 Linear layers against torch's CPU bf16 autocast):
audio-seconds processed per wall-clock second, median of `--repeats` runs after a warm-up (which
includes our jit compilation, reported separately). The two are timed alternately, so a busy shared
machine slows both alike; the ratio of the best runs is reported too.

    .venv/bin/python benchmarks/bench_wav2vec2.py --batch-sizes 1 4 --seconds 2 8 --repeats 5 --threads 2 1
"""

import argparse
import json
import logging
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artser_jax.models import hf_loader

SAMPLE_RATE = 16000


def _interleaved_seconds(functions, repeats):
    """Runs the functions alternately (fair under changing machine load); (median, min) seconds of each."""
    for fn in functions.values():
        fn()  # warm-up: caches, allocator, torch's autocast weight casts
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 8.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count()],
                        help="torch intra-op thread counts to time (each against the same jax runs)")
    parser.add_argument("--bfloat16", action="store_true",
                        help="also time bf16 matmuls: ours with matmul_dtype=bfloat16, torch under bf16 autocast")
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch
    import transformers

    torch.manual_seed(0)
    reference = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).eval()
    with tempfile.TemporaryDirectory() as folder:
        reference.save_pretrained(folder)
        ours = {"float32": hf_loader.load_encoder(folder)}
        if args.bfloat16:
            ours["bfloat16"] = hf_loader.load_encoder(folder, matmul_dtype=jnp.bfloat16)

    def jitted(model):
        graphdef, state = nnx.split(model)
        forward = jax.jit(lambda state, audio: nnx.merge(graphdef, state)(audio).frames)
        return lambda audio: forward(state, audio)

    forwards = {name: jitted(model) for name, model in ours.items()}

    def torch_forward(precision, threads):
        def run(audio):
            torch.set_num_threads(threads)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                        enabled=precision == "bfloat16"):
                return reference(audio).last_hidden_state.float()
        return run

    logging.info("jax %s on %s (XLA's own thread pool), torch %s with %s threads, %d CPU cores", jax.__version__,
                 jax.devices()[0].platform, torch.__version__, args.threads, os.cpu_count())
    results = []
    rng = np.random.default_rng(0)
    for seconds in args.seconds:
        for batch_size in args.batch_sizes:
            audio = rng.standard_normal((batch_size, int(seconds * SAMPLE_RATE))).astype(np.float32)
            audio_jax, audio_torch = jnp.asarray(audio), torch.from_numpy(audio)
            reference_out = torch_forward("float32", args.threads[0])(audio_torch).numpy()
            functions, rows = {}, []
            for precision, forward in forwards.items():
                start = time.perf_counter()
                ours_out = np.asarray(forward(audio_jax).block_until_ready())
                compile_seconds = time.perf_counter() - start
                functions[f"jax {precision}"] = lambda f=forward: f(audio_jax).block_until_ready()
                for threads in args.threads:
                    functions[f"torch {precision} {threads}"] = (
                        lambda f=torch_forward(precision, threads): f(audio_torch))
                    rows.append({"batch_size": batch_size, "seconds": seconds, "precision": precision,
                                 "torch_threads": threads, "jax_first_call_s": compile_seconds,
                                 "max_abs_diff_vs_torch_float32": float(np.abs(ours_out - reference_out).max())})
            timings = _interleaved_seconds(functions, args.repeats)
            audio_seconds = batch_size * seconds
            for row in rows:
                jax_median, jax_min = timings[f"jax {row['precision']}"]
                torch_median, torch_min = timings[f"torch {row['precision']} {row['torch_threads']}"]
                row.update(jax_audio_s_per_s=audio_seconds / jax_median,
                           torch_audio_s_per_s=audio_seconds / torch_median,
                           speedup_median=torch_median / jax_median, speedup_best=torch_min / jax_min)
                logging.info("B=%d %4.1fs %s: jax %6.2f audio-s/s, torch (%d threads) %6.2f audio-s/s (medians); "
                             "jax/torch speed %.2fx median, %.2fx best-of-%d (first jax call %.1fs, max |diff| to "
                             "torch float32 %.1e)", batch_size, seconds, row["precision"], row["jax_audio_s_per_s"],
                             row["torch_threads"], row["torch_audio_s_per_s"], row["speedup_median"],
                             row["speedup_best"], args.repeats, row["jax_first_call_s"],
                             row["max_abs_diff_vs_torch_float32"])
            results.extend(rows)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
