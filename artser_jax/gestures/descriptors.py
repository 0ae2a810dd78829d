"""Mouth descriptors per segment (docs/method.md): per-frame lip geometry from the landmarks, and
its statistics over each segment's frames; descriptor tables of whole corpora.

Per utterance (all numpy, cheap enough for the input pipeline):
1. `normalise_lips`: per frame, translate the 40 lip points to their centroid, rotate so the eye line is
   horizontal, divide by the inter-ocular distance; y points up.
2. `interpolate_gaps`: frames without a face inside short gaps are filled linearly.
3. `frame_geometry`: inner/outer aperture, mouth width, aperture/width ratio, lip-corner height, inner
   mouth area per frame, plus their first differences per second.
4. `segment_descriptors`: mean/std/min/max of those 12 series over the frames inside each segment; a
   segment with fewer than `min_valid_frames` valid frames (or no valid difference) is invalid.
"""

import dataclasses

import numpy as np

from artser_jax import landmarks as lm
from artser_jax import segments as segments_lib

NUM_LIP_POINTS = len(lm.LIP_INDICES)
GEOMETRY_NAMES = ("inner_aperture", "outer_aperture", "mouth_width", "aperture_width_ratio",
                  "corner_height", "inner_area")
SERIES_NAMES = GEOMETRY_NAMES + tuple(f"d_{name}" for name in GEOMETRY_NAMES)
STATISTIC_NAMES = ("mean", "std", "min", "max")
DESCRIPTOR_NAMES = tuple(f"{series}_{stat}" for series in SERIES_NAMES for stat in STATISTIC_NAMES)
NUM_DESCRIPTORS = len(DESCRIPTOR_NAMES)


def _lip_position(mesh_index):
    return lm.LIP_INDICES.index(mesh_index)


_OUTER_CORNERS = [_lip_position(i) for i in lm.OUTER_CORNERS]
_OUTER_MID = [_lip_position(i) for i in lm.OUTER_MID]
_INNER_MID = [_lip_position(i) for i in lm.INNER_MID]
# The inner-mouth polygon: inner lower lip corner to corner, then the inner upper lip back.
_INNER_POLYGON = ([_lip_position(i) for i in lm.INNER_LOWER_LIP]
                  + [_lip_position(i) for i in reversed(lm.INNER_UPPER_LIP)])
_RIGHT_EYE = [lm.kept_position(i) for i in lm.NORMALISATION_INDICES[:2]]
_LEFT_EYE = [lm.kept_position(i) for i in lm.NORMALISATION_INDICES[2:4]]


def normalise_lips(landmarks, valid):
    """Normalised lip points `(T, 40, 2)` (float64, y up, unit inter-ocular distance) and the frames
    where normalisation was possible `(T,)`.

    `landmarks` is the `(T, 45, 3)` pixel layout of the contract; depth is not used (MediaPipe's z is
    a relative estimate).
    """
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 3 or points.shape[1:] != (lm.NUM_KEPT, 3):
        raise ValueError(f"landmarks must have shape (T, {lm.NUM_KEPT}, 3), got {points.shape}")
    xy = points[..., :2]
    eye_vector = xy[:, _LEFT_EYE].mean(1) - xy[:, _RIGHT_EYE].mean(1)
    inter_ocular = np.linalg.norm(eye_vector, axis=-1)
    angle = np.arctan2(eye_vector[:, 1], eye_vector[:, 0])
    lips = xy[:, :NUM_LIP_POINTS]
    centred = lips - lips.mean(1, keepdims=True)
    cos, sin = np.cos(-angle)[:, None], np.sin(-angle)[:, None]
    safe_scale = np.where(inter_ocular > 1e-6, inter_ocular, 1.0)[:, None]
    x = (cos * centred[..., 0] - sin * centred[..., 1]) / safe_scale
    y = -(sin * centred[..., 0] + cos * centred[..., 1]) / safe_scale  # image y points down
    normalised = np.stack([x, y], axis=-1)
    ok = (np.asarray(valid, bool).reshape(-1) & (inter_ocular > 1e-6)
          & np.isfinite(normalised).all(axis=(1, 2)))
    return np.where(ok[:, None, None], normalised, 0.0), ok


def interpolate_gaps(series, valid, max_gap_frames):
    """Linear interpolation of `series` `(T, ...)` across runs of at most `max_gap_frames` invalid
    frames that have valid frames on both sides. Returns the filled series and the new validity."""
    valid = np.asarray(valid, bool)
    count = len(valid)
    if count == 0 or valid.all() or not valid.any():
        return series, valid
    index = np.arange(count)
    previous = np.maximum.accumulate(np.where(valid, index, -1))
    following = np.minimum.accumulate(np.where(valid, index, count)[::-1])[::-1]
    fillable = ((~valid) & (previous >= 0) & (following < count)
                & (following - previous - 1 <= max_gap_frames))
    if not fillable.any():
        return series, valid
    left, right = previous[fillable], following[fillable]
    weight = ((index[fillable] - left) / (right - left)).reshape((-1,) + (1,) * (series.ndim - 1))
    filled = series.copy()
    filled[fillable] = series[left] * (1.0 - weight) + series[right] * weight
    return filled, valid | fillable


def frame_geometry(lips):
    """Mouth geometry `(T, 6)` in the order of `GEOMETRY_NAMES` from normalised lips `(T, 40, 2)`."""
    inner_aperture = np.linalg.norm(lips[:, _INNER_MID[0]] - lips[:, _INNER_MID[1]], axis=-1)
    outer_aperture = np.linalg.norm(lips[:, _OUTER_MID[0]] - lips[:, _OUTER_MID[1]], axis=-1)
    width = np.linalg.norm(lips[:, _OUTER_CORNERS[0]] - lips[:, _OUTER_CORNERS[1]], axis=-1)
    ratio = outer_aperture / np.maximum(width, 1e-6)
    corner_height = lips[:, _OUTER_CORNERS, 1].mean(1)
    polygon = lips[:, _INNER_POLYGON]
    x, y = polygon[..., 0], polygon[..., 1]
    area = 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1))
    return np.stack([inner_aperture, outer_aperture, width, ratio, corner_height, area], axis=-1)


def _masked_statistics(series, membership):
    """mean, std, min, max `(S, F)` each of `series` `(T, F)` over the frames of `membership` `(S, T)`."""
    weights = membership.astype(np.float64)
    count = np.maximum(weights.sum(1, keepdims=True), 1.0)
    mean = weights @ series / count
    variance = np.maximum(weights @ (series ** 2) / count - mean ** 2, 0.0)
    masked = membership[:, :, None]
    minimum = np.where(masked, series[None], np.inf).min(1, initial=np.inf)
    maximum = np.where(masked, series[None], -np.inf).max(1, initial=-np.inf)
    empty = ~membership.any(1)
    minimum[empty] = 0.0
    maximum[empty] = 0.0
    return mean, np.sqrt(variance), minimum, maximum


def _frames_of_example(example, segments, max_gap_frames):
    """Normalised lips `(T, 40, 2)`, frame validity `(T,)` and segment membership `(S, T)`."""
    name = segments_lib.utterance_name(example)
    frame_times = np.asarray(example["frame_times"], np.float64).reshape(-1)
    landmark_array = np.asarray(example["landmarks"])
    landmark_valid = np.asarray(example["landmark_valid"], bool).reshape(-1)
    if not (len(frame_times) == len(landmark_array) == len(landmark_valid)):
        raise ValueError(f"{name}: frame_times ({len(frame_times)}), landmarks ({len(landmark_array)}) "
                         f"and landmark_valid ({len(landmark_valid)}) must have one entry per frame")
    try:
        lips, valid = normalise_lips(landmark_array, landmark_valid)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    lips, valid = interpolate_gaps(lips, valid, max_gap_frames)
    start = np.asarray(segments["seg_start"], np.float64)[:, None]
    end = np.asarray(segments["seg_end"], np.float64)[:, None]
    membership = ((frame_times[None] >= start) & (frame_times[None] < end)
                  & np.asarray(segments["seg_mask"], bool)[:, None])
    return lips, valid, membership


def segment_descriptors(example, segments, min_valid_frames=2, max_gap_frames=3):
    """Raw (not speaker-normalised) descriptors `(S, NUM_DESCRIPTORS)` float64 and validity `(S,)`.

    A segment is valid when it is a real (unmasked) segment with at least `min_valid_frames` valid
    video frames and at least one pair of consecutive valid frames; invalid rows are zero.
    """
    lips, valid, all_membership = _frames_of_example(example, segments, max_gap_frames)
    frame_rate = float(np.asarray(example["frame_rate"]))
    if not frame_rate > 0:
        raise ValueError(f"{segments_lib.utterance_name(example)}: frame_rate must be positive, got {frame_rate}")
    # Statistics only for real segments: most rows of a padded layout are padding.
    real = np.flatnonzero(np.asarray(segments["seg_mask"], bool))
    membership = all_membership[real]
    geometry = frame_geometry(lips)
    # Difference at frame t is (g[t] - g[t-1]) per second; it belongs to a segment holding both frames.
    deltas = np.diff(geometry, axis=0, prepend=geometry[:1]) * frame_rate
    frame_member = membership & valid[None]
    pair_valid = np.concatenate([[False], valid[1:] & valid[:-1]])
    pair_member = membership & np.concatenate(
            [np.zeros((len(membership), 1), bool), membership[:, :-1]], axis=1) & pair_valid[None]
    statistics = (_masked_statistics(geometry, frame_member)
                  + _masked_statistics(deltas, pair_member))
    # Order: series-major, statistic-minor, as DESCRIPTOR_NAMES.
    geometry_stats = np.stack(statistics[:4], axis=-1)  # (S, 6, 4)
    delta_stats = np.stack(statistics[4:], axis=-1)
    real_descriptors = np.concatenate([geometry_stats, delta_stats], axis=1).reshape(len(real), -1)
    real_ok = (frame_member.sum(1) >= min_valid_frames) & pair_member.any(1)
    real_ok &= np.isfinite(real_descriptors).all(1)
    descriptors = np.zeros((len(all_membership), NUM_DESCRIPTORS))
    ok = np.zeros(len(all_membership), bool)
    descriptors[real[real_ok]] = real_descriptors[real_ok]
    ok[real[real_ok]] = True
    return descriptors, ok


def segment_mean_lips(example, segments, max_gap_frames=3):
    """Mean normalised lip points `(S, 40, 2)` over each segment's valid frames, and which segments
    have at least one valid frame `(S,)`. Used by the analysis figures."""
    lips, valid, membership = _frames_of_example(example, segments, max_gap_frames)
    weights = (membership & valid[None]).astype(np.float64)
    count = weights.sum(1)
    mean = np.einsum("st,tpc->spc", weights, lips) / np.maximum(count, 1.0)[:, None, None]
    return mean, count > 0


def speaker_key_of(example):
    """`corpus/speaker` of a TFDS example: the key of the per-speaker statistics."""
    return f"{segments_lib.text_value(example['corpus'])}/{segments_lib.text_value(example['speaker'])}"


@dataclasses.dataclass
class DescriptorTable:
    """Valid segment descriptors of one corpus, one row per segment, with their provenance."""
    descriptors: np.ndarray  # (N, D) raw
    speaker_keys: np.ndarray  # (N,) str
    emotions: np.ndarray  # (N,) int, -1 when the example has no emotion
    example_index: np.ndarray  # (N,) int
    segment_index: np.ndarray  # (N,) int
    emotion_names: tuple = ()
    num_examples: int = 0
    num_segments: int = 0  # all real segments, valid or not
    lips: np.ndarray = None  # (N, 40, 2) mean normalised lips per segment, when asked for


def descriptor_table(examples, config, emotion_names=(), progress=None, with_lips=False):
    """Runs segmentation and descriptors over `examples` (an iterable of TFDS example dicts); `config`
    is a `cluster_space.GestureConfig`."""
    rows, keys, emotions, example_index, segment_index, lips = [], [], [], [], [], []
    num_examples = num_segments = 0
    for i, example in enumerate(examples):
        segments = config.segments(example)
        descriptors, valid = segment_descriptors(example, segments, config.min_valid_frames,
                                                 config.max_gap_frames)
        num_examples += 1
        num_segments += int(segments["seg_mask"].sum())
        kept = np.flatnonzero(valid)
        rows.append(descriptors[kept])
        keys += [speaker_key_of(example)] * len(kept)
        emotions.append(np.full(len(kept), int(example.get("emotion", -1))))
        example_index.append(np.full(len(kept), i))
        segment_index.append(kept)
        if with_lips:
            lips.append(segment_mean_lips(example, segments, config.max_gap_frames)[0][kept])
        if progress is not None:
            progress.update(1)
    return DescriptorTable(
            descriptors=np.concatenate(rows) if rows else np.zeros((0, NUM_DESCRIPTORS)),
            speaker_keys=np.asarray(keys, dtype=str),
            emotions=np.concatenate(emotions).astype(np.int64) if emotions else np.zeros(0, np.int64),
            example_index=np.concatenate(example_index) if rows else np.zeros(0, np.int64),
            segment_index=np.concatenate(segment_index) if rows else np.zeros(0, np.int64),
            emotion_names=tuple(emotion_names), num_examples=num_examples, num_segments=num_segments,
            lips=np.concatenate(lips).astype(np.float32) if lips else None)

