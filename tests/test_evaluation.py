"""Metrics and report files of artser_jax.evaluation."""

import csv
import json

import numpy as np
import pytest

from artser_jax import evaluation


def test_uar_differs_from_accuracy_on_imbalanced_data():
    labels = np.array([0] * 8 + [1] * 2)
    predictions = np.zeros(10, dtype=int)  # always the majority class
    result = evaluation.classification_metrics(labels, predictions, num_classes=2)
    assert result["wa"] == pytest.approx(80.0)
    assert result["uar"] == pytest.approx(50.0)  # recall 100% and 0%
    assert result["recall"] == pytest.approx([100.0, 0.0])
    assert result["precision"] == pytest.approx([80.0, 0.0])
    assert result["macro_f1"] == pytest.approx(100 * (2 * 0.8 / 1.8) / 2)
    assert result["confusion"] == [[8, 0], [2, 0]]


def test_absent_classes_do_not_dilute_macro_averages():
    labels = np.array([0, 1, 1, 0])
    result = evaluation.classification_metrics(labels, labels, num_classes=4)
    assert result["uar"] == pytest.approx(100.0)
    assert result["support"] == [2, 2, 0, 0]


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="equal 1-D"):
        evaluation.classification_metrics(np.zeros(3), np.zeros(4), 2)


def test_write_report_files(tmp_path):
    names = ["ANG", "HAP", "NEU", "SAD"]
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(12, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=12)
    ids = [f"utt{i}" for i in range(12)]
    report = evaluation.write_report(tmp_path / "eval", "source_dev", ids, labels, logits, names,
                                     extra={"step": 7})
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["step"] == 7 and saved["uar"] == pytest.approx(report["uar"])
    expected = evaluation.classification_metrics(labels, logits.argmax(-1), 4)
    assert saved["uar"] == pytest.approx(expected["uar"])
    with open(tmp_path / "eval" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["utterance"] for r in rows] == ids
    assert [r["true"] for r in rows] == [names[i] for i in labels]
    assert [r["predicted"] for r in rows] == [names[i] for i in logits.argmax(-1)]
    probs = np.array([[float(r[f"p_{n}"]) for n in names] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    for suffix in ("counts", "normalised"):
        assert (tmp_path / "eval" / f"confusion_{suffix}.png").read_bytes()[:4] == b"\x89PNG"


def test_metrics_writer_truncates_after_resume_point(tmp_path):
    writer = evaluation.MetricsWriter(tmp_path)
    for step in (1, 2, 3, 4):
        writer.write(step, loss=np.float32(step))
    writer.truncate_after(2)
    writer.write(3, loss=30.0)
    assert [(r["step"], r["loss"]) for r in evaluation.read_metrics(tmp_path)] == [(1, 1.0), (2, 2.0), (3, 30.0)]
