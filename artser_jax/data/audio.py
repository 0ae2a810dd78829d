"""Reading, validating, down-mixing and resampling wav files.

Used by the dataset builders (which store 16 kHz int16) and by `predict.py` (arbitrary user files).
Every failure is an `AudioError` naming the file and the problem.
"""

import pathlib

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16000
# soxr's high-quality mode: the resampler librosa recommends, and fast enough for whole corpora.
RESAMPLE_TYPE = "soxr_hq"


class AudioError(ValueError):
    """An audio file that cannot be used: missing, not audio, empty, or at an unexpected rate."""


def audio_info(path):
    """soundfile's header info (samplerate, channels, frames) with clear errors for unusable files."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes), not audio")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: not a readable audio file ({error})") from None
    if info.frames <= 0:
        raise AudioError(f"{path}: audio file holds no samples")
    return info


def read_audio(path):
    """(float32 samples `(N, channels)` in [-1, 1], sample rate) of a whole file."""
    info = audio_info(path)
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: corrupt audio data ({error})") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: audio file holds no samples")
    if samples.shape[0] < info.frames:
        raise AudioError(f"{path}: truncated audio: header promises {info.frames} samples, "
                         f"the file holds {samples.shape[0]}")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return samples, rate


def downmix(samples):
    """Mono float32 `(N,)` from `(N, channels)` by averaging the channels."""
    return samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]


def resample(mono, rate, target_rate=SAMPLE_RATE):
    """soxr's high-quality resampling, trimmed or zero-padded to ceil(N * ratio) samples: exactly
    `librosa.resample(mono, orig_sr=rate, target_sr=target_rate, res_type="soxr_hq")`, without librosa,
    so that prediction runs where only numpy, soundfile and soxr are installed."""
    if rate == target_rate:
        return mono.astype(np.float32, copy=False)
    resampled = soxr.resample(mono, rate, target_rate, quality=RESAMPLE_TYPE)
    length = int(np.ceil(len(mono) * (float(target_rate) / rate)))
    out = np.zeros(length, np.float32)
    out[:min(length, len(resampled))] = resampled[:length]
    return out


def load_audio(path, target_rate=SAMPLE_RATE, expected_rate=None):
    """A whole audio file as float32 mono at `target_rate`, in [-1, 1].

    `expected_rate`: if given, a file at any other sample rate is an error instead of being resampled
    (corpora whose rate is part of their definition, e.g. CREMA-D's 16 kHz).
    """
    samples, rate = read_audio(path)
    if expected_rate is not None and rate != expected_rate:
        raise AudioError(f"{path}: sample rate {rate} Hz, expected {expected_rate} Hz")
    return resample(downmix(samples), rate, target_rate)


def to_int16(mono):
    """float32 in [-1, 1] -> int16 (clipped), the storage format of the datasets."""
    return np.round(np.clip(mono, -1.0, 32767 / 32768) * 32768).astype(np.int16)
