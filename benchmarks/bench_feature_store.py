"""Training on stored frozen features against recomputing the frozen encoder, and the extraction's speed.

A wav2vec2-base-geometry checkpoint (12 layers, width 768, group-norm extractor; random weights written by
`transformers`) and the demo config (`configs/demo.py`, its method, batch sizes and crop; override with
--config_arg). One process, the same config for both:
- steps/s of the jitted train step recomputing the encoder (`cache_frozen_features=False`) against the
  step of the `stored_features` model, whose batches are read from a memory-mapped store written by the
  extraction pass (the read is timed with the step). Synthetic batches of the config's shapes (random
  audio of the full crop, random segments and clusters), so no dataset is needed; the step programs are
  the trainer's (`objective.make_train_step`). Median of --steps steps after one warm-up (compilation)
  step each; the ratio of the medians is reported.
- the extraction pass (`models.features.encode_layers`, the mesh over every CPU device, float16 out)
  in audio-seconds per second against transformers' `Wav2Vec2Model` (float32, `output_hidden_states`) on
  the same audio, with torch on --threads threads (default: every CPU core, which XLA uses too).

    .venv/bin/python benchmarks/bench_feature_store.py --steps 3 --extract-batches 2
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

from artser_jax import feature_store
from artser_jax import objective
from artser_jax import sharding
from artser_jax import train_state
from artser_jax.configs import demo
from artser_jax.models import encoders
from artser_jax.models import features


def synthetic_batch(rng, config, rows, num_clusters, with_label):
    samples = int(round(config.input.max_seconds * config.input.sample_rate))
    num_segments = config.segments.max_segments
    starts = np.sort(rng.uniform(0, config.input.max_seconds - 0.1, (rows, num_segments)), axis=1)
    batch = {"audio": rng.uniform(-0.5, 0.5, (rows, samples)).astype(np.float32),
             "audio_mask": np.ones((rows, samples), bool),
             "seg_start": starts.astype(np.float32), "seg_end": (starts + 0.08).astype(np.float32),
             "seg_mask": np.ones((rows, num_segments), bool),
             "seg_cluster": rng.integers(0, num_clusters, (rows, num_segments)).astype(np.int32)}
    if with_label:
        batch["label"] = rng.integers(0, len(config.labels), rows).astype(np.int32)
    return batch


def timed(function, repeats):
    """Seconds of each call after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_arg", default="", help="argument of configs/demo.py, e.g. method=layer_anchored")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--extract-batches", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)  # after absl set a handler

    import torch
    import transformers

    rng = np.random.default_rng(0)
    num_clusters = 8
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        reference = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).eval()
        reference.save_pretrained(folder)
        config = demo.get_config(args.config_arg)
        config.model.encoder, config.model.pretrained_dir = "wav2vec2", folder
        mesh = sharding.create_mesh()
        geometry = feature_store.audio_encoder_geometry(config)
        layers = feature_store.stored_layers(config, geometry[0])
        feature_config = feature_store.feature_model_config(config, layers, geometry)
        common = jnp.ones(num_clusters, bool)
        batches = {"source": synthetic_batch(rng, config, config.input.source_batch_size, num_clusters, True),
                   "target": synthetic_batch(rng, config, config.input.target_batch_size, num_clusters, False)}

        # Extraction of the step's utterances into a memory-mapped store, timed against transformers.
        encoder = encoders.get("wav2vec2").build(config.model, None, True)
        encode = features.encode_layers(encoder, layers, mesh, config.model.feature_store_dtype)
        extract_rows = config.input.eval_batch_size
        audio = np.concatenate([batches["source"]["audio"], batches["target"]["audio"]])
        audio = np.resize(audio, (extract_rows, audio.shape[1]))
        audio_mask = np.ones_like(audio, bool)
        store = {}
        for role, batch in batches.items():
            stored, frame_mask = jax.device_get(encode(*sharding.host_to_global(
                (batch["audio"], batch["audio_mask"]), mesh)))
            store[role] = np.lib.format.open_memmap(os.path.join(folder, f"{role}.npy"), "w+", stored.dtype,
                                                    stored.shape)
            store[role][:] = stored
            store[role].flush()
            store[role] = (np.load(os.path.join(folder, f"{role}.npy"), mmap_mode="r"), frame_mask)
        ours = timed(lambda: jax.block_until_ready(encode(*sharding.host_to_global((audio, audio_mask), mesh))),
                     args.extract_batches)
        torch.set_num_threads(args.threads)
        audio_torch = torch.from_numpy(audio)
        with torch.inference_mode():
            theirs = timed(lambda: reference(audio_torch, output_hidden_states=True), args.extract_batches)
        audio_seconds = extract_rows * config.input.max_seconds

        # Train steps: recomputing the encoder against reading the store.
        def step_timer(model_config, make_inputs):
            graphdef, state = train_state.create_train_state(model_config, len(config.labels), mesh)
            step = jax.jit(objective.make_train_step(graphdef, config, common, None), donate_argnums=0)
            holder = {"state": state}

            def run():
                holder["state"], metrics = step(holder["state"], sharding.host_to_global(make_inputs(), mesh))
                jax.block_until_ready(metrics)
            return run

        def stored_inputs():
            return {role: {**batch, "audio": np.asarray(store[role][0]), "audio_mask": store[role][1]}
                    for role, batch in batches.items()}

        recompute_config = config.copy_and_resolve_references()
        recompute_config.model.cache_frozen_features = False
        stored_times = timed(step_timer(feature_config, stored_inputs), args.steps)
        recompute_times = timed(step_timer(recompute_config, lambda: batches), args.steps)

    result = {
        "config": f"configs/demo.py:{args.config_arg}", "method": config.method, "stored_layers": list(layers),
        "utterances_per_step": config.input.source_batch_size + config.input.target_batch_size,
        "crop_seconds": config.input.max_seconds, "devices": len(jax.devices()), "torch_threads": args.threads,
        "recompute_steps_per_s": 1 / statistics.median(recompute_times),
        "stored_steps_per_s": 1 / statistics.median(stored_times),
        "extraction_audio_s_per_s": audio_seconds / statistics.median(ours),
        "transformers_audio_s_per_s": audio_seconds / statistics.median(theirs),
        "recompute_step_s": recompute_times, "stored_step_s": stored_times}
    result["speedup"] = result["stored_steps_per_s"] / result["recompute_steps_per_s"]
    result["extraction_vs_transformers"] = result["extraction_audio_s_per_s"] / result["transformers_audio_s_per_s"]
    logging.info("train step (%s, %d utterances of %.1f s, stored layers %s): recomputing %.3f steps/s, stored "
                 "features %.2f steps/s: %.1fx", config.method, result["utterances_per_step"], config.input.max_seconds,
                 layers, result["recompute_steps_per_s"], result["stored_steps_per_s"], result["speedup"])
    logging.info("extraction: ours %.1f audio-s/s (%d devices), transformers Wav2Vec2Model %.1f audio-s/s (%d "
                 "threads): %.2fx", result["extraction_audio_s_per_s"], result["devices"],
                 result["transformers_audio_s_per_s"], args.threads, result["extraction_vs_transformers"])
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
