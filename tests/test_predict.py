"""`launch/predict.py` on an exported tiny model: a corpus wav, a 44.1 kHz stereo file and a corrupt file."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow_datasets as tfds

from artser_jax import predict
from artser_jax.data import textgrid
from tests.fixture_train import REPO


def _inputs(tiny_data_dir, folder):
    folder.mkdir()
    example = tfds.data_source("msp_improv_av/emotion4", split="test", data_dir=tiny_data_dir)[0]
    mono = example["audio"].astype(np.float32) / 32768.0
    soundfile.write(folder / "corpus.wav", mono, 16000, subtype="PCM_16")
    seconds = np.arange(int(1.2 * 44100)) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 180 * seconds) * (1 + 0.5 * np.sin(2 * np.pi * 4 * seconds))
    soundfile.write(folder / "stereo_44k.wav", np.stack([tone, 0.5 * tone], axis=1), 44100)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk that is not audio")
    return folder


def test_predict_folder_to_csv_and_one_file_to_json(reference_run, tiny_data_dir, tmp_path):
    folder = _inputs(tiny_data_dir, tmp_path / "audio")
    output = tmp_path / "predictions.csv"
    result = subprocess.run([sys.executable, str(REPO / "launch" / "predict.py"),
                             f"--model={reference_run / 'export'}", f"--dir={folder}", f"--output={output}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]  # one file failed, the batch went on
    assert "1 of 3 files failed" in result.stderr
    with open(output) as f:
        rows = {row["file"].rsplit("/", 1)[-1]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["corpus.wav", "corrupt.wav", "stereo_44k.wav"]
    assert "corrupt.wav" in rows["corrupt.wav"]["error"] and rows["corrupt.wav"]["label"] == ""
    for name in ("corpus.wav", "stereo_44k.wav"):
        probabilities = [float(rows[name][f"p_{c}"]) for c in ("ANG", "HAP", "NEU", "SAD")]
        assert abs(sum(probabilities) - 1.0) < 1e-4 and rows[name]["error"] == ""
        assert rows[name]["label"] == ("ANG", "HAP", "NEU", "SAD")[int(np.argmax(probabilities))]

    single = subprocess.run([sys.executable, str(REPO / "launch" / "predict.py"),
                             f"--model={reference_run / 'export'}", f"--wav={folder / 'stereo_44k.wav'}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    record = json.loads(single.stdout)[0]
    assert record["duration_s"] == 1.2
    assert record["probabilities"][record["label"]] == max(record["probabilities"].values())


def test_prediction_with_phone_textgrid_matches_the_training_evaluation(reference_run, tiny_data_dir, tmp_path):
    """With the utterance's phone TextGrid beside its wav, prediction uses the training segments, so its
    probabilities equal those the trainer's final evaluation wrote for that utterance."""
    folder = _inputs(tiny_data_dir, tmp_path / "audio")
    example = tfds.data_source("msp_improv_av/emotion4", split="test", data_dir=tiny_data_dir)[0]
    phones = [textgrid.Interval(float(s), float(e), label) for s, e, label in
              zip(example["phone_starts"], example["phone_ends"], example["phone_labels"].decode().split())]
    textgrid.write_textgrid(folder / "corpus.TextGrid", {"phones": phones},
                            end_time=len(example["audio"]) / 16000)
    predictor = predict.Predictor(reference_run / "export")
    record = predictor.predict_file(folder / "corpus.wav")
    with open(reference_run / "final" / "target_test" / "predictions.csv") as f:
        evaluated = {row["utterance"]: row for row in csv.DictReader(f)}[example["utterance_id"].decode()]
    for name in predictor.labels:
        assert record["probabilities"][name] == pytest.approx(float(evaluated[f"p_{name}"]), abs=1e-5)
    assert record["label"] == evaluated["predicted"]
    assert predictor.predict_file(folder / "corrupt.wav")["error"].startswith(str(folder / "corrupt.wav"))
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    assert "empty file" in predictor.predict_file(empty)["error"]
