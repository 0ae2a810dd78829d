"""Multi-host training: two processes on localhost, 4 fake CPU devices each, joined by
`jax.distributed.initialize` with gloo CPU collectives; each reads its own shard of the data. The losses
must equal those of one process with 8 devices (the code path of a TPU pod)."""

import json
import socket
import subprocess

import pytest

from artser_jax import evaluation
from tests.fixture_train import REPO, assert_same_records


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_process(tiny_training, reference_run, tmp_path):
    workdir = tmp_path / "multihost"
    address = f"localhost:{_free_port()}"
    processes = [
        subprocess.Popen(tiny_training.command(workdir, f"--coordinator_address={address}", "--num_processes=2",
                                               f"--process_id={index}"),
                         env=tiny_training.env(num_devices=4), cwd=REPO, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        for index in range(2)]
    errors = [p.communicate(timeout=400)[1] for p in processes]
    for index, (process, stderr) in enumerate(zip(processes, errors)):
        assert process.returncode == 0, f"process {index} failed:\n{stderr[-5000:]}"
    assert "over 2 processes" in errors[0]
    # Each process saved its own data-iterator state: it read its own shard.
    checkpoint = max((p for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    states = [json.loads((checkpoint / "data" / f"process_{i}-of-2.json").read_text()) for i in range(2)]
    assert states[0] and states[1]
    assert_same_records(evaluation.read_metrics(workdir), evaluation.read_metrics(reference_run))
    assert (workdir / "final" / "target_test" / "report.json").exists()
