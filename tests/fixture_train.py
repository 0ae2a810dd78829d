"""Training fixtures: how tests launch `launch/train.py` on the tiny datasets, and one reference run.

Every run uses the tiny demo config for 24 steps (evaluation and checkpoint every 8). A persistent JAX
compilation cache shared by the session's runs saves recompiling identical steps.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.fixture_corpora import exclusive_build
from tests.fixture_datasets import session_shared_dir

REPO = pathlib.Path(__file__).resolve().parents[1]
TOTAL_STEPS = 24
OVERRIDES = (f"--config.total_steps={TOTAL_STEPS}", "--config.eval_every=8", "--config.checkpoint.save_every=8")
# Per-step values that must agree between runs (throughput fields naturally differ).
COMPARED_KEYS = ("loss", "loss_er", "loss_ag", "grad_norm", "source_accuracy", "anchors_per_step",
                 "source_dev/uar", "source_dev/wa", "source_dev/macro_f1")


class TinyTraining:
    """Paths and environment of the tiny training runs."""

    def __init__(self, data_dir, gestures_path, cache_dir):
        self.data_dir = pathlib.Path(data_dir)
        self.gestures_path = pathlib.Path(gestures_path)
        self.cache_dir = pathlib.Path(cache_dir)

    def env(self, num_devices=8):
        env = dict(os.environ)
        env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}", JAX_PLATFORMS="cpu",
                   JAX_COMPILATION_CACHE_DIR=str(self.cache_dir),
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
        return env

    def command(self, workdir, *extra, method="agcc"):
        return [sys.executable, str(REPO / "launch" / "train.py"),
                f"--config={REPO / 'configs' / 'demo.py'}:tiny,method={method}",
                f"--config.data_dir={self.data_dir}", f"--config.gestures_path={self.gestures_path}",
                f"--workdir={workdir}", *OVERRIDES, *extra]

    def run(self, workdir, *extra, num_devices=8, method="agcc", timeout=300):
        result = subprocess.run(self.command(workdir, *extra, method=method), env=self.env(num_devices),
                                cwd=REPO, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"launch/train.py failed:\n{result.stderr[-6000:]}"
        return result


def compared_records(records):
    """(step, {key: value}) of the records, keeping only values that must agree between runs."""
    kept = []
    for record in records:
        values = {k: record[k] for k in COMPARED_KEYS if k in record}
        if values:
            kept.append((record["step"], values))
    return kept


def assert_same_records(got, want, rtol=1e-5, atol=1e-6):
    got, want = compared_records(got), compared_records(want)
    assert [s for s, _ in got] == [s for s, _ in want], "runs logged different steps"
    for (step, a), (_, b) in zip(got, want):
        assert a.keys() == b.keys(), f"step {step}: different metrics {sorted(a)} vs {sorted(b)}"
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=rtol, abs=atol), f"step {step} {key}: {a[key]} vs {b[key]}"


@pytest.fixture(scope="session")
def tiny_training(tiny_data_dir, tiny_gesture_model, tmp_path_factory):
    return TinyTraining(tiny_data_dir, tiny_gesture_model, tmp_path_factory.mktemp("jax_cache"))


@pytest.fixture(scope="session")
def reference_run(tiny_training, tmp_path_factory):
    """Workdir of an uninterrupted AG-CC run on 8 devices (shared by the train, multi-host, predict tests).

    Trained once per session, also under pytest-xdist (the first worker trains under a file lock, the
    others read it). Treat it as read-only: copy it before changing anything.
    """
    workdir = session_shared_dir(tmp_path_factory, "reference_run")
    with exclusive_build(workdir):
        if not (workdir / "export" / "model.json").exists():
            shutil.rmtree(workdir, ignore_errors=True)
            tiny_training.run(workdir)
    return workdir
