"""Forced alignment: accuracy against a real reference, and `launch/align.py` feeding the dataset builders."""

import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow_datasets as tfds

from artser_jax import alignment, assets
from artser_jax.data import builders, crema_d, prepare, textgrid
from artser_jax.demo_corpora import parameters, plan

REPO = pathlib.Path(__file__).resolve().parents[1]
# CMU ARCTIC a0009 (from the prompt list, arctic_a0009 in cmuarctic.data).
ARCTIC_A0009_TEXT = "He turned sharply, and faced Gregson across the table."
# The reference labels use festival's `ax` for the reduced vowel, which CMUdict (and MFA) write as AH.
_REFERENCE_TO_CMUDICT = {"ax": "ah", "pau": "sil"}


def _test_media(name):
    try:
        return assets.test_media_path(name)
    except assets.AssetError as error:
        pytest.skip(f"test media missing (set-up fetches it): {error}")


def _reference_phones(lab_path):
    """(phone, start_s, end_s) from HTS full-context labels: times in 100 ns, the phone between '-' and '+'."""
    phones = []
    for line in lab_path.read_text().splitlines():
        start, end, context = line.split()
        phone = context.split("-", 1)[1].split("+", 1)[0]
        phones.append((_REFERENCE_TO_CMUDICT.get(phone, phone), int(start) * 1e-7, int(end) * 1e-7))
    return phones


def test_alignment_of_cmu_arctic_matches_its_reference_labels():
    waveform, rate = soundfile.read(_test_media("arctic_a0009.wav"), dtype="float32")
    reference = _reference_phones(_test_media("arctic_a0009_phone.lab"))

    phones = alignment.align_phones(waveform, rate, ARCTIC_A0009_TEXT)

    assert all(label == "sil" or (label.isalpha() and label.isupper()) for label, _, _ in phones)
    assert [label.lower() for label, _, _ in phones] == [label for label, _, _ in reference]
    assert all(start < end for _, start, end in phones)
    assert all(a[2] == b[1] for a, b in zip(phones, phones[1:]))
    assert phones[0][1] == 0.0 and phones[-1][2] <= len(waveform) / rate
    # Every boundary between two phones (the utterance's own start and end are not measured). Both sides lie
    # on exact grids (10 ms frames, 100 ns labels): rounding to 1 us removes float noise at the 20 ms edge.
    errors_ms = np.round(1000 * np.abs(np.array([p[2] for p in phones[:-1]])
                                       - np.array([r[2] for r in reference[:-1]])), 3)
    median, p90, within_20 = np.median(errors_ms), np.percentile(errors_ms, 90), np.mean(errors_ms <= 20)
    print(f"arctic_a0009: {len(errors_ms)} boundaries, median error {median:.1f} ms, p90 {p90:.1f} ms, "
          f"{within_20:.1%} within 20 ms")
    assert median <= 15, f"median boundary error {median:.1f} ms"
    assert within_20 >= 0.70, f"only {within_20:.1%} of boundaries within 20 ms"


def test_alignment_resamples_and_accepts_int16():
    waveform, rate = soundfile.read(_test_media("arctic_a0009.wav"), dtype="int16")
    at_16k = alignment.align_phones(waveform, rate, ARCTIC_A0009_TEXT)
    doubled = alignment.align_phones(np.repeat(waveform, 2), 2 * rate, ARCTIC_A0009_TEXT)
    assert [p[0] for p in doubled] == [p[0] for p in at_16k]
    assert np.max(np.abs(np.array([p[1:] for p in doubled]) - np.array([p[1:] for p in at_16k]))) <= 0.02


def test_unalignable_input_fails_with_the_reason():
    waveform, rate = soundfile.read(_test_media("arctic_a0009.wav"), dtype="float32")
    with pytest.raises(alignment.AlignmentError, match=r"not in the pronunciation dictionary.*'qwzx'"):
        alignment.align_phones(waveform, rate, "he turned qwzx")
    with pytest.raises(alignment.AlignmentError, match="no words"):
        alignment.align_phones(waveform, rate, " ,.; ")
    with pytest.raises(alignment.AlignmentError, match="mono waveform"):
        alignment.align_phones(np.zeros((10, 2), np.float32), rate, "he")


def _run_align(*flags):
    result = subprocess.run([sys.executable, str(REPO / "launch" / "align.py"), *flags, "--num_workers=2"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_align_command_writes_textgrids_the_crema_d_builder_reads(tiny_corpora, tiny_data_dir, tmp_path):
    manual_dir = tmp_path / "crema_d"
    shutil.copytree(tiny_corpora / "crema_d", manual_dir)
    for path in (manual_dir / crema_d.AUDIO_DIR).glob("*.TextGrid"):
        path.unlink()
    align_dir = tmp_path / "alignment"
    stems = sorted(path.stem for path in (manual_dir / crema_d.AUDIO_DIR).glob("*.wav"))

    summary = _run_align("--corpus=crema_d", f"--manual_dir={manual_dir}", f"--out_dir={align_dir}")

    assert summary.startswith(f"crema_d: {len(stems)} of {len(stems)} utterances aligned (0 already present), 0 failed")
    report = alignment.read_coverage(align_dir)
    assert sorted(report) == stems
    assert {row["status"] for row in report.values()} == {"aligned"}
    for stem in stems:
        phones = textgrid.read_phones(alignment.textgrid_path(align_dir, stem[:4], stem))
        assert len(phones) >= 8, stem  # the shortest sentence, "It's eleven o'clock", has 14 phones
    assert _run_align("--corpus=crema_d", f"--manual_dir={manual_dir}", f"--out_dir={align_dir}").startswith(
        f"crema_d: {len(stems)} of {len(stems)} utterances aligned ({len(stems)} already present)")

    data_dir = tmp_path / "data"
    results = prepare.prepare_dataset(
        "crema_d", manual_dir, data_dir, config_names=("emotion4",), alignment_dir=align_dir,
        landmark_cache_dir=tiny_data_dir / "landmark_cache", progress=False)
    assert results["emotion4"][0] == "built"
    examples = list(tfds.data_source("crema_d_av/emotion4", split="train", data_dir=str(data_dir)))
    assert examples
    for example in examples:
        stem = example["utterance_id"].decode()
        expected = textgrid.read_phones(alignment.textgrid_path(align_dir, stem[:4], stem))
        assert example["phone_labels"].decode() == " ".join(i.label for i in expected)
        np.testing.assert_allclose(example["phone_starts"], [i.start for i in expected], atol=1e-6)


def test_align_command_msp_improv_transcripts_and_skipped_turns(tiny_corpora, tiny_data_dir, tmp_path):
    _, clips = plan.plan_msp_improv("tiny", seed=0, emotion_parameters=parameters.emotion_parameters())
    with_text = clips[::2]
    transcripts = tmp_path / "transcripts.tsv"
    transcripts.write_text("# utterance_id<TAB>text\n" + "".join(f"{c.stem}\t{c.text}\n" for c in with_text))
    align_dir = tmp_path / "alignment"

    summary = _run_align("--corpus=msp_improv", f"--manual_dir={tiny_corpora / 'msp_improv'}",
                         f"--out_dir={align_dir}", f"--transcripts={transcripts}", "--missing_transcript=skip")

    report = alignment.read_coverage(align_dir)
    assert len(report) == len(clips)
    missing = {c.stem for c in clips} - {c.stem for c in with_text}
    assert {uid for uid, row in report.items() if row["status"] == "no_transcript"} == missing
    assert all(report[uid]["action"] == "skip" for uid in missing)
    aligned = {uid for uid, row in report.items() if row["status"] == "aligned"}
    failed = {uid: row["detail"] for uid, row in report.items() if row["status"] == "failed"}
    assert aligned | set(failed) == {c.stem for c in with_text}
    assert len(failed) <= 0.05 * len(with_text), failed
    assert summary.startswith(f"msp_improv: {len(aligned)} of {len(clips)} utterances aligned")
    assert f"{len(missing)} without a transcript (skip)" in summary
    assert set(alignment.skip_reasons(align_dir)) == missing

    data_dir = tmp_path / "data"
    results = prepare.prepare_dataset(
        "msp_improv", tiny_corpora / "msp_improv", data_dir, config_names=("emotion4",), alignment_dir=align_dir,
        landmark_cache_dir=tiny_data_dir / "landmark_cache", progress=False)
    skip_rows = [line.split("\t") for line in
                 (results["emotion4"][1] / builders.SKIP_REPORT).read_text().splitlines()[1:]]
    skipped = {uid for uid, _, reason in skip_rows if reason.startswith("no phone alignment (no_transcript")}
    built = {example["utterance_id"].decode() for split in ("train", "validation", "test")
             for example in tfds.data_source("msp_improv_av/emotion4", split=split, data_dir=str(data_dir))}
    assert skipped and skipped <= missing
    assert not built & missing
    assert all(example["phone_labels"] for example in
               tfds.data_source("msp_improv_av/emotion4", split="train", data_dir=str(data_dir))
               if example["utterance_id"].decode() in aligned)


def test_align_command_rejects_a_malformed_transcript_file(tiny_corpora, tmp_path):
    transcripts = tmp_path / "transcripts.tsv"
    transcripts.write_text("MSP-IMPROV-S01A-F01-S-FM01 no tab here\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "launch" / "align.py"), "--corpus=msp_improv",
         f"--manual_dir={tiny_corpora / 'msp_improv'}", f"--out_dir={tmp_path / 'out'}",
         f"--transcripts={transcripts}"], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert f"{transcripts}:1: expected `utterance_id<TAB>text`" in result.stderr
