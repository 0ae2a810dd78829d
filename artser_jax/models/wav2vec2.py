"""wav2vec 2.0 and WavLM encoders in Flax NNX, numerically equal to transformers' PyTorch models.

One module covers both architectures and both layouts of each:
- feature extractor: group-norm layout (GroupNorm on the first conv only; wav2vec2-base, WavLM-base) or
  layer-norm layout (LayerNorm after every conv; large-lv60, large-robust, WavLM-large);
- transformer: post-LN (`do_stable_layer_norm=False`) or pre-LN "stable layer norm" (`True`);
- WavLM: gated relative position bias, computed by the first layer and shared by all layers.

Hidden states follow transformers 5.x: `hidden_states[0]` is the input of the first transformer layer,
`hidden_states[i]` the output of layer i (for the pre-LN layout before the final LayerNorm), and
`frames` (= HF `last_hidden_state`) is the last layer's output, after the final LayerNorm in the pre-LN
layout.

Not ported (training-time extras of the reference): SpecAugment masking, LayerDrop and dropout on the
attention probabilities. Hidden, activation and feature-projection dropout are applied when
`deterministic=False`.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artser_jax.models.frames import EncoderOutput, conv_stack_geometry, frame_mask_from_audio_mask

ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
    "swish": jax.nn.silu,
    "silu": jax.nn.silu,
}


# The Hugging Face `model_type`s this port implements; each is one entry of the encoder registry.
MODEL_TYPES = ("wav2vec2", "wavlm")


@dataclasses.dataclass(frozen=True)
class Wav2Vec2Config:
    """The fields of a Hugging Face `Wav2Vec2Config` / `WavLMConfig` that the forward pass uses."""
    model_type: str = "wav2vec2"   # "wav2vec2" or "wavlm"
    conv_dim: tuple = (512, 512, 512, 512, 512, 512, 512)
    conv_kernel: tuple = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = False
    feat_extract_norm: str = "group"   # "group" or "layer"
    feat_extract_activation: str = "gelu"
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = False
    hidden_dropout: float = 0.1
    activation_dropout: float = 0.0
    feat_proj_dropout: float = 0.0
    num_buckets: int = 320          # WavLM only
    max_bucket_distance: int = 800  # WavLM only

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {self.model_type!r}")
        if self.feat_extract_norm not in ("group", "layer"):
            raise ValueError(f"feat_extract_norm must be 'group' or 'layer', got {self.feat_extract_norm!r}")
        for name in ("feat_extract_activation", "hidden_act"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {sorted(ACTIVATIONS)}")
        if not len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride):
            raise ValueError("conv_dim, conv_kernel and conv_stride must have the same length")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")

    @classmethod
    def from_hf_dict(cls, hf_config, source="config.json"):
        """Builds from a parsed HF config.json; refuses options this port does not implement."""
        model_type = hf_config.get("model_type")
        if model_type not in MODEL_TYPES:
            raise ValueError(f"{source}: model_type {model_type!r} is not supported ({', '.join(MODEL_TYPES)})")
        if hf_config.get("add_adapter", False):
            raise ValueError(f"{source}: add_adapter=True (adapter layers) is not supported")
        if hf_config.get("adapter_attn_dim") is not None:
            raise ValueError(f"{source}: adapter_attn_dim (attention adapters) is not supported")
        values = {}
        for field in dataclasses.fields(cls):
            if field.name in hf_config:
                value = hf_config[field.name]
                values[field.name] = tuple(value) if isinstance(value, list) else value
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    @property
    def frame_hop_samples(self):
        return conv_stack_geometry(self.conv_kernel, self.conv_stride)[0]

    @property
    def frame_window_samples(self):
        return conv_stack_geometry(self.conv_kernel, self.conv_stride)[1]


def normalize_waveform(audio, audio_mask=None):
    """Zero mean, unit variance over each clip's valid samples, padding set to 0 (HF's do_normalize)."""
    mask = jnp.ones(audio.shape, bool) if audio_mask is None else audio_mask
    weights = mask.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(weights, axis=-1, keepdims=True), 1.0)
    mean = jnp.sum(audio * weights, axis=-1, keepdims=True) / count
    var = jnp.sum(jnp.square(audio - mean) * weights, axis=-1, keepdims=True) / count
    return jnp.where(mask, (audio - mean) / jnp.sqrt(var + 1e-7), 0.0)


class FeatureExtractorConv(nnx.Module):
    """One conv layer of the waveform feature extractor; `norm` is None, "group" or "layer"."""

    def __init__(self, in_dim, out_dim, kernel, stride, use_bias, norm, activation, *, rngs):
        self.conv = nnx.Conv(in_dim, out_dim, kernel_size=(kernel,), strides=(stride,), padding="VALID",
                             use_bias=use_bias, rngs=rngs)
        if norm == "group":
            # HF: GroupNorm(num_groups=C): per-channel statistics over time (padding included).
            self.norm = nnx.GroupNorm(out_dim, num_groups=out_dim, epsilon=1e-5, rngs=rngs)
        elif norm == "layer":
            self.norm = nnx.LayerNorm(out_dim, epsilon=1e-5, rngs=rngs)
        else:
            self.norm = None
        self.activation = activation

    def __call__(self, x):
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return ACTIVATIONS[self.activation](x)


class PositionalConvEmbedding(nnx.Module):
    """Grouped conv over time; HF's weight-normalised kernel is folded into one kernel when loading."""

    def __init__(self, config, *, rngs):
        k = config.num_conv_pos_embeddings
        self.conv = nnx.Conv(config.hidden_size, config.hidden_size, kernel_size=(k,), padding=[(k // 2, k // 2)],
                             feature_group_count=config.num_conv_pos_embedding_groups, rngs=rngs)
        self.remove_last = k % 2 == 0  # HF's SamePadLayer
        self.activation = config.feat_extract_activation

    def __call__(self, x):
        y = self.conv(x)
        if self.remove_last:
            y = y[:, :-1]
        return ACTIVATIONS[self.activation](y)


class FeedForward(nnx.Module):
    def __init__(self, config, *, rngs, **matmul):
        self.intermediate_dense = nnx.Linear(config.hidden_size, config.intermediate_size, rngs=rngs, **matmul)
        self.output_dense = nnx.Linear(config.intermediate_size, config.hidden_size, rngs=rngs, **matmul)
        self.intermediate_dropout = nnx.Dropout(config.activation_dropout, rngs=rngs)
        self.output_dropout = nnx.Dropout(config.hidden_dropout, rngs=rngs)
        self.activation = config.hidden_act

    def __call__(self, x, deterministic):
        x = ACTIVATIONS[self.activation](self.intermediate_dense(x))
        x = self.intermediate_dropout(x, deterministic=deterministic)
        return self.output_dropout(self.output_dense(x), deterministic=deterministic)


def relative_position_buckets(length, num_buckets, max_distance):
    """WavLM's bucketed relative positions (key - query), computed in float32 exactly like the reference."""
    positions = np.arange(length, dtype=np.int64)
    relative = positions[None, :] - positions[:, None]
    half = num_buckets // 2
    buckets = (relative > 0).astype(np.int64) * half
    distance = np.abs(relative)
    max_exact = half // 2
    with np.errstate(divide="ignore"):
        large = np.log(distance.astype(np.float32) / np.float32(max_exact))
    large = large / np.float32(math.log(max_distance / max_exact))
    large = large * np.float32(half - max_exact)
    with np.errstate(invalid="ignore"):
        large = (np.float32(max_exact) + large).astype(np.int64)
    large = np.minimum(large, half - 1)
    return buckets + np.where(distance < max_exact, distance, large)


class SelfAttention(nnx.Module):
    """Multi-head self-attention; with `relative_bias` the WavLM gated relative position bias."""

    def __init__(self, config, has_relative_embedding, *, rngs, **matmul):
        d = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = d // self.num_heads
        self.q_proj = nnx.Linear(d, d, rngs=rngs, **matmul)
        self.k_proj = nnx.Linear(d, d, rngs=rngs, **matmul)
        self.v_proj = nnx.Linear(d, d, rngs=rngs, **matmul)
        self.out_proj = nnx.Linear(d, d, rngs=rngs, **matmul)
        self.is_wavlm = config.model_type == "wavlm"
        if self.is_wavlm:
            self.num_buckets = config.num_buckets
            self.max_distance = config.max_bucket_distance
            self.gru_rel_pos_const = nnx.Param(jnp.ones((self.num_heads,), jnp.float32))
            self.gru_rel_pos_linear = nnx.Linear(self.head_dim, 8, rngs=rngs)
            self.rel_attn_embed = (nnx.Embed(config.num_buckets, self.num_heads, rngs=rngs)
                                   if has_relative_embedding else None)

    def position_bias(self, length):
        """(H, T, T) ungated bias; only the first layer owns the embedding table."""
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance)
        return jnp.transpose(self.rel_attn_embed(jnp.asarray(buckets)), (2, 0, 1))

    def __call__(self, x, key_mask, position_bias=None):
        b, t, _ = x.shape
        split = lambda y: y.reshape(b, t, self.num_heads, self.head_dim)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        bias = None
        if self.is_wavlm:
            # Gate per head and query position, computed from the layer input split into heads.
            gate_logits = self.gru_rel_pos_linear(split(x)).reshape(b, t, self.num_heads, 2, 4).sum(-1)
            gate_a, gate_b = jnp.split(jax.nn.sigmoid(gate_logits), 2, axis=-1)
            const = self.gru_rel_pos_const[...][None, None, :, None]
            gate = gate_a * (gate_b * const - 1.0) + 2.0                       # (B, T, H, 1)
            bias = jnp.transpose(gate, (0, 2, 1, 3)) * position_bias[None]     # (B, H, T, T)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask, scale=self.head_dim ** -0.5)
        return self.out_proj(out.reshape(b, t, -1))


class EncoderLayer(nnx.Module):
    def __init__(self, config, has_relative_embedding, *, rngs, **matmul):
        self.attention = SelfAttention(config, has_relative_embedding, rngs=rngs, **matmul)
        self.dropout = nnx.Dropout(config.hidden_dropout, rngs=rngs)
        self.layer_norm = nnx.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps, rngs=rngs)
        self.feed_forward = FeedForward(config, rngs=rngs, **matmul)
        self.final_layer_norm = nnx.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps, rngs=rngs)
        self.pre_norm = config.do_stable_layer_norm

    def __call__(self, x, key_mask, position_bias, deterministic):
        if self.pre_norm:
            attended = self.attention(self.layer_norm(x), key_mask, position_bias)
            x = x + self.dropout(attended, deterministic=deterministic)
            return x + self.feed_forward(self.final_layer_norm(x), deterministic)
        x = x + self.dropout(self.attention(x, key_mask, position_bias), deterministic=deterministic)
        x = self.layer_norm(x)
        return self.final_layer_norm(x + self.feed_forward(x, deterministic))


class Wav2Vec2Encoder(nnx.Module):
    """Waveform `(B, N)` at 16 kHz -> `EncoderOutput` (frames every 20 ms for the standard conv stack).

    `normalize_audio=True` applies the checkpoint's input normalisation (HF `Wav2Vec2FeatureExtractor` with
    `do_normalize=True`: zero mean, unit variance over each clip's valid samples, padding set to 0), which
    the HF model itself leaves to its feature extractor; `hf_loader.load_encoder` reads it from
    `preprocessor_config.json`.

    `matmul_dtype=jnp.bfloat16` runs the transformer's and the feature projection's Linear layers on
    bfloat16 inputs with float32 accumulation (parameters, convolutions, norms, softmax and residuals stay
    float32): faster on CPUs with bf16 matrix units (AMX), at bf16 precision. None (default) is plain
    float32, the precision the parity tests check.
    """

    def __init__(self, config: Wav2Vec2Config, *, rngs: nnx.Rngs, matmul_dtype=None, normalize_audio=False):
        self.config = config
        self.normalize_audio = normalize_audio
        matmul = {} if matmul_dtype is None else {"dtype": matmul_dtype, "preferred_element_type": jnp.float32}
        dims = (1,) + tuple(config.conv_dim)
        layers = []
        for i, (kernel, stride) in enumerate(zip(config.conv_kernel, config.conv_stride)):
            if config.feat_extract_norm == "layer":
                norm = "layer"
            else:
                norm = "group" if i == 0 else None
            layers.append(FeatureExtractorConv(dims[i], dims[i + 1], kernel, stride, config.conv_bias, norm,
                                               config.feat_extract_activation, rngs=rngs))
        self.conv_layers = nnx.List(layers)
        self.feature_layer_norm = nnx.LayerNorm(dims[-1], epsilon=config.layer_norm_eps, rngs=rngs)
        self.feature_projection = nnx.Linear(dims[-1], config.hidden_size, rngs=rngs, **matmul)
        self.feature_dropout = nnx.Dropout(config.feat_proj_dropout, rngs=rngs)
        self.pos_conv_embed = PositionalConvEmbedding(config, rngs=rngs)
        self.encoder_layer_norm = nnx.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps, rngs=rngs)
        self.dropout = nnx.Dropout(config.hidden_dropout, rngs=rngs)
        self.layers = nnx.List([EncoderLayer(config, has_relative_embedding=(i == 0), rngs=rngs, **matmul)
                                for i in range(config.num_hidden_layers)])

    @property
    def frame_hop_seconds(self):
        return self.config.frame_hop_samples / 16000.0

    @property
    def frame_window_seconds(self):
        return self.config.frame_window_samples / 16000.0

    @property
    def num_hidden_states(self):
        return self.config.num_hidden_layers + 1

    @property
    def output_dim(self):
        return self.config.hidden_size

    def frame_mask(self, audio_mask, num_frames):
        return frame_mask_from_audio_mask(audio_mask, num_frames, self.config.conv_kernel, self.config.conv_stride)

    def __call__(self, audio, audio_mask=None, *, deterministic=True):
        if audio.ndim != 2:
            raise ValueError(f"audio must have shape (batch, samples), got {audio.shape}")
        if audio.shape[1] < self.config.frame_window_samples:
            raise ValueError(f"audio of {audio.shape[1]} samples is shorter than one frame "
                             f"({self.config.frame_window_samples} samples)")
        if self.normalize_audio:
            audio = normalize_waveform(audio, audio_mask)
        x = audio[..., None]
        for conv in self.conv_layers:
            x = conv(x)
        num_frames = x.shape[1]
        mask = None if audio_mask is None else self.frame_mask(audio_mask, num_frames)
        x = self.feature_dropout(self.feature_projection(self.feature_layer_norm(x)), deterministic=deterministic)
        if mask is not None:
            x = jnp.where(mask[..., None], x, 0.0)
        x = x + self.pos_conv_embed(x)
        if not self.config.do_stable_layer_norm:
            x = self.encoder_layer_norm(x)
        x = self.dropout(x, deterministic=deterministic)
        position_bias = None
        if self.config.model_type == "wavlm":
            position_bias = self.layers[0].attention.position_bias(num_frames)
        hidden_states = [x]
        for layer in self.layers:
            x = layer(x, mask, position_bias, deterministic)
            hidden_states.append(x)
        if self.config.do_stable_layer_norm:
            x = self.encoder_layer_norm(x)
        if mask is None:
            mask = jnp.ones(x.shape[:2], bool)
        return EncoderOutput(frames=x, frame_mask=mask, hidden_states=tuple(hidden_states))
