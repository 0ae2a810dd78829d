"""Builds the TFDS datasets of a corpus (audio, mouth landmarks, phones, labels) from its manual directory.

    python launch/prepare_data.py --corpus=crema_d|msp_improv --manual_dir=DIR --data_dir=DIR \
        [--num_workers=N] [--verify [--manifest=media-manifest.tsv]] [--configs=emotion4,emotion6] \
        [--alignment_dir=DIR]

Landmark extraction dominates the time (MediaPipe on every video frame); it runs on --num_workers processes
and is cached per video under <data_dir>/landmark_cache, so an interrupted build resumes where it stopped.
A second run finds the built datasets and says so. Skipped clips and their reasons are listed in
<data_dir>/<name>/<config>/<version>/skip_report.tsv. Read the result with
`tfds.data_source('crema_d_av/emotion4', split='train', data_dir=DIR)`.
"""

import logging
import os

from absl import app
from absl import flags

from artser_jax.data import audio, builders, textgrid

_CORPUS = flags.DEFINE_enum("corpus", None, sorted(builders.BUILDERS), "Which corpus to build.", required=True)
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "The corpus as the user has it on disk.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir to build into.", required=True)
_CONFIGS = flags.DEFINE_list("configs", ["emotion4"], "Builder configs to build (see builders.py).")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", os.cpu_count() or 1, "Landmark-extraction processes.")
_VERIFY = flags.DEFINE_bool("verify", False, "Check the media against a manifest before extracting.")
_MANIFEST = flags.DEFINE_string("manifest", None, "Manifest for --verify (default <manual_dir>/media-manifest.tsv).")
_MAX_SKIP_FRACTION = flags.DEFINE_float("max_skip_fraction", builders.DEFAULT_MAX_SKIP_FRACTION,
                                        "Fail when more than this fraction of clips has unusable media.")
_LANDMARK_CACHE_DIR = flags.DEFINE_string("landmark_cache_dir", None,
                                          "Landmark cache (default <data_dir>/landmark_cache).")
_ALIGNMENT_DIR = flags.DEFINE_string("alignment_dir", None, "Phone TextGrids from launch/align.py or MFA "
                                     "(default: the TextGrid beside each audio file).")


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    try:
        results = builders.prepare_dataset(
            _CORPUS.value, _MANUAL_DIR.value, _DATA_DIR.value, config_names=_CONFIGS.value,
            num_workers=_NUM_WORKERS.value, verify=_VERIFY.value, manifest_path=_MANIFEST.value,
            max_skip_fraction=_MAX_SKIP_FRACTION.value, landmark_cache_dir=_LANDMARK_CACHE_DIR.value,
            alignment_dir=_ALIGNMENT_DIR.value)
    except (FileNotFoundError, ValueError, RuntimeError, audio.AudioError, textgrid.TextGridError) as error:
        raise SystemExit(f"error: {error}")
    for config, (status, path) in results.items():
        print(f"{builders.BUILDERS[_CORPUS.value].name}/{config}: {status} at {path}")


if __name__ == "__main__":
    app.run(main)
