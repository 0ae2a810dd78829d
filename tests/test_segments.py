"""Segments: phone intervals from the alignment, energy-based windows, padding and errors."""

import numpy as np
import pytest

from artser_jax import segments

SAMPLE_RATE = 16000


def _phone_example(starts, ends, labels, frame_rate=30.0):
    return {"utterance_id": b"1001_IEO_NEU_XX", "frame_rate": np.float32(frame_rate),
            "phone_starts": np.asarray(starts, np.float32), "phone_ends": np.asarray(ends, np.float32),
            "phone_labels": " ".join(labels).encode()}


def test_phones_drop_silence_and_short_phones_and_pad():
    frame = 1.0 / 30.0
    bounds = np.cumsum([0.0, 0.2, 2 * frame, frame, 0.1, 0.15, 0.3])
    labels = ["sil", "M", "AA1", "AY1", "sp", "spn"]
    example = _phone_example(bounds[:-1], bounds[1:], labels)

    result = segments.utterance_segments(example, "phones", max_segments=5)

    # "sil", "sp", "spn" are silence; "AA1" lasts one video frame; "M" lasts exactly two and stays.
    assert list(result["seg_phone"]) == ["M", "AY1", "", "", ""]
    np.testing.assert_allclose(result["seg_start"][:2], bounds[[1, 3]], rtol=1e-6)
    np.testing.assert_allclose(result["seg_end"][:2], bounds[[2, 4]], rtol=1e-6)
    assert result["seg_mask"].tolist() == [True, True, False, False, False]
    assert result["seg_start"].dtype == np.float32 and result["seg_mask"].dtype == bool
    assert set(result) == {"seg_start", "seg_end", "seg_mask", "seg_phone"}


def test_phones_keep_the_first_max_segments():
    bounds = np.arange(11) * 0.1
    example = _phone_example(bounds[:-1], bounds[1:], [f"p{i}" for i in range(10)])
    result = segments.utterance_segments(example, "phones", max_segments=4)
    assert list(result["seg_phone"]) == ["p0", "p1", "p2", "p3"]
    assert result["seg_mask"].all()


def test_phones_errors_name_the_utterance():
    example = _phone_example([0.0, 0.1], [0.1, 0.2], ["a"])
    with pytest.raises(ValueError, match="1001_IEO_NEU_XX.*disagree"):
        segments.utterance_segments(example, "phones", max_segments=4)
    empty = _phone_example([], [], [])
    with pytest.raises(ValueError, match="1001_IEO_NEU_XX.*needs a phone alignment"):
        segments.utterance_segments(empty, "phones", max_segments=4)
    with pytest.raises(ValueError, match="unknown segment method"):
        segments.utterance_segments(example, "syllables", max_segments=4)


def _speech_like(seconds_silence, seconds_voiced, seed=0):
    rng = np.random.default_rng(seed)
    silence = rng.normal(0.0, 3.0, int(seconds_silence * SAMPLE_RATE))  # a quiet room, about -80 dBFS
    t = np.arange(int(seconds_voiced * SAMPLE_RATE)) / SAMPLE_RATE
    voiced = 8000.0 * np.sin(2 * np.pi * 150.0 * t) * (1.0 + 0.3 * np.sin(2 * np.pi * 4.0 * t))
    return np.concatenate([silence, voiced, silence]).astype(np.int16)


def test_windows_cover_only_the_voiced_part():
    example = {"utterance_id": "u", "audio": _speech_like(0.5, 1.0)}
    result = segments.utterance_segments(example, "windows", max_segments=16)
    starts = result["seg_start"][result["seg_mask"]]
    ends = result["seg_end"][result["seg_mask"]]
    # 1.0 s of voicing from 0.5 s: windows of 200 ms every 100 ms, starting at 0.50 .. 1.30 s.
    np.testing.assert_allclose(starts, 0.5 + 0.1 * np.arange(9), atol=0.011)
    np.testing.assert_allclose(ends - starts, 0.2, atol=1e-6)
    assert ends.max() <= 1.5 + 0.011
    assert (result["seg_phone"] == "").all()


def test_windows_of_silence_are_empty_and_options_apply():
    silent = {"utterance_id": "u", "audio": np.zeros(SAMPLE_RATE, np.int16)}
    assert not segments.utterance_segments(silent, "windows", max_segments=8)["seg_mask"].any()
    example = {"utterance_id": "u", "audio": _speech_like(0.2, 0.6)}
    result = segments.utterance_segments(example, "windows", max_segments=8, window_seconds=0.3,
                                         hop_seconds=0.3)
    starts = result["seg_start"][result["seg_mask"]]
    np.testing.assert_allclose(starts, [0.2, 0.5], atol=0.011)


def test_silence_labels_match_whatever_the_case():
    for label in ("sil", "SIL", "Sil", " sp ", "SPN", "pau", "H#", "<eps>", "", "silence"):
        assert segments.is_silence(label), label
    for label in ("AA1", "m", "s", "hh"):
        assert not segments.is_silence(label), label
    bounds = np.arange(5) * 0.1
    example = _phone_example(bounds[:-1], bounds[1:], ["SIL", "M", "Pau", "h#"])
    assert list(segments.utterance_segments(example, "phones", max_segments=4)["seg_phone"]) == ["M", "", "", ""]


def test_segment_options_read_any_mapping_or_object():
    import dataclasses

    import ml_collections

    fields = {"min_video_frames": 3, "window_seconds": 0.25, "hop_seconds": 0.05, "max_segments": 9}

    @dataclasses.dataclass
    class Fields:
        min_video_frames: int = 3
        window_seconds: float = 0.25
        hop_seconds: float = 0.05

    for holder in (fields, ml_collections.ConfigDict(fields), Fields()):
        assert segments.segment_options("phones", holder) == {"min_video_frames": 3}
        assert segments.segment_options("windows", holder) == {"window_seconds": 0.25, "hop_seconds": 0.05}
    with pytest.raises(ValueError, match="unknown segment method 'syllables'"):
        segments.segment_options("syllables", fields)


def test_text_value_decodes_data_source_and_hand_made_values():
    assert segments.text_value(b"crema_d") == "crema_d"
    assert segments.text_value(np.array(b"1001_DFA_ANG_XX", dtype=object)) == "1001_DFA_ANG_XX"
    assert segments.text_value("caf\u00e9".encode()) == "caf\u00e9"
    assert segments.text_value("msp_improv") == "msp_improv"


def test_phones_or_windows_uses_the_alignment_where_there_is_one():
    rng = np.random.default_rng(0)
    audio = np.zeros(SAMPLE_RATE, np.int16)
    audio[4000:12000] = (rng.normal(size=8000) * 3000).astype(np.int16)  # voiced from 0.25 s to 0.75 s
    options = segments.segment_options("phones_or_windows", {"min_video_frames": 2, "window_seconds": 0.2,
                                                            "hop_seconds": 0.1})
    aligned = {**_phone_example([0.0, 0.3], [0.3, 0.6], ["sil", "AA1"]), "audio": audio}
    result = segments.utterance_segments(aligned, "phones_or_windows", max_segments=8, **options)
    assert list(result["seg_phone"][result["seg_mask"]]) == ["AA1"]
    unaligned = {**_phone_example([], [], []), "audio": audio}
    result = segments.utterance_segments(unaligned, "phones_or_windows", max_segments=8, **options)
    windows = segments.utterance_segments(unaligned, "windows", max_segments=8, window_seconds=0.2,
                                          hop_seconds=0.1)
    assert result["seg_mask"].sum() >= 3
    for key in ("seg_start", "seg_end", "seg_mask"):
        np.testing.assert_array_equal(result[key], windows[key])
