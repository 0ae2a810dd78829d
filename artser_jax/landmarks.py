"""MediaPipe Face Landmarker: creation, the landmark points we keep, per-frame detection.

MediaPipe returns 478 points per face. We keep the 40 lip points of FACEMESH_LIPS and the points that
per-frame normalisation needs (eye corners for rotation and scale, nose tip), in the order of
`KEPT_INDICES`, as pixel coordinates.
"""

import numpy as np

from artser_jax import assets

# FACEMESH_LIPS, as contours: outer lower lip (corner 61 to corner 291), outer upper lip (185 to 409),
# inner lower lip (corner 78 to corner 308), inner upper lip (191 to 415).
OUTER_LOWER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
OUTER_UPPER_LIP = (185, 40, 39, 37, 0, 267, 269, 270, 409)
INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
INNER_UPPER_LIP = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LIP_INDICES = OUTER_LOWER_LIP + OUTER_UPPER_LIP + INNER_LOWER_LIP + INNER_UPPER_LIP
# Right eye outer and inner corner, left eye inner and outer corner (subject's sides), nose tip.
NORMALISATION_INDICES = (33, 133, 362, 263, 1)
KEPT_INDICES = LIP_INDICES + NORMALISATION_INDICES
NUM_KEPT = len(KEPT_INDICES)
NUM_FACE_MESH_POINTS = 478

# Named mesh points, for geometry: outer/inner lip corners and lip mid points.
OUTER_CORNERS = (61, 291)
INNER_CORNERS = (78, 308)
OUTER_MID = (0, 17)  # upper, lower
INNER_MID = (13, 14)  # upper, lower


def kept_position(mesh_index):
    """Position of a face-mesh point inside the kept `(NUM_KEPT, 3)` array."""
    return KEPT_INDICES.index(mesh_index)


def create_face_landmarker(model_path=None, running_mode="video", min_detection_confidence=0.5):
    """A MediaPipe FaceLandmarker for one face, in "image" or "video" running mode."""
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options

    modes = {"image": vision.RunningMode.IMAGE, "video": vision.RunningMode.VIDEO}
    if running_mode not in modes:
        raise ValueError(f"running_mode must be one of {sorted(modes)}, got {running_mode!r}")
    options = vision.FaceLandmarkerOptions(
        base_options=base_options.BaseOptions(
            model_asset_path=str(model_path or assets.face_model_path())),
        running_mode=modes[running_mode],
        num_faces=1,
        min_face_detection_confidence=min_detection_confidence)
    return vision.FaceLandmarker.create_from_options(options)


def detect(landmarker, rgb_frame, timestamp_ms=None):
    """Kept landmarks `(NUM_KEPT, 3)` float32 in pixels for one RGB uint8 frame, or None if no face.

    `timestamp_ms` is required (and must increase) for a video-mode landmarker.
    """
    import mediapipe as mp

    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb_frame))
    if timestamp_ms is None:
        result = landmarker.detect(image)
    else:
        result = landmarker.detect_for_video(image, int(timestamp_ms))
    height, width = rgb_frame.shape[:2]
    return landmarks_from_result(result, width, height)


def landmarks_from_result(result, width, height):
    """Kept landmarks `(NUM_KEPT, 3)` in pixels from a FaceLandmarkerResult, or None if no face."""
    if not result.face_landmarks:
        return None
    face = result.face_landmarks[0]
    points = np.array([(face[i].x * width, face[i].y * height, face[i].z * width)
                       for i in KEPT_INDICES], dtype=np.float32)
    return points
