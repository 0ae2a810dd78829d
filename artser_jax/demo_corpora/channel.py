"""Recording channels and voice quality, numpy/scipy only: resampling, filters, reverberation, noise."""

import math

import numpy as np
from scipy import signal


def resample(waveform, from_rate, to_rate):
    """Polyphase resampling between integer sample rates."""
    if from_rate == to_rate:
        return waveform.astype(np.float32)
    divisor = math.gcd(int(from_rate), int(to_rate))
    return signal.resample_poly(waveform, int(to_rate) // divisor, int(from_rate) // divisor).astype(np.float32)


def spectral_tilt(waveform, sample_rate, db_per_octave, pivot_hz=1000.0):
    """Changes the spectral slope above `pivot_hz` by `db_per_octave` (vocal effort: + tense, - lax)."""
    if db_per_octave == 0:
        return waveform
    spectrum = np.fft.rfft(waveform)
    frequencies = np.fft.rfftfreq(len(waveform), 1.0 / sample_rate)
    octaves = np.log2(np.maximum(frequencies, pivot_hz) / pivot_hz)
    return np.fft.irfft(spectrum * 10.0 ** (db_per_octave * octaves / 20.0), n=len(waveform)).astype(np.float32)


def band_limit(waveform, sample_rate, highpass_hz=None, lowpass_hz=None, order=4):
    """Zero-phase Butterworth high-pass and/or low-pass."""
    if highpass_hz:
        sos = signal.butter(order, highpass_hz, btype="highpass", fs=sample_rate, output="sos")
        waveform = signal.sosfiltfilt(sos, waveform)
    if lowpass_hz:
        sos = signal.butter(order, lowpass_hz, btype="lowpass", fs=sample_rate, output="sos")
        waveform = signal.sosfiltfilt(sos, waveform)
    return np.asarray(waveform, np.float32)


def room_impulse_response(sample_rate, rt60_s, rng, direct_to_reverb_db=3.0):
    """A synthetic room impulse response: a direct path plus exponentially decaying noise."""
    length = int(rt60_s * sample_rate)
    times = np.arange(length) / sample_rate
    tail = rng.normal(0.0, 1.0, length) * np.exp(-6.9078 * times / rt60_s)  # -60 dB at rt60
    tail[: int(0.003 * sample_rate)] = 0.0  # first reflections arrive after a few ms
    tail *= 10 ** (-direct_to_reverb_db / 20.0) / np.sqrt(np.sum(tail ** 2))
    response = tail
    response[0] = 1.0
    return response.astype(np.float32)


def reverberate(waveform, impulse_response):
    return signal.fftconvolve(waveform, impulse_response)[: len(waveform)].astype(np.float32)


def colored_noise(length, color, rng):
    """Unit-variance white or pink (1/f power) noise."""
    white = rng.normal(0.0, 1.0, length)
    if color == "white":
        noise = white
    elif color == "pink":
        spectrum = np.fft.rfft(white)
        frequencies = np.fft.rfftfreq(length)
        spectrum[1:] /= np.sqrt(frequencies[1:])
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=length)
    else:
        raise ValueError(f"unknown noise color {color!r} (white or pink)")
    return (noise / (np.std(noise) + 1e-12)).astype(np.float32)


def add_noise(waveform, snr_db, color, rng):
    """Adds noise at `snr_db` relative to the power of the non-silent part of the signal."""
    active = np.abs(waveform) > 0.02 * np.max(np.abs(waveform))
    signal_power = np.mean(waveform[active] ** 2) if np.any(active) else np.mean(waveform ** 2)
    noise = colored_noise(len(waveform), color, rng) * np.sqrt(signal_power / 10 ** (snr_db / 10.0))
    return (waveform + noise).astype(np.float32)


def to_int16(waveform, gain_db, knee=0.8):
    """Applies gain, a soft limiter above `knee` (as recorders have), and converts to 16-bit PCM."""
    scaled = waveform * 10 ** (gain_db / 20.0)
    magnitude = np.abs(scaled)
    headroom = 1.0 - knee
    limited = np.where(magnitude > knee, knee + headroom * np.tanh((magnitude - knee) / headroom), magnitude)
    return np.round(np.sign(scaled) * np.minimum(limited, 32767 / 32768) * 32768).astype(np.int16)
