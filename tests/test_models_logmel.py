"""JAX log-mel against librosa, and the log-mel encoder's frames and masks."""

import jax.numpy as jnp
import librosa
import numpy as np
import pytest
from flax import nnx

from artser_jax.models import logmel

# Measured max abs differences are about 4e-6 (power, relative 1e-5) and 5e-5 dB; tolerances leave margin.
POWER_RTOL = 1e-4
DB_ATOL = 1e-3


def _tone_in_noise(n=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("n_fft,hop,n_mels,fmin,fmax", [(400, 160, 80, 0.0, None), (512, 128, 40, 50.0, 7000.0)])
def test_log_mel_matches_librosa(n_fft, hop, n_mels, fmin, fmax):
    y = _tone_in_noise()
    expected = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=n_fft, hop_length=hop, n_mels=n_mels, fmin=fmin,
                                              fmax=fmax, center=False, power=2.0).T
    got = np.asarray(logmel.power_mel_spectrogram(jnp.asarray(y[None]), n_fft=n_fft, hop_length=hop, n_mels=n_mels,
                                                  fmin=fmin, fmax=fmax))[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=POWER_RTOL, atol=1e-7)
    expected_db = librosa.power_to_db(expected, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(np.asarray(logmel.compress(jnp.asarray(got), "db")), expected_db, atol=DB_ATOL)
    np.testing.assert_allclose(np.asarray(logmel.compress(jnp.asarray(got), "log", log_eps=1e-6)),
                               np.log(expected + 1e-6), atol=1e-4)


def test_too_short_audio_and_unknown_compression_are_refused():
    with pytest.raises(ValueError, match="shorter than one STFT window"):
        logmel.power_mel_spectrogram(jnp.zeros((1, 100)))
    with pytest.raises(ValueError, match="compression"):
        logmel.compress(jnp.ones(3), "cubic")


def test_encoder_frames_do_not_depend_on_padding():
    config = logmel.LogMelConfig(n_mels=24, width=16, num_blocks=2, block_kernel=3)
    encoder = logmel.LogMelEncoder(config, rngs=nnx.Rngs(0))
    assert encoder.frame_hop_seconds == pytest.approx(0.02)
    assert encoder.frame_window_seconds == pytest.approx((400 + 4 * 160) / 16000)
    y = _tone_in_noise(8000)
    alone = encoder(jnp.asarray(y[None]), jnp.ones((1, 8000), bool))
    padded_audio = np.zeros((2, 12000), np.float32)
    padded_audio[0, :8000] = y
    padded_audio[0, 8000:] = 5.0  # garbage after the end must not leak in
    padded_audio[1] = _tone_in_noise(12000, seed=1)
    mask = np.ones((2, 12000), bool)
    mask[0, 8000:] = False
    batch = encoder(jnp.asarray(padded_audio), jnp.asarray(mask))
    num_valid = int(alone.frame_mask.sum())
    assert num_valid == 1 + ((1 + (8000 - 400) // 160) - 5) // 2
    longer = 1 + ((1 + (12000 - 400) // 160) - 5) // 2
    np.testing.assert_array_equal(np.asarray(batch.frame_mask).sum(1), [num_valid, longer])
    assert len(batch.hidden_states) == encoder.num_hidden_states == 3
    np.testing.assert_allclose(np.asarray(batch.frames)[0, :num_valid], np.asarray(alone.frames)[0], atol=1e-5)
