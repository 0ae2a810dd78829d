"""Grain input pipelines over the TFDS datasets (numpy only; JAX never runs in here).

Training: a labelled source stream and an unlabelled target stream, each
`source -> PrepareExample [-> kept in memory] -> shuffle(seed) -> repeat -> shard by process -> batch`, zipped into one
iterator so that one saved iterator state covers both. Process sharding is applied *after* the global
shuffle, by blocks (`ProcessBlocks`): of global batch b (shuffled positions b*G .. b*G + G - 1), process
p of P reads the rows p*L .. p*L + L - 1 (L = G / P). The global batch assembled from the processes'
local batches is then row for row the single-process batch, whatever the process count, so per-row
randomness such as dropout masks agrees too.

Evaluation: one pass over a split, padded with masked copies up to a multiple of the global batch, so
every utterance is scored exactly once. Target labels enter only the evaluation pipeline.
"""

import logging
import math
import os
import pathlib
import re

import grain
import grain.experimental
import numpy as np

from artser_jax import segments as segments_lib

_VERSION_RE = re.compile(r"\d+\.\d+\.\d+")
UTTERANCE_ID_BYTES = 96  # utterance ids travel as fixed-size uint8 rows, so they can live on device


def encode_utterance_id(utterance_id):
    raw = utterance_id.encode("utf-8")[:UTTERANCE_ID_BYTES]
    return np.frombuffer(raw.ljust(UTTERANCE_ID_BYTES, b"\0"), dtype=np.uint8).copy()


def decode_utterance_ids(rows):
    return [bytes(row).rstrip(b"\0").decode("utf-8", errors="replace") for row in np.asarray(rows)]


def crop_or_pad_audio(samples, max_samples):
    """int16 or float audio -> (float32 `(max_samples,)` in [-1, 1], bool mask); cropped from the start."""
    samples = np.asarray(samples).reshape(-1)
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / 32768.0
    samples = samples[:max_samples].astype(np.float32)
    audio = np.zeros(max_samples, np.float32)
    audio[:len(samples)] = samples
    mask = np.zeros(max_samples, bool)
    mask[:len(samples)] = True
    return audio, mask


class PrepareExample(grain.transforms.Map):
    """A TFDS example -> static-shape numpy features.

    Output: `audio` (N,) float32, `audio_mask` (N,) bool, `seg_start`/`seg_end` (S,) float32 seconds,
    `seg_mask` (S,) bool, `seg_cluster` (S,) int32 (-1: no cluster), `utterance_id` (96,) uint8 and, with
    `with_label`, `label` () int32. Segments past the cropped audio are masked out.

    With `stored_features` (records of `feature_store.StoredFeatureSource`), the model's input is the
    record's stored encoder layers: `audio` is `stored_features` (K, F, D) and `audio_mask` its frame mask
    (F,), what the `stored_features` encoder takes in place of the audio.
    """

    def __init__(self, *, max_samples, sample_rate, segment_method, max_segments, segment_options=None,
                 cluster_model=None, with_label=True, stored_features=False):
        self.max_samples = max_samples
        self.sample_rate = sample_rate
        self.segment_method = segment_method
        self.max_segments = max_segments
        self.segment_options = dict(segment_options or {})
        self.cluster_model = cluster_model
        self.with_label = with_label
        self.stored_features = stored_features

    def map(self, element):
        example = element
        if self.stored_features:
            audio, audio_mask = example["stored_features"], example["stored_frame_mask"]
        else:
            audio, audio_mask = crop_or_pad_audio(example["audio"], self.max_samples)
        segments = segments_lib.utterance_segments(example, self.segment_method, self.max_segments,
                                                   **self.segment_options)
        if self.cluster_model is not None:
            cluster = np.asarray(self.cluster_model.assign_example(example, segments), np.int32)
        else:
            cluster = np.full(self.max_segments, -1, np.int32)
        max_seconds = self.max_samples / self.sample_rate
        seg_mask = segments["seg_mask"] & (segments["seg_start"] < max_seconds)
        features = {
            "audio": audio,
            "audio_mask": audio_mask,
            "seg_start": segments["seg_start"].astype(np.float32),
            "seg_end": np.minimum(segments["seg_end"], max_seconds).astype(np.float32),
            "seg_mask": seg_mask,
            "seg_cluster": np.where(seg_mask, cluster, -1).astype(np.int32),
            "utterance_id": encode_utterance_id(segments_lib.text_value(example["utterance_id"])),
        }
        if self.with_label:
            features["label"] = np.int32(example["emotion"])
        return features


class ProcessBlocks(grain.MapDataset):
    """This process's rows of every global batch: element j is parent[(j // L) * G + p * L + j % L]."""

    def __init__(self, parent, global_batch_size, shard_index, shard_count):
        super().__init__(parent)
        if global_batch_size % shard_count:
            raise ValueError(f"batch size {global_batch_size} does not split over {shard_count} processes")
        self._global = global_batch_size
        self._local = global_batch_size // shard_count
        self._offset = shard_index * self._local
        self._length = len(parent) // global_batch_size * self._local

    def __len__(self):
        return self._length

    def _parent_index(self, index):
        block, row = divmod(index, self._local)
        return block * self._global + self._offset + row

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        return self._parent[self._parent_index(index)]

    def _getitems(self, indices):
        return self._parent._getitems([self._parent_index(i) for i in indices])  # pylint: disable=protected-access

    def __str__(self):
        return f"ProcessBlocks(global={self._global}, local={self._local}, offset={self._offset})"


class MarkValid(grain.transforms.Map):
    """Adds `eval_mask`: True for real utterances, False for the copies that pad the last batch."""

    def __init__(self, valid):
        self.valid = valid

    def map(self, element):
        return {**element, "eval_mask": np.bool_(self.valid)}


class ZippedToDict(grain.transforms.Map):
    def map(self, element):
        source, target = element
        return {"source": source, "target": target}


class KeptInMemory(grain.MapDataset):
    """Its parent's elements, each computed on first read and then kept: a deterministic preparation of a
    split small enough to hold in memory is then paid once per run, not once per epoch."""

    def __init__(self, parent):
        super().__init__(parent)
        self._kept = {}

    def __len__(self):
        return len(self._parent)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        index %= len(self._parent)  # a shuffle's later epochs ask for index + epoch * length
        element = self._kept.get(index)
        if element is None:
            element = self._kept[index] = self._parent[index]
        return element

    def __str__(self):
        return f"KeptInMemory(kept={len(self._kept)})"


def training_stream(data_source, prepare, global_batch_size, seed, shard_index, shard_count, read_ahead_batches,
                    keep_prepared=False):
    """An endless, shuffled, process-sharded IterDataset of local batches of `prepare`d examples.

    Reading runs at most `read_ahead_batches` batches ahead of the trainer: Grain's default (500 elements
    on 16 threads) prepares hundreds of unused examples and, on a few cores, starves the training step.
    Examples are prepared lazily by source index, so a process prepares only the rows it reads;
    `keep_prepared` keeps each prepared example for the later epochs (the same elements, read once).
    """
    local_batch_size = global_batch_size // shard_count
    dataset = grain.MapDataset.source(data_source).map(prepare)
    if keep_prepared:
        dataset = KeptInMemory(dataset)
    dataset = ProcessBlocks(dataset.shuffle(seed=seed).repeat(None), global_batch_size, shard_index, shard_count)
    dataset = dataset.batch(local_batch_size, drop_remainder=True)
    read_options = grain.ReadOptions(num_threads=max(1, min(16, os.cpu_count() or 1)),
                                     prefetch_buffer_size=read_ahead_batches * local_batch_size)
    return dataset.to_iter_dataset(read_options)


def training_iterator(source_data, target_data, source_prepare, target_prepare, *, source_batch_size,
                      target_batch_size, seed, shard_options, worker_count=0, prefetch_buffer=2,
                      keep_prepared=False):
    """One checkpointable iterator of `{'source': batch, 'target': batch}` local batches."""
    if target_prepare.with_label:
        raise ValueError("the target training stream must not carry labels (unsupervised adaptation)")
    read_ahead = max(prefetch_buffer, 1)
    source = training_stream(source_data, source_prepare, source_batch_size, seed,
                             shard_options.shard_index, shard_options.shard_count, read_ahead, keep_prepared)
    target = training_stream(target_data, target_prepare, target_batch_size, seed + 1,
                             shard_options.shard_index, shard_options.shard_count, read_ahead, keep_prepared)
    zipped = grain.experimental.ZipIterDataset([source, target]).map(ZippedToDict())
    if worker_count > 0:
        zipped = zipped.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    elif prefetch_buffer > 0:
        zipped = grain.experimental.ThreadPrefetchIterDataset(zipped, prefetch_buffer_size=prefetch_buffer)
    return iter(zipped)


def eval_dataset(data_source, prepare, global_batch_size, shard_options):
    """Local batches over one split, padded with masked copies so that each utterance counts once.

    The global batches, assembled in process order, hold the utterances in dataset order. Returns a MapDataset (iterate it for one pass) and the number of real utterances.
    """
    count = len(data_source)
    if count == 0:
        raise ValueError("evaluation split is empty")
    padded = math.ceil(count / global_batch_size) * global_batch_size
    real = grain.MapDataset.source(data_source).map(MarkValid(True))
    parts = [real]
    if padded > count:
        parts.append(grain.MapDataset.source(data_source)[:1].repeat(padded - count).map(MarkValid(False)))
    dataset = grain.MapDataset.concatenate(parts) if len(parts) > 1 else real
    dataset = ProcessBlocks(dataset, global_batch_size, shard_options.shard_index, shard_options.shard_count)
    dataset = dataset.map(_WithEvalMask(prepare))
    return dataset.batch(global_batch_size // shard_options.shard_count, drop_remainder=True), count


class _WithEvalMask(grain.transforms.Map):
    """Applies `prepare` and carries the `eval_mask` set by MarkValid through."""

    def __init__(self, prepare):
        self.prepare = prepare

    def map(self, element):
        features = self.prepare.map(element)
        features["eval_mask"] = element["eval_mask"]
        return features


def prepared_datasets(data_dir):
    """`name/config` (or `name` for a builder without configs) of every TFDS dataset prepared under
    `data_dir`, i.e. with a `dataset_info.json` in its version folder; sorted."""
    root = pathlib.Path(data_dir)
    found = set()
    for pattern in ("*/*/dataset_info.json", "*/*/*/dataset_info.json"):
        for info in root.glob(pattern):
            parts = info.relative_to(root).parts[:-1]  # (name, [config,] version)
            if _VERSION_RE.fullmatch(parts[-1]):
                found.add("/".join(parts[:-1]))
    return sorted(found)


def open_data_source(tfds_name, split, data_dir):
    """`tfds.data_source` of `tfds_name` (`name` or `name/config`) for one of our builders (registering
    them first); a one-line error naming `data_dir` and what it holds when the dataset is not there."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    from artser_jax.data import corpora  # noqa: F401  (registers the builders)  pylint: disable=unused-import,g-import-not-at-top

    if not pathlib.Path(data_dir).is_dir():
        raise FileNotFoundError(f"data_dir {data_dir} does not exist; prepare the datasets into it with "
                                f"launch/prepare_data.py")
    found = prepared_datasets(data_dir)
    name = tfds_name.split(":")[0]  # a TFDS name may pin a version: `name/config:1.0.0`
    if not any(dataset == name or dataset.startswith(name + "/") for dataset in found):
        raise FileNotFoundError(
            f"dataset {tfds_name} is not prepared in data_dir {data_dir}, which holds "
            f"{', '.join(found) if found else 'no prepared dataset'}; prepare it with launch/prepare_data.py")
    try:
        return tfds.data_source(tfds_name, split=split, data_dir=str(data_dir), download=False)
    except Exception as error:  # tfds raises several types, with messages of many lines
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileNotFoundError(f"cannot open dataset {tfds_name} split {split!r} in data_dir {data_dir} "
                                f"(which holds {', '.join(found)}): {reason}") from None


def class_names(data_source):
    """The emotion ClassLabel names of a `tfds.data_source`."""
    return list(data_source.dataset_info.features["emotion"].names)


def label_counts(data_source, num_classes):
    """Per-class utterance counts of a labelled split (reads every record once)."""
    counts = np.zeros(num_classes, np.int64)
    for index in range(len(data_source)):
        counts[int(data_source[index]["emotion"])] += 1
    logging.info("Label counts: %s", counts.tolist())
    return counts
