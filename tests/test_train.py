"""End-to-end `launch/train.py` on the tiny datasets: artifacts, SIGTERM resume, 8 vs 1 device, evaluate."""

import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from artser_jax import evaluation
from artser_jax import train
from tests.fixture_train import REPO, TOTAL_STEPS, assert_same_records


def test_end_to_end_artifacts(reference_run):
    records = evaluation.read_metrics(reference_run)
    losses = [r for r in records if "loss" in r]
    assert [r["step"] for r in losses] == list(range(1, TOTAL_STEPS + 1))
    assert all(r["loss"] > 0 and r["utterances_per_second"] > 0 for r in losses)
    assert any("source_dev/uar" in r for r in records)
    assert "final/target_test/uar" in records[-1]
    steps = sorted(int(p.name) for p in (reference_run / "checkpoints").iterdir() if p.name.isdigit())
    assert TOTAL_STEPS in steps
    for name in ("source_dev", "target_test"):
        folder = reference_run / "final" / name
        report = json.loads((folder / "report.json").read_text())
        assert 0.0 <= report["uar"] <= 100.0 and report["classes"] == ["ANG", "HAP", "NEU", "SAD"]
        with open(folder / "predictions.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == report["num_examples"] == sum(report["support"])
        assert len({r["utterance"] for r in rows}) == len(rows)  # every utterance exactly once
        assert (folder / "confusion_counts.png").read_bytes()[:4] == b"\x89PNG"
        assert (folder / "confusion_normalised.png").exists()
    metadata = json.loads((reference_run / "export" / "model.json").read_text())
    assert metadata["labels"] == ["ANG", "HAP", "NEU", "SAD"] and metadata["sample_rate"] == 16000


def test_sigterm_then_resume_equals_uninterrupted(tiny_training, reference_run, tmp_path):
    workdir = tmp_path / "run"
    process = subprocess.Popen(tiny_training.command(workdir), env=tiny_training.env(), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        path = workdir / "metrics.jsonl"
        if path.exists() and any(r.get("step", 0) >= 3 for r in evaluation.read_metrics(workdir)):
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == train.PREEMPTED_EXIT_STATUS == 75, stderr[-4000:]
    assert "Preempted" in stderr, "the run ended before SIGTERM arrived"
    stopped_at = max(r["step"] for r in evaluation.read_metrics(workdir))
    assert stopped_at < TOTAL_STEPS
    assert str(stopped_at) in {p.name for p in (workdir / "checkpoints").iterdir()}

    result = tiny_training.run(workdir)
    assert f"Resuming at step {stopped_at + 1}" in result.stderr
    assert_same_records(evaluation.read_metrics(workdir), evaluation.read_metrics(reference_run),
                        rtol=1e-6, atol=1e-7)


def test_one_device_matches_eight_devices(tiny_training, reference_run, tmp_path):
    result = tiny_training.run(tmp_path / "one", num_devices=1)
    assert "Mesh: 1 devices" in result.stderr
    assert_same_records(evaluation.read_metrics(tmp_path / "one"), evaluation.read_metrics(reference_run))


def test_config_typo_fails_before_work(tiny_training, tmp_path):
    result = subprocess.run(tiny_training.command(tmp_path / "typo", "--config.loss.gamm=0.3"),
                            env=tiny_training.env(), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "gamm" in result.stderr
    assert not (tmp_path / "typo").exists()


def test_evaluate_reruns_the_final_evaluation(tiny_training, reference_run, tmp_path):
    final = json.loads((reference_run / "final" / "source_dev" / "report.json").read_text())
    workdir = shutil.copytree(reference_run, tmp_path / "run")
    command = [sys.executable, str(REPO / "launch" / "evaluate.py"), f"--config={REPO / 'configs' / 'demo.py'}:tiny",
               f"--config.data_dir={tiny_training.data_dir}", f"--workdir={workdir}"]
    result = subprocess.run(command, env=tiny_training.env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    out_dir = workdir / "evaluate" / f"step_{final['step']:06d}"
    for name in ("source_dev", "target_test"):
        with open(reference_run / "final" / name / "predictions.csv") as f:
            want = list(csv.DictReader(f))
        with open(out_dir / name / "predictions.csv") as f:
            got = list(csv.DictReader(f))
        assert [r["utterance"] for r in got] == [r["utterance"] for r in want]
        for a, b in zip(got, want):
            assert float(a["p_ANG"]) == pytest.approx(float(b["p_ANG"]), abs=1e-5)
            assert a["predicted"] == b["predicted"]
