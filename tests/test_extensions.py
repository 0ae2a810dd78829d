"""A user's own anchoring method and encoder, registered from this file alone, train end to end.

`launch/train.py --extension_modules=<this file>` imports this module before it reads the config, so the
registrations below happen in the training process exactly as they would for a user's `my_method.py`.
Nothing else in the repository knows these names.
"""

import json
import pathlib
import subprocess
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artser_jax import methods
from artser_jax.methods import agcc
from artser_jax.models import encoders
from artser_jax.models.frames import EncoderOutput

THIS_FILE = pathlib.Path(__file__).resolve()
NUM_RANDOM_CLUSTERS = 3


class RandomClusters:
    """Cluster ids drawn per segment from a generator seeded by the utterance id (a control with no
    articulatory meaning); every cluster anchors."""
    num_clusters = NUM_RANDOM_CLUSTERS
    common = np.ones(NUM_RANDOM_CLUSTERS, bool)

    def assign_example(self, example, segments):
        seed = zlib.crc32(bytes(np.asarray(example["utterance_id"]).item()))
        ids = np.random.default_rng(seed).integers(0, self.num_clusters, len(segments["seg_mask"]))
        return np.where(segments["seg_mask"], ids, -1).astype(np.int32)


methods.register(methods.Method(
    name="random_clusters", uses_target=True, default_gamma=0.5, loss=agcc.segment_triplet_loss,
    cluster_assigner=lambda config: RandomClusters(), diagnostics=agcc.TRIPLET_DIAGNOSTICS))


class FramedLinearEncoder(nnx.Module):
    """Non-overlapping 20 ms frames of raw samples through two linear layers."""
    frame_hop_seconds = 0.02
    frame_window_seconds = 0.02
    num_hidden_states = 2
    samples_per_frame = 320

    def __init__(self, width, *, rngs):
        self.output_dim = width
        self.first = nnx.Linear(self.samples_per_frame, width, rngs=rngs)
        self.second = nnx.Linear(width, width, rngs=rngs)

    def __call__(self, audio, audio_mask=None, *, deterministic=True):
        del deterministic  # no dropout
        num_frames = audio.shape[1] // self.samples_per_frame
        frames = audio[:, :num_frames * self.samples_per_frame].reshape(audio.shape[0], num_frames, -1)
        if audio_mask is None:
            audio_mask = jnp.ones(audio.shape, bool)
        frame_mask = audio_mask[:, :num_frames * self.samples_per_frame:self.samples_per_frame]
        first = self.first(frames)
        second = jax.nn.gelu(self.second(first))
        return EncoderOutput(frames=second, frame_mask=frame_mask, hidden_states=(first, second))


encoders.register(encoders.Encoder(
    name="framed_linear", build=lambda model_config, rngs, load_weights: FramedLinearEncoder(
        model_config.transformer_width, rngs=rngs)))


def _final_report(workdir):
    return json.loads((pathlib.Path(workdir) / "final" / "target_test" / "report.json").read_text())


def test_toy_method_registered_by_a_user_file_trains_end_to_end(tiny_training, tmp_path):
    workdir = tmp_path / "run"
    tiny_training.run(workdir, f"--extension_modules={THIS_FILE}", method="random_clusters")
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if "loss_ag" in r]
    assert trained and all(r["anchors_per_step"] > 0 and np.isfinite(r["loss_ag"]) for r in trained)
    report = _final_report(workdir)
    assert report["method"] == "random_clusters" and report["num_examples"] > 0
    assert 0.0 <= report["uar"] <= 100.0


def test_toy_encoder_registered_by_a_user_file_trains_and_predicts(tiny_training, tiny_corpora, tmp_path):
    workdir = tmp_path / "run"
    tiny_training.run(workdir, f"--extension_modules={THIS_FILE}", "--config.model.encoder=framed_linear",
                      method="source_only")
    assert json.loads((workdir / "config.json").read_text())["model"]["encoder"] == "framed_linear"
    assert _final_report(workdir)["num_examples"] > 0
    wav = sorted((tiny_corpora / "crema_d" / "AudioWAV").glob("*.wav"))[0]
    command = [*tiny_training.command(workdir)[:2], f"--extension_modules={THIS_FILE}",
               f"--model={workdir / 'export'}", f"--wav={wav}"]
    command[1] = str(THIS_FILE.parents[1] / "launch" / "predict.py")
    result = subprocess.run(command, env=tiny_training.env(1), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    prediction = json.loads(result.stdout)[0]
    assert prediction["label"] in ("ANG", "HAP", "NEU", "SAD")
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
