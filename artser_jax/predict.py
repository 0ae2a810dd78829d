"""Audio-only emotion prediction with a model exported by `launch/train.py` (`<workdir>/export`).

Any sample rate and channel count is accepted (downmixed to mono, resampled to the model's rate). Segments
come from the model's segment method: a model trained on phone segments uses a Praat TextGrid (tier
"phones") lying beside the wav when there is one, and fixed windows over the voiced audio otherwise
(logged once). Audio longer than the model's training length is cropped to it, as in training.
A file that cannot be used yields an error record and the batch goes on.
"""

import csv
import json
import logging
import pathlib

import numpy as np
from flax import nnx
from scipy import special

from artser_jax import export
from artser_jax import input_pipeline
from artser_jax import segments as segments_lib
from artser_jax.data import audio as audio_lib
from artser_jax.data import textgrid

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")


class Predictor:
    """Classifies audio files with an exported model."""

    def __init__(self, model_dir):
        self.model, self.metadata = export.load_exported_model(model_dir)
        self.labels = list(self.metadata["labels"])
        self.sample_rate = int(self.metadata["sample_rate"])
        self.max_samples = int(round(self.metadata["max_seconds"] * self.sample_rate))
        self.segments = self.metadata["segments"]
        self._warned_windows = False
        self._forward = nnx.jit(lambda model, *inputs: model(*inputs, deterministic=True).logits)

    def _segments(self, path, samples):
        options = self.segments
        method = options["method"]
        grid = pathlib.Path(path).with_suffix(".TextGrid")
        if method == "phones" and grid.exists():
            starts, ends, labels = textgrid.phone_arrays(grid)
            example = {"utterance_id": str(path), "phone_starts": starts, "phone_ends": ends,
                       "phone_labels": labels,
                       # No video at inference: the minimum phone length is applied at 30 fps.
                       "frame_rate": np.float32(30.0)}
            return segments_lib.utterance_segments(example, "phones", options["max_segments"],
                                                   **segments_lib.segment_options("phones", options))
        if method == "phones" and not self._warned_windows:
            logging.warning("The model was trained on phone segments; files without a .TextGrid beside "
                            "them use %.0f ms windows instead", 1000 * options["window_seconds"])
            self._warned_windows = True
        example = {"utterance_id": str(path), "audio": audio_lib.to_int16(samples)}
        return segments_lib.utterance_segments(example, "windows", options["max_segments"],
                                               **segments_lib.segment_options("windows", options))

    def predict_file(self, path):
        """`{'file', 'label', 'probabilities': {class: p}}`, or `{'file', 'error'}` for an unusable file."""
        try:
            samples = audio_lib.load_audio(path, target_rate=self.sample_rate)
            segments = self._segments(path, samples)
        except (audio_lib.AudioError, textgrid.TextGridError, ValueError) as error:
            logging.error("%s", error)
            return {"file": str(path), "error": str(error)}
        audio, audio_mask = input_pipeline.crop_or_pad_audio(samples, self.max_samples)
        max_seconds = self.max_samples / self.sample_rate
        seg_mask = segments["seg_mask"] & (segments["seg_start"] < max_seconds)
        seg_end = np.minimum(segments["seg_end"], max_seconds)
        logits = self._forward(self.model, audio[None], audio_mask[None], segments["seg_start"][None],
                               seg_end[None], seg_mask[None])
        probabilities = special.softmax(np.asarray(logits, np.float64), axis=-1)[0]
        return {"file": str(path), "label": self.labels[int(probabilities.argmax())],
                "probabilities": {name: float(p) for name, p in zip(self.labels, probabilities)},
                "duration_s": round(len(samples) / self.sample_rate, 3),
                "cropped": bool(len(samples) > self.max_samples)}


def list_inputs(wav=None, directory=None, csv_path=None):
    """Files named by exactly one of: one file, a folder (audio files, recursively, sorted), a CSV with a
    `path` column (or paths in the first column) relative to the CSV's folder."""
    given = [x for x in (wav, directory, csv_path) if x]
    if len(given) != 1:
        raise ValueError("give exactly one of --wav, --dir, --csv")
    if wav:
        return [pathlib.Path(wav)]
    if directory:
        root = pathlib.Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a directory")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        return files
    csv_path = pathlib.Path(csv_path)
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{csv_path}: empty CSV")
    column = rows[0].index("path") if "path" in rows[0] else 0
    body = rows[1:] if "path" in rows[0] else rows
    return [(csv_path.parent / row[column]) for row in body if row and row[column].strip()]


def write_results(results, labels, output=None):
    """JSON (default, or an output path ending in .json) or CSV (.csv) of the prediction records."""
    if output is None or not str(output).endswith(".csv"):
        text = json.dumps(results, indent=2)
        if output is None:
            print(text)
        else:
            pathlib.Path(output).write_text(text + "\n")
        return
    with open(output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label"] + [f"p_{name}" for name in labels] + ["error"])
        for record in results:
            probs = record.get("probabilities", {})
            writer.writerow([record["file"], record.get("label", "")]
                            + [f"{probs[name]:.6f}" if name in probs else "" for name in labels]
                            + [record.get("error", "")])
