"""Audio-only emotion prediction with a model exported by `launch/train.py` (`<workdir>/export`).

Any sample rate and channel count is accepted (downmixed to mono, resampled to the model's rate). Segments
come from the model's segment method: a model trained on phone segments uses a Praat TextGrid (tier
"phones") lying beside the wav when there is one, and fixed windows over the voiced audio otherwise
(logged once).

A recording is scored in windows of the training crop length (`metadata['max_seconds']`) with a hop of half
a window: each window gets its own label and probabilities (the timeline), and the file's result is the
mean of the probabilities of the windows that hold speech. `max_seconds` instead scores the first
`max_seconds` seconds as one crop (the behaviour before timelines, with the training crop length).
Audio shorter than one encoder frame, or without a voiced segment in the scored range, yields an error
record instead of a label; so does a file that cannot be used. The batch goes on past all of these.

Backends: "jax" (the Flax model restored from the export) and "onnx" (`model.onnx` in onnxruntime).
This module and the ONNX backend import no JAX: `--backend=onnx` runs where only numpy, soundfile, soxr
and onnxruntime are installed.
"""

import csv
import json
import logging
import math
import pathlib

import numpy as np

from artser_jax import segments as segments_lib
from artser_jax import sidecar
from artser_jax.data import audio as audio_lib

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
# Files that accompany audio (alignments) and are not reported as skipped.
COMPANION_SUFFIXES = (".textgrid",)
WINDOWS_PER_CALL = 8  # windows of one file sent to the backend together
AGGREGATION = "mean of the probabilities of the windows with speech"


class JaxBackend:
    """The Flax model restored from the export's parameters (needs JAX and this package's model code)."""

    def __init__(self, model_dir):
        import jax  # pylint: disable=g-import-not-at-top  (the ONNX path runs without JAX)
        from flax import nnx  # pylint: disable=g-import-not-at-top

        from artser_jax import export  # pylint: disable=g-import-not-at-top

        self.model, self.metadata = export.load_exported_model(model_dir)
        self._forward = nnx.jit(lambda model, *inputs: jax.nn.softmax(
            model(*inputs, deterministic=True).logits.astype("float32"), axis=-1))

    def __call__(self, *inputs):
        # Batches padded to a power of two (rows of zeros, masked out): a few compilations, not one per size.
        count = len(inputs[0])
        padded = [np.concatenate([x, np.zeros((2 ** math.ceil(math.log2(count)) - count, *x.shape[1:]), x.dtype)])
                  for x in inputs]
        return np.asarray(self._forward(self.model, *padded))[:count]


class OnnxBackend:
    """`model.onnx` of the export in onnxruntime, checked against the sidecar's hash and labels."""

    def __init__(self, model_dir):
        import onnxruntime  # pylint: disable=g-import-not-at-top

        self.metadata = sidecar.read(model_dir)
        record = self.metadata.get("portable") or {}
        if not record.get("onnx"):
            raise sidecar.ExportError(f"{pathlib.Path(model_dir)}: the export has no ONNX model "
                                      f"({record.get('onnx_error', 'not written')}); use --backend=jax")
        path = sidecar.check_file(model_dir, self.metadata, record["onnx"])
        self.session = portable_session(onnxruntime, path)
        labels = self.session.get_modelmeta().custom_metadata_map.get("labels", "").split(",")
        if labels != self.metadata["labels"]:
            raise sidecar.ExportError(f"{path}: labels {labels} differ from the sidecar's {self.metadata['labels']}")
        self.input_names = [x.name for x in self.session.get_inputs()]
        self.max_samples = int(record["max_samples"])

    def __call__(self, *inputs):
        return self.session.run(None, dict(zip(self.input_names, inputs)))[0]


BACKENDS = {"jax": JaxBackend, "onnx": OnnxBackend}


def portable_session(onnxruntime, path):
    """An onnxruntime CPU session that logs errors only (its graph clean-up notes are not the user's)."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class NoSpeechError(ValueError):
    """Audio that holds nothing to classify: too short, or no voiced segment in the scored range."""


class Predictor:
    """Classifies audio files with an exported model.

    `max_seconds`: score only the first `max_seconds` s as one crop (no timeline); `hop_seconds`: the hop
    between timeline windows (default half the window).
    """

    def __init__(self, model_dir, backend="jax", max_seconds=None, hop_seconds=None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}")
        self.backend = BACKENDS[backend](model_dir)
        self.metadata = self.backend.metadata
        self.labels = list(self.metadata["labels"])
        self.sample_rate = int(self.metadata["sample_rate"])
        self.segments = self.metadata["segments"]
        self.min_seconds = float(self.metadata["min_audio_seconds"])
        self.single_crop = max_seconds is not None
        self.window_seconds = float(max_seconds if self.single_crop else self.metadata["max_seconds"])
        self.hop_seconds = float(self.window_seconds / 2 if hop_seconds is None else hop_seconds)
        if not (self.window_seconds >= self.min_seconds and self.hop_seconds > 0):
            raise ValueError(f"max_seconds must be at least one encoder frame ({self.min_seconds} s) and "
                             f"hop_seconds positive; got {self.window_seconds} and {self.hop_seconds}")
        longest = getattr(self.backend, "max_samples", None)
        if longest is not None and self.window_seconds * self.sample_rate > longest:
            raise ValueError(f"max_seconds {self.window_seconds} is longer than the exported model takes "
                             f"({longest / self.sample_rate:.0f} s)")
        self._warned_windows = False

    def _segments(self, path, samples, capacity):
        options = self.segments
        method = options["method"]
        grid = pathlib.Path(path).with_suffix(".TextGrid")
        uses_phones = method in ("phones", "phones_or_windows")
        if uses_phones and grid.exists():
            # Imported here: praatio is needed only when a TextGrid is read (the ONNX-only install lacks it).
            from artser_jax.data import textgrid  # pylint: disable=g-import-not-at-top

            starts, ends, labels = textgrid.phone_arrays(grid)
            example = {"utterance_id": str(path), "phone_starts": starts, "phone_ends": ends,
                       "phone_labels": labels,
                       # No video at inference: the minimum phone length is applied at 30 fps.
                       "frame_rate": np.float32(30.0)}
            return segments_lib.utterance_segments(example, "phones", max(capacity, len(starts)),
                                                   **segments_lib.segment_options("phones", options))
        if method == "phones" and not self._warned_windows:
            logging.warning("The model was trained on phone segments; files without a .TextGrid beside "
                            "them use %.0f ms windows instead", 1000 * options["window_seconds"])
            self._warned_windows = True
        example = {"utterance_id": str(path), "audio": audio_lib.to_int16(samples)}
        return segments_lib.utterance_segments(example, "windows", capacity,
                                               **segments_lib.segment_options("windows", options))

    def _window_starts(self, scored_seconds):
        """Start times (s) of the windows covering [0, scored_seconds): one for audio up to a window
        long, else every `hop_seconds`, the last one reaching the end."""
        if self.single_crop or scored_seconds <= self.window_seconds:
            return [0.0]
        count = math.ceil((scored_seconds - self.window_seconds) / self.hop_seconds - 1e-9) + 1
        return [i * self.hop_seconds for i in range(count)]

    def _window_inputs(self, samples, segments, start, scored_seconds):
        """The model inputs of the window starting at `start` s, or None when it holds no segment:
        its audio padded to the window length, and the segments starting inside it, shifted to it."""
        window_samples = int(round(self.window_seconds * self.sample_rate))
        first = int(round(start * self.sample_rate))
        piece = samples[first:first + window_samples]
        audio = np.zeros(window_samples, np.float32)
        audio[:len(piece)] = piece
        audio_mask = np.arange(window_samples) < len(piece)
        start32, end32 = np.float32(start), np.float32(min(start + self.window_seconds, scored_seconds))
        inside = segments["seg_mask"] & (segments["seg_start"] >= start32) & (segments["seg_start"] < end32)
        count = min(int(inside.sum()), int(self.segments["max_segments"]))
        if count == 0:
            return None
        seg_start, seg_end, seg_mask = (np.zeros(self.segments["max_segments"], dtype)
                                        for dtype in (np.float32, np.float32, bool))
        seg_start[:count] = segments["seg_start"][inside][:count] - start32
        seg_end[:count] = np.minimum(segments["seg_end"][inside][:count], end32) - start32
        seg_mask[:count] = True
        return audio, audio_mask, seg_start, seg_end, seg_mask

    def _probabilities(self, rows):
        """(len(rows), C) probabilities of window inputs, `WINDOWS_PER_CALL` windows per backend call."""
        out = []
        for i in range(0, len(rows), WINDOWS_PER_CALL):
            chunk = rows[i:i + WINDOWS_PER_CALL]
            out.append(np.asarray(self.backend(*(np.stack(column) for column in zip(*chunk))), np.float64))
        return np.concatenate(out)

    def _named(self, probabilities):
        return {"label": self.labels[int(np.argmax(probabilities))],
                "probabilities": {name: float(p) for name, p in zip(self.labels, probabilities)}}

    def predict_file(self, path):
        """`{'file', 'label', 'probabilities': {class: p}, 'timeline': [...], ...}`, or `{'file', 'error'}`
        for a file that cannot be used or holds no speech."""
        try:
            samples = audio_lib.load_audio(path, target_rate=self.sample_rate)
            duration = len(samples) / self.sample_rate
            if duration < self.min_seconds:
                raise NoSpeechError(f"{path}: {1000 * duration:.1f} ms of audio is shorter than one encoder "
                                    f"frame ({1000 * self.min_seconds:.0f} ms); nothing to classify")
            scored = min(duration, self.window_seconds) if self.single_crop else duration
            capacity = int(scored / min(self.segments["hop_seconds"], self.window_seconds)) + 2
            segments = self._segments(path, samples, max(capacity, int(self.segments["max_segments"])))
            starts = self._window_starts(scored)
            inputs = [self._window_inputs(samples, segments, start, scored) for start in starts]
            if all(x is None for x in inputs):
                raise NoSpeechError(f"{path}: no speech found in the scored 0.0-{scored:.1f} s")
        except (audio_lib.AudioError, ValueError) as error:  # TextGridError is a ValueError
            logging.error("%s", error)
            return {"file": str(path), "error": str(error)}
        probabilities = iter(self._probabilities([x for x in inputs if x is not None]))
        timeline = []
        for start, window in zip(starts, inputs):
            entry = {"start": round(start, 3), "end": round(min(start + self.window_seconds, scored), 3)}
            entry.update(self._named(next(probabilities)) if window is not None else {"speech": False})
            timeline.append(entry)
        mean = np.mean([[entry["probabilities"][n] for n in self.labels] for entry in timeline
                        if "label" in entry], axis=0)
        return {"file": str(path), **self._named(mean), "duration_s": round(duration, 3),
                "scored_s": [0.0, round(scored, 3)], "cropped": bool(scored < duration),
                "window_seconds": self.window_seconds, "hop_seconds": self.hop_seconds,
                "aggregation": AGGREGATION, "timeline": timeline}


def list_inputs(wav=None, directory=None, csv_path=None):
    """(files, skipped): the files named by exactly one of: one file, a folder (audio files,
    recursively, sorted), a CSV with a `path` column (or paths in the first column) relative to the
    CSV's folder; `skipped` are a folder's other files (not audio by extension; alignments excluded)."""
    given = [x for x in (wav, directory, csv_path) if x]
    if len(given) != 1:
        raise ValueError("give exactly one of --wav, --dir, --csv")
    if wav:
        return [pathlib.Path(wav)], []
    if directory:
        root = pathlib.Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a directory")
        entries = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        files = [p for p in entries if p.suffix.lower() in AUDIO_SUFFIXES]
        skipped = [p for p in entries if p.suffix.lower() not in AUDIO_SUFFIXES + COMPANION_SUFFIXES]
        if not files:
            raise FileNotFoundError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        return files, skipped
    csv_path = pathlib.Path(csv_path)
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{csv_path}: cannot read the CSV ({error})") from None
    if not rows:
        raise ValueError(f"{csv_path}: empty CSV")
    column = rows[0].index("path") if "path" in rows[0] else 0
    body = rows[1:] if "path" in rows[0] else rows
    return [(csv_path.parent / row[column]) for row in body if row and row[column].strip()], []


def _csv_rows(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_results(results, labels, output=None):
    """JSON (default, or an output path ending in .json) or CSV (.csv) of the prediction records.

    The CSV has one row per file; the timelines go to `<output stem>.timeline.csv` beside it (one row per
    window: file, start, end, label, probabilities; windows without speech have an empty label)."""
    if output is None or not str(output).endswith(".csv"):
        text = json.dumps(results, indent=2)
        if output is None:
            print(text)
        else:
            pathlib.Path(output).write_text(text + "\n")
        return
    output = pathlib.Path(output)

    def probabilities(record):
        probs = record.get("probabilities", {})
        return [f"{probs[name]:.6f}" if name in probs else "" for name in labels]

    _csv_rows(output, ["file", "label"] + [f"p_{name}" for name in labels]
              + ["duration_s", "windows", "error"],
              [[r["file"], r.get("label", "")] + probabilities(r)
               + [r.get("duration_s", ""), len(r.get("timeline", [])), r.get("error", "")] for r in results])
    _csv_rows(output.with_suffix(".timeline.csv"), ["file", "start", "end", "label"] + [f"p_{n}" for n in labels],
              [[r["file"], w["start"], w["end"], w.get("label", "")] + probabilities(w)
               for r in results for w in r.get("timeline", [])])
