"""Forward-pass speed of our Flax wav2vec2 against transformers' PyTorch Wav2Vec2Model, same weights.

Builds a wav2vec2-base sized model (12 layers, width 768, group-norm extractor, post-LN transformer) with
random weights in transformers, saves it, loads it through `artser_jax.models.hf_loader`, checks the two
agree, then times both on the same random audio (no padding) for each batch size and length:
audio-seconds processed per wall-clock second, median of `--repeats` runs after a warm-up (which
includes our jit compilation, reported separately). The two are timed alternately, so a busy shared
machine slows both alike; the ratio of the best runs is reported too.

    .venv/bin/python benchmarks/bench_wav2vec2.py --batch-sizes 1 4 --seconds 2 8 --repeats 3
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
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reference = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).eval()
    with tempfile.TemporaryDirectory() as folder:
        reference.save_pretrained(folder)
        ours = hf_loader.load_encoder(folder)
    graphdef, state = nnx.split(ours)

    @jax.jit
    def forward(state, audio):
        return nnx.merge(graphdef, state)(audio).frames

    logging.info("jax %s on %s, torch %s with %d threads, %d CPU cores", jax.__version__, jax.devices()[0].platform,
                 torch.__version__, torch.get_num_threads(), os.cpu_count())
    results = []
    rng = np.random.default_rng(0)
    for seconds in args.seconds:
        for batch_size in args.batch_sizes:
            audio = rng.standard_normal((batch_size, int(seconds * SAMPLE_RATE))).astype(np.float32)
            audio_jax, audio_torch = jnp.asarray(audio), torch.from_numpy(audio)
            start = time.perf_counter()
            ours_out = np.asarray(forward(state, audio_jax).block_until_ready())
            compile_seconds = time.perf_counter() - start
            with torch.inference_mode():
                reference_out = reference(audio_torch).last_hidden_state.numpy()
                timings = _interleaved_seconds({"jax": lambda: forward(state, audio_jax).block_until_ready(),
                                                "torch": lambda: reference(audio_torch)}, args.repeats)
            audio_seconds = batch_size * seconds
            (jax_median, jax_min), (torch_median, torch_min) = timings["jax"], timings["torch"]
            row = {"batch_size": batch_size, "seconds": seconds,
                   "jax_audio_s_per_s": audio_seconds / jax_median, "torch_audio_s_per_s": audio_seconds / torch_median,
                   "speedup_median": torch_median / jax_median, "speedup_best": torch_min / jax_min,
                   "jax_first_call_s": compile_seconds, "max_abs_diff": float(np.abs(ours_out - reference_out).max())}
            results.append(row)
            logging.info("B=%d %4.1fs: jax %6.2f audio-s/s, torch %6.2f audio-s/s (medians); jax/torch speed "
                         "%.2fx median, %.2fx best-of-%d (first jax call %.1fs, max |diff| %.1e)", batch_size, seconds,
                         row["jax_audio_s_per_s"], row["torch_audio_s_per_s"], row["speedup_median"],
                         row["speedup_best"], args.repeats, compile_seconds, row["max_abs_diff"])
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
