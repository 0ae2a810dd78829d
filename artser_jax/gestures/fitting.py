"""Fitting the shared cluster space (docs/method.md): speaker statistics, scaler and k-means on
the pooled valid descriptors of two corpora, read from their TFDS datasets.
"""

import logging
import time

import numpy as np

from artser_jax import input_pipeline
from artser_jax import segments as segments_lib
from artser_jax.gestures import cluster_space
from artser_jax.gestures import descriptors as descriptors_lib


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
    num_descriptors = descriptors_lib.NUM_DESCRIPTORS
    model = cluster_space.GestureModel(
            config=config, corpora=tuple(corpora), datasets=tuple(datasets),
            centroids=np.zeros((config.num_clusters, num_descriptors)),
            scaler_mean=np.zeros(num_descriptors), scaler_scale=np.ones(num_descriptors),
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
    labels = cluster_space.nearest_centroid(features, model.centroids)
    logging.info("k-means K=%d on %d segments x %d descriptors: %.1f s", config.num_clusters,
                 len(features), features.shape[1], time.perf_counter() - started)
    model.counts = np.stack([np.bincount(labels[role == i], minlength=config.num_clusters)
                             for i in range(2)]).astype(np.int64)
    model.common = cluster_space.common_clusters(model.counts[0], model.counts[1],
                                                 config.common_min_ratio, config.common_min_count)
    return model, labels, role


def iterate_source(source):
    for i in range(len(source)):
        yield source[i]


def tables_from_data(datasets, data_dir, config, split="train", with_lips=False):
    """Descriptor tables of `datasets` (source, target) read with `tfds.data_source`."""
    import tqdm

    tables = []
    for dataset in datasets:
        source = input_pipeline.open_data_source(dataset, split, data_dir)
        names = tuple(source.dataset_info.features["emotion"].names)
        with tqdm.tqdm(total=len(source), desc=f"descriptors {dataset}:{split}", unit="utt") as bar:
            tables.append(descriptors_lib.descriptor_table(iterate_source(source), config, names,
                                                           progress=bar, with_lips=with_lips))
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
        source = input_pipeline.open_data_source(dataset, split, data_dir)
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
