"""The frozen-feature store: a frozen pretrained encoder's layers, computed once per utterance.

A frozen encoder returns the same layers for the same audio at every step. When the config's encoder is
pretrained and frozen and `config.model.cache_frozen_features` is on (`enabled`), the trainer and the
evaluators read those layers from this store, and the model's encoder becomes the registry's
`stored_features` entry (`models/features.py`), so model, objective and methods are unchanged.
Prediction on new audio runs the real encoder (the export holds the audio model).

What is stored: the selectable layers the config reads (`stored_layers`: the selected layer, all of them
for a weighted sum, plus those a method's loss reads, `Method.encoder_layers`), computed on exactly the
audio the trainer feeds (cropped/zero-padded to `config.input.max_seconds`), so stored and recomputed
features agree up to float rounding (and `config.model.feature_store_dtype`).

Layout: `<feature_store_dir>/<encoder>-<key digest>/<dataset>/<split>/` with `features.npy`
`(N, K, F, D)` and `frame_mask.npy` `(N, F)`, both memory-mapped (row i = record i of the split), and
`manifest.json`, written last: the key, the dataset files' fingerprint, the utterance ids in record
order. The key is the encoder's name, the SHA-256 of its folder's files, the stored layers, the crop and
the dtype; a store whose manifest disagrees with the current key or dataset, or that has no manifest
(an interrupted extraction), is logged and rebuilt, never read. Every read also checks the record's
utterance id against the manifest's. The folder must be one every process sees (like data_dir).
"""

import functools
import hashlib
import json
import logging
import pathlib
import shutil
import time

import grain
import jax
import ml_collections
import numpy as np
import tqdm
from flax import nnx
from jax.experimental import multihost_utils

from artser_jax import input_pipeline
from artser_jax import methods
from artser_jax import segments as segments_lib
from artser_jax import sharding
from artser_jax.models import encoders
from artser_jax.models import features

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FEATURES = "features.npy"
FRAME_MASK = "frame_mask.npy"
UTTERANCE_IDS = "utterance_ids.npy"  # (N, 96) uint8, the trainer's encoding of each record's id
DTYPES = ("float16", "float32")


class StaleFeatureStoreError(RuntimeError):
    """A stored row does not belong to the record read (the dataset changed under the store)."""


def enabled(config):
    """Whether this run trains on stored features: a pretrained, frozen encoder and the switch on."""
    entry = encoders.get(config.model.encoder)
    return bool(config.model.cache_frozen_features) and entry.pretrained and encoders.is_frozen(config.model)


def store_root(config):
    return pathlib.Path(config.model.feature_store_dir or pathlib.Path(config.data_dir) / "feature_store")


def _folder_signature(folder):
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"encoder folder {folder} does not exist")
    return tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in sorted(folder.rglob("*")) if p.is_file())


@functools.lru_cache(maxsize=8)
def _hash_files(folder, signature):
    digest = hashlib.sha256()
    for name, size, _ in signature:
        digest.update(f"{name}\0{size}\0".encode())
        with open(pathlib.Path(folder) / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def encoder_folder_sha256(folder):
    """SHA-256 over the names and contents of every file in a pretrained encoder's folder (memoised while
    the files' sizes and modification times stay the same)."""
    return _hash_files(str(pathlib.Path(folder).absolute()), _folder_signature(folder))


def stored_layers(config, num_selectable):
    """Sorted indices (into the encoder's selectable layers) of every layer the config reads."""
    def index(i, field):
        if not -num_selectable <= i < num_selectable:
            raise ValueError(f"{field} reads layer {i}; the encoder has {num_selectable} selectable layers")
        return i % num_selectable

    if config.model.weighted_layer_sum:
        return tuple(range(num_selectable))
    read_by_method = methods.get(config.method).encoder_layers
    extra = tuple(read_by_method(config)) if read_by_method is not None else ()
    return tuple(sorted({index(config.model.encoder_layer, "config.model.encoder_layer"),
                         *(index(i, f"method {config.method!r}") for i in extra)}))


def audio_encoder_geometry(config):
    """(num_selectable, output_dim, hop seconds, window seconds) of the config's audio encoder, read from
    its folder's config files (no weights loaded)."""
    encoder = nnx.eval_shape(lambda: encoders.get(config.model.encoder).build(config.model, nnx.Rngs(0), False))
    return (encoder.num_hidden_states, encoder.output_dim, encoder.frame_hop_seconds,
            encoder.frame_window_seconds)


def max_samples(config):
    return int(round(config.input.max_seconds * config.input.sample_rate))


def store_key(config, layers):
    if config.model.feature_store_dtype not in DTYPES:
        raise ValueError(f"config.model.feature_store_dtype = {config.model.feature_store_dtype!r}: must be one "
                         f"of {DTYPES}")
    return {"format_version": FORMAT_VERSION, "encoder": config.model.encoder,
            "encoder_sha256": encoder_folder_sha256(config.model.pretrained_dir), "layers": list(layers),
            "max_samples": max_samples(config), "sample_rate": config.input.sample_rate,
            "dtype": config.model.feature_store_dtype}


def dataset_fingerprint(data_source):
    """Names, sizes and modification times of a TFDS split's record files: a rebuilt dataset changes it."""
    files = data_source.dataset_info.splits[data_source.split].filepaths
    return sorted([pathlib.Path(str(f)).name, pathlib.Path(str(f)).stat().st_size,
                   pathlib.Path(str(f)).stat().st_mtime_ns] for f in files)


def split_directory(config, key, tfds_name, split):
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    dataset = tfds_name.replace("/", "__").replace(":", "_")
    return store_root(config) / f"{key['encoder']}-{digest}" / dataset / split


def _problems(directory, key, data_source):
    """Why the store in `directory` cannot serve `key` and `data_source` (empty: it can)."""
    path = directory / MANIFEST
    if not path.is_file():
        return ["no manifest (an interrupted extraction)"] if directory.exists() else None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return [f"unreadable manifest ({error})"]
    problems = [f"{name} was {manifest['key'].get(name)!r}, now {value!r}" for name, value in key.items()
                if manifest["key"].get(name) != value]
    if manifest["num_records"] != len(data_source):
        problems.append(f"{manifest['num_records']} records stored, the split has {len(data_source)}")
    if manifest["dataset_files"] != dataset_fingerprint(data_source):
        problems.append("the dataset's record files changed since extraction")
    if not all((directory / name).is_file() for name in (FEATURES, FRAME_MASK, UTTERANCE_IDS)):
        problems.append("feature files missing")
    return problems


class _AudioOnly(grain.transforms.Map):
    """The trainer's crop/pad of a record's audio, and its id."""

    def __init__(self, num_samples):
        self.num_samples = num_samples

    def map(self, element):
        audio, audio_mask = input_pipeline.crop_or_pad_audio(element["audio"], self.num_samples)
        return {"audio": audio, "audio_mask": audio_mask,
                "utterance_id": input_pipeline.encode_utterance_id(segments_lib.text_value(element["utterance_id"]))}


def _extract(directory, encode, data_source, config, mesh, feature_dim, layers):
    """Writes the features, frame masks and utterance ids of every record of `data_source` into
    `directory`; each process writes the rows it computed."""
    batch_size, num_samples = config.input.eval_batch_size, max_samples(config)
    dataset, count = input_pipeline.eval_dataset(data_source, _AudioOnly(num_samples), batch_size,
                                                 grain.sharding.ShardByJaxProcess(drop_remainder=True))
    audio_shape = jax.ShapeDtypeStruct((batch_size, num_samples), np.float32)
    num_frames = jax.eval_shape(encode, audio_shape, audio_shape.update(dtype=bool))[1].shape[1]
    is_main = jax.process_index() == 0
    if is_main:
        np.lib.format.open_memmap(directory / FEATURES, "w+", config.model.feature_store_dtype,
                                  (count, len(layers), num_frames, feature_dim))
        np.lib.format.open_memmap(directory / FRAME_MASK, "w+", bool, (count, num_frames))
        np.lib.format.open_memmap(directory / UTTERANCE_IDS, "w+", np.uint8,
                                  (count, input_pipeline.UTTERANCE_ID_BYTES))
    multihost_utils.sync_global_devices(f"feature store {directory}: files created")
    stored = {name: np.load(directory / name, mmap_mode="r+") for name in (FEATURES, FRAME_MASK, UTTERANCE_IDS)}
    local_start = jax.process_index() * (batch_size // jax.process_count())
    for batch_index, batch in enumerate(tqdm.tqdm(dataset, desc=f"features {directory.parent.name}/{directory.name}",
                                                  unit="batch", disable=not is_main)):
        first_row = batch_index * batch_size
        inputs = sharding.host_to_global({k: batch[k] for k in ("audio", "audio_mask")}, mesh)
        for values, name in zip(encode(inputs["audio"], inputs["audio_mask"]), (FEATURES, FRAME_MASK)):
            for shard in values.addressable_shards:
                rows = np.arange(batch_size)[shard.index[0]] + first_row
                real = rows < count  # the last batch is padded with copies
                stored[name][rows[real]] = np.asarray(shard.data)[real]
        rows = first_row + local_start + np.arange(len(batch["utterance_id"]))
        real = rows < count
        stored[UTTERANCE_IDS][rows[real]] = batch["utterance_id"][real]
    for array in stored.values():
        array.flush()
    multihost_utils.sync_global_devices(f"feature store {directory}: rows written")


def _build_split(directory, key, encode, data_source, config, mesh, feature_dim, layers, tfds_name, split):
    """Extracts one split into `<directory>.partial`, writes the manifest last, then renames it into place."""
    is_main = jax.process_index() == 0
    partial = directory.with_name(directory.name + ".partial")
    if is_main:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    multihost_utils.sync_global_devices(f"feature store {directory}: cleared")
    start = time.perf_counter()
    _extract(partial, encode, data_source, config, mesh, feature_dim, layers)
    seconds = time.perf_counter() - start
    if is_main:
        manifest = {"key": key, "tfds_name": tfds_name, "split": split, "num_records": len(data_source),
                    "dataset_files": dataset_fingerprint(data_source), "extraction_seconds": seconds}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
        partial.rename(directory)
    multihost_utils.sync_global_devices(f"feature store {directory}: complete")
    logging.info("Feature store %s: extracted %d utterances in %.1f s (%.1f utterances/s)", directory,
                 len(data_source), seconds, len(data_source) / seconds)


class StoredFeatureSource:
    """A Grain random-access source: record i of a TFDS split plus its stored `stored_features` (K, F, D)
    and `stored_frame_mask` (F,). The memory maps open lazily in each process that reads (Grain workers
    receive a pickled source without them)."""

    def __init__(self, data_source, directory):
        self.data_source = data_source
        self.directory = pathlib.Path(directory)
        self._arrays = None

    @property
    def dataset_info(self):
        return self.data_source.dataset_info

    def __len__(self):
        return len(self.data_source)

    def __getstate__(self):
        return {**self.__dict__, "_arrays": None}

    def __getitem__(self, index):
        if self._arrays is None:
            self._arrays = {name: np.load(self.directory / name, mmap_mode="r")
                            for name in (FEATURES, FRAME_MASK, UTTERANCE_IDS)}
        example = self.data_source[index]
        record_id = input_pipeline.encode_utterance_id(segments_lib.text_value(example["utterance_id"]))
        if not np.array_equal(self._arrays[UTTERANCE_IDS][index], record_id):
            stored = input_pipeline.decode_utterance_ids(self._arrays[UTTERANCE_IDS][index:index + 1])[0]
            raise StaleFeatureStoreError(
                f"{self.directory}: row {index} holds utterance {stored!r}, the dataset's record {index} is "
                f"{input_pipeline.decode_utterance_ids(record_id[None])[0]!r}; the store is stale: delete it "
                f"and rerun to re-extract")
        return {**example, "stored_features": np.asarray(self._arrays[FEATURES][index]),
                "stored_frame_mask": np.asarray(self._arrays[FRAME_MASK][index])}


def split_specs(config):
    """(tfds_name, split) of every data role the trainer opens (see `train.open_sources`)."""
    specs = {"source_train": (config.source.tfds_name, config.source.train_split),
             "target_train": (config.target.tfds_name, config.target.train_split)}
    for name, spec in config.evals.items():
        specs[name] = (config[spec.corpus].tfds_name, spec.split)
    return specs


def feature_model_config(config, layers, geometry):
    """`config` with the `stored_features` encoder in place of the audio encoder."""
    num_selectable, feature_dim, hop_seconds, window_seconds = geometry
    feature_config = ml_collections.ConfigDict(config.to_dict())
    feature_config.model.encoder = features.ENCODER_NAME
    feature_config.model.freeze_encoder = True
    feature_config.model.stored_features = ml_collections.ConfigDict(dict(
        layers=list(layers), num_selectable=num_selectable, feature_dim=feature_dim,
        frame_hop_seconds=hop_seconds, frame_window_seconds=window_seconds))
    return feature_config


def open_stores(config, sources, mesh):
    """(sources with their stored features, the feature model's config) for a run where `enabled(config)`.

    `sources` maps each role of `split_specs` to its TFDS data source. Splits without a valid store are
    extracted now (the encoder's weights are loaded only then); stale stores are logged and rebuilt.
    """
    geometry = audio_encoder_geometry(config)
    layers = stored_layers(config, geometry[0])
    key = store_key(config, layers)
    logging.info("Feature store: %s layers %s of %d, %.2f s crop, %s, encoder folder SHA-256 %s", config.model.encoder,
                 layers, geometry[0], config.input.max_seconds, key["dtype"], key["encoder_sha256"][:16])
    encode = None
    wrapped = {}
    for role, (tfds_name, split) in split_specs(config).items():
        directory = split_directory(config, key, tfds_name, split)
        problems = _problems(directory, key, sources[role])
        if problems == []:
            logging.info("Feature store %s: reused for %s (%d utterances)", directory, role, len(sources[role]))
        else:
            if problems:
                logging.warning("Feature store %s is stale (%s): rebuilding", directory, "; ".join(problems))
            else:
                logging.info("Feature store %s: none for this key; extracting %d utterances", directory,
                             len(sources[role]))
            if encode is None:
                encoder = encoders.get(config.model.encoder).build(config.model, nnx.Rngs(0), True)
                encode = features.encode_layers(encoder, layers, mesh, config.model.feature_store_dtype)
            _build_split(directory, key, encode, sources[role], config, mesh, geometry[1], layers, tfds_name, split)
        wrapped[role] = StoredFeatureSource(sources[role], directory)
    return wrapped, feature_model_config(config, layers, geometry)
