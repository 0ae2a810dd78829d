"""Articulatory gestures (METHOD.md 2.2): mouth descriptors per segment, a shared k-means cluster space
for a source and a target corpus, the common clusters, and the `GestureModel` artifact.

Pipeline per utterance (all numpy, cheap enough for the input pipeline):
1. `normalise_lips`: per frame, translate the 40 lip points to their centroid, rotate so the eye line is
   horizontal, divide by the inter-ocular distance; y points up.
2. `interpolate_gaps`: frames without a face inside short gaps are filled linearly.
3. `frame_geometry`: inner/outer aperture, mouth width, aperture/width ratio, lip-corner height, inner
   mouth area per frame, plus their first differences per second.
4. `segment_descriptors`: mean/std/min/max of those 12 series over the frames inside each segment; a
   segment with fewer than `min_valid_frames` valid frames (or no valid difference) is invalid.
5. Per-speaker z-normalisation (statistics from the fit data, keyed `corpus/speaker`), then a global
   standard scaler, then the nearest k-means centroid.

The artifact is one `.npz` file (arrays plus a JSON metadata string; loads with `allow_pickle=False`).
"""

import dataclasses
import json
import logging
import pathlib
import re
import time

import numpy as np

from artser_jax import landmarks as lm
from artser_jax import segments as segments_lib

FORMAT_VERSION = 1
NUM_LIP_POINTS = len(lm.LIP_INDICES)
GEOMETRY_NAMES = ("inner_aperture", "outer_aperture", "mouth_width", "aperture_width_ratio",
                  "corner_height", "inner_area")
SERIES_NAMES = GEOMETRY_NAMES + tuple(f"d_{name}" for name in GEOMETRY_NAMES)
STATISTIC_NAMES = ("mean", "std", "min", "max")
DESCRIPTOR_NAMES = tuple(f"{series}_{stat}" for series in SERIES_NAMES for stat in STATISTIC_NAMES)
NUM_DESCRIPTORS = len(DESCRIPTOR_NAMES)
# ARPAbet vowels (lower case, stress digits stripped), the label set of Montreal Forced Aligner's and
# festival's English phone sets: the "clusters" of the phoneme-anchored baseline.
ARPABET_VOWELS = ("aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh", "er", "ey", "ih", "ix", "iy",
                  "ow", "oy", "uh", "uw")
UNSEEN_SPEAKER_MODES = ("utterance", "corpus")


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


def _option(default, help_text):
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass
class GestureConfig:
    """Every choice of the gesture pipeline; saved inside the artifact it produced."""
    segment_method: str = _option("phones", "Segments: 'phones' (alignment) or 'windows' (voiced).")
    max_segments: int = _option(64, "Static segment count per utterance (padded, masked).")
    min_video_frames: int = _option(2, "Phones shorter than this many video frames are dropped.")
    window_seconds: float = _option(0.2, "Window length for segment_method='windows'.")
    hop_seconds: float = _option(0.1, "Window hop for segment_method='windows'.")
    min_valid_frames: int = _option(2, "Valid video frames a segment needs for a descriptor.")
    max_gap_frames: int = _option(3, "Longest run of faceless frames that is interpolated.")
    num_clusters: int = _option(8, "K of k-means.")
    seed: int = _option(0, "k-means seed.")
    n_init: int = _option(4, "k-means++ restarts; the best inertia wins.")
    algorithm: str = _option("kmeans", "'kmeans' (full-batch Lloyd) or 'minibatch'.")
    minibatch_size: int = _option(4096, "Batch size for algorithm='minibatch'.")
    max_iter: int = _option(300, "k-means iterations (epochs for 'minibatch').")
    common_min_ratio: float = _option(0.5, "Common cluster: min(p_s, p_t) / max(p_s, p_t) >= this.")
    common_min_count: int = _option(10, "Common cluster: both corpora have at least this many segments.")
    min_speaker_segments: int = _option(
            10, "Speakers with fewer valid segments are normalised with their corpus's statistics.")
    unseen_speaker: str = _option(
            "utterance", "Speakers not in the fit data: 'utterance' (own statistics) or 'corpus'.")
    min_utterance_segments: int = _option(
            4, "unseen_speaker='utterance' with fewer valid segments than this uses the corpus's.")
    std_floor: float = _option(1e-3, "Lower bound on a normalisation std (near-constant descriptors).")

    def validate(self):
        if self.segment_method not in segments_lib.METHODS:
            raise ValueError(f"segment_method must be one of {segments_lib.METHODS}, "
                             f"got {self.segment_method!r}")
        if self.algorithm not in ("kmeans", "minibatch"):
            raise ValueError(f"algorithm must be 'kmeans' or 'minibatch', got {self.algorithm!r}")
        if self.unseen_speaker not in UNSEEN_SPEAKER_MODES:
            raise ValueError(f"unseen_speaker must be one of {UNSEEN_SPEAKER_MODES}, "
                             f"got {self.unseen_speaker!r}")
        if self.num_clusters < 2:
            raise ValueError(f"num_clusters must be at least 2, got {self.num_clusters}")
        if not 0.0 <= self.common_min_ratio <= 1.0:
            raise ValueError(f"common_min_ratio must be in [0, 1], got {self.common_min_ratio}")
        if self.min_valid_frames < 2:
            raise ValueError("min_valid_frames must be at least 2 (first differences need two frames)")
        return self

    def segment_options(self):
        """Keyword arguments of `segments.utterance_segments` for this config's method."""
        if self.segment_method == "phones":
            return {"min_video_frames": self.min_video_frames}
        return {"window_seconds": self.window_seconds, "hop_seconds": self.hop_seconds}

    def segments(self, example):
        return segments_lib.utterance_segments(example, self.segment_method, self.max_segments,
                                               **self.segment_options())


# ----------------------------------------------------------------------------------------------------
# Per-frame normalisation and geometry.

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


# ----------------------------------------------------------------------------------------------------
# Common clusters, clustering, normalisation statistics.

def common_clusters(source_counts, target_counts, min_ratio=0.5, min_count=10):
    """Cluster c is common when min(p_s, p_t) / max(p_s, p_t) >= `min_ratio` and both counts are at
    least `min_count`; p_s, p_t are the fractions of each corpus's segments that fall in c."""
    source_counts = np.asarray(source_counts, np.float64)
    target_counts = np.asarray(target_counts, np.float64)
    if source_counts.shape != target_counts.shape or source_counts.ndim != 1:
        raise ValueError(f"counts must be two 1-D arrays of the same length, got shapes "
                         f"{source_counts.shape} and {target_counts.shape}")
    source_share = source_counts / max(source_counts.sum(), 1.0)
    target_share = target_counts / max(target_counts.sum(), 1.0)
    high = np.maximum(source_share, target_share)
    ratio = np.where(high > 0, np.minimum(source_share, target_share) / np.where(high > 0, high, 1.0),
                     0.0)
    return (ratio >= min_ratio) & (source_counts >= min_count) & (target_counts >= min_count)


def cluster_purity(cluster_ids, true_labels):
    """Fraction of items whose cluster's majority true label is their own label."""
    cluster_ids = np.asarray(cluster_ids)
    true_labels = np.asarray(true_labels)
    matched = 0
    for cluster in np.unique(cluster_ids):
        _, counts = np.unique(true_labels[cluster_ids == cluster], return_counts=True)
        matched += counts.max()
    return matched / len(cluster_ids)


def fit_kmeans(features, config):
    """k-means++ with `config.n_init` restarts and `config.seed`; returns centroids `(K, D)` float64."""
    from sklearn import cluster

    if len(features) < config.num_clusters:
        raise ValueError(f"k-means with K={config.num_clusters} needs at least that many valid segments, "
                         f"got {len(features)}")
    if config.algorithm == "kmeans":
        model = cluster.KMeans(n_clusters=config.num_clusters, init="k-means++", n_init=config.n_init,
                               max_iter=config.max_iter, random_state=config.seed)
    else:
        model = cluster.MiniBatchKMeans(n_clusters=config.num_clusters, init="k-means++",
                                        n_init=config.n_init, max_iter=config.max_iter,
                                        batch_size=config.minibatch_size, random_state=config.seed)
    model.fit(features)
    return np.asarray(model.cluster_centers_, np.float64)


def nearest_centroid(features, centroids):
    """Index of the nearest centroid (squared Euclidean) for each row of `features`, int32."""
    distances = ((features ** 2).sum(1, keepdims=True) - 2.0 * features @ centroids.T
                 + (centroids ** 2).sum(1)[None])
    return np.argmin(distances, axis=1).astype(np.int32)


def speaker_statistics(descriptors, speaker_keys, corpus_index, corpus_mean, corpus_std, min_segments,
                       std_floor):
    """Per-speaker mean and std over valid descriptors `(N, D)`; a speaker with fewer than
    `min_segments` rows gets the statistics of its corpus (`corpus_mean[corpus_index[row]]`).
    Returns the sorted speaker keys and their `(P, D)` means and stds."""
    keys, first, inverse, counts = np.unique(np.asarray(speaker_keys), return_index=True,
                                             return_inverse=True, return_counts=True)
    sums = np.zeros((len(keys), descriptors.shape[1]))
    squares = np.zeros_like(sums)
    np.add.at(sums, inverse, descriptors)
    np.add.at(squares, inverse, descriptors ** 2)
    mean = sums / counts[:, None]
    std = np.maximum(np.sqrt(np.maximum(squares / counts[:, None] - mean ** 2, 0.0)), std_floor)
    rare = counts < min_segments
    mean[rare] = corpus_mean[corpus_index[first[rare]]]
    std[rare] = corpus_std[corpus_index[first[rare]]]
    return keys, mean, std


def _corpus_of(speaker_key):
    return speaker_key.split("/", 1)[0]


# ----------------------------------------------------------------------------------------------------
# The artifacts.

def _normalise_label(label):
    return re.sub(r"\d+$", "", str(label).strip().lower())


@dataclasses.dataclass
class GestureModel:
    """A fitted shared cluster space: speaker statistics, scaler, centroids, common set, counts.

    `counts[i, c]` is the number of fit segments of `corpora[i]` (0: source, 1: target) in cluster c.
    Every fit speaker has statistics (`corpus/speaker` keys, sorted); rare ones carry their corpus's.
    """
    config: GestureConfig
    corpora: tuple
    datasets: tuple
    centroids: np.ndarray
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    common: np.ndarray
    counts: np.ndarray
    speaker_keys: np.ndarray
    speaker_mean: np.ndarray
    speaker_std: np.ndarray
    corpus_mean: np.ndarray  # (2, D): fallback statistics, pooled over each corpus's fit segments
    corpus_std: np.ndarray
    kind = "kmeans"

    def __post_init__(self):
        self._speaker_index = {str(key): i for i, key in enumerate(self.speaker_keys)}

    @property
    def num_clusters(self):
        return len(self.centroids)

    def normalisation(self, speaker_key, descriptors=None, valid=None):
        """Mean and std for one speaker: its own fit statistics when known, else (for unseen speakers)
        the utterance's own valid descriptors if `unseen_speaker == 'utterance'` and it has at least
        `min_utterance_segments`, else the statistics of the speaker's corpus (mean of both corpora when
        the corpus is unknown)."""
        index = self._speaker_index.get(speaker_key)
        if index is not None:
            return self.speaker_mean[index], self.speaker_std[index]
        config = self.config
        if (config.unseen_speaker == "utterance" and descriptors is not None
                and valid.sum() >= config.min_utterance_segments):
            own = descriptors[valid]
            return own.mean(0), np.maximum(own.std(0), config.std_floor)
        corpus = _corpus_of(speaker_key)
        if corpus in self.corpora:
            i = self.corpora.index(corpus)
            return self.corpus_mean[i], self.corpus_std[i]
        return self.corpus_mean.mean(0), self.corpus_std.mean(0)

    def assign_descriptors(self, descriptors, valid, speaker_key):
        """Cluster ids `(S,)` int32 of raw descriptors of one utterance of one speaker; -1 if invalid."""
        valid = np.asarray(valid, bool)
        mean, std = self.normalisation(speaker_key, descriptors, valid)
        features = ((descriptors - mean) / std - self.scaler_mean) / self.scaler_scale
        ids = nearest_centroid(features, self.centroids)
        return np.where(valid, ids, -1).astype(np.int32)

    def assign_table(self, table):
        """Cluster ids `(N,)` int32 of every row of a `DescriptorTable`: rows of fit speakers are
        normalised with their statistics, rows of other speakers utterance by utterance."""
        ids = np.empty(len(table.descriptors), np.int32)
        row = np.clip(np.searchsorted(self.speaker_keys, table.speaker_keys), 0,
                      max(len(self.speaker_keys) - 1, 0))
        known = (np.asarray(self.speaker_keys)[row] == table.speaker_keys) if len(self.speaker_keys) else (
                np.zeros(len(ids), bool))
        features = ((table.descriptors[known] - self.speaker_mean[row[known]]) / self.speaker_std[row[known]]
                    - self.scaler_mean) / self.scaler_scale
        ids[known] = nearest_centroid(features, self.centroids)
        for example in np.unique(table.example_index[~known]):
            rows = np.flatnonzero((table.example_index == example) & ~known)
            ids[rows] = self.assign_descriptors(table.descriptors[rows], np.ones(len(rows), bool),
                                                str(table.speaker_keys[rows[0]]))
        return ids

    def assign_example(self, example, segments):
        """Cluster ids `(S,)` int32 for the segments of one TFDS example; -1 where a segment is padding
        or has no valid descriptor."""
        descriptors, valid = segment_descriptors(example, segments, self.config.min_valid_frames,
                                                 self.config.max_gap_frames)
        return self.assign_descriptors(descriptors, valid, speaker_key_of(example))

    def save(self, path):
        metadata = {
                "format_version": FORMAT_VERSION, "kind": self.kind,
                "config": dataclasses.asdict(self.config), "corpora": list(self.corpora),
                "datasets": list(self.datasets), "descriptor_names": list(DESCRIPTOR_NAMES),
        }
        arrays = {name: getattr(self, name) for name in (
                "centroids", "scaler_mean", "scaler_scale", "common", "counts", "speaker_mean",
                "speaker_std", "corpus_mean", "corpus_std")}
        arrays["speaker_keys"] = np.asarray(self.speaker_keys, dtype=str)
        _write_artifact(path, metadata, arrays)


@dataclasses.dataclass
class PhoneGestureModel:
    """Phone identities as clusters (phoneme-anchored baseline): cluster id = index of the segment's
    phone label (lower case, stress digits stripped) in `phones`, -1 otherwise; every cluster is common.
    Needs `phones` segments; no video is used."""
    phones: tuple = ARPABET_VOWELS
    kind = "phone"

    def __post_init__(self):
        self.phones = tuple(_normalise_label(phone) for phone in self.phones)

    @property
    def num_clusters(self):
        return len(self.phones)

    @property
    def common(self):
        return np.ones(self.num_clusters, bool)

    def assign_example(self, example, segments):
        del example  # the phone labels are in the segments
        index = {phone: i for i, phone in enumerate(self.phones)}
        ids = np.array([index.get(_normalise_label(label), -1) for label in segments["seg_phone"]],
                       np.int32)
        return np.where(np.asarray(segments["seg_mask"], bool), ids, -1).astype(np.int32)

    def save(self, path):
        _write_artifact(path, {"format_version": FORMAT_VERSION, "kind": self.kind,
                               "phones": list(self.phones)}, {})


def phone_gesture_model(anchor_phones="vowels"):
    """The phone-identity model for `anchor_phones`: "vowels" (ARPAbet vowels) or labels joined by
    spaces or commas (e.g. "aa iy uw")."""
    if anchor_phones == "vowels":
        return PhoneGestureModel()
    phones = tuple(_normalise_label(p) for p in re.split(r"[\s,]+", anchor_phones) if p)
    if not phones or len(set(phones)) != len(phones):
        raise ValueError(f"anchor_phones must be 'vowels' or distinct phone labels, got {anchor_phones!r}")
    return PhoneGestureModel(phones=phones)


def _write_artifact(path, metadata, arrays):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:  # a file object: numpy would append ".npz" to a bare name
        np.savez(f, metadata=np.array(json.dumps(metadata)), **arrays)
    partial.replace(path)  # never leave a half-written artifact under the final name


def load_gesture_model(path):
    """A `GestureModel` or `PhoneGestureModel` from its `.npz` artifact."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gesture model {path} does not exist; fit one with launch/fit_gestures.py")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        metadata = json.loads(str(arrays.pop("metadata")))
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"{path} is not a gesture model artifact: {error}") from None
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has gesture model format {version}; this code reads {FORMAT_VERSION}")
    if metadata["kind"] == "phone":
        return PhoneGestureModel(phones=tuple(metadata["phones"]))
    if metadata["descriptor_names"] != list(DESCRIPTOR_NAMES):
        raise ValueError(f"{path} was fitted with other descriptors than this code computes")
    return GestureModel(config=GestureConfig(**metadata["config"]), corpora=tuple(metadata["corpora"]),
                        datasets=tuple(metadata["datasets"]), **arrays)


# ----------------------------------------------------------------------------------------------------
# Fitting.

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
    """Runs segmentation and descriptors over `examples` (an iterable of TFDS example dicts)."""
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


def fit_from_tables(source, target, config, corpora, datasets=("", "")):
    """Fits the shared cluster space on the pooled valid descriptors of two corpora."""
    config.validate()
    for name, table in zip(corpora, (source, target)):
        if len(table.descriptors) == 0:
            raise ValueError(f"corpus {name!r} has no segment with a valid mouth descriptor "
                             f"({table.num_examples} examples, {table.num_segments} segments)")
    tables = (source, target)
    descriptors = np.concatenate([t.descriptors for t in tables])
    keys = np.concatenate([t.speaker_keys for t in tables])
    role = np.concatenate([np.full(len(t.descriptors), i) for i, t in enumerate(tables)])
    corpus_mean = np.stack([t.descriptors.mean(0) for t in tables])
    corpus_std = np.maximum(np.stack([t.descriptors.std(0) for t in tables]), config.std_floor)
    speaker_keys, speaker_mean, speaker_std = speaker_statistics(
            descriptors, keys, role, corpus_mean, corpus_std, config.min_speaker_segments,
            config.std_floor)
    model = GestureModel(
            config=config, corpora=tuple(corpora), datasets=tuple(datasets),
            centroids=np.zeros((config.num_clusters, NUM_DESCRIPTORS)),
            scaler_mean=np.zeros(NUM_DESCRIPTORS), scaler_scale=np.ones(NUM_DESCRIPTORS),
            common=np.zeros(config.num_clusters, bool), counts=np.zeros((2, config.num_clusters), np.int64),
            speaker_keys=speaker_keys, speaker_mean=speaker_mean, speaker_std=speaker_std,
            corpus_mean=corpus_mean, corpus_std=corpus_std)
    speaker_row = np.searchsorted(speaker_keys, keys)
    normalised = (descriptors - speaker_mean[speaker_row]) / speaker_std[speaker_row]
    model.scaler_mean = normalised.mean(0)
    model.scaler_scale = np.maximum(normalised.std(0), config.std_floor)
    features = (normalised - model.scaler_mean) / model.scaler_scale
    started = time.perf_counter()
    model.centroids = fit_kmeans(features, config)
    labels = nearest_centroid(features, model.centroids)
    logging.info("k-means K=%d on %d segments x %d descriptors: %.1f s", config.num_clusters,
                 len(features), features.shape[1], time.perf_counter() - started)
    model.counts = np.stack([np.bincount(labels[role == i], minlength=config.num_clusters)
                             for i in range(2)]).astype(np.int64)
    model.common = common_clusters(model.counts[0], model.counts[1], config.common_min_ratio,
                                   config.common_min_count)
    return model, labels, role


def open_data_source(dataset, data_dir, split):
    """`tfds.data_source` of `dataset` (`name` or `name/config`) without TensorFlow, with a clear error."""
    import tensorflow_datasets as tfds

    try:
        return tfds.data_source(dataset, split=split, data_dir=str(data_dir), download=False)
    except Exception as error:  # tfds raises several types for a missing or unbuilt dataset
        raise FileNotFoundError(
                f"cannot open dataset {dataset!r} split {split!r} in {data_dir}: {error}. Build it first "
                f"with launch/prepare_data.py") from error


def iterate_source(source):
    for i in range(len(source)):
        yield source[i]


def tables_from_data(datasets, data_dir, config, split="train", with_lips=False):
    """Descriptor tables of `datasets` (source, target) read with `tfds.data_source`."""
    import tqdm

    tables = []
    for dataset in datasets:
        source = open_data_source(dataset, data_dir, split)
        names = tuple(source.dataset_info.features["emotion"].names)
        with tqdm.tqdm(total=len(source), desc=f"descriptors {dataset}:{split}", unit="utt") as bar:
            tables.append(descriptor_table(iterate_source(source), config, names, progress=bar,
                                           with_lips=with_lips))
    return tables


def corpus_name(source):
    """The `corpus` text of a data source's first example (e.g. `crema_d`)."""
    return segments_lib.text_value(source[0]["corpus"])


def fit_gesture_model(source_dataset, target_dataset, data_dir, config, split="train"):
    """Fits a `GestureModel` on the `split` of two TFDS datasets (`name` or `name/config`)."""
    config.validate()
    datasets = (source_dataset, target_dataset)
    corpora = []
    for dataset in datasets:
        source = open_data_source(dataset, data_dir, split)
        if len(source) == 0:
            raise ValueError(f"dataset {dataset!r} split {split!r} in {data_dir} is empty")
        corpora.append(corpus_name(source))
    if corpora[0] == corpora[1]:
        raise ValueError(f"source and target are the same corpus {corpora[0]!r}")
    tables = tables_from_data(datasets, data_dir, config, split)
    for dataset, table in zip(datasets, tables):
        logging.info("%s: %d utterances, %d segments, %d with a valid mouth descriptor", dataset,
                     table.num_examples, table.num_segments, len(table.descriptors))
    model, _, _ = fit_from_tables(tables[0], tables[1], config, corpora, datasets)
    return model
