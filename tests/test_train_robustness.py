"""Runs that cannot corrupt each other, recover from a damaged checkpoint, and refuse nonsense configs,
through the real `launch/train.py` and `launch/evaluate.py`."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from artser_jax import evaluation
from artser_jax import train
from artser_jax import workdir_lock
from artser_jax.configs import demo
from tests.fixture_train import REPO, TOTAL_STEPS, assert_same_records


def _copy_run(reference_run, destination):
    shutil.copytree(reference_run, destination)
    return destination


def test_second_run_into_a_workdir_in_use_fails_and_the_first_is_intact(tiny_training, tmp_path):
    workdir = tmp_path / "run"
    first = subprocess.Popen(tiny_training.command(workdir), env=tiny_training.env(), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (workdir / "metrics.jsonl").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(tiny_training.command(workdir, "--config.seed=1"), env=tiny_training.env(),
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    _, first_stderr = first.communicate(timeout=300)
    assert first.returncode == 0, first_stderr[-4000:]
    assert second.returncode == 2
    assert "is in use by another run (host " in second.stderr and f"pid {first.pid}" in second.stderr
    assert json.loads((workdir / "config.json").read_text())["seed"] == 0
    steps = [r["step"] for r in evaluation.read_metrics(workdir) if "loss" in r]
    assert steps == list(range(1, TOTAL_STEPS + 1))  # one run's steps, once each
    assert (workdir / "export" / "model.json").exists()
    assert (workdir / workdir_lock.LOCK_FILE).read_text() == ""  # released cleanly


def test_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from artser_jax import workdir_lock; workdir_lock.WorkdirLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(60)"), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(workdir_lock.WorkdirLockedError, match=f"pid {holder.pid}"):
        workdir_lock.WorkdirLock(tmp_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with workdir_lock.WorkdirLock(tmp_path):
        assert f"pid {os.getpid()}" in (tmp_path / workdir_lock.LOCK_FILE).read_text()
    assert "taking over the lock left by host" in caplog.text and f"pid {holder.pid}" in caplog.text


def _damage(path, how):
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: max(path.stat().st_size // 2, 1)])
    else:
        path.write_text('{"truncated": ')


@pytest.mark.parametrize("target", ["array file", "_METADATA", "iterator state"])
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tiny_training, reference_run, tmp_path,
                                                                   target):
    workdir = _copy_run(reference_run, tmp_path / "run")
    latest = workdir / "checkpoints" / str(TOTAL_STEPS)
    if target == "array file":
        # The array data: every OCDBT data file (the merged database's and each process's), cut short.
        data_files = sorted(p for p in (latest / "state").rglob("*") if p.is_file() and p.parent.name == "d")
        assert data_files
        for damaged in data_files:
            _damage(damaged, "truncate")
    elif target == "_METADATA":
        damaged = latest / "state" / "_METADATA"
        _damage(damaged, "json")
    else:
        damaged = sorted((latest / "data").rglob("*.json"))[0]
        _damage(damaged, "json")
    saved_config = (workdir / "config.json").read_text()
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    previous = max(s for s in steps if s < TOTAL_STEPS)

    result = tiny_training.run(workdir)

    assert f"Checkpoint step {TOTAL_STEPS} is unreadable" in result.stderr
    assert f"Resuming at step {previous + 1}" in result.stderr
    assert (workdir / "checkpoints_unreadable" / str(TOTAL_STEPS)).is_dir()  # moved aside, not deleted
    assert (workdir / "config.json").read_text() == saved_config
    assert_same_records(evaluation.read_metrics(workdir), evaluation.read_metrics(reference_run),
                        rtol=1e-6, atol=1e-7)


def test_resume_with_a_changed_model_fails_before_writing(tiny_training, reference_run, tmp_path):
    workdir = _copy_run(reference_run, tmp_path / "run")
    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file() and p.name != "LOCK"}
    result = subprocess.run(tiny_training.command(workdir, "--config.model.transformer_width=32"),
                            env=tiny_training.env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "config.model.transformer_width was 16, now 32" in result.stderr
    after = {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file() and p.name != "LOCK"}
    assert after == before


def test_invalid_config_fields_are_named_before_any_work(tiny_training, tmp_path):
    workdir = tmp_path / "nonsense"
    result = subprocess.run(tiny_training.command(
        workdir, "--config.optimizer.learning_rate=-0.001", "--config.total_steps=0",
        "--config.input.source_batch_size=0", "--config.loss.gamma=-1"),
        env=tiny_training.env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    for line in ("config.optimizer.learning_rate = -0.001: must be > 0", "config.total_steps = 0: must be >= 1",
                 "config.input.source_batch_size = 0: must be >= 1", "config.loss.gamma = -1.0: must be >= 0"):
        assert line in result.stderr
    assert "Traceback" not in result.stderr
    assert not workdir.exists()


def test_a_file_that_is_not_a_gesture_model_is_one_line_naming_it(tiny_training, tmp_path):
    not_gestures = tmp_path / "features.npz"
    np.savez(not_gestures, embeddings=np.zeros((2, 3)))
    result = subprocess.run(tiny_training.command(tmp_path / "run", f"--config.gestures_path={not_gestures}"),
                            env=tiny_training.env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"launch/train.py: error: {not_gestures} is a NumPy archive with arrays ['embeddings'], not a gesture "
        "model artifact (it has no 'metadata')")


@pytest.mark.parametrize("field, value, rule", [
    ("method", "agc", "unknown method 'agc'"), ("model.encoder", "hubert", "unknown encoder 'hubert'"),
    ("optimizer.encoder_learning_rate", 0.0, "must be > 0"), ("total_steps", -5, "must be >= 1"),
    ("input.eval_batch_size", 0, "must be >= 1"), ("loss.anchor_clusters", "some", "'common' or 'all'"),
    ("checkpoint.keep_latest", 0, "must be >= 1"), ("data_dir", None, "must be set")])
def test_validate_config_names_field_and_rule(field, value, rule):
    config = demo.get_config("tiny")
    config.data_dir = "/data"
    parent = config
    *path, last = field.split(".")
    for key in path:
        parent = parent[key]
    parent[last] = value
    with pytest.raises(train.ConfigError, match=f"config.{field}.*{rule}"):
        train.validate_config(config)


def test_evaluate_on_a_missing_workdir_creates_nothing(tiny_training, tmp_path):
    missing = tmp_path / "no_such_run"
    command = [sys.executable, str(REPO / "launch" / "evaluate.py"), f"--config={REPO / 'configs' / 'demo.py'}:tiny",
               f"--config.data_dir={tiny_training.data_dir}", f"--workdir={missing}"]
    result = subprocess.run(command, env=tiny_training.env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"{missing} is not a training run" in result.stderr and "Traceback" not in result.stderr
    assert not missing.exists()
