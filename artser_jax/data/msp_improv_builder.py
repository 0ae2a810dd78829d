"""TFDS builder `msp_improv_av`: MSP-IMPROV as it ships (docs/data.md section 2)."""

import logging

import tensorflow_datasets as tfds

from artser_jax.data import builders
from artser_jax.data import msp_improv


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


class MspImprovAv(builders.AudioVisualBuilder):
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
            clips.append(builders.Clip(
                utterance_id=stem, speaker=name.speaker, gender=name.gender, sentence=name.sentence, text="",
                emotion=emotion, split=msp_improv.session_split(name.session, dev_sessions, test_sessions),
                audio_path=wavs[stem], video_path=videos.get(stem)))
        return clips
