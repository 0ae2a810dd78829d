"""Praat TextGrid files, read and written with praatio: the interval tiers "words" and "phones" in the
layout the Montreal Forced Aligner writes.

MFA writes one `<stem>.TextGrid` beside each `<stem>.wav`, in Praat's long ("ooTextFile") text format,
with the interval tiers "words" and "phones"; silences are intervals with an empty label. Reading also
accepts Praat's short format and UTF-16 files (Praat saves those when a label is not ASCII).
"""

import pathlib

import numpy as np
from praatio import textgrid as praat_textgrid
from praatio.utilities import constants as praat_constants
from praatio.utilities import errors as praat_errors

from artser_jax import segments

PHONES_TIER = "phones"
WORDS_TIER = "words"
Interval = praat_constants.Interval  # (start, end, label), times in seconds


class TextGridError(ValueError):
    """A TextGrid file that cannot be read, or intervals that cannot be written."""


def write_textgrid(path, tiers, end_time, start_time=0.0):
    """Writes `tiers` ({name: [Interval, ...]}, in order) as a long-format TextGrid at `path`.

    Gaps between intervals are filled with empty-label intervals, so each tier covers
    [start_time, end_time] as Praat and MFA files do. praatio writes every time as Python's shortest
    round-trip representation, so the times read back are exactly the ones given.
    """
    path = pathlib.Path(path)
    grid = praat_textgrid.Textgrid(start_time, end_time)
    for name, intervals in tiers.items():
        intervals = sorted((Interval(*interval) for interval in intervals), key=lambda i: i.start)
        if intervals and (intervals[0].start < start_time or max(i.end for i in intervals) > end_time):
            raise TextGridError(f"{path}: tier {name!r} has intervals outside [{start_time}, {end_time}]")
        try:
            grid.addTier(praat_textgrid.IntervalTier(name, intervals, start_time, end_time),
                         reportingMode="error")
        except praat_errors.PraatioException as error:  # end <= start, overlapping intervals
            raise TextGridError(f"{path}: tier {name!r}: {error}") from None
    # No `minimumIntervalLength`: praatio would otherwise merge intervals shorter than 10 ns.
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True, minimumIntervalLength=None,
              reportingMode="error")


def read_textgrid(path):
    """All interval tiers of a TextGrid file: {name: tuple of Interval}, in file order; point tiers
    are skipped."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise TextGridError(f"{path}: TextGrid file not found")
    try:
        grid = praat_textgrid.openTextgrid(str(path), includeEmptyIntervals=True, reportingMode="error")
    except Exception as error:  # praatio's parser raises its own errors, IndexError, ValueError, ...
        raise TextGridError(f"{path}: not a readable Praat TextGrid ({type(error).__name__}: "
                            f"{error})") from None
    return {name: grid.getTier(name).entries for name in grid.tierNames
            if isinstance(grid.getTier(name), praat_textgrid.IntervalTier)}


def read_phones(path, tier=PHONES_TIER, drop_silence=True):
    """The intervals of tier `tier` ("phones") of a TextGrid; silence labels dropped by default."""
    tiers = read_textgrid(path)
    if tier not in tiers:
        raise TextGridError(f"{path}: no interval tier named {tier!r} (tiers: {sorted(tiers)})")
    intervals = tiers[tier]
    if drop_silence:
        intervals = tuple(interval for interval in intervals if not segments.is_silence(interval.label))
    return intervals


def phone_arrays(path):
    """(starts float32, ends float32, labels joined by spaces) of the "phones" tier of a TextGrid: the
    `phone_*` fields of a dataset example.

    Empty-label intervals (unlabelled silence) are dropped: they cannot be joined by spaces, and the
    segmenter treats them as silence anyway. Labelled silences ("sil", "sp", ...) are kept.
    """
    intervals = [interval for interval in read_phones(path, drop_silence=False) if interval.label.strip()]
    for start, end, label in intervals:
        if any(c.isspace() for c in label.strip()):
            raise TextGridError(f"{path}: phone label {label!r} ({start:.3f}-{end:.3f} s) contains whitespace")
    starts = np.array([interval.start for interval in intervals], np.float32)
    ends = np.array([interval.end for interval in intervals], np.float32)
    return starts, ends, " ".join(interval.label.strip() for interval in intervals)
