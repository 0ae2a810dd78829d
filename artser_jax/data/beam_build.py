"""The Apache Beam half of a builder's `_split_generators` (`builders.AudioVisualBuilder`, `beam=True`).

Needs the optional `beam` extra (`pip install -e .[beam]`). One `ClipsToExamples` per split: the clips that
passed the audio checks are reshuffled over the workers, each worker hashes the clip's video, looks it up in
the same content-hash landmark cache as the process pool (`landmark_extraction.process_video`, which
extracts and stores a missing track), applies the same skip rules and writes the TFDS example. Skipped
clips go to a side output that one step collects into `<split skips file>` (JSON rows: utterance_id, file,
reason); the builder turns those into `skip_report.tsv` and applies `max_skip_fraction` once the pipeline
has run. On a cluster runner the landmark cache, the manual directory, the dataset directory and the face
model must be at the same paths on every worker (shared storage).
"""

import collections
import dataclasses
import json
import logging
import pathlib

import apache_beam as beam
from etils import epath

from artser_jax.data import builders, landmark_extraction

METRICS_NAMESPACE = "landmarks"
_SKIPPED = "skipped"


@dataclasses.dataclass(frozen=True)
class ClipRecord:
    """One clip sent to the workers, with what the driver already knows of it."""
    clip: builders.Clip
    textgrid_path: pathlib.Path
    audio_seconds: float


class _ClipToExample(beam.DoFn):
    """Landmarks (cached or extracted), skip rules and the example of one clip."""

    def __init__(self, cache_dir, tag, model_path, native_logs, corpus, required_rate):
        self._cache_dir = str(cache_dir)
        self._tag = tag
        self._model_path = model_path
        self._native_logs = native_logs
        self._corpus = corpus
        self._required_rate = required_rate
        self._cache = None
        self._counters = {name: beam.metrics.Metrics.counter(METRICS_NAMESPACE, name)
                          for name in ("videos", "from_cache", "skipped", "frames_extracted")}

    def setup(self):
        import cv2

        cv2.setNumThreads(1)  # one bundle per core: no extra decoder threads competing with the others
        self._cache = landmark_extraction.LandmarkCache(self._cache_dir, self._tag)

    def process(self, record):
        clip = record.clip
        outcome = landmark_extraction.process_video(clip.video_path, self._cache, self._model_path,
                                                    self._native_logs)
        if outcome.cache_problem:
            logging.warning("%s; deleted it and extracted %s again", outcome.cache_problem, outcome.path)
        self._counters["videos"].inc()
        self._counters["from_cache"].inc(int(outcome.from_cache))
        if not outcome.from_cache:
            self._counters["frames_extracted"].inc(outcome.num_frames)
        if outcome.skip_reason is not None:
            self._counters["skipped"].inc()
            yield beam.pvalue.TaggedOutput(_SKIPPED, (clip.utterance_id, str(clip.video_path), outcome.skip_reason))
            return
        mismatch = builders.duration_mismatch(clip, record.textgrid_path, record.audio_seconds, outcome)
        if mismatch:
            yield beam.pvalue.TaggedOutput(_SKIPPED, (clip.utterance_id, str(clip.audio_path), mismatch))
            return
        track = self._cache.load_track(outcome.sha256)
        yield builders.clip_example(clip, record.textgrid_path, track, self._corpus, self._required_rate)


def _write_skips(rows, path):
    epath.Path(path).write_text(json.dumps(sorted(rows)))


class ClipsToExamples(beam.PTransform):
    """PBegin -> (key, example) of every usable clip in `records`; the skipped ones land in `skips_path`."""

    def __init__(self, records, skips_path, cache_dir, tag, model_path, native_logs, corpus, required_rate):
        super().__init__()
        self._records = records
        self._skips_path = str(skips_path)
        self._clip_to_example = _ClipToExample(cache_dir, tag, model_path, native_logs, corpus, required_rate)

    def expand(self, pbegin):
        results = (pbegin
                   | "ListClips" >> beam.Create(self._records)
                   # Create keeps its elements in one bundle; the reshuffle spreads the videos over the workers.
                   | "SpreadOverWorkers" >> beam.Reshuffle()
                   | "LandmarksAndExample" >> beam.ParDo(self._clip_to_example).with_outputs(_SKIPPED, main="examples"))
        _ = (results[_SKIPPED]
             | "CollectSkips" >> beam.combiners.ToList()
             | "WriteSkips" >> beam.Map(_write_skips, path=self._skips_path))
        return results.examples


def read_skips(path):
    """{utterance_id: (file, reason)} from a skips file written by `ClipsToExamples`; deletes the file."""
    path = epath.Path(path)
    rows = json.loads(path.read_text())
    path.unlink()
    return {utterance_id: (file, reason) for utterance_id, file, reason in rows}


def log_landmark_counts(pipeline_result):
    """One log line with the landmark counters the workers reported."""
    counters = pipeline_result.metrics().query(
        beam.metrics.MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    counts = collections.Counter()
    for counter in counters:  # one result per split's step: add them up
        counts[counter.key.metric.name] += counter.result
    logging.info("Landmarks (Beam): %d videos, %d from cache, %d skipped, %d frames extracted",
                 counts["videos"], counts["from_cache"], counts["skipped"], counts["frames_extracted"])
    return counts
