"""Fits the shared mouth-gesture cluster space of a source and a target corpus (docs/method.md 2.2).

    python launch/fit_gestures.py --source=crema_d_av --target=msp_improv_av --data_dir=DIR --out=FILE \
        [--builder_config=NAME] [--num_clusters=8 --seed=0 --segment_method=phones ...]

Reads both training splits with `tfds.data_source` (no TensorFlow), computes a mouth descriptor per
segment, z-normalises per speaker, runs k-means++ on the pooled descriptors, marks the common clusters
and writes one versioned artifact (`artser_jax.gestures.cluster_space.load_gesture_model` reads it). Every
field of `cluster_space.GestureConfig` is a flag of the same name. `--kind=phone` writes the phone-identity model of
the phoneme-anchored baseline instead (`--anchor_phones`), which needs no data.
"""

import dataclasses
import json
import logging

from absl import app
from absl import flags

from artser_jax.gestures import cluster_space
from artser_jax.gestures import fitting

_SOURCE = flags.DEFINE_string("source", "crema_d_av", "Source TFDS dataset, `name` or `name/config`.")
_TARGET = flags.DEFINE_string("target", "msp_improv_av", "Target TFDS dataset, `name` or `name/config`.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir holding both built datasets.")
_OUT = flags.DEFINE_string("out", None, "Where to write the gesture model artifact.", required=True)
_BUILDER_CONFIG = flags.DEFINE_string(
        "builder_config", None, "Builder config for a --source/--target given without `/config`.")
_SPLIT = flags.DEFINE_string("split", "train", "Split whose segments are clustered.")
_KIND = flags.DEFINE_enum("kind", "kmeans", ["kmeans", "phone"],
                          "kmeans: fitted mouth-gesture clusters; phone: phone identities as clusters.")
_ANCHOR_PHONES = flags.DEFINE_string("anchor_phones", "vowels",
                                     "For --kind=phone: 'vowels' or phone labels joined by spaces.")

_DEFAULTS = cluster_space.GestureConfig()
_DEFINE_BY_TYPE = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}
_CONFIG_FLAGS = {
        field.name: _DEFINE_BY_TYPE[type(getattr(_DEFAULTS, field.name))](
                field.name, getattr(_DEFAULTS, field.name), field.metadata["help"])
        for field in dataclasses.fields(cluster_space.GestureConfig)}


def dataset_name(name, builder_config):
    return name if "/" in name or not builder_config else f"{name}/{builder_config}"


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    if _KIND.value == "phone":
        model = cluster_space.phone_gesture_model(_ANCHOR_PHONES.value)
        model.save(_OUT.value)
        print(f"wrote phone-identity model ({', '.join(model.phones)}) to {_OUT.value}")
        return
    if not _DATA_DIR.value:
        raise app.UsageError("--data_dir is required for --kind=kmeans")
    config = cluster_space.GestureConfig(**{name: flag.value for name, flag in _CONFIG_FLAGS.items()})
    try:
        config.validate()
        model = fitting.fit_gesture_model(dataset_name(_SOURCE.value, _BUILDER_CONFIG.value),
                                          dataset_name(_TARGET.value, _BUILDER_CONFIG.value),
                                          _DATA_DIR.value, config, split=_SPLIT.value)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}")
    model.save(_OUT.value)
    shares = model.counts / model.counts.sum(1, keepdims=True)
    summary = {
            "out": _OUT.value, "corpora": model.corpora, "datasets": model.datasets,
            "segments": model.counts.sum(1).tolist(), "speakers": len(model.speaker_keys),
            "common_clusters": [int(c) for c in model.common.nonzero()[0]],
            "share_per_cluster": {corpus: [round(float(s), 4) for s in row]
                                  for corpus, row in zip(model.corpora, shares)},
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    app.run(main)
