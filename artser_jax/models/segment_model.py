"""The acoustic model of docs/method.md 2.3: encoder -> segment pooling -> segment transformer -> classifier.

Segments are time intervals `[seg_start, seg_end)` in seconds. A frame belongs to a segment when the
centre of its window, `i * hop + window / 2`, lies inside the interval; a valid segment that contains no
frame centre (shorter than one hop) takes the valid frame whose centre is nearest to its midpoint.

Layer selection works on the encoder's selectable layers `(*hidden_states[:-1], frames)` (the last entry
is the final output, after the final LayerNorm of pre-LN models): "last", an int index, or "weighted"
(a learned softmax-weighted sum, the weights trained even when the encoder is frozen).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx



class SegmentModelOutput(NamedTuple):
    logits: jax.Array               # (B, C)
    segment_embeddings: jax.Array   # (B, S, width), zero at padded segments
    hidden_states: tuple            # selectable encoder layers, (B, F, D) each, for CORAL
    frame_mask: jax.Array           # (B, F) bool


def selectable_layers(encoder_output):
    return (*encoder_output.hidden_states[:-1], encoder_output.frames)


# Frames whose centres a shape-polymorphic export (symbolic frame count) can place exactly.
MAX_SYMBOLIC_FRAMES = 2 ** 16


def frame_centres(num_frames, hop_seconds, window_seconds):
    if jax.core.is_constant_dim(num_frames):
        return np.arange(num_frames, dtype=np.float32) * hop_seconds + window_seconds / 2
    # A symbolic frame count (jax.export): these numpy centres, gathered. Computed on the device, the
    # multiply and add fuse into one rounding and move frames lying on a segment boundary across it.
    table = frame_centres(MAX_SYMBOLIC_FRAMES, hop_seconds, window_seconds)
    return jnp.take(jnp.asarray(table), jax.lax.iota(jnp.int32, num_frames), mode="clip")


def segment_pooling_weights(centres, frame_mask, seg_start, seg_end, seg_mask):
    """(B, S, F) float32 weights summing to 1 over the frames of each valid segment (0 for padded ones)."""
    centres = jnp.asarray(centres)[None, None, :]
    inside = (centres >= seg_start[..., None]) & (centres < seg_end[..., None]) & frame_mask[:, None, :]
    midpoint = (seg_start + seg_end)[..., None] / 2
    distance = jnp.where(frame_mask[:, None, :], jnp.abs(centres - midpoint), jnp.inf)
    # one_hot written out: jax2onnx's one_hot needs a constant class count, the frame count is symbolic
    nearest = jnp.argmin(distance, axis=-1)[..., None] == jax.lax.iota(jnp.int32, centres.shape[-1])
    has_frames = jnp.any(inside, axis=-1, keepdims=True)
    # boolean select written as logic: onnxruntime has no Where kernel for booleans
    chosen = ((has_frames & inside) | (~has_frames & nearest)) & seg_mask[..., None] & jnp.any(frame_mask, -1)[:, None, None]
    weights = chosen.astype(jnp.float32)
    return weights / jnp.maximum(jnp.sum(weights, axis=-1, keepdims=True), 1.0)


def sinusoidal_positions(length, width):
    positions = np.arange(length, dtype=np.float32)[:, None]
    rates = np.exp(-np.log(10000.0) * np.arange(0, width, 2, dtype=np.float32) / width)
    table = np.zeros((length, width), np.float32)
    table[:, 0::2] = np.sin(positions * rates)
    table[:, 1::2] = np.cos(positions * rates[: width // 2])
    return table


class SegmentTransformerLayer(nnx.Module):
    """Pre-LN Transformer encoder layer over segments."""

    def __init__(self, width, num_heads, dropout, *, rngs):
        self.attention_norm = nnx.LayerNorm(width, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(num_heads, width, dropout_rate=dropout, decode=False, rngs=rngs)
        self.mlp_norm = nnx.LayerNorm(width, rngs=rngs)
        self.mlp_in = nnx.Linear(width, 4 * width, rngs=rngs)
        self.mlp_out = nnx.Linear(4 * width, width, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x, attention_mask, deterministic):
        attended = self.attention(self.attention_norm(x), mask=attention_mask, deterministic=deterministic)
        x = x + self.dropout(attended, deterministic=deterministic)
        hidden = self.dropout(jax.nn.gelu(self.mlp_in(self.mlp_norm(x))), deterministic=deterministic)
        return x + self.dropout(self.mlp_out(hidden), deterministic=deterministic)


class SegmentEmotionModel(nnx.Module):
    """Utterance emotion classifier over pooled segments; also returns the segment embeddings z_seg.

    `frozen_encoder` stops gradients into the encoder and leaves its parameters out of training (the
    trainer takes it from the encoder registry's default or `config.model.freeze_encoder`).
    `encoder` is any registered encoder module (see `models.encoders`): an audio encoder, or the
    `stored_features` encoder of a frozen encoder's stored layers (see `models.features`).
    """

    def __init__(self, encoder, *, num_classes=4, width=256, num_layers=2, num_heads=4, dropout=0.1,
                 classifier_hidden=256, layer_selection="last", frozen_encoder=False, rngs: nnx.Rngs):
        self.encoder = encoder
        feature_dim, num_hidden_states = encoder.output_dim, encoder.num_hidden_states
        if layer_selection not in ("last", "weighted") and not isinstance(layer_selection, int):
            raise ValueError(f"layer_selection must be 'last', 'weighted' or a layer index, got {layer_selection!r}")
        if isinstance(layer_selection, int) and not -num_hidden_states <= layer_selection < num_hidden_states:
            raise ValueError(f"layer_selection {layer_selection} is out of range for {num_hidden_states} layers")
        self.layer_selection = layer_selection
        self.frozen_encoder = frozen_encoder
        self.frame_hop_seconds = encoder.frame_hop_seconds
        self.frame_window_seconds = encoder.frame_window_seconds
        self.layer_weights = nnx.Param(jnp.zeros((num_hidden_states,), jnp.float32)) \
            if layer_selection == "weighted" else None
        self.input_projection = nnx.Linear(feature_dim, width, rngs=rngs)
        self.input_dropout = nnx.Dropout(dropout, rngs=rngs)
        self.segment_layers = nnx.List([SegmentTransformerLayer(width, num_heads, dropout, rngs=rngs)
                                        for _ in range(num_layers)])
        self.output_norm = nnx.LayerNorm(width, rngs=rngs)
        self.classifier_hidden = nnx.Linear(width, classifier_hidden, rngs=rngs)
        self.classifier_dropout = nnx.Dropout(dropout, rngs=rngs)
        self.classifier_out = nnx.Linear(classifier_hidden, num_classes, rngs=rngs)
        self.width = width

    def select_layer(self, layers):
        if self.layer_selection == "last":
            return layers[-1]
        if self.layer_selection == "weighted":
            weights = jax.nn.softmax(self.layer_weights[...])
            return sum(w * layer for w, layer in zip(weights, layers))
        return layers[self.layer_selection]

    def __call__(self, audio, audio_mask, seg_start, seg_end, seg_mask, *, deterministic=True):
        encoded = self.encoder(audio, audio_mask, deterministic=deterministic or self.frozen_encoder)
        layers = selectable_layers(encoded)
        if self.frozen_encoder:
            layers = jax.lax.stop_gradient(layers)
        return self.forward_features(layers, encoded.frame_mask, seg_start, seg_end, seg_mask,
                                     deterministic=deterministic)

    def forward_features(self, layers, frame_mask, seg_start, seg_end, seg_mask, *, deterministic=True):
        """The model after the encoder; layers: the selectable layers, (B, F, D) each."""
        frames = self.select_layer(layers).astype(jnp.float32)
        centres = frame_centres(frames.shape[1], self.frame_hop_seconds, self.frame_window_seconds)
        pooling = segment_pooling_weights(centres, frame_mask, seg_start, seg_end, seg_mask)
        segments = jnp.einsum("bsf,bfd->bsd", pooling, frames)

        x = self.input_projection(segments) + jnp.asarray(sinusoidal_positions(segments.shape[1], self.width))
        x = self.input_dropout(x, deterministic=deterministic)
        attention_mask = seg_mask[:, None, None, :]
        for layer in self.segment_layers:
            x = layer(x, attention_mask, deterministic)
        embeddings = jnp.where(seg_mask[..., None], self.output_norm(x), 0.0)

        count = jnp.maximum(jnp.sum(seg_mask, axis=-1, keepdims=True), 1).astype(jnp.float32)
        utterance = jnp.sum(embeddings, axis=1) / count
        hidden = self.classifier_dropout(jax.nn.gelu(self.classifier_hidden(utterance)), deterministic=deterministic)
        return SegmentModelOutput(logits=self.classifier_out(hidden), segment_embeddings=embeddings,
                                  hidden_states=tuple(layers), frame_mask=frame_mask)


def trainable_filter(model: SegmentEmotionModel):
    """nnx filter of the parameters an optimizer should update: all, or all but a frozen encoder's."""
    if model.frozen_encoder:
        return nnx.All(nnx.Param, nnx.Not(nnx.PathContains("encoder")))
    return nnx.Param
