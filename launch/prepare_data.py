"""Builds the TFDS datasets of a corpus (audio, mouth landmarks, phones, labels) from its manual directory.

    python launch/prepare_data.py --corpus=crema_d|msp_improv --manual_dir=DIR --data_dir=DIR \
        [--num_workers=N] [--verify [--manifest=media-manifest.tsv]] [--configs=emotion4,emotion6] \
        [--alignment_dir=DIR] [--force] [--verbose] \
        [--beam_runner=DirectRunner --beam_options="--direct_num_workers=N --direct_running_mode=multi_processing"]

Landmark extraction dominates the time (MediaPipe on every video frame); it runs on --num_workers processes
and is cached per video under <data_dir>/landmark_cache, so an interrupted build resumes where it stopped.
SIGTERM or Ctrl-C stops the workers at once (what finished is in the cache) and exits with status 128 +
the signal number (143, 130) after one line saying how to resume. A second run finds the built datasets
and says so; --force rebuilds them (from the landmark cache). Skipped clips and their reasons are listed in
<data_dir>/<name>/<config>/<version>/skip_report.tsv. Read the result with
`tfds.data_source('crema_d_av/emotion4', split='train', data_dir=DIR)`.

With --beam_runner (the optional `beam` extra: pip install -e .[beam]) the same dataset is built through
TFDS's Apache Beam support instead: landmark extraction per video runs in the Beam pipeline, with the same
cache, skip report and --max_skip_fraction; --beam_options go to the runner as they are (Dataflow, Flink or
Spark options too; the landmark cache, the manual dir and the face model must then be on storage every
worker sees at the same path), and --num_workers is unused.
"""

import logging
import os
import shlex
import signal
import sys

from absl import app
from absl import flags

from artser_jax import extensions
from artser_jax.data import audio, builders, corpora, prepare, textgrid

_CORPUS = flags.DEFINE_string("corpus", None, f"Which corpus to build: a name of the corpus registry "
                               f"({', '.join(corpora.names())}, or one of --extension_modules).", required=True)
_EXTENSION_MODULES = extensions.define_flag()
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "The corpus as the user has it on disk.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir to build into.", required=True)
_CONFIGS = flags.DEFINE_list("configs", ["emotion4"], "Builder configs to build (see the corpus's builder module).")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", os.cpu_count() or 1, "Landmark-extraction processes.")
_VERIFY = flags.DEFINE_bool("verify", False, "Check the media against a manifest before extracting.")
_MANIFEST = flags.DEFINE_string("manifest", None, "Manifest for --verify (default <manual_dir>/media-manifest.tsv).")
_MAX_SKIP_FRACTION = flags.DEFINE_float("max_skip_fraction", builders.DEFAULT_MAX_SKIP_FRACTION,
                                        "Fail when more than this fraction of clips has unusable media.")
_LANDMARK_CACHE_DIR = flags.DEFINE_string("landmark_cache_dir", None,
                                          "Landmark cache (default <data_dir>/landmark_cache).")
_ALIGNMENT_DIR = flags.DEFINE_string("alignment_dir", None, "Phone TextGrids from launch/align.py or MFA "
                                     "(default: the TextGrid beside each audio file).")
_FORCE = flags.DEFINE_bool("force", False, "Rebuild datasets that are already built.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show MediaPipe's native log lines from the landmark workers "
                             "(and Beam's INFO lines; without it the Beam workers log at WARNING).")
_BEAM_RUNNER = flags.DEFINE_string("beam_runner", None, "Build with Apache Beam on this runner (DirectRunner, "
                                   "DataflowRunner, FlinkRunner, SparkRunner, ...) instead of the process pool.")
_BEAM_OPTIONS = flags.DEFINE_string("beam_options", None, "Pipeline options for --beam_runner, one string as on "
                                    "a command line, e.g. \"--direct_num_workers=4 "
                                    "--direct_running_mode=multi_processing\".")


class StopRequested(BaseException):
    """Raised by the SIGTERM/SIGINT handler; a BaseException so that no `except Exception` swallows it."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _request_stop(signum, frame):
    del frame
    # A second signal while the workers are being stopped would only interrupt the clean-up.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, signal.SIG_IGN)
    raise StopRequested(signum)


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    beam_options = _BEAM_OPTIONS.value
    if not _VERBOSE.value:  # Beam logs every worker's start and stop at INFO
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
        if _BEAM_RUNNER.value and "--default_sdk_harness_log_level" not in (beam_options or ""):
            beam_options = f"{beam_options or ''} --default_sdk_harness_log_level=WARNING".strip()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _request_stop)
    try:
        results = prepare.prepare_dataset(
            _CORPUS.value, _MANUAL_DIR.value, _DATA_DIR.value, config_names=_CONFIGS.value,
            num_workers=_NUM_WORKERS.value, verify=_VERIFY.value, manifest_path=_MANIFEST.value,
            max_skip_fraction=_MAX_SKIP_FRACTION.value, landmark_cache_dir=_LANDMARK_CACHE_DIR.value,
            alignment_dir=_ALIGNMENT_DIR.value, force=_FORCE.value, native_logs=_VERBOSE.value,
            beam_runner=_BEAM_RUNNER.value, beam_options=beam_options)
    except StopRequested as stop:
        cache_dir = _LANDMARK_CACHE_DIR.value or os.path.join(_DATA_DIR.value, "landmark_cache")
        print(f"stopped by {stop}: the landmarks extracted so far are cached in {cache_dir}; resume with: "
              f"{shlex.join([sys.executable] + sys.argv)}", file=sys.stderr)
        sys.exit(128 + stop.signum)
    except (FileNotFoundError, ValueError, RuntimeError, audio.AudioError, textgrid.TextGridError) as error:
        raise SystemExit(f"error: {error}")
    for config, (status, path) in results.items():
        print(f"{corpora.get(_CORPUS.value).builder.name}/{config}: {status} at {path}")


if __name__ == "__main__":
    extensions.import_from_argv(sys.argv)
    app.run(main)
