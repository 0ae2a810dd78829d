"""Issue 11's controlled experiment: the oracle arm trains, the premise is (or is not) in the tiny
corpora, the experiment command runs end to end, and corpora other than the expected ones are refused."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from artser_jax import experiment
from artser_jax.configs import controls
from artser_jax.methods import oracle_emotion
from tests.fixture_corpora import cached_corpora
from tests.fixture_train import REPO

GENERATOR_SEED = 0  # the tiny corpora the test suite caches
# docs/controls.md: premise present above this NMI in both corpora, premise absent below the second.
PRESENT_MIN_NMI = 0.15
ABSENT_MAX_NMI = 0.08


def _tiny_pair(strength):
    return cached_corpora("tiny", GENERATOR_SEED, controls.PARAMETERS_VERSION, strength)


def test_oracle_clusters_are_the_true_emotions():
    clusters = oracle_emotion.TrueEmotionClusters(num_clusters=4)
    ids = clusters.assign_example({"emotion": 2}, {"seg_mask": np.array([True, True, False])})
    assert ids.tolist() == [2, 2, -1] and clusters.common.all()
    with pytest.raises(ValueError, match="emotion index 7"):
        clusters.assign_example({"emotion": 7, "utterance_id": "x"}, {"seg_mask": np.ones(2, bool)})


@pytest.mark.slow
def test_experiment_command_end_to_end_at_tiny_size(tmp_path):
    out_dir = tmp_path / "controls"
    for strength in (controls.PREMISE_PRESENT, controls.PREMISE_ABSENT):
        pair = experiment.Pair("test", "x", GENERATOR_SEED, strength)
        shutil.copytree(_tiny_pair(strength), out_dir / "corpora" / pair.folder)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    command = [sys.executable, str(REPO / "launch" / "experiment.py"), "--experiment=controls",
               f"--out_dir={out_dir}", "--size=tiny", "--seeds=0", f"--test_generator_seed={GENERATOR_SEED}",
               "--directions=crema_to_msp", "--arms=oracle_emotion", "--num_workers=2"]
    prepared = subprocess.run(command + ["--prepare_only"], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=600)
    assert prepared.returncode == 0, prepared.stderr[-6000:]
    assert not (out_dir / "runs").exists() and not (out_dir / "results.json").exists()
    premise_text = (out_dir / "premise.md").read_text()
    assert "test_present" in premise_text and "test_absent" in premise_text and "cluster-emotion NMI" in prepared.stdout
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]
    assert "oracle_emotion (DIAGNOSTIC)" in result.stdout
    results = json.loads((out_dir / "results.json").read_text())
    present, absent = results["pairs"]["test_present"], results["pairs"]["test_absent"]
    for corpus in experiment.CORPORA:
        assert present["premise"][corpus]["nmi"] > PRESENT_MIN_NMI
        assert absent["premise"][corpus]["nmi"] < ABSENT_MAX_NMI
        table = np.asarray(present["premise"][corpus]["table"])
        assert table.shape == (present["premise"]["num_clusters"], 4)
        assert table.sum() == present["premise"][corpus]["segments"]
    oracle = present["directions"]["crema_to_msp"]["oracle_emotion"]
    assert len(oracle["uars"]) == 1 and 0 <= oracle["uars"][0] <= 100
    interval = oracle["delta_uar_ci"]
    assert interval["low"] <= interval["delta"] <= interval["high"]
    assert set(absent["directions"]["crema_to_msp"]) == {"source_only"}
    run_dir = out_dir / "runs" / f"seed{GENERATOR_SEED}-premise1" / "crema_to_msp" / "oracle_emotion" / "seed0"
    rows = json.loads((run_dir / "diagnostics.json").read_text())
    config = controls.get_config("method=oracle_emotion,tiny")
    assert [row["step"] for row in rows] == list(range(0, config.total_steps + 1, config.eval_every))
    assert all(row["grad_share/loss_er"] + row["grad_share/oracle_emotion"] == pytest.approx(1.0) for row in rows)
    assert (out_dir / "figures" / f"seed{GENERATOR_SEED}-premise1_crema_to_msp_oracle_emotion_seed0.png").is_file()
    assert "delta-UAR" in (out_dir / "results.md").read_text()
    assert (out_dir / "premise.md").read_text() == premise_text


def test_corpora_other_than_expected_are_refused(tmp_path):
    copy = tmp_path / "corpora"
    shutil.copytree(_tiny_pair(controls.PREMISE_PRESENT), copy)
    pair = experiment.Pair("test", "present", GENERATOR_SEED, controls.PREMISE_PRESENT)
    hashes = experiment.check_corpora(copy, pair, "tiny")
    assert json.loads((copy / "content_hashes.json").read_text()) == hashes
    with pytest.raises(experiment.CorpusMismatchError, match="premise_strength': 1.0.*premise_strength': 0.0"):
        experiment.check_corpora(copy, experiment.Pair("test", "absent", GENERATOR_SEED, 0.0), "tiny")
    wav = next((copy / "crema_d" / "AudioWAV").glob("*.wav"))
    wav.write_bytes(wav.read_bytes()[:-2] + b"\0\1")
    with pytest.raises(experiment.CorpusMismatchError, match=f"differs from the expected {hashes['crema_d']}"):
        experiment.check_corpora(copy, pair, "tiny")


def _summary(ids, labels, predicted):
    return {"ids": ids, "labels": np.asarray(labels), "predicted": np.asarray(predicted)}


def test_premise_dependence_pairs_the_same_arm_across_conditions():
    ids, labels = ["a", "b", "c", "d"], [0, 1, 2, 3]
    present = {"crema_to_msp": {"source_only": [_summary(ids, labels, [0, 0, 0, 0])] * 2,
                                "agcc": [_summary(ids, labels, [0, 1, 2, 3]), _summary(ids, labels, [0, 1, 2, 0])]}}
    absent = {"crema_to_msp": {"source_only": present["crema_to_msp"]["source_only"],
                               "agcc": [_summary(ids, labels, [0, 1, 0, 0]), _summary(ids, labels, [0, 1, 0, 0])]}}
    table = experiment.compare_conditions(present, absent, resamples=200)
    assert set(table["crema_to_msp"]) == {"agcc"}
    # UARs: present 100 and 75 (mean 87.5), absent 50 and 50: +37.5.
    interval = table["crema_to_msp"]["agcc"]
    assert interval["delta"] == pytest.approx(37.5)
    assert interval["low"] <= interval["delta"] <= interval["high"]
    absent["crema_to_msp"]["agcc"][1] = _summary(["a", "b", "c", "x"], labels, [0, 1, 0, 0])
    with pytest.raises(ValueError, match="target test sets differ"):
        experiment.compare_conditions(present, absent)


def test_unknown_premise_conditions_are_refused():
    assert [pair.condition for pair in experiment.experiment_pairs("test", 1, 2, ("absent",))] == ["absent"]
    with pytest.raises(ValueError, match=r"unknown premise conditions \['presnt'\]"):
        experiment.experiment_pairs("test", 1, 2, ("presnt", "absent"))
