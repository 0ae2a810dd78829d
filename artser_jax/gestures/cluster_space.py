"""The shared cluster space of a source and a target corpus (docs/method.md): the configuration,
the fitted `GestureModel` and the phone-identity `PhoneGestureModel`, their `.npz` artifact, the common
clusters and the nearest-centroid assignment.

Assignment per segment: per-speaker z-normalisation of the raw descriptor (statistics from the fit data,
keyed `corpus/speaker`), then a global standard scaler, then the nearest k-means centroid. The artifact
is one `.npz` file (arrays plus a JSON metadata string; it loads with `allow_pickle=False`).
"""

import dataclasses
import json
import pathlib
import re
import zipfile

import numpy as np

from artser_jax import segments as segments_lib
from artser_jax.gestures import descriptors as descriptors_lib

FORMAT_VERSION = 1
# ARPAbet vowels (lower case, stress digits stripped), the label set of Montreal Forced Aligner's and
# festival's English phone sets: the "clusters" of the phoneme-anchored baseline.
ARPABET_VOWELS = ("aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh", "er", "ey", "ih", "ix", "iy",
                  "ow", "oy", "uh", "uw")
UNSEEN_SPEAKER_MODES = ("utterance", "corpus")


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

    def segments(self, example):
        return segments_lib.utterance_segments(example, self.segment_method, self.max_segments,
                                               **segments_lib.segment_options(self.segment_method, self))


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


def nearest_centroid(features, centroids):
    """Index of the nearest centroid (squared Euclidean) for each row of `features`, int32."""
    distances = ((features ** 2).sum(1, keepdims=True) - 2.0 * features @ centroids.T
                 + (centroids ** 2).sum(1)[None])
    return np.argmin(distances, axis=1).astype(np.int32)


def _corpus_of(speaker_key):
    return speaker_key.split("/", 1)[0]


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
        descriptors, valid = descriptors_lib.segment_descriptors(
                example, segments, self.config.min_valid_frames, self.config.max_gap_frames)
        return self.assign_descriptors(descriptors, valid, descriptors_lib.speaker_key_of(example))

    def save(self, path):
        metadata = {
                "format_version": FORMAT_VERSION, "kind": self.kind,
                "config": dataclasses.asdict(self.config), "corpora": list(self.corpora),
                "datasets": list(self.datasets), "descriptor_names": list(descriptors_lib.DESCRIPTOR_NAMES),
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


class GestureArtifactError(ValueError):
    """A file named as a gesture model that is not one, or is one this code cannot read."""


def _read_artifact(path):
    """(metadata, arrays) of an artifact file; a GestureArtifactError that says what the file is otherwise."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise GestureArtifactError(f"{path} is a single NumPy array (.npy), not a gesture model artifact")
    if not magic.startswith(b"PK"):
        raise GestureArtifactError(f"{path} is not a NumPy archive (.npz), so not a gesture model artifact")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise GestureArtifactError(f"{path} is a damaged or incomplete archive ({error}), not a readable "
                                   f"gesture model artifact") from None
    with archive:
        names = sorted(archive.files)
        what = f"{path} is a NumPy archive with arrays {names}"
        if "metadata" not in names:
            raise GestureArtifactError(f"{what}, not a gesture model artifact (it has no 'metadata')")
        try:
            arrays = {name: archive[name] for name in names}
        except (OSError, ValueError, zipfile.BadZipFile) as error:  # e.g. object arrays need pickle
            raise GestureArtifactError(f"{what}, not a gesture model artifact ({error})") from None
    try:
        metadata = json.loads(str(arrays.pop("metadata")))
    except ValueError as error:
        raise GestureArtifactError(
            f"{what}, not a gesture model artifact (its 'metadata' is not JSON: {error})") from None
    if not isinstance(metadata, dict):
        raise GestureArtifactError(f"{what}, not a gesture model artifact (its 'metadata' is not a JSON object)")
    return metadata, arrays


def load_gesture_model(path):
    """A `GestureModel` or `PhoneGestureModel` from its `.npz` artifact (GestureArtifactError if it is none)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gesture model {path} does not exist; fit one with launch/fit_gestures.py")
    metadata, arrays = _read_artifact(path)
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise GestureArtifactError(f"{path} has gesture model format {version}; this code reads {FORMAT_VERSION}")
    if metadata.get("kind") == PhoneGestureModel.kind:
        return PhoneGestureModel(phones=tuple(metadata["phones"]))
    if metadata.get("kind") != GestureModel.kind:
        raise GestureArtifactError(f"{path} holds a gesture model of unknown kind {metadata.get('kind')!r}")
    if metadata["descriptor_names"] != list(descriptors_lib.DESCRIPTOR_NAMES):
        raise GestureArtifactError(f"{path} was fitted with other descriptors than this code computes")
    return GestureModel(config=GestureConfig(**metadata["config"]), corpora=tuple(metadata["corpora"]),
                        datasets=tuple(metadata["datasets"]), **arrays)
