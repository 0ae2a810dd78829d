"""Log-mel filterbank computed in JAX, and a small convolutional front end trained from scratch.

The spectrogram equals `librosa.feature.melspectrogram(y, sr, n_fft, hop_length, n_mels, fmin, fmax,
center=False, power=2.0)` (periodic Hann window, Slaney mel filters taken from librosa), compressed
either with `librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)` ("db", the default) or with
natural `log(S + log_eps)` ("log"). `center=False` makes STFT frame `i` cover samples
`[i * hop, i * hop + n_fft)`, so frame times follow the same rule as the wav2vec2 encoders.
"""

import dataclasses

import jax
import jax.numpy as jnp
import librosa
import numpy as np
from flax import nnx

from artser_jax.models.frames import EncoderOutput, arange, conv_stack_geometry, frame_mask_from_audio_mask


def mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax):
    """(n_fft // 2 + 1, n_mels) float32, librosa's Slaney-normalised mel filters."""
    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).T.astype(np.float32)


def power_spectrum(frames):
    """|rfft|^2 over the last axis (the portable export swaps in a DFT product, see export_portable)."""
    return jnp.square(jnp.abs(jnp.fft.rfft(frames, axis=-1)))


def power_mel_spectrogram(audio, *, sample_rate=16000, n_fft=400, hop_length=160, n_mels=80, fmin=0.0, fmax=None):
    """audio (B, N) float32 -> power mel spectrogram (B, F, n_mels), F = 1 + (N - n_fft) // hop_length."""
    num_frames = 1 + (audio.shape[-1] - n_fft) // hop_length
    if num_frames < 1:
        raise ValueError(f"audio of {audio.shape[-1]} samples is shorter than one STFT window ({n_fft})")
    window = jnp.asarray(librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32))
    indices = arange(num_frames)[:, None] * hop_length + np.arange(n_fft)[None, :]
    frames = audio[:, indices] * window
    return power_spectrum(frames) @ jnp.asarray(mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax))


def compress(mel_power, compression="db", amin=1e-10, log_eps=1e-6):
    if compression == "db":
        return 10.0 * jnp.log10(jnp.maximum(mel_power, amin))
    if compression == "log":
        return jnp.log(mel_power + log_eps)
    raise ValueError(f"compression must be 'db' or 'log', got {compression!r}")


@dataclasses.dataclass(frozen=True)
class LogMelConfig:
    sample_rate: int = 16000
    n_fft: int = 400              # 25 ms window
    hop_length: int = 160         # 10 ms hop
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None
    compression: str = "db"       # "db" (power_to_db, no top_db) or "log" (log(x + log_eps))
    utterance_norm: bool = True   # per-utterance, per-bin mean/variance normalisation over valid frames
    width: int = 256
    input_kernel: int = 5
    input_stride: int = 2         # 10 ms STFT hop -> 20 ms frames, the rate of wav2vec2
    num_blocks: int = 2
    block_kernel: int = 5
    dropout: float = 0.1

    @property
    def kernels(self):
        return (self.n_fft, self.input_kernel)

    @property
    def strides(self):
        return (self.hop_length, self.input_stride)


class ConvBlock(nnx.Module):
    """Residual 'same' conv block: x + dropout(gelu(layernorm(conv(x))))."""

    def __init__(self, width, kernel, dropout, *, rngs):
        self.conv = nnx.Conv(width, width, kernel_size=(kernel,), padding="SAME", rngs=rngs)
        self.norm = nnx.LayerNorm(width, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x, deterministic):
        return x + self.dropout(jax.nn.gelu(self.norm(self.conv(x))), deterministic=deterministic)


class LogMelEncoder(nnx.Module):
    """Waveform -> log-mel -> strided conv -> residual conv blocks; every block's output is a hidden state.

    Frame `i` covers samples `[i * hop, i * hop + window)` of the STFT + strided conv; the 'same' residual
    blocks add symmetric context. Padded frames are zeroed before each block, so valid frames do not
    depend on how much padding follows them.
    """

    def __init__(self, config: LogMelConfig = LogMelConfig(), *, rngs: nnx.Rngs):
        self.config = config
        self.input_conv = nnx.Conv(config.n_mels, config.width, kernel_size=(config.input_kernel,),
                                   strides=(config.input_stride,), padding="VALID", rngs=rngs)
        self.input_norm = nnx.LayerNorm(config.width, rngs=rngs)
        self.blocks = nnx.List([ConvBlock(config.width, config.block_kernel, config.dropout, rngs=rngs)
                                for _ in range(config.num_blocks)])

    @property
    def frame_hop_seconds(self):
        return conv_stack_geometry(self.config.kernels, self.config.strides)[0] / self.config.sample_rate

    @property
    def frame_window_seconds(self):
        return conv_stack_geometry(self.config.kernels, self.config.strides)[1] / self.config.sample_rate

    @property
    def num_hidden_states(self):
        return self.config.num_blocks + 1

    @property
    def output_dim(self):
        return self.config.width

    def features(self, audio, audio_mask):
        """Compressed (and optionally utterance-normalised) log-mel (B, T, n_mels) and its frame mask."""
        c = self.config
        mel = compress(power_mel_spectrogram(audio, sample_rate=c.sample_rate, n_fft=c.n_fft,
                                             hop_length=c.hop_length, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax),
                       c.compression)
        mask = frame_mask_from_audio_mask(audio_mask, mel.shape[1], (c.n_fft,), (c.hop_length,))
        if c.utterance_norm:
            weights = mask[..., None].astype(mel.dtype)
            count = jnp.maximum(jnp.sum(weights, axis=1, keepdims=True), 1.0)
            mean = jnp.sum(mel * weights, axis=1, keepdims=True) / count
            var = jnp.sum(jnp.square(mel - mean) * weights, axis=1, keepdims=True) / count
            mel = (mel - mean) * jax.lax.rsqrt(var + 1e-5)
        return jnp.where(mask[..., None], mel, 0.0), mask

    def __call__(self, audio, audio_mask=None, *, deterministic=True):
        if audio_mask is None:
            audio_mask = jnp.ones(audio.shape, bool)
        mel, _ = self.features(audio, audio_mask)
        x = jax.nn.gelu(self.input_norm(self.input_conv(mel)))
        mask = frame_mask_from_audio_mask(audio_mask, x.shape[1], self.config.kernels, self.config.strides)
        hidden_states = [x]
        for block in self.blocks:
            x = block(jnp.where(mask[..., None], x, 0.0), deterministic)
            hidden_states.append(x)
        return EncoderOutput(frames=x, frame_mask=mask, hidden_states=tuple(hidden_states))
