"""Frozen features as an encoder: the `stored_features` entry of the encoder registry.

A frozen pretrained encoder gives the same layers for the same audio at every step, so the trainer
computes them once (`artser_jax/feature_store.py`) and trains on the stored copy. `StoredFeatures` is the
encoder module of that path: its `__call__` takes the stored layers `(B, K, F, D)` where an audio encoder
takes the audio, and the stored frame mask `(B, F)` where it takes the audio mask, and returns the
`EncoderOutput` the audio encoder would have returned. So `SegmentEmotionModel`, the objective and the
methods run unchanged on either input.

The store holds only the selectable layers the config reads (`layers`, indices into
`(*hidden_states[:-1], frames)`); the others are NaN placeholders, so that layer indices keep their
meaning and a read of a layer that was not stored makes the loss NaN (the trainer stops on it) instead of
training on wrong numbers. XLA drops the placeholders, as nothing reads them.

`encode_layers` is the extraction side: the jitted audio encoder returning the kept layers.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from artser_jax.models.frames import EncoderOutput
from artser_jax.models.segment_model import selectable_layers

ENCODER_NAME = "stored_features"


class StoredFeatures(nnx.Module):
    """Stored layers -> `EncoderOutput`; no parameters.

    layers: the selectable-layer index of each stored slot (sorted, distinct); num_selectable: the audio
    encoder's selectable layer count; the frame geometry is the audio encoder's.
    """

    def __init__(self, *, layers, num_selectable, feature_dim, frame_hop_seconds, frame_window_seconds):
        layers = tuple(int(i) for i in layers)
        if not layers or list(layers) != sorted(set(layers)) or not 0 <= layers[0] <= layers[-1] < num_selectable:
            raise ValueError(f"stored layers {layers} must be distinct, sorted indices below {num_selectable}")
        self.layers = layers
        self.num_hidden_states = num_selectable
        self.output_dim = feature_dim
        self.frame_hop_seconds = frame_hop_seconds
        self.frame_window_seconds = frame_window_seconds

    def __call__(self, features, frame_mask, deterministic=True):
        del deterministic  # stored features have no dropout
        if features.ndim != 4 or features.shape[1] != len(self.layers) or features.shape[3] != self.output_dim:
            raise ValueError(f"stored features of shape {features.shape}, expected (B, {len(self.layers)}, F, "
                             f"{self.output_dim})")
        features = features.astype(jnp.float32)
        placeholder = jnp.full(features.shape[:1] + features.shape[2:], jnp.nan, jnp.float32)
        slots = {index: slot for slot, index in enumerate(self.layers)}
        selectable = tuple(features[:, slots[i]] if i in slots else placeholder for i in range(self.num_hidden_states))
        # selectable_layers() of this output is `selectable` again: (*hidden_states[:-1], frames).
        return EncoderOutput(frames=selectable[-1], frame_mask=frame_mask, hidden_states=selectable)


def build(model_config, rngs, load_weights):
    """The encoder registry's builder: reads `model_config.stored_features` (set by the feature store)."""
    del rngs, load_weights  # nothing to initialise or load
    if "stored_features" not in model_config:
        raise ValueError(f"encoder {ENCODER_NAME!r} reads a feature store that the trainer builds for a frozen "
                         f"pretrained encoder; select that encoder (e.g. wav2vec2) with "
                         f"config.model.cache_frozen_features=True instead")
    spec = model_config.stored_features
    return StoredFeatures(layers=tuple(spec.layers), num_selectable=spec.num_selectable,
                          feature_dim=spec.feature_dim, frame_hop_seconds=spec.frame_hop_seconds,
                          frame_window_seconds=spec.frame_window_seconds)



def encode_layers(encoder, layers, mesh, dtype):
    """A jitted `(audio (B, N), audio_mask (B, N)) -> (features (B, K, F, D) dtype, frame_mask (B, F))` of
    the audio `encoder`'s selectable layers `layers`, inputs and outputs split over the mesh's batch axis."""
    from artser_jax import sharding  # pylint: disable=g-import-not-at-top  (models stay mesh-free otherwise)

    graphdef, state = nnx.split(encoder)
    batch_sharded = sharding.data_sharding(mesh)
    state = jax.device_put(state, sharding.replicated_sharding(mesh))

    def encode(state, audio, audio_mask):
        encoded = nnx.merge(graphdef, state)(audio, audio_mask, deterministic=True)
        chosen = selectable_layers(encoded)
        return jnp.stack([chosen[i] for i in layers], axis=1).astype(dtype), encoded.frame_mask

    encode = jax.jit(encode, in_shardings=(sharding.replicated_sharding(mesh), batch_sharded, batch_sharded),
                     out_shardings=(batch_sharded, batch_sharded))
    return lambda audio, audio_mask: encode(state, audio, audio_mask)
