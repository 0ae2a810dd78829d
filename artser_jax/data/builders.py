"""TFDS builders `crema_d_av` and `msp_improv_av`: audio, mouth landmarks, phones and labels per utterance.

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
"""

import abc
import collections
import dataclasses
import inspect
import logging
import pathlib
import shutil

from etils import epath
import numpy as np
import tensorflow_datasets as tfds
import tqdm

from artser_jax import alignment, assets
from artser_jax import landmarks as face_landmarks
from artser_jax.data import audio as audio_io
from artser_jax.data import crema_d, landmark_extraction, media_checks, msp_improv, textgrid

SAMPLE_RATE = audio_io.SAMPLE_RATE
SKIP_REPORT = "skip_report.tsv"
DEFAULT_MAX_SKIP_FRACTION = 0.05
GENDERS = ("female", "male")


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


class _AudioVisualBuilder(tfds.core.GeneratorBasedBuilder):
    """Shared build logic; subclasses list the clips of their corpus."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Audio (16 kHz int16), mouth landmarks, phones, labels, speaker-independent splits."}
    CORPUS = None
    # Sample rate that defines the corpus (a file at another rate is an error); None: resample anything.
    REQUIRED_SAMPLE_RATE = None

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS 4.9.10 resolves this through `importlib_resources`, which it only installs for Python < 3.9;
        # for a class defined in a regular file the answer is that file.
        return epath.Path(inspect.getfile(cls))

    def __init__(self, *, num_workers=1, max_skip_fraction=DEFAULT_MAX_SKIP_FRACTION, landmark_cache_dir=None,
                 face_model_path=None, progress=True, alignment_dir=None, native_logs=False, **kwargs):
        super().__init__(**kwargs)
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
            mismatch = self._duration_mismatch(clip, audio_seconds[clip.utterance_id], outcome)
            if mismatch:
                skips[clip.utterance_id] = (clip.audio_path, mismatch)
        self._write_skip_report(clips, skips)
        cache = landmark_extraction.LandmarkCache(cache_dir, landmark_extraction.settings_tag(model_path))
        kept = [c for c in clips if c.utterance_id not in skips]
        self.info.metadata["num_skipped"] = len(skips)
        splits = {}
        for split in ("train", "validation", "test"):
            split_clips = [c for c in kept if c.split == split]
            if not split_clips:
                raise ValueError(f"{manual_dir}: the {split} split has no usable clips "
                                 f"({self._split_rule()})")
            splits[split] = self._generate_examples(split_clips, outcomes, cache)
        return splits

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

    def _duration_mismatch(self, clip, audio_seconds, outcome):
        """The skip reason when the clip's video or alignment disagrees with its audio's length, else None."""
        alignment_path = self._textgrid_path(clip)
        _, phone_ends, _ = read_phones(alignment_path)
        return media_checks.duration_mismatch(
            clip.audio_path, audio_seconds, clip.video_path, outcome.num_frames / outcome.frame_rate,
            alignment_path, float(phone_ends[-1]) if len(phone_ends) else None)

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
            waveform = audio_io.load_audio(clip.audio_path, SAMPLE_RATE, expected_rate=self.REQUIRED_SAMPLE_RATE)
            track = cache.load_track(outcomes[str(clip.video_path)].sha256)
            phone_starts, phone_ends, phone_labels = read_phones(self._textgrid_path(clip))
            yield clip.utterance_id, {
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
                "corpus": self.CORPUS,
            }


class CremaDConfig(tfds.core.BuilderConfig):
    """Classes (4 or 6) and label source (intended emotion or a perceived majority vote)."""

    def __init__(self, *, classes, label_source, **kwargs):
        super().__init__(**kwargs)
        self.classes = tuple(classes)
        self.label_source = label_source


def _crema_d_configs():
    configs = []
    for classes in (crema_d.EMOTIONS_4, crema_d.EMOTIONS_6):
        for source, suffix in (("intended", ""), ("voice_vote", "_voice"), ("multimodal_vote", "_multimodal")):
            configs.append(CremaDConfig(
                name=f"emotion{len(classes)}{suffix}", classes=classes, label_source=source,
                description=f"{len(classes)} classes ({', '.join(classes)}), label: {source}"
                            + (" (ties dropped)" if source != "intended" else " (from the file name)")))
    return configs


class CremaDAv(_AudioVisualBuilder):
    """CREMA-D audio-visual: 16 kHz speech, mouth landmarks per video frame, actor-independent splits.

    Splits follow the TFDS `crema_d` builder: sorted actor ids shuffled with RandomState(0), 70/10/20 %
    of the actors (63/9/19) for train/validation/test.
    """

    name = "crema_d_av"
    CORPUS = "crema_d"
    REQUIRED_SAMPLE_RATE = 16000
    BUILDER_CONFIGS = _crema_d_configs()
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Clone https://github.com/CheyneyComputerScience/CREMA-D with Git LFS (`git lfs pull`) and pass the "
        "clone as the manual dir: it must hold AudioWAV/, VideoFlash/, SentenceFilenames.csv, "
        "VideoDemographics.csv and processedResults/summaryTable.csv.")

    @classmethod
    def _missing_manual_entries(cls, manual_dir):
        audio_dir = manual_dir / crema_d.AUDIO_DIR
        missing = [] if next(audio_dir.glob("*.wav"), None) else [f"{crema_d.AUDIO_DIR}/*.wav"]
        if not (manual_dir / crema_d.VIDEO_DIR).is_dir():
            missing.append(f"{crema_d.VIDEO_DIR}/")
        return missing + [name for name in (crema_d.SENTENCE_FILENAMES, crema_d.DEMOGRAPHICS, crema_d.SUMMARY_TABLE)
                          if not (manual_dir / name).is_file()]

    def _split_rule(self):
        return ("by actor, TFDS crema_d algorithm: sorted actor ids, RandomState(0).shuffle, "
                "int(p * n) cuts at 0.7 / 0.8 (63 / 9 / 19 actors)")

    def _list_clips(self, manual_dir):
        audio_dir = manual_dir / crema_d.AUDIO_DIR
        if not audio_dir.is_dir():
            raise FileNotFoundError(f"{audio_dir}: CREMA-D audio directory not found")
        for path in sorted(audio_dir.glob("*.wav")):
            crema_d.parse_stem(path.stem, source=str(path))
        metadata = crema_d.load_metadata(manual_dir)
        labels = metadata.labels(self.builder_config.label_source, self.builder_config.classes)
        actor_splits = metadata.split_of_actor()
        clips = []
        for stem, emotion in labels.items():
            name = crema_d.parse_stem(stem)
            clips.append(Clip(
                utterance_id=stem, speaker=name.actor, gender=metadata.actors[name.actor].gender,
                sentence=name.sentence, text=name.text, emotion=emotion, split=actor_splits[name.actor],
                audio_path=crema_d.audio_path(manual_dir, stem), video_path=crema_d.video_path(manual_dir, stem),
                skip_reason=crema_d.KNOWN_BAD_CLIPS.get(stem)))
        return clips


class MspImprovConfig(tfds.core.BuilderConfig):
    """Label source (consensus or scenario) and which sessions form the validation and test splits.

    `dev_sessions` / `test_sessions` None: the second-to-last and the last session present (5 and 6 of the
    full corpus; `msp_improv.default_sessions`). The sessions used are stored in the dataset metadata.
    """

    def __init__(self, *, label_source, dev_sessions=None, test_sessions=None, **kwargs):
        super().__init__(**kwargs)
        self.classes = msp_improv.EMOTIONS_4
        self.label_source = label_source
        self.dev_sessions = tuple(dev_sessions) if dev_sessions else None
        self.test_sessions = tuple(test_sessions) if test_sessions else None


def _msp_improv_configs():
    configs = []
    for source, suffix in (("consensus", ""), ("scenario", "_scenario")):
        configs.append(MspImprovConfig(
            name=f"emotion4{suffix}", label_source=source,
            description=f"4 classes, label: {source}; validation = the second-to-last session present, "
                        "test = the last (5 and 6 of the full corpus)"))
        for fold, dev, test in msp_improv.leave_one_session_out_folds():
            configs.append(MspImprovConfig(
                name=f"emotion4{suffix}_loso{fold}", label_source=source, dev_sessions=dev, test_sessions=test,
                description=f"4 classes, label: {source}; leave-one-session-out fold {fold}: "
                            f"validation = session {dev}, test = session {test}"))
    return configs


class MspImprovAv(_AudioVisualBuilder):
    """MSP-IMPROV audio-visual: speech resampled to 16 kHz, mouth landmarks per video frame, session splits.

    Sessions are speaker-independent (two actors each); the config names the validation and test sessions,
    the other sessions train.
    """

    name = "msp_improv_av"
    CORPUS = "msp_improv"
    BUILDER_CONFIGS = _msp_improv_configs()
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "MSP-IMPROV is licensed: request it from the MSP lab (UT Dallas) and pass the release folder as the "
        "manual dir. It must hold Evaluation.txt (or Evalution.txt) at its root, the audio "
        "(Audio/session<k>/S<nn><E>/<cond>/<stem>.wav, with or without the Audio/ level) and the video "
        "(the parallel tree of .avi files).")

    @classmethod
    def _missing_manual_entries(cls, manual_dir):
        missing = []
        if not any((manual_dir / name).is_file() for name in msp_improv.LABEL_FILE_NAMES):
            missing.append(" (or ".join(msp_improv.LABEL_FILE_NAMES) + ")")
        for suffix in (".wav", ".avi"):
            if next(manual_dir.rglob(f"*{suffix}"), None) is None:
                missing.append(f"any {suffix} file")
        return missing

    def _split_rule(self):
        config = self.builder_config
        if config.dev_sessions is None:
            return ("by session: validation = the second-to-last session present, test = the last "
                    "(5 and 6 of the full corpus), train = the others")
        return (f"by session: validation = sessions {list(config.dev_sessions)}, test = sessions "
                f"{list(config.test_sessions)}, train = the others")

    def _list_clips(self, manual_dir):
        config = self.builder_config
        metadata = msp_improv.load_metadata(manual_dir)
        logging.info("%s: %s has %d utterances, consensus categories %s", self.name, metadata.label_file,
                     len(metadata.evaluations), dict(msp_improv.consensus_counts(metadata.evaluations)))
        wavs = msp_improv.find_media(manual_dir, ".wav")
        if not wavs:
            raise FileNotFoundError(f"{manual_dir}: no MSP-IMPROV .wav files found (looked in all subfolders)")
        videos = msp_improv.find_media(manual_dir, ".avi")
        labels = metadata.labels(sorted(wavs), config.label_source, config.classes)
        if config.dev_sessions is None:
            dev_sessions, test_sessions = msp_improv.default_sessions(
                msp_improv.parse_stem(stem).session for stem in labels)
        else:
            dev_sessions, test_sessions = config.dev_sessions, config.test_sessions
        self.info.metadata.update(dev_sessions=list(dev_sessions), test_sessions=list(test_sessions))
        logging.info("%s: validation sessions %s, test sessions %s", self.name, dev_sessions, test_sessions)
        unevaluated = [stem for stem in wavs if stem not in metadata.evaluations]
        if unevaluated:
            logging.warning("%s: %d audio files have no line in %s (e.g. %s)", self.name, len(unevaluated),
                            metadata.label_file, unevaluated[:3])
        clips = []
        for stem, emotion in labels.items():
            name = msp_improv.parse_stem(stem)
            clips.append(Clip(
                utterance_id=stem, speaker=name.speaker, gender=name.gender, sentence=name.sentence, text="",
                emotion=emotion, split=msp_improv.session_split(name.session, dev_sessions, test_sessions),
                audio_path=wavs[stem], video_path=videos.get(stem)))
        return clips


BUILDERS = {"crema_d": CremaDAv, "msp_improv": MspImprovAv}
# Manifest paths the builders read (the manifest also lists AudioMP3/, which is not needed).
MANIFEST_PREFIXES = {"crema_d": (crema_d.AUDIO_DIR + "/", crema_d.VIDEO_DIR + "/"), "msp_improv": None}


def prepare_dataset(corpus, manual_dir, data_dir, config_names=("emotion4",), num_workers=1, verify=False,
                    manifest_path=None, max_skip_fraction=DEFAULT_MAX_SKIP_FRACTION, landmark_cache_dir=None,
                    face_model_path=None, progress=True, alignment_dir=None, force=False, native_logs=False):
    """Builds the `config_names` of a corpus's dataset into `data_dir`; {config: (status, path)}.

    Idempotent: a config already built is reported as such and left alone, unless `force`: then it is
    rebuilt (from the landmark cache, which is keyed by file content), and the previous build is put back
    if the rebuild fails. With `verify`, the media are checked against the manifest (default
    `<manual_dir>/media-manifest.tsv`) before any extraction, and any missing, truncated or corrupted file
    stops the build with a report. A successful build removes a `*-FAILED-skip_report.tsv` of an earlier
    failed one. `alignment_dir`: the phone TextGrids come from there (`launch/align.py`'s output or
    MFA's) instead of beside the audio.
    """
    if corpus not in BUILDERS:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of {sorted(BUILDERS)}")
    manual_dir = pathlib.Path(manual_dir).expanduser()
    BUILDERS[corpus].check_manual_dir(manual_dir)
    if alignment_dir is not None and not pathlib.Path(alignment_dir).expanduser().is_dir():
        raise FileNotFoundError(f"{alignment_dir}: alignment directory not found (write it with launch/align.py)")
    data_dir = pathlib.Path(data_dir).expanduser()
    unknown = [name for name in config_names if name not in BUILDERS[corpus].builder_configs]
    if unknown:
        raise ValueError(f"unknown {BUILDERS[corpus].name} configs {unknown}; known: "
                         f"{sorted(BUILDERS[corpus].builder_configs)}")
    builder_kwargs = dict(num_workers=num_workers, max_skip_fraction=max_skip_fraction,
                          landmark_cache_dir=landmark_cache_dir, face_model_path=face_model_path, progress=progress,
                          alignment_dir=alignment_dir and str(pathlib.Path(alignment_dir).expanduser()),
                          native_logs=native_logs)
    builders = {name: BUILDERS[corpus](config=name, data_dir=str(data_dir), **builder_kwargs)
                for name in config_names}
    results = {}
    for name, builder in builders.items():
        if builder.is_prepared() and not force:
            logging.info("%s/%s is already built at %s; nothing to do (--force rebuilds it)", builder.name, name,
                         builder.data_path)
            results[name] = ("already built", builder.data_path)
    if verify and len(results) < len(builders):
        _verify_media(corpus, manual_dir, data_dir, manifest_path, progress)
    for name, builder in builders.items():
        if name in results:
            continue
        previous = None
        if builder.is_prepared():
            previous = builder.data_path.parent / f".{builder.data_path.name}-replaced-by-force"
            if previous.exists():
                shutil.rmtree(previous)
            builder.data_path.rename(previous)
            # A fresh builder: the old one carries the replaced dataset's info.
            builder = BUILDERS[corpus](config=name, data_dir=str(data_dir), **builder_kwargs)
        try:
            # try_download_gcs=False: these datasets are never on TFDS's bucket, so do not probe the network.
            builder.download_and_prepare(
                file_format="array_record",
                download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir), try_download_gcs=False))
        except BaseException:
            if previous is not None:
                previous.rename(builder.data_path)
                logging.warning("%s/%s: the forced rebuild failed; the previous build is back at %s",
                                builder.name, name, builder.data_path)
            raise
        if previous is not None:
            shutil.rmtree(previous)
        builder.failed_report_path.unlink(missing_ok=True)
        logging.info("%s/%s built at %s", builder.name, name, builder.data_path)
        results[name] = ("rebuilt" if previous is not None else "built", builder.data_path)
    return results


def _verify_media(corpus, manual_dir, data_dir, manifest_path, progress):
    from artser_jax.data import manifest

    manifest_path = pathlib.Path(manifest_path or manual_dir / manifest.MANIFEST_NAME)
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: media manifest not found; pass --manifest=PATH to verify "
                                f"(for CREMA-D: the media-manifest.tsv shipped with the metadata)")
    report = manifest.verify_media(manual_dir, manifest.read_manifest(manifest_path),
                                   prefixes=MANIFEST_PREFIXES[corpus], progress=progress)
    logging.info("media verification: %s", report.summary())
    if not report.ok:
        data_dir.mkdir(parents=True, exist_ok=True)
        report_path = data_dir / f"{corpus}-media-verification.tsv"
        report.write_tsv(report_path)
        raise RuntimeError(f"{manual_dir}: {report.summary()}\nFull report: {report_path}")
