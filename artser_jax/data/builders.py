"""The shared TFDS builder of an audio-visual emotion corpus: audio, mouth landmarks, phones and labels per
utterance. Each corpus subclasses `AudioVisualBuilder` in its own module (`crema_d_builder`,
`msp_improv_builder`) and registers in `corpora`; `prepare.prepare_dataset` builds one.

TensorFlow-free: every feature is a `Tensor`, `ClassLabel` or `Text`, the files are ArrayRecord, and the
datasets are read with `tfds.data_source(...)` into Grain. Both read a manual directory in the corpus's
own layout (docs/data.md sections 1 and 2) and work unchanged on the real corpora and the demo corpora.

Build steps (`_split_generators`):
1. list the clips with their labels and splits (corpus-specific, `_list_clips`);
2. check every clip's media: known-bad clips, missing files, unreadable audio and audio shorter than
   `media_checks.MIN_AUDIO_SECONDS` are skipped with a reason, a wrong sample rate where the corpus defines
   one is an error;
3. extract mouth landmarks for all remaining videos (`landmark_extraction`: parallel, cached by content);
   undecodable videos and videos with no face are skipped with a reason, and so are clips whose audio,
   video and alignment disagree about their length (`media_checks.duration_mismatch`);
4. write `skip_report.tsv` into the dataset directory; if more than `max_skip_fraction` of the clips were
   skipped, fail (the input is wrong, not one file) and leave only a `*-FAILED-skip_report.tsv` beside it
   (a later successful build removes it).
TFDS builds into a temporary directory and renames it only on success, so a failed or interrupted build
never leaves a dataset that looks complete; the landmark cache makes the rerun cheap.

With `beam=True` (and a DownloadConfig with a `beam_runner`) steps 1-2 stay in the driver, step 3 and the
examples run per clip in TFDS's Beam pipeline (`beam_build`), and step 4 follows the pipeline
(`_process_pipeline_result`): the same cache, skip rules, report and threshold, hence the same dataset.
"""

import abc
import collections
import dataclasses
import inspect
import logging
import pathlib

from etils import epath
import numpy as np
import tensorflow_datasets as tfds
import tqdm

from artser_jax import alignment, assets
from artser_jax import landmarks as face_landmarks
from artser_jax.data import audio as audio_io
from artser_jax.data import landmark_extraction, media_checks, textgrid

SAMPLE_RATE = audio_io.SAMPLE_RATE
SKIP_REPORT = "skip_report.tsv"
DEFAULT_MAX_SKIP_FRACTION = 0.05
GENDERS = ("female", "male")
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Clip:
    """One utterance to build: identity, label, split and its media files."""
    utterance_id: str
    speaker: str
    gender: str
    sentence: str
    text: str
    emotion: str
    split: str
    audio_path: pathlib.Path
    video_path: pathlib.Path  # None when the corpus has no video for the clip
    skip_reason: str = None   # set before any media is read (e.g. a known-bad clip)


def _features(classes):
    tensor = tfds.features.Tensor
    return tfds.features.FeaturesDict({
        "utterance_id": tfds.features.Text(),
        "speaker": tfds.features.Text(),
        "gender": tfds.features.ClassLabel(names=GENDERS),
        "sentence": tfds.features.Text(),
        "text": tfds.features.Text(),
        "emotion": tfds.features.ClassLabel(names=list(classes)),
        "audio": tensor(shape=(None,), dtype=np.int16),
        "landmarks": tensor(shape=(None, face_landmarks.NUM_KEPT, 3), dtype=np.float32),
        "landmark_valid": tensor(shape=(None,), dtype=np.bool_),
        "frame_rate": tensor(shape=(), dtype=np.float32),
        "frame_times": tensor(shape=(None,), dtype=np.float32),
        "phone_starts": tensor(shape=(None,), dtype=np.float32),
        "phone_ends": tensor(shape=(None,), dtype=np.float32),
        "phone_labels": tfds.features.Text(),
        "corpus": tfds.features.Text(),
    })


def read_phones(path):
    """The `phone_*` fields of a clip from the TextGrid at `path` (`textgrid.phone_arrays`); empty when
    the clip has no TextGrid (segmentation then needs method 'windows')."""
    if not path.is_file():
        return np.zeros(0, np.float32), np.zeros(0, np.float32), ""
    return textgrid.phone_arrays(path)


def duration_mismatch(clip, textgrid_path, audio_seconds, outcome):
    """The skip reason when the clip's video (its landmark `outcome`) or alignment disagrees with its
    audio's length, else None."""
    _, phone_ends, _ = read_phones(textgrid_path)
    return media_checks.duration_mismatch(
        clip.audio_path, audio_seconds, clip.video_path, outcome.num_frames / outcome.frame_rate,
        textgrid_path, float(phone_ends[-1]) if len(phone_ends) else None)


def clip_example(clip, textgrid_path, track, corpus, required_rate):
    """(key, features) of one kept clip: its audio at 16 kHz, its landmark track and its phones."""
    waveform = audio_io.load_audio(clip.audio_path, SAMPLE_RATE, expected_rate=required_rate)
    phone_starts, phone_ends, phone_labels = read_phones(textgrid_path)
    return clip.utterance_id, {
        "utterance_id": clip.utterance_id,
        "speaker": clip.speaker,
        "gender": clip.gender,
        "sentence": clip.sentence,
        "text": clip.text,
        "emotion": clip.emotion,
        "audio": audio_io.to_int16(waveform),
        "landmarks": track.landmarks,
        "landmark_valid": track.valid,
        "frame_rate": np.float32(track.frame_rate),
        "frame_times": track.frame_times,
        "phone_starts": phone_starts,
        "phone_ends": phone_ends,
        "phone_labels": phone_labels,
        "corpus": corpus,
    }


class AudioVisualBuilder(tfds.core.GeneratorBasedBuilder):
    """Shared build logic; subclasses list the clips of their corpus."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Audio (16 kHz int16), mouth landmarks, phones, labels, speaker-independent splits."}
    CORPUS = None
    # Sample rate that defines the corpus (a file at another rate is an error); None: resample anything.
    REQUIRED_SAMPLE_RATE = None
    MANIFEST_PREFIXES = None  # paths of a `--verify` manifest the builder reads (None: all of them)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS 4.9.10 resolves this through `importlib_resources`, which it only installs for Python < 3.9;
        # for a class defined in a regular file the answer is that file.
        return epath.Path(inspect.getfile(cls))

    def __init__(self, *, num_workers=1, max_skip_fraction=DEFAULT_MAX_SKIP_FRACTION, landmark_cache_dir=None,
                 face_model_path=None, progress=True, alignment_dir=None, native_logs=False, beam=False, **kwargs):
        super().__init__(**kwargs)
        # beam: extract landmarks and write examples in the Beam pipeline of `download_and_prepare`'s
        # DownloadConfig(beam_runner=...) instead of the process pool (`beam_build`).
        self._beam = beam
        self._beam_state = None
        self._alignment_dir = alignment_dir
        self._num_workers = num_workers
        self._max_skip_fraction = max_skip_fraction
        self._landmark_cache_dir = landmark_cache_dir
        self._face_model_path = face_model_path
        self._progress = progress
        self._native_logs = native_logs

    def _info(self):
        config = self.builder_config
        return self.dataset_info_from_configs(
            features=_features(config.classes),
            description=self.__doc__,
            metadata=tfds.core.MetadataDict(
                sample_rate=SAMPLE_RATE, corpus=self.CORPUS, classes=list(config.classes),
                label_source=config.label_source, split_rule=self._split_rule()),
        )

    @abc.abstractmethod
    def _split_rule(self):
        """One line saying how clips are assigned to splits (stored in the dataset metadata)."""

    @abc.abstractmethod
    def _list_clips(self, manual_dir):
        """All labelled clips of the corpus under `manual_dir`, as `Clip`s."""

    @classmethod
    def _missing_manual_entries(cls, manual_dir):
        """What `manual_dir` lacks of the corpus's layout (names relative to it); empty when it looks right."""
        return []

    @classmethod
    def check_manual_dir(cls, manual_dir):
        """FileNotFoundError, in one line stating the expected layout, for a missing, empty or wrong folder.

        Checked before TFDS sees the folder: TFDS answers an empty one with an uncaught AssertionError.
        """
        manual_dir = pathlib.Path(manual_dir)
        if not manual_dir.is_dir():
            problem = "manual directory not found"
        elif not any(manual_dir.iterdir()):
            problem = f"the {cls.name} manual directory is empty"
        else:
            missing = cls._missing_manual_entries(manual_dir)
            if not missing:
                return
            problem = f"not a {cls.CORPUS} manual directory: it lacks {', '.join(missing)}"
        raise FileNotFoundError(f"{manual_dir}: {problem}. {cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")

    def _manual_dir(self, dl_manager):
        manual_dir = pathlib.Path(dl_manager.manual_dir)
        self.check_manual_dir(manual_dir)
        return manual_dir

    @property
    def failed_report_path(self):
        return pathlib.Path(self.data_dir_root) / f"{self.name}-{self.builder_config.name}-FAILED-{SKIP_REPORT}"

    def _split_generators(self, dl_manager):
        manual_dir = self._manual_dir(dl_manager)
        clips = self._list_clips(manual_dir)
        if not clips:
            raise ValueError(f"{manual_dir}: no clips with a label of {list(self.builder_config.classes)} found")
        if self._alignment_dir is not None:  # clips launch/align.py left out (--missing_transcript=skip)
            skip_reasons = alignment.skip_reasons(self._alignment_dir)
            for clip in clips:
                clip.skip_reason = clip.skip_reason or skip_reasons.get(clip.utterance_id)
        logging.info("%s: %d clips listed in %s", self.name, len(clips), manual_dir)
        skips, audio_seconds = self._check_audio(clips)
        model_path = str(self._face_model_path or assets.face_model_path())
        cache_dir = pathlib.Path(self._landmark_cache_dir or pathlib.Path(self.data_dir_root) / "landmark_cache")
        if self._beam:
            return self._beam_split_generators(manual_dir, clips, skips, audio_seconds, model_path, cache_dir)
        videos = [c.video_path for c in clips if c.utterance_id not in skips]
        outcomes = landmark_extraction.extract_landmarks(videos, cache_dir, self._num_workers, model_path,
                                                         progress=self._progress, native_logs=self._native_logs)
        for clip in clips:
            if clip.utterance_id in skips:
                continue
            outcome = outcomes[str(clip.video_path)]
            if outcome.skip_reason is not None:
                skips[clip.utterance_id] = (clip.video_path, outcome.skip_reason)
                continue
            mismatch = duration_mismatch(clip, self._textgrid_path(clip), audio_seconds[clip.utterance_id],
                                          outcome)
            if mismatch:
                skips[clip.utterance_id] = (clip.audio_path, mismatch)
        self._write_skip_report(clips, skips)
        cache = landmark_extraction.LandmarkCache(cache_dir, landmark_extraction.settings_tag(model_path))
        kept = [c for c in clips if c.utterance_id not in skips]
        self.info.metadata["num_skipped"] = len(skips)
        splits = {}
        for split in SPLITS:
            split_clips = [c for c in kept if c.split == split]
            self._check_usable(manual_dir, split, split_clips)
            splits[split] = self._generate_examples(split_clips, outcomes, cache)
        return splits

    def _check_usable(self, manual_dir, split, split_clips):
        if not split_clips:
            raise ValueError(f"{manual_dir}: the {split} split has no usable clips ({self._split_rule()})")

    def _beam_split_generators(self, manual_dir, clips, skips, audio_seconds, model_path, cache_dir):
        """One Beam transform per split (landmarks, skip rules, examples: `beam_build`); the skip report and
        `max_skip_fraction` follow in `_process_pipeline_result`, once the pipeline has run."""
        from artser_jax.data import beam_build  # the optional `beam` extra

        tag = landmark_extraction.settings_tag(model_path)
        self._beam_state = {"clips": clips, "skips": dict(skips), "skip_files": {}}
        splits = {}
        for split in SPLITS:
            records = [beam_build.ClipRecord(c, self._textgrid_path(c), audio_seconds[c.utterance_id])
                       for c in clips if c.split == split and c.utterance_id not in skips]
            self._check_usable(manual_dir, split, records)
            skips_path = self.data_path / f".beam-skips-{split}.json"
            self._beam_state["skip_files"][split] = skips_path
            splits[split] = beam_build.ClipsToExamples(records, skips_path, cache_dir, tag, model_path,
                                                       self._native_logs, self.CORPUS, self.REQUIRED_SAMPLE_RATE)
        return splits

    def _process_pipeline_result(self, pipeline_result):
        """After the Beam pipeline: the skips the workers found join the driver's in the skip report, with the
        same threshold as the process-pool build (TFDS then discards the written shards of a failed build with
        its temporary directory). A split left without examples fails earlier, inside the pipeline, with
        TFDS's "The total number of generated examples is 0 for split ..."."""
        from artser_jax.data import beam_build

        state = self._beam_state
        beam_build.log_landmark_counts(pipeline_result)
        skips = state["skips"]
        for path in state["skip_files"].values():
            skips.update(beam_build.read_skips(path))
        self._write_skip_report(state["clips"], skips)
        self.info.metadata["num_skipped"] = len(skips)

    def _textgrid_path(self, clip):
        """The clip's TextGrid: in the alignment folder when one is given, else beside the audio."""
        if self._alignment_dir is None:
            return clip.audio_path.with_suffix(".TextGrid")
        return alignment.find_textgrid(self._alignment_dir, clip.speaker, clip.utterance_id)

    def _check_audio(self, clips):
        """({utterance_id: (file, reason)} for clips whose media are known bad, missing, unreadable or too
        short, {utterance_id: audio seconds} for the others)."""
        skips, audio_seconds = {}, {}
        for clip in tqdm.tqdm(clips, desc="checking audio", unit="clip", disable=not self._progress):
            if clip.skip_reason:
                skips[clip.utterance_id] = (clip.audio_path, clip.skip_reason)
            elif not clip.audio_path.is_file():
                skips[clip.utterance_id] = (clip.audio_path, "missing audio file")
            elif clip.video_path is None:
                skips[clip.utterance_id] = (clip.audio_path, "missing video file: no video of this clip found")
            elif not clip.video_path.is_file():
                skips[clip.utterance_id] = (clip.video_path, "missing video file")
            else:
                try:
                    samples, rate = audio_io.read_audio(clip.audio_path)
                except audio_io.AudioError as error:
                    skips[clip.utterance_id] = (clip.audio_path, f"unreadable audio: {error}")
                    continue
                if self.REQUIRED_SAMPLE_RATE and rate != self.REQUIRED_SAMPLE_RATE:
                    raise audio_io.AudioError(
                        f"{clip.audio_path}: sample rate {rate} Hz, but {self.CORPUS} audio is "
                        f"{self.REQUIRED_SAMPLE_RATE} Hz; is this the original corpus?")
                seconds = samples.shape[0] / rate
                too_short = media_checks.audio_too_short(clip.audio_path, seconds)
                if too_short:
                    skips[clip.utterance_id] = (clip.audio_path, too_short)
                else:
                    audio_seconds[clip.utterance_id] = seconds
        return skips, audio_seconds

    def _write_skip_report(self, clips, skips):
        rows = [(uid, str(path), reason) for uid, (path, reason) in sorted(skips.items())]
        known_bad = sum(1 for c in clips if c.skip_reason)
        media_skips = len(skips) - known_bad
        fraction = media_skips / max(1, len(clips) - known_bad)
        text = "utterance_id\tfile\treason\n" + "".join("\t".join(row) + "\n" for row in rows)
        reasons = collections.Counter(reason.split(":")[0] for _, _, reason in rows)
        logging.info("%s: skipped %d of %d clips (%d known bad): %s", self.name, len(skips), len(clips),
                     known_bad, dict(reasons))
        if fraction > self._max_skip_fraction:
            failed = self.failed_report_path
            failed.write_text(text)
            raise RuntimeError(
                f"{self.name}/{self.builder_config.name}: {media_skips} of {len(clips) - known_bad} clips "
                f"({fraction:.1%}) have unusable media, more than max_skip_fraction="
                f"{self._max_skip_fraction:.1%}; something is wrong with the input, not with single files. "
                f"Reasons: {dict(reasons)}. Full list: {failed}")
        self.data_path.mkdir(parents=True, exist_ok=True)
        (self.data_path / SKIP_REPORT).write_text(text)

    def _generate_examples(self, clips, outcomes, cache):
        for clip in clips:
            track = cache.load_track(outcomes[str(clip.video_path)].sha256)
            yield clip_example(clip, self._textgrid_path(clip), track, self.CORPUS, self.REQUIRED_SAMPLE_RATE)
