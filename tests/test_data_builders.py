"""The TFDS builders end to end on the tiny demo corpora: read back through Grain without TensorFlow,
bad media skipped with reasons, bad input failing with messages that name the file."""

import collections
import hashlib
import pathlib
import shutil
import subprocess
import sys

import cv2
import grain
import numpy as np
import pytest
import soundfile
import tensorflow_datasets as tfds

from artser_jax import input_pipeline
from artser_jax import landmarks
from artser_jax import segments
from artser_jax.data import audio, builders, corpora, crema_d, crema_d_builder, msp_improv, prepare

REPO = pathlib.Path(__file__).resolve().parents[1]
SPLITS = ("train", "validation", "test")


def _read_all(name, split, data_dir):
    """Every example of a split, through a Grain MapDataset over the TFDS data source."""
    source = tfds.data_source(f"{name}/emotion4", split=split, data_dir=str(data_dir))
    return list(grain.MapDataset.source(source))


def _expected_crema_d(manual_dir):
    metadata = crema_d.load_metadata(manual_dir)
    actor_split = metadata.split_of_actor()
    expected = collections.defaultdict(collections.Counter)
    for stem, emotion in metadata.labels("intended", crema_d.EMOTIONS_4).items():
        expected[actor_split[crema_d.parse_stem(stem).actor]][emotion] += 1
    return expected


def _expected_msp_improv(manual_dir):
    metadata = msp_improv.load_metadata(manual_dir)
    labels = metadata.labels(sorted(msp_improv.find_media(manual_dir, ".wav")), "consensus")
    dev, test = msp_improv.default_sessions(msp_improv.parse_stem(s).session for s in labels)
    expected = collections.defaultdict(collections.Counter)
    for stem, emotion in labels.items():
        expected[msp_improv.session_split(msp_improv.parse_stem(stem).session, dev, test)][emotion] += 1
    return expected


@pytest.mark.parametrize("corpus, name, frame_rate", [("crema_d", "crema_d_av", 30.0),
                                                      ("msp_improv", "msp_improv_av", 30000 / 1001)])
def test_tiny_dataset_reads_back_through_grain(tiny_data_dir, tiny_corpora, corpus, name, frame_rate):
    manual_dir = tiny_corpora / corpus
    expected = (_expected_crema_d if corpus == "crema_d" else _expected_msp_improv)(manual_dir)
    report = (tiny_data_dir / name / "emotion4" / "1.0.0" / builders.SKIP_REPORT).read_text().splitlines()
    assert report == ["utterance_id\tfile\treason"], "the demo corpora have no bad media"
    classes = list(corpora.get(corpus).builder.builder_configs["emotion4"].classes)
    speakers = {}
    for split in SPLITS:
        examples = _read_all(name, split, tiny_data_dir)
        counts = collections.Counter(classes[e["emotion"]] for e in examples)
        assert counts == expected[split], split
        speakers[split] = {segments.text_value(e["speaker"]) for e in examples}
        for e in examples:
            assert segments.text_value(e["corpus"]) == corpus
            assert e["audio"].dtype == np.int16 and e["audio"].ndim == 1
            num_frames = e["landmark_valid"].shape[0]
            assert e["landmarks"].shape == (num_frames, landmarks.NUM_KEPT, 3)
            assert e["landmarks"].dtype == np.float32 and e["landmark_valid"].dtype == bool
            assert e["frame_times"].shape == (num_frames,) and e["frame_times"].dtype == np.float32
            assert e["frame_rate"] == pytest.approx(frame_rate, rel=1e-4)
            # The video and the 16 kHz audio cover the same clip, within a frame or two.
            assert abs(num_frames / frame_rate - len(e["audio"]) / builders.SAMPLE_RATE) < 0.1
            assert e["landmark_valid"].mean() > 0.9, "MediaPipe finds the demo face"
            phones = segments.text_value(e["phone_labels"]).split()
            assert phones and len(phones) == e["phone_starts"].shape[0] == e["phone_ends"].shape[0]
            assert np.all(e["phone_ends"] > e["phone_starts"])
            assert e["phone_ends"][-1] <= len(e["audio"]) / builders.SAMPLE_RATE + 0.01
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["validation"] & speakers["test"]
    assert "tensorflow" not in sys.modules


def _crema_d_copy(tiny_corpora, tmp_path):
    manual_dir = tmp_path / "crema_d"
    shutil.copytree(tiny_corpora / "crema_d", manual_dir)
    return manual_dir


def _train_stems(manual_dir):
    metadata = crema_d.load_metadata(manual_dir)
    split = metadata.split_of_actor()
    return [s for s in metadata.labels() if split[crema_d.parse_stem(s).actor] == "train"]


def test_bad_media_are_skipped_with_reasons(tiny_corpora, tiny_data_dir, tmp_path):
    manual_dir = _crema_d_copy(tiny_corpora, tmp_path)
    train_stems = _train_stems(manual_dir)
    assert len(train_stems) > 3
    corrupt_wav, faceless, undecodable = train_stems[:3]
    (manual_dir / "AudioWAV" / f"{corrupt_wav}.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    video = cv2.VideoCapture(str(manual_dir / "VideoFlash" / f"{faceless}.flv"))
    ok, frame = video.read()
    video.release()
    assert ok
    writer = cv2.VideoWriter(str(manual_dir / "VideoFlash" / f"{faceless}.flv"), cv2.VideoWriter_fourcc(*"FLV1"),
                             30.0, (frame.shape[1], frame.shape[0]))
    for _ in range(5):
        writer.write(np.full_like(frame, 90))
    writer.release()
    (manual_dir / "VideoFlash" / f"{undecodable}.flv").write_bytes(b"FLV\x01" + bytes(range(256)) * 8)
    data_dir = tmp_path / "data"
    build = dict(config_names=("emotion4",), landmark_cache_dir=tiny_data_dir / "landmark_cache", progress=False)

    with pytest.raises(RuntimeError, match=r"3 of \d+ clips .* more than max_skip_fraction=1.0%"):
        prepare.prepare_dataset("crema_d", manual_dir, data_dir, max_skip_fraction=0.01, **build)
    assert not crema_d_builder.CremaDAv(config="emotion4", data_dir=str(data_dir)).is_prepared()
    assert (data_dir / f"crema_d_av-emotion4-FAILED-{builders.SKIP_REPORT}").is_file()
    assert not list((data_dir / "crema_d_av" / "emotion4").glob("*/dataset_info.json"))
    # The failed build cached every video it extracted: the rebuild below extracts nothing new.
    cached_entries = sorted((tiny_data_dir / "landmark_cache").iterdir())

    results = prepare.prepare_dataset("crema_d", manual_dir, data_dir, max_skip_fraction=0.5, **build)
    status, path = results["emotion4"]
    assert status == "built"
    assert sorted((tiny_data_dir / "landmark_cache").iterdir()) == cached_entries
    rows = [line.split("\t") for line in (path / builders.SKIP_REPORT).read_text().splitlines()[1:]]
    reasons = {uid: reason for uid, _, reason in rows}
    assert set(reasons) == {corrupt_wav, faceless, undecodable}
    assert reasons[corrupt_wav].startswith("unreadable audio") and f"{corrupt_wav}.wav" in reasons[corrupt_wav]
    assert reasons[faceless].startswith("no face found in any of its 5 frames")
    assert reasons[undecodable].startswith("undecodable video")
    built = {segments.text_value(e["utterance_id"]) for e in _read_all("crema_d_av", "train", data_dir)}
    assert built == set(train_stems) - set(reasons)
    assert prepare.prepare_dataset("crema_d", manual_dir, data_dir, **build)["emotion4"][0] == "already built"


def test_bad_input_fails_naming_the_file(tiny_corpora, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere: manual directory not found"):
        prepare.prepare_dataset("crema_d", tmp_path / "nowhere", tmp_path / "data")

    msp = tmp_path / "msp_improv"
    shutil.copytree(tiny_corpora / "msp_improv", msp)
    label_file = msp_improv.find_label_file(msp)
    lines = label_file.read_text().splitlines()
    label_file.unlink()
    with pytest.raises(FileNotFoundError, match=r"not a msp_improv manual directory: it lacks Evaluation.txt \(or "):
        prepare.prepare_dataset("msp_improv", msp, tmp_path / "data")
    label_file.write_text("\n".join(lines[:3] + ["UTD-IMPROV-S01A-F01-S-FM01.avi; A; A:3.0; V:loud; D:3.0;"]
                                    + lines[3:]) + "\n")
    with pytest.raises(ValueError, match=rf"{label_file.name}:4: 'loud' is not a number"):
        prepare.prepare_dataset("msp_improv", msp, tmp_path / "data")

    crema = _crema_d_copy(tiny_corpora, tmp_path)
    stray = crema / "AudioWAV" / "take2.wav"
    shutil.copy(next((crema / "AudioWAV").glob("*.wav")), stray)
    with pytest.raises(ValueError, match=r"take2.wav: 'take2' does not match the CREMA-D file-name pattern"):
        prepare.prepare_dataset("crema_d", crema, tmp_path / "data")
    stray.unlink()
    resampled = crema / "AudioWAV" / f"{_train_stems(crema)[0]}.wav"
    samples, rate = soundfile.read(resampled)
    soundfile.write(resampled, samples[::2], rate // 2)
    with pytest.raises(audio.AudioError, match=rf"{resampled.name}: sample rate 8000 Hz, but crema_d audio is 16000"):
        prepare.prepare_dataset("crema_d", crema, tmp_path / "data")
    assert not (tmp_path / "data" / "crema_d_av" / "emotion4" / "1.0.0").exists()


def test_prepare_data_command_is_idempotent(tiny_corpora, tiny_data_dir):
    command = [sys.executable, str(REPO / "launch" / "prepare_data.py"), "--corpus=crema_d",
               f"--manual_dir={tiny_corpora / 'crema_d'}", f"--data_dir={tiny_data_dir}", "--num_workers=1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "crema_d_av/emotion4: already built at" in result.stdout
    missing = subprocess.run(command[:3] + ["--manual_dir=/nonexistent/crema", f"--data_dir={tiny_data_dir}"],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
    assert missing.returncode != 0
    assert "error: /nonexistent/crema: manual directory not found" in missing.stderr


def test_a_wrong_data_dir_is_named_with_the_datasets_found_there(tiny_data_dir, tmp_path):
    source = input_pipeline.open_data_source("crema_d_av/emotion4", "validation", tiny_data_dir)
    assert len(source) > 0
    with pytest.raises(FileNotFoundError) as raised:
        input_pipeline.open_data_source("crema_d_av/emotion4", "train", tmp_path)
    assert str(raised.value) == (f"dataset crema_d_av/emotion4 is not prepared in data_dir {tmp_path}, which holds "
                                 f"no prepared dataset; prepare it with launch/prepare_data.py")
    with pytest.raises(FileNotFoundError) as raised:
        input_pipeline.open_data_source("crema_d_av/emotion6", "train", tiny_data_dir)
    assert str(raised.value) == (f"dataset crema_d_av/emotion6 is not prepared in data_dir {tiny_data_dir}, which "
                                 f"holds crema_d_av/emotion4, msp_improv_av/emotion4; prepare it with "
                                 f"launch/prepare_data.py")
    with pytest.raises(FileNotFoundError, match=f"^data_dir {tmp_path / 'nowhere'} does not exist"):
        input_pipeline.open_data_source("crema_d_av/emotion4", "train", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as raised:
        input_pipeline.open_data_source("crema_d_av/emotion4", "dev", tiny_data_dir)
    message = str(raised.value)
    assert message.startswith(f"cannot open dataset crema_d_av/emotion4 split 'dev' in data_dir {tiny_data_dir}")
    assert "\n" not in message and "dev" in message.split(": ", 1)[1]


def test_verify_reports_bad_media_before_extraction(tiny_corpora, tmp_path):
    manual_dir = _crema_d_copy(tiny_corpora, tmp_path)
    media = sorted(p for folder in ("AudioWAV", "VideoFlash") for p in (manual_dir / folder).iterdir()
                   if p.suffix in (".wav", ".flv"))
    rows = [f"{p.relative_to(manual_dir)}\t{p.stat().st_size}\t{hashlib.sha256(p.read_bytes()).hexdigest()}"
            for p in media]
    (manual_dir / "media-manifest.tsv").write_text("path\tsize\tsha256\n" + "\n".join(rows) + "\n")
    truncated, flipped = media[0], media[-1]
    truncated.write_bytes(truncated.read_bytes()[:100])
    content = bytearray(flipped.read_bytes())
    content[len(content) // 2] ^= 0xFF
    flipped.write_bytes(bytes(content))
    data_dir = tmp_path / "data"
    with pytest.raises(RuntimeError, match=r"2 of \d+ media files do not match the manifest: 1 corrupted, 1 truncated"):
        prepare.prepare_dataset("crema_d", manual_dir, data_dir, verify=True, progress=False)
    report = (data_dir / "crema_d-media-verification.tsv").read_text()
    assert f"truncated\t{truncated.relative_to(manual_dir)}" in report
    assert f"corrupted\t{flipped.relative_to(manual_dir)}" in report
    assert not (data_dir / "landmark_cache").exists(), "verification runs before any extraction"
