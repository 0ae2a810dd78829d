"""Gestures: planted mouth shapes are recovered, the common-cluster rule, invalid segments, artifacts."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from artser_jax import input_pipeline
from artser_jax.gestures import cluster_space
from artser_jax.gestures import descriptors as descriptors_lib
from artser_jax.gestures import fitting
from tests import fixture_gestures as planted


@pytest.fixture(scope="module")
def planted_fit():
    """Two corpora of three speakers each (random anatomy, camera and noise), fitted with K=4."""
    rng = np.random.default_rng(0)
    examples_a, truth_a = planted.planted_corpus(rng, "corpus_a", 3, 12)
    examples_b, truth_b = planted.planted_corpus(rng, "corpus_b", 3, 12)
    config = cluster_space.GestureConfig(num_clusters=4, n_init=4, common_min_count=5, seed=0)
    tables = [descriptors_lib.descriptor_table(examples, config) for examples in (examples_a, examples_b)]
    model, labels, role = fitting.fit_from_tables(*tables, config, ("corpus_a", "corpus_b"))
    truth = np.concatenate(truth_a + truth_b)
    return {"model": model, "labels": labels, "role": role, "truth": truth, "config": config,
            "examples": examples_a + examples_b, "tables": tables, "rng": rng}


def test_planted_shapes_are_recovered(planted_fit):
    labels, truth = planted_fit["labels"], planted_fit["truth"]
    assert len(labels) == len(truth)  # every planted segment had a valid descriptor
    assert fitting.cluster_purity(labels, truth) >= 0.9
    # Both corpora use all four shapes equally often, so every cluster is common.
    assert planted_fit["model"].common.all()
    np.testing.assert_array_equal(planted_fit["model"].counts.sum(1),
                                  [np.sum(planted_fit["role"] == 0), np.sum(planted_fit["role"] == 1)])


def test_assign_example_matches_the_fit_and_handles_unseen_speakers(planted_fit):
    model, config = planted_fit["model"], planted_fit["config"]
    assigned = [model.assign_example(e, config.segments(e)) for e in planted_fit["examples"]]
    segment_count = len(planted_fit["truth"]) // len(planted_fit["examples"])
    assert all(ids.dtype == np.int32 and ids.shape == (config.max_segments,) for ids in assigned)
    assert all((ids[segment_count:] == -1).all() for ids in assigned)  # padding has no cluster
    np.testing.assert_array_equal(np.concatenate([ids[:segment_count] for ids in assigned]),
                                  planted_fit["labels"])
    # Speakers never seen at fit time are normalised with their utterance's own statistics.
    unseen, truth = planted.planted_corpus(planted_fit["rng"], "corpus_a", 2, 4)
    ids = np.concatenate([model.assign_example(e, config.segments(e))[:segment_count] for e in unseen])
    assert fitting.cluster_purity(ids, np.concatenate(truth)) >= 0.9
    assert (model.assign_table(planted_fit["tables"][1]) == planted_fit["labels"][
            planted_fit["role"] == 1]).all()


def test_descriptors_are_invariant_to_camera_scale_rotation_and_position():
    rng = np.random.default_rng(1)
    example, _ = planted.planted_example(rng, planted.random_speaker(rng), ["open", "spread", "closed"])
    segments = cluster_space.GestureConfig(max_segments=4).segments(example)
    base, valid = descriptors_lib.segment_descriptors(example, segments)
    angle = 0.4
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    moved = dict(example)
    xy = example["landmarks"][..., :2].astype(np.float64) @ rotation * 2.5 + 40.0
    moved["landmarks"] = np.concatenate([xy, example["landmarks"][..., 2:]], -1).astype(np.float32)
    transformed, valid_moved = descriptors_lib.segment_descriptors(moved, segments)
    assert valid.tolist() == valid_moved.tolist() == [True, True, True, False]
    np.testing.assert_allclose(transformed, base, atol=1e-3)


def test_invalid_segments_are_excluded_and_descriptors_finite():
    rng = np.random.default_rng(2)
    speaker = planted.random_speaker(rng)
    # Segment 1 has no face at all; its frames are too many to interpolate with max_gap_frames=0.
    example, _ = planted.planted_example(rng, speaker, ["open", "closed", "rounded", "spread"],
                                         invalid_segments=(1,))
    config = cluster_space.GestureConfig(max_segments=6, max_gap_frames=0)
    segments = config.segments(example)
    descriptors, valid = descriptors_lib.segment_descriptors(example, segments, max_gap_frames=0)
    assert valid.tolist() == [True, False, True, True, False, False]
    assert np.isfinite(descriptors).all()
    assert descriptors.shape == (6, descriptors_lib.NUM_DESCRIPTORS)
    # A segment of a single video frame has no first difference: invalid.
    one_frame = dict(segments, seg_end=segments["seg_start"] + 0.5 / planted.FRAME_RATE)
    assert not descriptors_lib.segment_descriptors(example, one_frame)[1].any()
    table = descriptors_lib.descriptor_table([example], config)
    assert table.segment_index.tolist() == [0, 2, 3] and table.num_segments == 4
    # No face in any frame, or no video frames at all: every segment invalid, nothing raises.
    faceless = dict(example, landmark_valid=np.zeros_like(example["landmark_valid"]))
    assert not descriptors_lib.segment_descriptors(faceless, segments)[1].any()
    empty = dict(example, landmarks=example["landmarks"][:0], landmark_valid=example["landmark_valid"][:0],
                 frame_times=example["frame_times"][:0])
    assert not descriptors_lib.segment_descriptors(empty, segments)[1].any()
    with pytest.raises(ValueError, match="u0.*one entry per frame"):
        descriptors_lib.segment_descriptors(dict(example, frame_times=example["frame_times"][:-1]), segments)


def test_short_gaps_are_interpolated_long_and_edge_gaps_are_not():
    series = np.arange(12, dtype=np.float64)[:, None] * 2.0
    valid = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0], bool)
    filled, filled_valid = descriptors_lib.interpolate_gaps(series * valid[:, None], valid, max_gap_frames=3)
    assert filled_valid.tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
    np.testing.assert_allclose(filled[3:5, 0], [6.0, 8.0])


def test_common_cluster_rule_on_hand_made_counts():
    source = np.array([100, 100, 100, 100, 590, 10])
    target = np.array([40, 15, 2, 0, 440, 3])
    # Shares: source .1 .1 .1 .1 .59 .01; target .08 .03 .004 0 .88 .006.
    # Ratios min/max: .8, .3, .04, 0, .67, .6.
    assert cluster_space.common_clusters(source, target, min_ratio=0.5, min_count=3).tolist() == [
            True, False, False, False, True, True]
    # Cluster 5 has only 3 target segments: out when the minimum count is 4.
    assert cluster_space.common_clusters(source, target, min_ratio=0.5, min_count=4).tolist() == [
            True, False, False, False, True, False]
    assert cluster_space.common_clusters(source, target, min_ratio=0.7, min_count=1).tolist() == [
            True, False, False, False, False, False]
    assert not cluster_space.common_clusters(source, target, min_ratio=0.9, min_count=1).any()
    with pytest.raises(ValueError, match="same length"):
        cluster_space.common_clusters(source, target[:3])


def test_artifact_round_trip_and_errors(planted_fit, tmp_path):
    model, config = planted_fit["model"], planted_fit["config"]
    path = tmp_path / "gestures_model"  # no suffix: the config names artifacts without one
    model.save(path)
    loaded = cluster_space.load_gesture_model(path)
    assert isinstance(loaded, cluster_space.GestureModel) and loaded.config == config
    example = planted_fit["examples"][0]
    np.testing.assert_array_equal(loaded.assign_example(example, config.segments(example)),
                                  model.assign_example(example, config.segments(example)))
    np.testing.assert_array_equal(loaded.counts, model.counts)
    assert loaded.corpora == ("corpus_a", "corpus_b")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        cluster_space.load_gesture_model(tmp_path / "missing.npz")
    (tmp_path / "junk").write_bytes(b"not an artifact")
    with pytest.raises(ValueError, match=r"junk is not a NumPy archive \(.npz\), so not a gesture model"):
        cluster_space.load_gesture_model(tmp_path / "junk")


def test_other_numpy_files_are_named_for_what_they_are(tmp_path):
    np.savez(tmp_path / "features.npz", embeddings=np.zeros((3, 2)), labels=np.arange(3))
    with pytest.raises(ValueError, match=r"features.npz is a NumPy archive with arrays \['embeddings', "
                                         r"'labels'\], not a gesture model artifact"):
        cluster_space.load_gesture_model(tmp_path / "features.npz")
    # Object arrays need pickle, which the loader never enables: still named as what the file is.
    np.savez(tmp_path / "objects.npz", metadata=np.array("{}"), names=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"objects.npz is a NumPy archive with arrays \['metadata', "
                                         r"'names'\], not a gesture model artifact") as raised:
        cluster_space.load_gesture_model(tmp_path / "objects.npz")
    assert "\n" not in str(raised.value)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"array.npy is a single NumPy array \(.npy\), not a gesture"):
        cluster_space.load_gesture_model(tmp_path / "array.npy")
    np.savez(tmp_path / "text.npz", metadata=np.array("not json"))
    with pytest.raises(ValueError, match=r"text.npz is a NumPy archive with arrays \['metadata'\], not a "
                                         r"gesture model artifact \(its 'metadata' is not JSON"):
        cluster_space.load_gesture_model(tmp_path / "text.npz")


def test_phone_identity_model():
    model = cluster_space.phone_gesture_model("vowels")
    segments = {"seg_phone": np.array(["AA1", "M", "iy", "UW0", ""]),
                "seg_mask": np.array([True, True, True, False, False])}
    ids = model.assign_example({}, segments)
    assert ids.tolist() == [model.phones.index("aa"), -1, model.phones.index("iy"), -1, -1]
    assert model.common.all() and model.common.shape == (model.num_clusters,)
    custom = cluster_space.phone_gesture_model("aa, iy uw")
    assert custom.phones == ("aa", "iy", "uw")
    with pytest.raises(ValueError, match="distinct"):
        cluster_space.phone_gesture_model("aa aa")


def test_phone_model_round_trip(tmp_path):
    cluster_space.phone_gesture_model("aa iy").save(tmp_path / "phones.npz")
    loaded = cluster_space.load_gesture_model(tmp_path / "phones.npz")
    assert isinstance(loaded, cluster_space.PhoneGestureModel) and loaded.phones == ("aa", "iy")


def test_config_is_validated():
    with pytest.raises(ValueError, match="segment_method"):
        cluster_space.GestureConfig(segment_method="syllables").validate()
    with pytest.raises(ValueError, match="algorithm"):
        cluster_space.GestureConfig(algorithm="dbscan").validate()


# ----------------------------------------------------------------------------------------------------
# End to end on the tiny demo datasets (built once per session by the dataset fixture).

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(script, *args):
    result = subprocess.run([sys.executable, str(REPO / "launch" / script), *args], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_tiny_gesture_model_fits_and_assigns(tiny_gesture_model, tiny_data_dir):
    model = cluster_space.load_gesture_model(tiny_gesture_model)
    assert model.corpora == ("crema_d", "msp_improv")
    assert (model.counts.sum(1) > 0).all() and model.common.any()
    assert np.isfinite(model.centroids).all()
    # Validation speakers were not seen by the fit: assignment still works, padding stays -1.
    source = input_pipeline.open_data_source(planted.TINY_TARGET, "validation", tiny_data_dir)
    example = source[0]
    segments = model.config.segments(example)
    ids = model.assign_example(example, segments)
    assert ids.dtype == np.int32 and ids.shape == (model.config.max_segments,)
    assert (ids[~segments["seg_mask"]] == -1).all()
    assert ((ids >= -1) & (ids < model.num_clusters)).all() and (ids >= 0).any()


def test_fit_and_analyze_commands(tiny_data_dir, tmp_path):
    out = tmp_path / "gestures_tiny"
    summary = json.loads(_run(
            "fit_gestures.py", "--source=crema_d_av", "--target=msp_improv_av",
            "--builder_config=emotion4", f"--data_dir={tiny_data_dir}", f"--out={out}",
            "--num_clusters=4", "--n_init=2", "--common_min_count=3", "--min_speaker_segments=5"))
    model = cluster_space.load_gesture_model(out)
    assert summary["common_clusters"] == np.flatnonzero(model.common).tolist()
    _run("analyze_gestures.py", f"--model={out}", f"--data_dir={tiny_data_dir}",
         f"--out_dir={tmp_path / 'figures'}")
    for name in ("cluster_shares.png", "cluster_mouths.png", "cluster_emotion.png"):
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    analysis = json.loads((tmp_path / "figures" / "gesture_analysis.json").read_text())
    # Re-assigning the training split reproduces the fit's cluster counts exactly.
    assert analysis["counts"] == model.counts.tolist()
    assert [sum(map(sum, table)) for table in analysis["cluster_emotion_counts"]] == \
        model.counts.sum(1).tolist()


def test_agcc_trains_on_the_segments_its_gesture_model_was_fitted_on(tiny_gesture_model, caplog):
    from artser_jax.configs import demo  # pylint: disable=g-import-not-at-top
    from artser_jax.methods import agcc  # pylint: disable=g-import-not-at-top

    config = demo.get_config("tiny,method=agcc")
    config.gestures_path = str(tiny_gesture_model)
    config.segments.method = "windows"
    config.segments.min_video_frames = 5
    model = agcc.load_gesture_clusters(config)
    assert config.segments.method == model.config.segment_method == "phones"
    assert config.segments.min_video_frames == model.config.min_video_frames
    assert "Segments taken from the gesture model" in caplog.text
