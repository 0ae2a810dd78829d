"""TextGrid I/O through praatio: round trips with exact times, both Praat text formats and UTF-16,
the phone arrays of a dataset example, and errors that name the file."""

import numpy as np
import pytest

from artser_jax.data import textgrid

SHORT_UTF16 = ('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1\n<exists>\n1\n"IntervalTier"\n'
               '"phones"\n0\n1\n2\n0\n0.4\n"sil"\n0.4\n1\n"IY"\n')


def test_round_trip_fills_gaps_and_escapes_quotes(tmp_path):
    path = tmp_path / "clip.TextGrid"
    phones = [textgrid.Interval(0.1, 0.2, "M"), textgrid.Interval(0.2, 0.35, "AA"),
              textgrid.Interval(0.5, 0.6, 'Q"')]
    textgrid.write_textgrid(path, {"words": [textgrid.Interval(0.1, 0.35, "ma")], "phones": phones},
                            end_time=0.7)
    tiers = textgrid.read_textgrid(path)
    assert list(tiers) == ["words", "phones"]
    assert [i.label for i in tiers["phones"]] == ["", "M", "AA", "", 'Q"', ""]
    assert tiers["phones"][0].start == 0.0 and tiers["phones"][-1].end == 0.7
    assert textgrid.read_phones(path) == tuple(phones)


def test_times_read_back_exactly(tmp_path):
    """The demo generator relies on it: phone times must come back bit-identical."""
    rng = np.random.default_rng(0)
    bounds = np.sort(rng.uniform(1e-3, 29.0, 400))
    # Near-integer times and one just past an integer (praatio writes times within 1e-14 of an integer
    # as that integer, which float32 cannot tell apart).
    bounds = np.unique(np.concatenate([bounds, [1.0, 2.0000000000000004, 3.5, 7.000001]]))
    phones = [textgrid.Interval(float(s), float(e), f"P{i}") for i, (s, e) in enumerate(zip(bounds[:-1], bounds[1:]))]
    path = tmp_path / "exact.TextGrid"
    textgrid.write_textgrid(path, {"phones": phones}, end_time=30.0)
    starts, ends, labels = textgrid.phone_arrays(path)
    assert starts.tobytes() == bounds[:-1].astype(np.float32).tobytes()
    assert ends.tobytes() == bounds[1:].astype(np.float32).tobytes()
    assert labels.split() == [p.label for p in phones]
    # In float64 too, every time comes back exactly, except the one written as an integer.
    read = textgrid.read_phones(path)
    expected = [t if abs(t - round(t)) > 1e-14 * t else float(round(t)) for t in bounds]
    assert [p.start for p in read] + [read[-1].end] == expected
    assert expected.count(2.0) == 1 and 2.0000000000000004 in bounds


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "utf-8"])
def test_long_and_short_formats_in_every_encoding_praat_writes(tmp_path, encoding):
    long_path = tmp_path / "long.TextGrid"
    textgrid.write_textgrid(long_path, {"phones": [textgrid.Interval(0.4, 1.0, "\u0283")]}, end_time=1.0)
    text = long_path.read_text(encoding="utf-8")
    if encoding == "utf-16-be":  # Praat's UTF-16 files start with a byte-order mark
        long_path.write_bytes(b"\xfe\xff" + text.encode(encoding))
    else:
        long_path.write_text(text, encoding=encoding)
    assert textgrid.read_phones(long_path) == (textgrid.Interval(0.4, 1.0, "\u0283"),)
    short_path = tmp_path / "short.TextGrid"
    short_path.write_text(SHORT_UTF16, encoding="utf-16" if encoding == "utf-16-be" else encoding)
    assert textgrid.read_phones(short_path) == (textgrid.Interval(0.4, 1.0, "IY"),)
    assert textgrid.read_phones(short_path, drop_silence=False)[0] == textgrid.Interval(0.0, 0.4, "sil")


def test_phone_arrays_are_the_example_fields(tmp_path):
    path = tmp_path / "clip.TextGrid"
    textgrid.write_textgrid(path, {"phones": [textgrid.Interval(0.1, 0.2, "SIL"), textgrid.Interval(0.2, 0.3, "AA1"),
                                              textgrid.Interval(0.5, 0.6, "sp")]}, end_time=0.8)
    starts, ends, labels = textgrid.phone_arrays(path)
    # Empty (gap) intervals are dropped, labelled silences kept: the segmenter drops those itself.
    assert starts.dtype == ends.dtype == np.float32
    assert starts.tolist() == pytest.approx([0.1, 0.2, 0.5]) and ends.tolist() == pytest.approx([0.2, 0.3, 0.6])
    assert labels == "SIL AA1 sp"
    text = path.read_text().replace('"AA1"', '"AA 1"')
    path.write_text(text)
    with pytest.raises(textgrid.TextGridError, match=r"clip.TextGrid: phone label 'AA 1' \(0.200-0.300 s\) "
                                                     "contains whitespace"):
        textgrid.phone_arrays(path)


def test_errors_name_the_file_and_the_problem(tmp_path):
    path = tmp_path / "clip.TextGrid"
    textgrid.write_textgrid(path, {"words": []}, end_time=1.0)
    with pytest.raises(textgrid.TextGridError, match=r"clip.TextGrid: no interval tier named 'phones' "
                                                     r"\(tiers: \['words'\]\)"):
        textgrid.read_phones(path)
    path.write_text("not a textgrid")
    with pytest.raises(textgrid.TextGridError, match="clip.TextGrid: not a readable Praat TextGrid"):
        textgrid.read_textgrid(path)
    path.write_bytes(b"\xff\x00\xfe" * 10)
    with pytest.raises(textgrid.TextGridError, match="clip.TextGrid: not a readable Praat TextGrid"):
        textgrid.read_textgrid(path)
    with pytest.raises(textgrid.TextGridError, match="missing.TextGrid: TextGrid file not found"):
        textgrid.read_textgrid(tmp_path / "missing.TextGrid")
    with pytest.raises(textgrid.TextGridError, match="clip.TextGrid: tier 'phones'.*overlap"):
        textgrid.write_textgrid(path, {"phones": [textgrid.Interval(0, 0.5, "A"), textgrid.Interval(0.4, 0.6, "B")]},
                                1.0)
    with pytest.raises(textgrid.TextGridError, match=r"clip.TextGrid: tier 'phones' has intervals outside \[0.0, 1.0\]"):
        textgrid.write_textgrid(path, {"phones": [textgrid.Interval(0.5, 1.2, "A")]}, 1.0)
