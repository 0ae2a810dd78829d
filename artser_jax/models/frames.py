"""What every encoder returns, and how its frames sit in time.

All our encoders are stacks of unpadded ("valid") strided convolutions over the waveform (the log-mel
STFT is one more such layer), so frame `i` covers samples `[i * hop, i * hop + window)` exactly,
where `hop` is the product of the strides and `window` the receptive field.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class EncoderOutput(NamedTuple):
    frames: jax.Array          # (B, F, D) the encoder's last hidden state
    frame_mask: jax.Array      # (B, F) bool, True where the frame lies inside the unpadded audio
    hidden_states: tuple       # every layer's output, (B, F, D) each; hidden_states[0] = the layers' input


def arange(length, dtype=None):
    """`np.arange` for a concrete length; `jnp.arange` for a symbolic one (a shape-polymorphic export,
    `jax.export`), so the traced model stays exactly what it was for concrete shapes."""
    if jax.core.is_constant_dim(length):
        return np.arange(length, dtype=dtype)
    return jax.lax.iota(dtype or jnp.int32, length)


def conv_stack_geometry(kernels, strides):
    """(hop, window) in samples of a stack of unpadded 1-D convolutions."""
    hop, window = 1, 1
    for kernel, stride in zip(kernels, strides):
        window += (kernel - 1) * hop
        hop *= stride
    return hop, window


def conv_stack_output_lengths(lengths, kernels, strides):
    """Number of complete output frames for inputs of `lengths` samples (HF's formula, floored at 0)."""
    for kernel, stride in zip(kernels, strides):
        # max((L - k) // s + 1, 0) with a division of non-negative numbers (lax.div truncates), which
        # converts to ONNX also for a symbolic batch (floor division of signed integers does not)
        lengths = jax.lax.div(jnp.maximum(lengths - kernel + stride, 0), stride)
    return lengths


def lengths_to_mask(lengths, num_frames):
    return jax.lax.iota(jnp.int32, num_frames)[None, :] < lengths[:, None]


def frame_mask_from_audio_mask(audio_mask, num_frames, kernels, strides):
    """Feature-level mask like HF's `_get_feature_vector_attention_mask`: frames before each output length."""
    lengths = jnp.sum(audio_mask.astype(jnp.int32), axis=-1)
    return lengths_to_mask(conv_stack_output_lengths(lengths, kernels, strides), num_frames)
