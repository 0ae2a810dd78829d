"""The portable forms of an exported model: StableHLO (`jax.export`) and ONNX (`jax2onnx`).

Both hold one function with the parameters baked in,

    probabilities = f(audio (B, N) float32, audio_mask (B, N) bool, seg_start (B, S) float32,
                      seg_end (B, S) float32, seg_mask (B, S) bool)  ->  (B, C) float32,

with the batch B and the audio length N symbolic (N at least one encoder frame) and S the model's
static segment count. Segments are computed in numpy before the call (`artser_jax.predict`).
`model.stablehlo` reloads with `jax.export.deserialize` without this package's model code;
`model.onnx` runs in onnxruntime without JAX.
"""

import contextlib
import logging
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
from jax import export as jax_export

from artser_jax.models import logmel

STABLEHLO_FILE = "model.stablehlo"
ONNX_FILE = "model.onnx"
INPUT_NAMES = ("audio", "audio_mask", "seg_start", "seg_end", "seg_mask")
OUTPUT_NAME = "probabilities"
ONNX_OPSET = 23


def probabilities_function(model):
    """audio, masks and segments -> class probabilities of `model` (an nnx model, inference mode)."""

    def probabilities(audio, audio_mask, seg_start, seg_end, seg_mask):
        logits = model(audio, audio_mask, seg_start, seg_end, seg_mask, deterministic=True).logits
        return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)

    return probabilities


def input_specs(max_segments, min_samples, max_samples):
    """Shape-polymorphic input specs: batch `b` and length `min_samples <= n <= max_samples` symbolic."""
    batch, length = jax_export.symbolic_shape(
        "b, n", constraints=(f"n >= {int(min_samples)}", f"n <= {int(max_samples)}"))
    return (jax.ShapeDtypeStruct((batch, length), jnp.float32), jax.ShapeDtypeStruct((batch, length), jnp.bool_),
            jax.ShapeDtypeStruct((batch, max_segments), jnp.float32),
            jax.ShapeDtypeStruct((batch, max_segments), jnp.float32),
            jax.ShapeDtypeStruct((batch, max_segments), jnp.bool_))


def export_stablehlo(function, specs):
    """Serialized `jax.export` of `function` (bytes), for the CPU and, where present, CUDA."""
    platforms = ("cpu", "cuda")
    return jax_export.export(jax.jit(function), platforms=platforms)(*specs).serialize()


def load_stablehlo(path):
    """The callable of a `model.stablehlo` file (numpy or JAX arrays in, a JAX array out)."""
    with open(path, "rb") as f:
        return jax_export.deserialize(bytearray(f.read())).call


def _dft_power_spectrum(frames):
    """|rfft(frames)|^2 as two products with cos/sin tables: jax2onnx 0.17.1 emits an ONNX DFT node
    without the trailing complex axis onnxruntime requires when the frame count is symbolic."""
    size = frames.shape[-1]
    phase = 2 * np.pi * ((np.arange(size)[:, None] * np.arange(size // 2 + 1)[None, :]) % size) / size
    real = frames @ jnp.asarray(np.cos(phase).astype(np.float32))
    imaginary = frames @ jnp.asarray(np.sin(phase).astype(np.float32))
    return real * real + imaginary * imaginary


@contextlib.contextmanager
def _quiet_jax2onnx_plugins():
    """jax2onnx logs a warning with a traceback for every optional example plugin whose library
    (equinox, dm-pix) is absent; none of them is used here."""
    plugin_logger = logging.getLogger("jax2onnx.plugins.plugin_system")
    level = plugin_logger.level
    plugin_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        plugin_logger.setLevel(level)


def export_onnx(function, specs, labels):
    """Serialized ONNX model (bytes) of `function`; the labels ride along in its metadata."""
    with _quiet_jax2onnx_plugins():
        import jax2onnx  # pylint: disable=g-import-not-at-top  (heavy; only the export needs it)

        with mock.patch.object(logmel, "power_spectrum", _dft_power_spectrum):
            proto = jax2onnx.to_onnx(function, list(specs), model_name="artser_jax_emotion", opset=ONNX_OPSET,
                                     input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME])
    entry = proto.metadata_props.add()
    entry.key, entry.value = "labels", ",".join(labels)
    return proto.SerializeToString()


def parity_inputs(sample_rate, max_seconds, max_segments, seed=0):
    """Two real-length rows for a parity check: noise with a 180 Hz tone, the second row half padded,
    segments of 200 ms every 100 ms (the second row's last ones padded)."""
    rng = np.random.default_rng(seed)
    length = int(round(max_seconds * sample_rate))
    times = np.arange(length) / sample_rate
    audio = (0.3 * np.sin(2 * np.pi * 180 * times) + 0.05 * rng.standard_normal((2, length))).astype(np.float32)
    audio_mask = np.ones((2, length), bool)
    audio_mask[1, length // 2:] = False
    audio[1, length // 2:] = 0.0
    starts = np.arange(max_segments, dtype=np.float32) * 0.1
    seg_start = np.stack([starts, starts])
    seg_end = np.minimum(seg_start + 0.2, max_seconds).astype(np.float32)
    seg_mask = np.stack([starts < max_seconds - 0.2, starts < max_seconds / 2 - 0.2])
    seg_mask[:, 0] = True
    return audio, audio_mask, seg_start, seg_end, seg_mask
