"""CREMA-D and MSP-IMPROV metadata layers: real CREMA-D tables, MSP-IMPROV label-file parsing."""

import collections
import pathlib
import shutil

import numpy as np
import pytest

from artser_jax.data import crema_d, msp_improv

# The real CREMA-D label tables, vendored with their licence (tests/data/crema-d-metadata/README.md).
CREMA_D_METADATA = pathlib.Path(__file__).resolve().parent / "data" / "crema-d-metadata"


@pytest.fixture(scope="module")
def real_crema_d():
    return crema_d.load_metadata(CREMA_D_METADATA)


def test_real_crema_d_four_class_intended_counts(real_crema_d):
    assert len(real_crema_d.stems) == 7442
    assert len({crema_d.parse_stem(s).actor for s in real_crema_d.stems}) == 91
    labels = real_crema_d.labels("intended", crema_d.EMOTIONS_4)
    assert len(labels) == 4900
    assert collections.Counter(labels.values()) == {"ANG": 1271, "HAP": 1271, "SAD": 1271, "NEU": 1087}
    six = real_crema_d.labels("intended", crema_d.EMOTIONS_6)
    assert len(six) == 7442
    genders = collections.Counter(a.gender for a in real_crema_d.actors.values())
    assert genders == {"male": 48, "female": 43}


def test_real_crema_d_perceived_labels_drop_ties(real_crema_d):
    votes = real_crema_d.votes
    voice = real_crema_d.labels("voice_vote", crema_d.EMOTIONS_6)
    ties = [stem for stem, v in votes.items() if ":" in v.voice_vote]
    assert ties, "the real table has tied votes"
    assert not set(ties) & set(voice)
    assert len(voice) == len(votes) - len(ties)
    for stem, emotion in voice.items():
        assert crema_d.VOTE_LETTERS[votes[stem].voice_vote] == emotion
    multimodal = real_crema_d.labels("multimodal_vote", crema_d.EMOTIONS_4)
    assert set(multimodal.values()) == set(crema_d.EMOTIONS_4)
    assert all(":" not in votes[s].multimodal_vote for s in multimodal)


def _tfds_style_actor_split(actor_ids):
    """Independent re-implementation from the written description of TFDS crema_d's split: unique ids
    sorted, shuffled by RandomState(0), boundaries int(cumulative_p * n), last split to the end."""
    ids = sorted(set(actor_ids))
    rng = np.random.RandomState(0)
    rng.shuffle(ids)
    n = len(ids)
    b1 = int(0.7 * n)
    b2 = int((0.7 + 0.1) * n)
    return {**{a: "train" for a in ids[:b1]}, **{a: "validation" for a in ids[b1:b2]},
            **{a: "test" for a in ids[b2:]}}


def test_real_crema_d_actor_split_matches_tfds(real_crema_d):
    split = real_crema_d.split_of_actor()
    expected = _tfds_style_actor_split(crema_d.parse_stem(s).actor for s in real_crema_d.stems)
    assert split == expected
    assert collections.Counter(split.values()) == {"train": 63, "validation": 9, "test": 19}


def test_known_bad_clips_are_real_clips(real_crema_d):
    assert set(crema_d.KNOWN_BAD_CLIPS) <= set(real_crema_d.stems)


def test_crema_d_stem_errors_name_source():
    assert crema_d.parse_stem("1001_IEO_NEU_XX") == crema_d.ClipName("1001", "IEO", "NEU", "XX")
    with pytest.raises(ValueError, match="somefile.wav.*file-name pattern"):
        crema_d.parse_stem("1001-IEO-NEU-XX", source="somefile.wav")
    with pytest.raises(ValueError, match="unknown emotion code 'BOR'"):
        crema_d.parse_stem("1001_IEO_BOR_XX")


def test_crema_d_bad_table_line_named(tmp_path):
    manual = tmp_path / "crema"
    shutil.copytree(CREMA_D_METADATA, manual, ignore=shutil.ignore_patterns("media-manifest.tsv"))
    summary = manual / crema_d.SUMMARY_TABLE
    lines = summary.read_text().splitlines()
    lines[5] = lines[5].replace('"N"', '"Q"', 1)
    summary.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"summaryTable.csv:6: VoiceVote 'Q'"):
        crema_d.load_metadata(manual)
    (manual / crema_d.DEMOGRAPHICS).unlink()
    with pytest.raises(FileNotFoundError, match="VideoDemographics.csv: CREMA-D label file not found"):
        crema_d.load_metadata(manual)
    with pytest.raises(FileNotFoundError, match="nowhere: CREMA-D manual directory not found"):
        crema_d.load_metadata(tmp_path / "nowhere")


EVALUATION_TEXT = """\
UTD-IMPROV-S01A-F01-S-FM01.avi; A; A:4.000000; V:2.000000; D:3.500000 ; N:3.333333;
F1-Angry; Angry; A:4.0; V:2.0; D:4.0; N:3.0;
F7-Happy; Other; A:4.0; V:2.0; D:3.0; N:3.0;

UTD-IMPROV-S01N-M01-R-MF02.avi; N; A:NaN; V:3.000000; D:3.000000;
F2; Neutral; A:3.0; V:3.0; D:3.0;
UTD-IMPROV-S02H-F02-P-FM03.avi; X; A:3.0; V:4.0; D:3.0; N:4.0;
UTD-IMPROV-S03S-M03-T-MF04.avi; S; A:2.0; V:2.0; D:2.0; N:4.0;
"""


def test_msp_improv_evaluation_reader(tmp_path):
    path = tmp_path / "Evalution.txt"
    path.write_text(EVALUATION_TEXT)
    assert msp_improv.find_label_file(tmp_path) == path
    evaluations = msp_improv.read_evaluation(path)
    assert list(evaluations) == ["MSP-IMPROV-S01A-F01-S-FM01", "MSP-IMPROV-S01N-M01-R-MF02",
                                 "MSP-IMPROV-S02H-F02-P-FM03", "MSP-IMPROV-S03S-M03-T-MF04"]
    first = evaluations["MSP-IMPROV-S01A-F01-S-FM01"]
    assert (first.consensus, first.arousal, first.valence, first.dominance) == ("A", 4.0, 2.0, 3.5)
    assert [(r.rater, r.category) for r in first.raters] == [("F1-Angry", "Angry"), ("F7-Happy", "Other")]
    second = evaluations["MSP-IMPROV-S01N-M01-R-MF02"]
    assert np.isnan(second.arousal) and np.isnan(second.naturalness)
    stems = list(evaluations)
    assert msp_improv.utterance_labels(stems, "consensus", evaluations) == {
        "MSP-IMPROV-S01A-F01-S-FM01": "ANG", "MSP-IMPROV-S01N-M01-R-MF02": "NEU",
        "MSP-IMPROV-S03S-M03-T-MF04": "SAD"}
    assert msp_improv.utterance_labels(stems, "scenario") == {
        "MSP-IMPROV-S01A-F01-S-FM01": "ANG", "MSP-IMPROV-S01N-M01-R-MF02": "NEU",
        "MSP-IMPROV-S02H-F02-P-FM03": "HAP", "MSP-IMPROV-S03S-M03-T-MF04": "SAD"}


@pytest.mark.parametrize("bad_line, message", [
    ("UTD-IMPROV-S01A-F01-S-FM01.avi; Q; A:1; V:1; D:1;", "consensus category 'Q'"),
    ("UTD-IMPROV-S01A-F01-S-FM01.avi; A; A:high; V:1; D:1;", "'high' is not a number"),
    ("UTD-IMPROV-S01A-F01-S-FM01.avi; A; V:1; D:1;", r"lacks the attribute fields \['A'\]"),
    ("UTD-IMPROV-S01Z-F01-S-FM01.avi; A; A:1; V:1; D:1;", "file-name pattern"),
    ("just some words", "expected ';'-separated fields"),
])
def test_msp_improv_bad_line_named(tmp_path, bad_line, message):
    path = tmp_path / "Evaluation.txt"
    path.write_text(EVALUATION_TEXT + bad_line + "\n")
    with pytest.raises(ValueError, match=f"Evaluation.txt:9: .*{message}"):
        msp_improv.read_evaluation(path)


def test_msp_improv_reader_accepts_bom_and_crlf_rejects_binary(tmp_path):
    path = tmp_path / "Evaluation.txt"
    path.write_bytes(b"\xef\xbb\xbf" + EVALUATION_TEXT.replace("\n", "\r\n").encode())
    assert len(msp_improv.read_evaluation(path)) == 4
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="Evaluation.txt: not a UTF-8 text file"):
        msp_improv.read_evaluation(path)


def test_msp_improv_missing_label_file_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="Evaluation.txt: MSP-IMPROV label file not found"):
        msp_improv.find_label_file(tmp_path)
    with pytest.raises(FileNotFoundError, match="absent: MSP-IMPROV manual directory not found"):
        msp_improv.find_label_file(tmp_path / "absent")


def test_msp_improv_stems_media_and_sessions(tmp_path):
    name = msp_improv.parse_stem("UTD-IMPROV-S07H-M04-P-MF12.avi")
    assert name == msp_improv.UtteranceName("S07", "HAP", "M04", 4, "P", "MF12")
    assert name.gender == "male"
    with_audio = tmp_path / "a" / "Audio" / "session1" / "S01A" / "S" / "MSP-IMPROV-S01A-F01-S-FM01.wav"
    without_audio = tmp_path / "a" / "session2" / "S02H" / "P" / "MSP-IMPROV-S02H-M02-P-MF01.wav"
    for path in (with_audio, without_audio):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    assert msp_improv.find_media(tmp_path / "a", ".wav") == {
        "MSP-IMPROV-S01A-F01-S-FM01": with_audio, "MSP-IMPROV-S02H-M02-P-MF01": without_audio}
    stray = tmp_path / "a" / "Audio" / "notes.wav"
    stray.write_bytes(b"")
    with pytest.raises(ValueError, match="notes.wav: 'notes' does not match the MSP-IMPROV file-name pattern"):
        msp_improv.find_media(tmp_path / "a", ".wav")
    folds = msp_improv.leave_one_session_out_folds()
    assert len(folds) == 6
    for fold, dev, test in folds:
        splits = {s: msp_improv.session_split(s, dev, test) for s in msp_improv.SESSIONS}
        assert collections.Counter(splits.values()) == {"train": 4, "validation": 1, "test": 1}
        assert splits[fold] == "test"
    assert sorted(test for _, _, (test,) in folds) == list(msp_improv.SESSIONS)
    with pytest.raises(ValueError, match="overlap"):
        msp_improv.session_split(1, (1,), (1, 2))


def test_msp_improv_default_sessions_are_the_last_two_present():
    assert msp_improv.default_sessions(range(1, 7)) == ((5,), (6,))
    assert msp_improv.default_sessions([3, 1, 2, 2]) == ((2,), (3,))
    with pytest.raises(ValueError, match=r"at least 3 sessions.*\[1, 2\]"):
        msp_improv.default_sessions([1, 2, 2])
