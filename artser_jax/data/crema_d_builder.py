"""TFDS builder `crema_d_av`: CREMA-D as it ships (docs/data.md section 1)."""

import tensorflow_datasets as tfds

from artser_jax.data import builders
from artser_jax.data import crema_d


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


class CremaDAv(builders.AudioVisualBuilder):
    """CREMA-D audio-visual: 16 kHz speech, mouth landmarks per video frame, actor-independent splits.

    Splits follow the TFDS `crema_d` builder: sorted actor ids shuffled with RandomState(0), 70/10/20 %
    of the actors (63/9/19) for train/validation/test.
    """

    name = "crema_d_av"
    CORPUS = "crema_d"
    REQUIRED_SAMPLE_RATE = 16000
    # Manifest paths the builder reads (the manifest also lists AudioMP3/, which is not needed).
    MANIFEST_PREFIXES = (crema_d.AUDIO_DIR + "/", crema_d.VIDEO_DIR + "/")
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
            clips.append(builders.Clip(
                utterance_id=stem, speaker=name.actor, gender=metadata.actors[name.actor].gender,
                sentence=name.sentence, text=name.text, emotion=emotion, split=actor_splits[name.actor],
                audio_path=crema_d.audio_path(manual_dir, stem), video_path=crema_d.video_path(manual_dir, stem),
                skip_reason=crema_d.KNOWN_BAD_CLIPS.get(stem)))
        return clips
