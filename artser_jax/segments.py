"""Segment intervals per utterance (docs/method.md 2.1), padded to a static count with a mask.

A segment is a time interval [start, end) in seconds; the same interval indexes the audio samples and the
video frames. Two sources:

- `phones`: the example's forced-alignment phones (`phone_starts`, `phone_ends`, `phone_labels`), with
  silence labels dropped and phones shorter than `min_video_frames` video frames dropped.
- `windows`: fixed windows (default 200 ms, hop 100 ms) laid over the voiced part of the utterance, found
  from the frame energy of the 16 kHz int16 audio.
- `phones_or_windows`: phones where the example has an alignment, windows where it has none (e.g. the
  MSP-IMPROV turns without a transcript, which `launch/align.py --missing_transcript=windows` leaves
  unaligned).

Everything is numpy: the input pipeline calls `utterance_segments` once per example.
"""

import collections.abc

import numpy as np

SAMPLE_RATE = 16000
METHODS = ("phones", "windows", "phones_or_windows")
_OPTIONS = {"phones": ("min_video_frames",), "windows": ("window_seconds", "hop_seconds"),
            "phones_or_windows": ("min_video_frames", "window_seconds", "hop_seconds")}
# Labels (lower case) that aligners (Montreal Forced Aligner, festival, espeak, TIMIT) and TextGrid
# writers use for silence, pauses and spoken noise; `is_silence` compares case-insensitively.
SILENCE_LABELS = frozenset({"", "sil", "<sil>", "sp", "spn", "pau", "h#", "<eps>", "_", "#", "silence"})


def is_silence(label):
    """Whether a phone label marks silence rather than a speech sound (case and edge blanks ignored)."""
    return label.strip().lower() in SILENCE_LABELS


def text_value(value):
    """A TFDS Text feature as str: data sources return bytes, hand-made examples may hold str."""
    if isinstance(value, np.ndarray):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def utterance_name(example):
    if "utterance_id" in example:
        return text_value(example["utterance_id"])
    return "<unnamed utterance>"


def _padded(starts, ends, labels, max_segments):
    """Pads (or truncates to the first `max_segments`) to the static layout of the contract."""
    count = min(len(starts), max_segments)
    seg_start = np.zeros(max_segments, np.float32)
    seg_end = np.zeros(max_segments, np.float32)
    seg_mask = np.zeros(max_segments, bool)
    seg_phone = np.full(max_segments, "", dtype=object)
    seg_start[:count] = starts[:count]
    seg_end[:count] = ends[:count]
    seg_mask[:count] = True
    seg_phone[:count] = labels[:count]
    return {"seg_start": seg_start, "seg_end": seg_end, "seg_mask": seg_mask,
            "seg_phone": seg_phone.astype(str)}


def phone_segments(example, max_segments, min_video_frames=2):
    """Phone intervals of the example's alignment, silence and too-short phones dropped, padded."""
    name = utterance_name(example)
    starts = np.asarray(example["phone_starts"], np.float32).reshape(-1)
    ends = np.asarray(example["phone_ends"], np.float32).reshape(-1)
    labels = text_value(example["phone_labels"]).split()
    if not (len(starts) == len(ends) == len(labels)):
        raise ValueError(f"{name}: phone fields disagree in length: {len(starts)} starts, {len(ends)} "
                         f"ends, {len(labels)} labels")
    if np.any(ends < starts):
        raise ValueError(f"{name}: a phone ends before it starts (first at index "
                         f"{int(np.argmax(ends < starts))})")
    frame_rate = float(np.asarray(example["frame_rate"]))
    if not frame_rate > 0:
        raise ValueError(f"{name}: frame_rate must be positive, got {frame_rate}")
    labels = np.array(labels, dtype=object)
    is_speech = np.array([not is_silence(label) for label in labels], bool)
    # The 1e-4 slack keeps a phone of exactly `min_video_frames` frames despite float32 rounding.
    long_enough = (ends - starts) * frame_rate >= min_video_frames - 1e-4
    keep = is_speech & long_enough
    return _padded(starts[keep], ends[keep], labels[keep], max_segments)


def voiced_frames(audio, sample_rate=SAMPLE_RATE, frame_seconds=0.025, frame_hop_seconds=0.010,
                  threshold_db=-35.0, floor_dbfs=-60.0):
    """Per-frame voicing (bool) and frame centre times (s) from the energy of int16 audio.

    A frame is voiced when its RMS level is within `threshold_db` of the loudest frame of the utterance
    and above the absolute floor `floor_dbfs` (dB relative to int16 full scale), so that a silent file
    has no voiced frames at all.
    """
    samples = np.asarray(audio).reshape(-1).astype(np.float32) / 32768.0
    frame = max(1, int(round(frame_seconds * sample_rate)))
    hop = max(1, int(round(frame_hop_seconds * sample_rate)))
    if len(samples) < frame:
        return np.zeros(0, bool), np.zeros(0, np.float32)
    framed = np.lib.stride_tricks.sliding_window_view(samples, frame)[::hop]
    level_db = 10.0 * np.log10(np.mean(framed ** 2, axis=1) + 1e-12)
    voiced = (level_db >= level_db.max() + threshold_db) & (level_db >= floor_dbfs)
    times = ((np.arange(len(framed)) * hop + frame / 2) / sample_rate).astype(np.float32)
    return voiced, times


def window_segments(example, max_segments, window_seconds=0.2, hop_seconds=0.1, min_voiced_fraction=0.5,
                    sample_rate=SAMPLE_RATE, frame_seconds=0.025, threshold_db=-35.0, floor_dbfs=-60.0):
    """Fixed windows over the voiced part: windows from the centre of the first voiced energy frame to
    the centre of the last, kept when at least `min_voiced_fraction` of the energy frames centred inside
    them are voiced; padded."""
    audio = np.asarray(example["audio"])
    if audio.ndim != 1:
        raise ValueError(f"{utterance_name(example)}: audio must be 1-D, got shape {audio.shape}")
    voiced, times = voiced_frames(audio, sample_rate, frame_seconds, threshold_db=threshold_db,
                                  floor_dbfs=floor_dbfs)
    if not voiced.any():
        return _padded(np.zeros(0), np.zeros(0), np.zeros(0, dtype=object), max_segments)
    duration = len(audio) / sample_rate
    first, last = times[voiced][0], times[voiced][-1]
    # At least one window; the last one may end after the voiced part but never after the audio.
    starts = np.arange(first, max(first, last - window_seconds) + 1e-6, hop_seconds)
    ends = np.minimum(starts + window_seconds, duration)
    inside = (times[None, :] >= starts[:, None]) & (times[None, :] < ends[:, None])
    fraction = (inside & voiced[None, :]).sum(1) / np.maximum(inside.sum(1), 1)
    keep = fraction >= min_voiced_fraction
    labels = np.full(int(keep.sum()), "", dtype=object)
    return _padded(starts[keep], ends[keep], labels, max_segments)


def segment_options(method, fields):
    """Keyword arguments of `utterance_segments` for `method`, read from `fields`: any mapping or object
    holding `min_video_frames` (phones) and/or `window_seconds` and `hop_seconds` (windows), such as a
    config's `segments` section or a `GestureConfig`."""
    if method not in METHODS:
        raise ValueError(f"unknown segment method {method!r}; expected one of {METHODS}")
    names = _OPTIONS[method]
    if isinstance(fields, collections.abc.Mapping):
        return {name: fields[name] for name in names}
    return {name: getattr(fields, name) for name in names}


def utterance_segments(example, method, max_segments, **options):
    """Segments of one example as `seg_start`, `seg_end` (float32 s), `seg_mask` (bool), `seg_phone`
    (str, '' for windows and padding), all of shape `(max_segments,)`.

    `options` go to `phone_segments` or `window_segments`. An utterance with more segments than
    `max_segments` keeps its first `max_segments`.
    """
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, got {max_segments}")
    if method not in METHODS:
        raise ValueError(f"unknown segment method {method!r}; expected one of {METHODS}")
    aligned = method != "windows" and len(np.asarray(example["phone_starts"]).reshape(-1)) > 0
    if method == "phones" and not aligned:
        raise ValueError(f"{utterance_name(example)}: segment method 'phones' needs a phone alignment, but the "
                         f"example has none; align the corpus (launch/align.py) or use 'phones_or_windows'")
    if method == "phones" or (method == "phones_or_windows" and aligned):
        return phone_segments(example, max_segments, min_video_frames=options.get("min_video_frames", 2))
    return window_segments(example, max_segments, **{k: v for k, v in options.items() if k != "min_video_frames"})
