"""The frozen-feature store: training on stored layers equals recomputing the frozen encoder; the store is
reused, rebuilt when the encoder's files change, kept out of checkpoints; the export still runs on audio."""

import json
import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from artser_jax import feature_store
from artser_jax import sharding
from artser_jax.configs import demo
from artser_jax.evaluation import read_metrics
from artser_jax.models import features, segment_model
from artser_jax.models.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder
from tests.fixture_train import REPO, assert_same_records

torch = pytest.importorskip("torch", reason="torch (a test-only reference, installed by scripts/setup.sh) "
                            "writes the random-weight wav2vec2 checkpoint")
transformers = pytest.importorskip("transformers", reason="transformers (installed by scripts/setup.sh) writes "
                                   "the random-weight wav2vec2 checkpoint")

STEPS = ("--config.total_steps=4", "--config.eval_every=4", "--config.checkpoint.save_every=2",
         "--config.log_every=1")
# Selected layer -1 (= 2) and CORAL layers 0 and 2: layer 1 of the 3 selectable ones is not stored.
LAYER_ANCHORED = ("--config.loss.coral_layers=(0, 2)",)
# Stored float32 features against the encoder rerun inside each step: the same numbers up to XLA's
# different fusion of the two programs.
RTOL, ATOL = 2e-4, 1e-5


def write_wav2vec2(folder, seed):
    hf_config = transformers.Wav2Vec2Config(
        conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=48, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, feat_extract_norm="group")
    torch.manual_seed(seed)
    transformers.Wav2Vec2Model(hf_config).save_pretrained(folder, safe_serialization=True)
    return pathlib.Path(folder)


@pytest.fixture(scope="module")
def encoder_dirs(tmp_path_factory):
    return [write_wav2vec2(tmp_path_factory.mktemp(f"wav2vec2_{seed}"), seed) for seed in (0, 1)]


def train_command(tiny_training, workdir, encoder_dir, store_dir, *extra):
    return tiny_training.command(workdir, "--config.model.encoder=wav2vec2",
                                 f"--config.model.pretrained_dir={encoder_dir}",
                                 f"--config.model.feature_store_dir={store_dir}",
                                 "--config.model.feature_store_dtype=float32", *STEPS, *LAYER_ANCHORED, *extra,
                                 method="layer_anchored")


def train(tiny_training, workdir, encoder_dir, store_dir, *extra, check=True):
    result = subprocess.run(train_command(tiny_training, workdir, encoder_dir, store_dir, *extra),
                            env=tiny_training.env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"launch/train.py failed:\n{result.stderr[-6000:]}"
    return result


def checkpoint_paths(workdir):
    """Every parameter path in the newest checkpoint's state."""
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    metadata = ocp.StandardCheckpointer().metadata(workdir / "checkpoints" / str(steps[-1]) / "state")
    tree = metadata.item_metadata.tree if hasattr(metadata, "item_metadata") else metadata
    paths = []

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, prefix + (str(key),))
        else:
            paths.append(prefix)
    walk(tree, ())
    return paths


def test_stored_layers_follow_the_config():
    config = demo.get_config("tiny,method=layer_anchored")
    config.loss.coral_layers = (0, -1)
    assert feature_store.stored_layers(config, 3) == (0, 2)
    config.model.encoder_layer = 1
    assert feature_store.stored_layers(config, 3) == (0, 1, 2)
    config.model.weighted_layer_sum = True
    assert feature_store.stored_layers(config, 5) == (0, 1, 2, 3, 4)
    config = demo.get_config("tiny,method=source_only")
    assert feature_store.stored_layers(config, 3) == (2,)
    config.model.encoder_layer = 3
    with pytest.raises(ValueError, match="config.model.encoder_layer reads layer 3; the encoder has 3"):
        feature_store.stored_layers(config, 3)


def test_model_on_stored_layers_equals_model_on_audio():
    encoder = Wav2Vec2Encoder(Wav2Vec2Config(conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                                             hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                             intermediate_size=16, num_conv_pos_embeddings=8,
                                             num_conv_pos_embedding_groups=2), rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    audio = jnp.asarray(rng.standard_normal((2, 4000)).astype(np.float32))
    audio_mask = jnp.asarray(np.arange(4000)[None] < np.array([[4000], [2500]]))
    seg_start, seg_end = jnp.array([[0.0, 0.05, 0.1]] * 2), jnp.array([[0.05, 0.1, 0.2]] * 2)
    seg_mask = jnp.array([[True, True, False], [True, True, True]])
    head = dict(width=16, num_heads=2, classifier_hidden=8, frozen_encoder=True)
    for selection, layers in (("weighted", (0, 1, 2)), (1, (1,)), ("last", (0, 2))):
        audio_model = segment_model.SegmentEmotionModel(encoder, layer_selection=selection, **head, rngs=nnx.Rngs(1))
        expected = audio_model(audio, audio_mask, seg_start, seg_end, seg_mask)
        stored, frame_mask = features.encode_layers(encoder, layers, sharding.create_mesh(2), jnp.float32)(
            audio, audio_mask)
        stored_encoder = features.StoredFeatures(layers=layers, num_selectable=3, feature_dim=16,
                                                 frame_hop_seconds=encoder.frame_hop_seconds,
                                                 frame_window_seconds=encoder.frame_window_seconds)
        feature_model = segment_model.SegmentEmotionModel(stored_encoder, layer_selection=selection, **head,
                                                          rngs=nnx.Rngs(1))
        got = feature_model(stored, frame_mask, seg_start, seg_end, seg_mask)
        np.testing.assert_allclose(np.asarray(got.logits), np.asarray(expected.logits), rtol=1e-5, atol=1e-5)
        for index in range(3):  # stored layers equal the encoder's; the others are NaN placeholders
            if index in layers:
                np.testing.assert_allclose(got.hidden_states[index], expected.hidden_states[index], atol=1e-5)
            else:
                assert np.isnan(np.asarray(got.hidden_states[index])).all()


@pytest.mark.slow
def test_training_on_the_store_equals_recomputing(tiny_training, encoder_dirs, tiny_corpora, tmp_path):
    store_dir = tmp_path / "store"
    stored = train(tiny_training, tmp_path / "stored", encoder_dirs[0], store_dir)
    assert "none for this key; extracting" in stored.stderr and "reused for" not in stored.stderr
    recompute_flags = ("--config.model.cache_frozen_features=False",)
    recomputed = train(tiny_training, tmp_path / "recomputed", encoder_dirs[0], store_dir, *recompute_flags)
    assert "Feature store" not in recomputed.stderr
    got, want = read_metrics(tmp_path / "stored"), read_metrics(tmp_path / "recomputed")
    assert any("loss_coral" in record for record in got)
    assert_same_records(got, want, rtol=RTOL, atol=ATOL)
    for a, b in zip(got, want):
        if "loss_coral" in a:
            assert a["loss_coral"] == pytest.approx(b["loss_coral"], rel=RTOL, abs=ATOL)

    # A second run reads the same store without extracting.
    again = train(tiny_training, tmp_path / "again", encoder_dirs[0], store_dir)
    assert "reused for source_train" in again.stderr and "extracting" not in again.stderr
    assert_same_records(read_metrics(tmp_path / "again"), got, rtol=0, atol=0)

    # Checkpoints hold no encoder weights (with or without the store), and record the encoder folder's hash.
    for run in ("stored", "recomputed"):
        paths = checkpoint_paths(tmp_path / run)
        assert paths and not any("encoder" in path for path in paths)
        record = json.loads(next((tmp_path / run / "checkpoints").glob("*/frozen_encoder/*")).read_text())
        assert record["sha256"] == feature_store.encoder_folder_sha256(encoder_dirs[0])
    # Restoring a checkpoint of the recomputing run takes the encoder's weights from its folder again.
    train_flags = train_command(tiny_training, tmp_path / "recomputed", encoder_dirs[0], store_dir,
                                *recompute_flags)[2:]  # without the interpreter and launch/train.py
    evaluated = subprocess.run(
        [sys.executable, str(REPO / "launch" / "evaluate.py"), *train_flags, f"--out_dir={tmp_path / 'evaluated'}"],
        env=tiny_training.env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads((tmp_path / "evaluated" / "source_dev" / "report.json").read_text())
    assert report["uar"] == pytest.approx(want[-1]["final/source_dev/uar"], abs=1e-6)

    # The export runs the real encoder on audio, as the recomputing run's export does.
    wav = sorted((tiny_corpora / "crema_d" / "AudioWAV").glob("*.wav"))[0]
    predictions = []
    for run in ("stored", "recomputed"):
        result = subprocess.run([sys.executable, str(REPO / "launch" / "predict.py"),
                                 f"--model={tmp_path / run / 'export'}", f"--wav={wav}"],
                                env=tiny_training.env(1), cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        predictions.append(json.loads(result.stdout)[0]["probabilities"])
    assert predictions[0] == pytest.approx(predictions[1], rel=RTOL, abs=ATOL)


@pytest.mark.slow
def test_store_is_rebuilt_for_other_encoder_files_and_restore_names_both_hashes(tiny_training, encoder_dirs,
                                                                                  tmp_path):
    store_dir = tmp_path / "store"
    first = train(tiny_training, tmp_path / "first", encoder_dirs[0], store_dir)
    assert "extracting" in first.stderr
    other = train(tiny_training, tmp_path / "other", encoder_dirs[1], store_dir)
    assert "none for this key; extracting" in other.stderr and "reused" not in other.stderr

    # A store whose dataset no longer matches is logged and rebuilt, not read.
    other_sha256 = feature_store.encoder_folder_sha256(encoder_dirs[1])
    [manifest_path] = [path for path in store_dir.glob("wav2vec2-*/crema_d_av__emotion4/train/manifest.json")
                       if json.loads(path.read_text())["key"]["encoder_sha256"] == other_sha256]
    manifest = json.loads(manifest_path.read_text())
    manifest["num_records"] += 1
    manifest_path.write_text(json.dumps(manifest))
    rebuilt = train(tiny_training, tmp_path / "rebuilt", encoder_dirs[1], store_dir)
    assert "is stale" in rebuilt.stderr and "records stored" in rebuilt.stderr
    assert json.loads(manifest_path.read_text())["num_records"] == manifest["num_records"] - 1

    # Resuming the first run with another encoder folder fails before any work, naming both hashes.
    resumed = train(tiny_training, tmp_path / "first", encoder_dirs[1], store_dir, check=False)
    assert resumed.returncode == 2 and "Feature store" not in resumed.stderr
    for folder in encoder_dirs:
        assert feature_store.encoder_folder_sha256(folder) in resumed.stderr
