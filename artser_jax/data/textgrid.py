"""Praat TextGrid files: read and write interval tiers (tier "phones"), in the layout MFA writes.

The Montreal Forced Aligner writes one `<stem>.TextGrid` beside each `<stem>.wav`, in Praat's long
("ooTextFile") text format, with the interval tiers "words" and "phones"; silences are intervals with an
empty label. `read_textgrid` also reads Praat's short format and UTF-16 files (Praat saves those when a
label is not ASCII). Numpy is not needed here: intervals are plain tuples.
"""

import dataclasses
import pathlib
import re

PHONES_TIER = "phones"
WORDS_TIER = "words"
# Labels that aligners use for silence, spoken noise and pauses; the segmenter drops these.
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn", "<eps>", "SIL", "<sil>"})


@dataclasses.dataclass(frozen=True)
class Interval:
    start: float
    end: float
    label: str


@dataclasses.dataclass(frozen=True)
class IntervalTier:
    name: str
    start: float
    end: float
    intervals: tuple


class TextGridError(ValueError):
    """A TextGrid file that cannot be read, or intervals that cannot be written."""


def _quote(text):
    return '"' + text.replace('"', '""') + '"'


def _check_intervals(intervals, tier_name, where):
    previous_end = None
    for interval in intervals:
        if not interval.end > interval.start:
            raise TextGridError(f"{where}: tier {tier_name!r} has an interval with end <= start: {interval}")
        if previous_end is not None and interval.start < previous_end - 1e-9:
            raise TextGridError(f"{where}: tier {tier_name!r} has overlapping intervals at {interval}")
        previous_end = interval.end


def _fill_gaps(intervals, start, end):
    """Intervals covering [start, end) without gaps, as Praat requires; gaps become empty labels."""
    filled = []
    cursor = start
    for interval in intervals:
        if interval.start > cursor + 1e-9:
            filled.append(Interval(cursor, interval.start, ""))
        filled.append(interval)
        cursor = interval.end
    if end > cursor + 1e-9:
        filled.append(Interval(cursor, end, ""))
    return filled


def write_textgrid(path, tiers, end_time, start_time=0.0):
    """Writes `tiers` ({name: [Interval, ...]} in order) as a long-format TextGrid at `path`.

    Gaps between intervals are filled with empty-label intervals, so each tier covers
    [start_time, end_time] as Praat and MFA files do.
    """
    path = pathlib.Path(path)
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "",
             f"xmin = {start_time!r}", f"xmax = {end_time!r}", "tiers? <exists> ",
             f"size = {len(tiers)}", "item []:"]
    for tier_index, (name, intervals) in enumerate(tiers.items(), start=1):
        intervals = sorted(intervals, key=lambda interval: interval.start)
        _check_intervals(intervals, name, path)
        if intervals and (intervals[0].start < start_time - 1e-9 or intervals[-1].end > end_time + 1e-9):
            raise TextGridError(f"{path}: tier {name!r} has intervals outside [{start_time}, {end_time}]")
        filled = _fill_gaps(intervals, start_time, end_time)
        lines += [f"    item [{tier_index}]:", '        class = "IntervalTier"', f"        name = {_quote(name)}",
                  f"        xmin = {start_time!r}", f"        xmax = {end_time!r}",
                  f"        intervals: size = {len(filled)}"]
        for interval_index, interval in enumerate(filled, start=1):
            lines += [f"        intervals [{interval_index}]:", f"            xmin = {interval.start!r}",
                      f"            xmax = {interval.end!r}", f"            text = {_quote(interval.label)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# One token of a TextGrid: a quoted string (with "" escapes), a number, or a <flag>. Keys such as
# `xmin =` are skipped, which makes the long and short formats read alike.
_TOKEN_RE = re.compile(r'"((?:[^"]|"")*)"|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(<exists>|<absent>)')


def _decode(raw, path):
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TextGridError(f"{path}: not UTF-8 or UTF-16 text ({error})") from None


def _tokens(text):
    for line in text.splitlines():
        if '"' not in line:
            # Key lines (`item [1]:`, `intervals [2]:`) carry digits only inside brackets.
            line = re.sub(r"\[\d*\]", "", line)
        position = 0
        while True:
            match = _TOKEN_RE.search(line, position)
            if match is None:
                break
            if match.group(1) is not None:
                yield ("text", match.group(1).replace('""', '"'))
            elif match.group(2) is not None:
                yield ("number", float(match.group(2)))
            else:
                yield ("flag", match.group(3))
            position = match.end()


def read_textgrid(path):
    """All interval tiers of a TextGrid file: {name: IntervalTier}. Point tiers are skipped."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise TextGridError(f"{path}: TextGrid file not found")
    tokens = list(_tokens(_decode(path.read_bytes(), path)))
    position = 0

    def take(kind):
        nonlocal position
        if position >= len(tokens):
            raise TextGridError(f"{path}: file ends early, expected a {kind}")
        token_kind, value = tokens[position]
        if token_kind != kind:
            raise TextGridError(f"{path}: expected a {kind}, found {token_kind} {value!r}")
        position += 1
        return value

    if take("text") != "ooTextFile" or take("text") != "TextGrid":
        raise TextGridError(f"{path}: not a Praat TextGrid (expected 'ooTextFile' / 'TextGrid' header)")
    take("number")
    take("number")
    if take("flag") != "<exists>":
        return {}
    tiers = {}
    for _ in range(int(take("number"))):
        tier_class = take("text")
        name = take("text")
        tier_start, tier_end = take("number"), take("number")
        count = int(take("number"))
        if tier_class == "IntervalTier":
            intervals = []
            for _ in range(count):
                start, end = take("number"), take("number")
                intervals.append(Interval(start, end, take("text")))
            _check_intervals(intervals, name, path)
            tiers[name] = IntervalTier(name, tier_start, tier_end, tuple(intervals))
        elif tier_class == "TextTier":
            for _ in range(count):
                take("number")
                take("text")
        else:
            raise TextGridError(f"{path}: unknown tier class {tier_class!r}")
    return tiers


def read_phones(path, tier=PHONES_TIER, drop_silence=True):
    """The intervals of tier `tier` ("phones") of a TextGrid; silence labels dropped by default."""
    tiers = read_textgrid(path)
    if tier not in tiers:
        raise TextGridError(f"{path}: no interval tier named {tier!r} (tiers: {sorted(tiers)})")
    intervals = tiers[tier].intervals
    if drop_silence:
        intervals = tuple(interval for interval in intervals if interval.label.strip() not in SILENCE_LABELS)
    return intervals
