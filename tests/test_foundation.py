"""The environment works: 8 devices, sharded jit, and MediaPipe's face model on a real photograph."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

from artser_jax import assets
from artser_jax import landmarks
from artser_jax import sharding


def test_jax_sees_eight_devices():
    assert jax.device_count() == 8


def test_sharded_jit_equals_unsharded():
    mesh = sharding.create_mesh()
    x = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    w = np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32)

    def per_example_scores(x, w):
        return jnp.tanh(x @ w).sum(axis=1) + jnp.mean(x)  # the mean needs every shard

    expected = jax.jit(per_example_scores)(x, w)
    x_sharded = jax.device_put(x, sharding.data_sharding(mesh))
    w_replicated = jax.device_put(w, sharding.replicated_sharding(mesh))
    result = jax.jit(per_example_scores)(x_sharded, w_replicated)
    assert len(x_sharded.addressable_shards) == 8
    np.testing.assert_allclose(np.asarray(result), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_face_model_in_cache_is_verified():
    path = assets.face_model_path()
    assert assets.sha256_of(path) == assets.FACE_MODEL_SHA256


def test_missing_face_model_names_the_path(tmp_path):
    with pytest.raises(assets.AssetError, match=str(tmp_path)):
        assets.face_model_path(tmp_path)


@pytest.fixture(scope="module")
def image_landmarker():
    with landmarks.create_face_landmarker(running_mode="image") as landmarker:
        yield landmarker


def test_face_landmarker_finds_the_mouth_on_a_photograph(image_landmarker):
    import mediapipe as mp

    photo = skimage.data.astronaut()
    result = image_landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=photo))
    assert len(result.face_landmarks) == 1
    assert len(result.face_landmarks[0]) == landmarks.NUM_FACE_MESH_POINTS
    kept = landmarks.landmarks_from_result(result, photo.shape[1], photo.shape[0])
    lips = kept[:len(landmarks.LIP_INDICES), :2]
    # The astronaut's mouth, located by eye in the 512x512 photograph: x 195-250, y 133-160.
    assert np.all((lips[:, 0] > 185) & (lips[:, 0] < 260)), lips[:, 0]
    assert np.all((lips[:, 1] > 125) & (lips[:, 1] < 170)), lips[:, 1]
    eyes_y = kept[[landmarks.kept_position(i) for i in (33, 263)], 1]
    nose_y = kept[landmarks.kept_position(1), 1]
    assert eyes_y.max() < nose_y < lips[:, 1].min()


def test_face_landmarker_finds_no_face_on_a_blank_frame(image_landmarker):
    blank = np.full((480, 640, 3), 127, dtype=np.uint8)
    assert landmarks.detect(image_landmarker, blank) is None
