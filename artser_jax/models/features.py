"""Frozen-feature path: run a frozen encoder once over a dataset, store its layers, train on them.

`extract_features` batches utterances of similar length (sorted, padded to a multiple of
`bucket_samples`, so only a few shapes are compiled) and yields each utterance's selected layers
trimmed to its valid frames. `FeatureStore` keeps them as one `.npy` per utterance plus a
`manifest.json` describing the encoder, the layers and the frame geometry; `pad_feature_batch` builds
the `(B, L, F, D)` array and frame mask that `SegmentEmotionModel.forward_features` takes.

Group-norm feature extractors (wav2vec2-base, WavLM-base) normalise over the whole padded input, as in
the reference implementation, so their features depend slightly on the padding; bucketing keeps it small.
"""

import dataclasses
import json
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from artser_jax.models.segment_model import selectable_layers

MANIFEST = "manifest.json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


def extract_features(encoder, utterances, *, layers=None, batch_size=8, bucket_samples=16000, dtype=np.float16):
    """Yields `(utterance_id, features (L, F, D))` for `utterances`, an iterable of (id, audio (N,) float32).

    layers: indices into the encoder's selectable layers (`(*hidden_states[:-1], frames)`); None keeps all.
    Output order follows increasing audio length.
    """
    utterances = sorted(utterances, key=lambda item: len(item[1]))
    num_layers = encoder.num_hidden_states
    keep = tuple(range(num_layers)) if layers is None else tuple(layers)
    for index in keep:
        if not -num_layers <= index < num_layers:
            raise ValueError(f"layer {index} is out of range for an encoder with {num_layers} layers")

    @nnx.jit
    def encode(model, audio, audio_mask):
        encoded = model(audio, audio_mask, deterministic=True)
        stacked = selectable_layers(encoded)
        return jnp.stack([stacked[i] for i in keep], axis=1), encoded.frame_mask

    for start in tqdm(range(0, len(utterances), batch_size), desc="extracting features", unit="batch"):
        chunk = utterances[start:start + batch_size]
        longest = max(len(audio) for _, audio in chunk)
        padded_length = -(-longest // bucket_samples) * bucket_samples
        audio = np.zeros((batch_size, padded_length), np.float32)
        mask = np.zeros((batch_size, padded_length), bool)
        for row, (utterance_id, samples) in enumerate(chunk):
            if samples.ndim != 1 or not np.all(np.isfinite(samples)):
                raise ValueError(f"utterance {utterance_id}: audio must be a finite 1-D array")
            audio[row, :len(samples)] = samples
            mask[row, :len(samples)] = True
        features, frame_mask = jax.device_get(encode(encoder, jnp.asarray(audio), jnp.asarray(mask)))
        for row, (utterance_id, _) in enumerate(chunk):
            num_frames = int(frame_mask[row].sum())
            yield utterance_id, features[row, :, :num_frames].astype(dtype)


class FeatureStore:
    """A directory of per-utterance features `(L, F, D)` and a manifest describing them."""

    def __init__(self, directory):
        self.directory = pathlib.Path(directory)
        path = self.directory / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not a feature store (no {MANIFEST})")
        self.manifest = json.loads(path.read_text())

    @staticmethod
    def write(directory, items, *, encoder, layers):
        """Writes `items` ((id, features) pairs, e.g. from `extract_features`) and the manifest."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ids, shape = [], None
        for utterance_id, features in items:
            if not _SAFE_ID.match(utterance_id):
                raise ValueError(f"utterance id {utterance_id!r} cannot be used as a file name")
            np.save(directory / f"{utterance_id}.npy", features)
            ids.append(utterance_id)
            shape = features.shape
        manifest = {"utterance_ids": sorted(ids), "num_layers": None if shape is None else shape[0],
                    "feature_dim": None if shape is None else shape[-1], "layers": None if layers is None else
                    list(layers), "frame_hop_seconds": encoder.frame_hop_seconds,
                    "frame_window_seconds": encoder.frame_window_seconds,
                    "encoder_config": _config_dict(encoder)}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return FeatureStore(directory)

    @property
    def utterance_ids(self):
        return self.manifest["utterance_ids"]

    def load(self, utterance_id):
        path = self.directory / f"{utterance_id}.npy"
        if not path.is_file():
            raise KeyError(f"{path}: no stored features for utterance {utterance_id!r}")
        return np.load(path)


def _config_dict(encoder):
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(encoder.config).items()}


def pad_feature_batch(features, num_frames=None):
    """List of (L, F_i, D) -> float32 (B, L, F, D) zero-padded and a (B, F) bool frame mask."""
    num_frames = max(f.shape[1] for f in features) if num_frames is None else num_frames
    num_layers, dim = features[0].shape[0], features[0].shape[2]
    batch = np.zeros((len(features), num_layers, num_frames, dim), np.float32)
    mask = np.zeros((len(features), num_frames), bool)
    for row, f in enumerate(features):
        if f.shape[0] != num_layers or f.shape[2] != dim:
            raise ValueError(f"features {row} have shape {f.shape}, expected ({num_layers}, F, {dim})")
        frames = min(f.shape[1], num_frames)
        batch[row, :, :frames] = f[:, :frames]
        mask[row, :frames] = True
    return batch, mask
