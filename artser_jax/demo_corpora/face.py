"""Talking-face video from one real photograph: the mouth of `skimage.data.astronaut()` follows the phones.

The face landmarker runs once on the photograph to locate the lips. Each frame then warps a region
around the mouth with a backward map (`cv2.remap`): the lips part by the frame's opening (the upper lip
rises a little, the lower lip and the jaw drop), the gap shows the photograph's own teeth and then a
dark mouth cavity, the corners move outward (spread) or inward (rounded) and up or down (emotion).
A closed mouth is made by pulling the lips together over the teeth. Per-speaker appearance (scale,
position, rotation, mirroring, tint, brightness) and per-corpus picture quality are applied to the
whole frame after the mouth warp.
"""

import dataclasses

import cv2
import numpy as np

from artser_jax import landmarks
from artser_jax.demo_corpora import parameters as P

PHOTO_SIZE = 512
CHIN_INDEX = 152
_CAVITY_RGB = np.array([52.0, 18.0, 22.0], np.float32)


@dataclasses.dataclass(frozen=True)
class MouthGeometry:
    """Lip geometry of the photograph, in its pixel coordinates (found once with MediaPipe)."""
    inner_upper: np.ndarray   # (N, 2) from inner corner to inner corner, x increasing
    inner_lower: np.ndarray   # (N, 2)
    outer_corners: np.ndarray  # (2, 2)
    chin: np.ndarray          # (2,)
    nose_tip: np.ndarray      # (2,)


def photograph():
    """The real face photograph (RGB uint8, 512x512) the demo videos animate."""
    from skimage import data

    return data.astronaut()


def locate_mouth(image=None, model_path=None):
    """Runs the face landmarker once on the photograph and returns its MouthGeometry."""
    import mediapipe as mp

    image = photograph() if image is None else image
    detector = landmarks.create_face_landmarker(model_path=model_path, running_mode="image")
    try:
        result = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
    finally:
        detector.close()
    if not result.face_landmarks:
        raise RuntimeError("the face landmarker found no face in skimage.data.astronaut(); "
                           "check the face model (artser_jax.assets.face_model_path())")
    height, width = image.shape[:2]
    points = np.array([(p.x * width, p.y * height) for p in result.face_landmarks[0]], np.float32)
    left_corner, right_corner = landmarks.INNER_CORNERS
    upper = points[[left_corner, *landmarks.INNER_UPPER_LIP, right_corner]]
    lower = points[list(landmarks.INNER_LOWER_LIP)]
    return MouthGeometry(inner_upper=upper[np.argsort(upper[:, 0])], inner_lower=lower[np.argsort(lower[:, 0])],
                         outer_corners=points[list(landmarks.OUTER_CORNERS)], chin=points[CHIN_INDEX],
                         nose_tip=points[landmarks.NORMALISATION_INDICES[-1]])


def viseme_of(phone):
    """(opening, spread) target of an ARPABET phone (stress digits ignored); rest mouth for silence."""
    base = phone.rstrip("012")
    for members, target in P.VISEME_CLASSES.values():
        if base in members:
            return target
    if base == "":
        return P.REST_MOUTH
    raise ValueError(f"phone {phone!r} has no viseme class in parameters.VISEME_CLASSES")


def mouth_track(phones, frame_times, emotion, articulation_gain=1.0, mouth_style=None):
    """Per-frame mouth state from a phone timeline.

    phones: sequence of (start_s, end_s, ARPABET label); `mouth_style`: emotion -> (opening gain, added
    spread, corner lift), version 1's EMOTION_MOUTH_STYLE by default. Returns float32 arrays (T,) of
    opening (px), spread (px) and corner lift (px, positive = up) at `frame_times`.
    """
    step = 0.001
    duration = max([end for _, end, _ in phones] + [float(frame_times[-1]) if len(frame_times) else 0.0]) + 0.1
    grid = np.arange(0.0, duration, step)
    opening = np.full(grid.shape, P.REST_MOUTH[0], np.float64)
    spread = np.full(grid.shape, P.REST_MOUTH[1], np.float64)
    bilabial = np.zeros(grid.shape, bool)
    for start, end, label in phones:
        inside = (grid >= start) & (grid < end)
        opening[inside], spread[inside] = viseme_of(label)
        if label.rstrip("012") in P.VISEME_CLASSES["bilabial"][0]:
            margin = 0.2 * (end - start)
            bilabial |= (grid >= start + margin) & (grid < end - margin)
    radius = int(4 * P.COARTICULATION_SIGMA_S / step)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) * step / P.COARTICULATION_SIGMA_S) ** 2)
    kernel /= kernel.sum()
    opening = np.convolve(np.pad(opening, radius, mode="edge"), kernel, mode="valid")
    spread = np.convolve(np.pad(spread, radius, mode="edge"), kernel, mode="valid")
    opening[bilabial] = 0.0  # the lips really meet in p, b, m
    gain, added_spread, lift = (mouth_style or P.EMOTION_MOUTH_STYLE)[emotion]
    index = np.clip(np.round(np.asarray(frame_times) / step).astype(int), 0, len(grid) - 1)
    opening_px = opening[index] * gain * articulation_gain * P.MAX_OPENING_PX
    spread_px = np.clip(spread[index] + added_spread, -1.0, 1.0) * P.MAX_SPREAD_PX
    lift_px = np.full(index.shape, lift * P.MAX_CORNER_LIFT_PX)
    return opening_px.astype(np.float32), spread_px.astype(np.float32), lift_px.astype(np.float32)


class MouthWarper:
    """Renders the photograph with a given mouth state; the fixed parts of the maps are precomputed."""

    def __init__(self, geometry, image=None):
        self.photo = np.ascontiguousarray(photograph() if image is None else image)
        self.image = self.photo.astype(np.float32)
        g = geometry
        self.center_x = float((g.outer_corners[0, 0] + g.outer_corners[1, 0]) / 2)
        self.half_width = float(abs(g.outer_corners[1, 0] - g.outer_corners[0, 0]) / 2)
        self.inner_left, self.inner_right = float(g.inner_upper[0, 0]), float(g.inner_upper[-1, 0])
        self.mouth_y = float(np.mean(g.inner_upper[:, 1]))
        self.chin_y = float(g.chin[1])
        # Region that the warp may change: from just below the nose to below the chin.
        self.x0 = int(self.center_x - 2.2 * self.half_width)
        self.x1 = int(self.center_x + 2.2 * self.half_width)
        self.y0 = int(max(g.nose_tip[1] + 3, self.mouth_y - 14))
        self.y1 = int(min(PHOTO_SIZE, self.chin_y + 22))
        ys, xs = np.mgrid[self.y0:self.y1, self.x0:self.x1].astype(np.float32)
        self.xs, self.ys = xs, ys
        # Horizontal envelope: flat across the mouth, decaying beyond the corners and away from the lips.
        beyond = np.maximum(np.abs(xs - self.center_x) - self.half_width, 0.0)
        self.spread_envelope = (np.exp(-0.5 * (beyond / 9.0) ** 2) *
                                np.exp(-0.5 * ((ys - self.mouth_y) / 11.0) ** 2))
        self.jaw_profile_sigma = 1.3 * self.half_width
        self._upper_x, self._upper_y = g.inner_upper[:, 0], g.inner_upper[:, 1]
        self._lower_x, self._lower_y = g.inner_lower[:, 0], g.inner_lower[:, 1]
        self.corners = g.outer_corners.astype(np.float32)

    def render(self, opening_px, spread_px, lift_px, upper_share=0.3):
        """The full photograph (uint8 RGB) with the mouth in the given state."""
        xs, ys = self.xs, self.ys
        # 1) Corners move outward (spread > 0) or inward (rounded); backward map x.
        relative = np.clip((xs - self.center_x) / self.half_width, -1.5, 1.5)
        source_x = xs - spread_px * relative * self.spread_envelope
        # 2) Corner lift (smile / frown): a bump around each corner.
        lift = np.zeros_like(xs)
        for corner_x, corner_y in self.corners:
            corner_x = corner_x + spread_px * np.sign(corner_x - self.center_x)
            lift += np.exp(-((xs - corner_x) ** 2 + (ys - corner_y) ** 2) / (2 * 7.0 ** 2))
        # 3) Vertical: lips part around a seam between the photograph's inner lip lines.
        upper = np.interp(source_x, self._upper_x, self._upper_y)
        lower = np.interp(source_x, self._lower_x, self._lower_y)
        inside = (source_x > self.inner_left) & (source_x < self.inner_right)
        teeth_gap = np.where(inside, np.maximum(lower - upper, 0.0), 0.0)
        seam = upper + 0.45 * teeth_gap
        half_inner = (self.inner_right - self.inner_left) / 2
        inner_center = (self.inner_right + self.inner_left) / 2
        profile = np.sqrt(np.clip(1.0 - ((source_x - inner_center) / half_inner) ** 2, 0.0, 1.0))
        opening = opening_px * profile
        rise, drop = upper_share * opening, (1.0 - upper_share) * opening
        top, bottom = seam - rise, seam + drop
        # Above the gap: the upper lip edge samples the photograph's inner upper lip, fading upward.
        upper_offset = (upper - top) * np.exp(-np.maximum(top - ys, 0.0) / 8.0)
        # Below the gap: lower lip edge -> photograph's inner lower lip, blending into a rigid jaw drop.
        jaw_drop = opening_px * (1.0 - upper_share) * np.exp(
            -0.5 * ((source_x - self.center_x) / self.jaw_profile_sigma) ** 2)
        jaw_drop = jaw_drop * np.exp(-0.5 * (np.maximum(ys - self.chin_y, 0.0) / 9.0) ** 2)
        lip_weight = np.exp(-np.maximum(ys - bottom, 0.0) / 6.0)
        lower_offset = lip_weight * (lower - bottom) + (1.0 - lip_weight) * (-jaw_drop)
        in_gap = (ys >= top) & (ys <= bottom) & (opening > 0.3)
        source_y = np.where(ys < top, ys + upper_offset, ys + lower_offset)
        # Inside the gap: first the photograph's teeth (top of the gap), then the cavity.
        depth = ys - top
        source_y = np.where(in_gap, upper + np.minimum(depth, teeth_gap), source_y)
        source_y = source_y + lift_px * lift
        region = cv2.remap(self.image, source_x.astype(np.float32), source_y.astype(np.float32),
                           interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cavity = in_gap * np.clip((depth - 0.85 * teeth_gap) / 1.5, 0.0, 1.0)
        cavity = cavity * np.clip((bottom - ys) / 1.0, 0.3, 1.0)
        region = region * (1.0 - cavity[..., None]) + _CAVITY_RGB * cavity[..., None]
        frame = self.photo.copy()
        frame[self.y0:self.y1, self.x0:self.x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
        return frame


@dataclasses.dataclass(frozen=True)
class Appearance:
    """Per-speaker look: scale, shift (px), rotation (deg), mirroring, RGB tint, brightness."""
    scale: float
    shift: tuple
    rotation_deg: float
    mirrored: bool
    tint: tuple
    brightness: float


def sample_appearance(rng):
    return Appearance(
        scale=float(rng.uniform(*P.APPEARANCE_SCALE)),
        shift=tuple(float(v) for v in rng.uniform(-P.APPEARANCE_SHIFT_PX, P.APPEARANCE_SHIFT_PX, 2)),
        rotation_deg=float(rng.uniform(-P.APPEARANCE_ROTATION_DEG, P.APPEARANCE_ROTATION_DEG)),
        mirrored=bool(rng.random() < 0.5),
        tint=tuple(float(v) for v in rng.uniform(*P.APPEARANCE_TINT, 3)),
        brightness=float(rng.uniform(*P.APPEARANCE_BRIGHTNESS)))


def frame_transform(crop, frame_size, appearance, face_center, sway_shift=(0.0, 0.0), sway_deg=0.0):
    """2x3 affine map from photograph pixels to frame pixels."""
    x0, y0, crop_width, crop_height = crop
    width, height = frame_size
    zoom = width / crop_width
    angle = np.deg2rad(appearance.rotation_deg + sway_deg)
    rotation = appearance.scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    center = np.asarray(face_center, np.float64)
    shift = np.asarray(appearance.shift) + np.asarray(sway_shift)
    # photo p -> p' = center + R (p - center) + shift -> frame q = zoom (p' - crop origin)
    linear = zoom * rotation
    offset = zoom * (center - rotation @ center + shift - np.array([x0, y0]))
    matrix = np.hstack([linear, offset[:, None]])
    if appearance.mirrored:
        matrix = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0.0, 0.0, 1.0]])
    return matrix.astype(np.float32)


def sensor_noise(frame_size, noise_std, rng, count=3):
    """A few frames of Gaussian sensor noise (float32), cycled through a clip to save time."""
    width, height = frame_size
    return rng.normal(0.0, noise_std, (count, height, width, 3)).astype(np.float32)


def finish_frame(photo_frame, matrix, frame_size, appearance, blur_sigma_px, noise):
    """Photograph -> uint8 RGB frame: affine placement, tint, brightness, blur, sensor noise."""
    frame = cv2.warpAffine(photo_frame, matrix, frame_size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    frame *= np.asarray(appearance.tint, np.float32) * appearance.brightness
    if blur_sigma_px > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), blur_sigma_px)
    frame += noise
    return np.clip(frame, 0, 255).astype(np.uint8)
