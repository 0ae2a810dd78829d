"""Forced phone alignment offline, with PocketSphinx (English acoustic model and CMUdict from its wheel).

`align_phones(waveform, sample_rate, text)` returns `[(phone, start_s, end_s), ...]`: ARPAbet in upper case
without stress digits (the phone set of the Montreal Forced Aligner's English ARPA models and of the demo
corpora), silences as "sil". `write_alignment` stores an alignment as an MFA-layout TextGrid (tiers
"words" and "phones", silence as empty intervals, as MFA writes it) with praatio.

PocketSphinx aligns in two passes over the same audio: the first, constrained to the text, finds the word
sequence (with optional silences and pronunciation variants); `set_alignment()` then turns that word
sequence into a phone-state graph and the second pass places the phones. `set_alignment()` must be called
exactly once per utterance: calling it again after the second pass discards the phone alignment.
Accuracy on CMU ARCTIC a0009 against its reference labels: tests/test_alignment.py.
"""

import dataclasses
import functools
import pathlib
import re

import numpy as np

from artser_jax.data import audio as audio_io

SAMPLE_RATE = 16000  # the rate of PocketSphinx's English acoustic model
SILENCE = "sil"
# PocketSphinx's frame rate (its `frate` default, 100 frames per second): alignment times are in frames.
FRAME_SECONDS = 0.01
_WORD_RE = re.compile(r"[a-z0-9']+")
_VARIANT_RE = re.compile(r"\(\d+\)$")


class AlignmentError(RuntimeError):
    """The text cannot be aligned to the audio; the message says why."""


@dataclasses.dataclass(frozen=True)
class Alignment:
    """Words and phones as (label, start_s, end_s); silences are "sil" in both."""
    words: tuple
    phones: tuple
    duration: float


def normalize_text(text):
    """Lower-case words as CMUdict spells them: punctuation other than apostrophes removed."""
    return _WORD_RE.findall(text.lower().replace("\u2019", "'"))


@functools.cache
def _decoder():
    # One decoder per process (loading the model takes about 0.3 s); reusing it gives the same alignments.
    # Wider beams than PocketSphinx's defaults (1e-48 / 1e-48 / 7e-29): with those, 3 of the 52 tiny demo
    # CREMA-D clips found no path through the text ("Failed to set up sub-word alignment"); with these all
    # align, and CMU ARCTIC a0009 aligns to the same frames.
    from pocketsphinx import Decoder  # imported here: only alignment needs it

    return Decoder(samprate=SAMPLE_RATE, bestpath=False, loglevel="FATAL",
                   beam=1e-100, pbeam=1e-100, wbeam=1e-80)


def _phone_label(name):
    return SILENCE if name.upper() == "SIL" or name.startswith("+") else name.upper()


def _decode(decoder, pcm):
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def align(waveform, sample_rate, text):
    """The `Alignment` of `text` in mono `waveform` (float in [-1, 1] or int16) at `sample_rate`."""
    waveform = np.asarray(waveform)
    if waveform.ndim != 1 or waveform.size == 0:
        raise AlignmentError(f"expected a non-empty mono waveform, got shape {waveform.shape}")
    if waveform.dtype != np.int16:
        waveform = audio_io.to_int16(audio_io.resample(waveform.astype(np.float32), sample_rate, SAMPLE_RATE))
    elif sample_rate != SAMPLE_RATE:
        waveform = audio_io.to_int16(audio_io.resample(waveform / np.float32(32768), sample_rate, SAMPLE_RATE))
    duration = waveform.size / SAMPLE_RATE
    words = normalize_text(text)
    if not words:
        raise AlignmentError(f"no words to align in the text {text!r}")
    decoder = _decoder()
    unknown = sorted({word for word in words if decoder.lookup_word(word) is None})
    if unknown:
        raise AlignmentError(f"words not in the pronunciation dictionary (CMUdict): {unknown}")
    pcm = waveform.tobytes()
    try:
        decoder.set_align_text(" ".join(words))
        _decode(decoder, pcm)
        decoder.set_alignment()
        _decode(decoder, pcm)
        aligned = decoder.get_alignment()
    except RuntimeError as error:
        raise AlignmentError(f"PocketSphinx found no alignment of {len(words)} words in {duration:.2f} s "
                             f"of audio ({error})") from None
    if aligned is None:
        raise AlignmentError(f"PocketSphinx found no alignment of {len(words)} words in {duration:.2f} s of audio")

    def span(segment):
        start = min(segment.start * FRAME_SECONDS, duration)
        return start, min((segment.start + segment.duration) * FRAME_SECONDS, duration)

    word_spans, phone_spans = [], []
    for word in aligned:
        name = _VARIANT_RE.sub("", word.name)
        word_spans.append((SILENCE if name.startswith("<") else name, *span(word)))
        for phone in word:
            label, (start, end) = _phone_label(phone.name), span(phone)
            if end <= start:
                continue
            if label == SILENCE and phone_spans and phone_spans[-1][0] == SILENCE:
                phone_spans[-1] = (SILENCE, phone_spans[-1][1], end)
            else:
                phone_spans.append((label, start, end))
    if sum(label != SILENCE for label, _, _ in phone_spans) == 0:
        raise AlignmentError(f"PocketSphinx aligned no phones of {len(words)} words in {duration:.2f} s of audio")
    return Alignment(words=tuple(w for w in word_spans if w[2] > w[1]), phones=tuple(phone_spans),
                     duration=duration)


def align_phones(waveform, sample_rate, text):
    """`[(phone, start_s, end_s), ...]` of `text` in `waveform`: ARPAbet without stress digits, silences "sil"."""
    return list(align(waveform, sample_rate, text).phones)


def write_alignment(path, alignment):
    """Writes `alignment` as a long-format TextGrid with tiers "words" and "phones", silences left empty."""
    from praatio import textgrid as praat  # imported here: only writing needs it

    grid = praat.Textgrid(minTimestamp=0.0, maxTimestamp=alignment.duration)
    for name, spans in (("words", alignment.words), ("phones", alignment.phones)):
        entries = [(start, end, label) for label, start, end in spans if label != SILENCE]
        grid.addTier(praat.IntervalTier(name, entries, 0.0, alignment.duration))
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def align_file(audio_path, text, textgrid_path):
    """Aligns one audio file and writes its TextGrid (atomically); returns (status, detail).

    status "aligned" (detail: phone count, or "existing TextGrid kept" when `textgrid_path` exists) or
    "failed" (detail: the reason). Worker processes of `launch/align.py` call this.
    """
    textgrid_path = pathlib.Path(textgrid_path)
    if textgrid_path.is_file():
        return "aligned", "existing TextGrid kept"
    try:
        alignment = align(audio_io.load_audio(audio_path), SAMPLE_RATE, text)
    except (AlignmentError, audio_io.AudioError) as error:
        return "failed", str(error)
    textgrid_path.parent.mkdir(parents=True, exist_ok=True)
    partial = textgrid_path.with_name(textgrid_path.name + ".part")
    write_alignment(partial, alignment)
    partial.replace(textgrid_path)
    return "aligned", f"{sum(label != SILENCE for label, _, _ in alignment.phones)} phones"


# The alignment folder: MFA's layout (`<speaker>/<utterance>.TextGrid`) plus the coverage report of
# `launch/align.py`, one row per utterance: what happened and what the dataset builders do with it.
COVERAGE_REPORT = "alignment_coverage.tsv"
COVERAGE_COLUMNS = ("utterance_id", "status", "action", "audio_file", "detail")
# Actions: "phones" (a TextGrid was written), "windows" (none; the clip is built without phones),
# "skip" (none; the builders leave the clip out).
ACTIONS = ("phones", "windows", "skip")


def textgrid_path(alignment_dir, speaker, utterance_id):
    """Where `launch/align.py` writes an utterance's TextGrid: MFA's `<speaker>/<utterance>.TextGrid`."""
    return pathlib.Path(alignment_dir) / speaker / f"{utterance_id}.TextGrid"


def find_textgrid(alignment_dir, speaker, utterance_id):
    """An utterance's TextGrid in `alignment_dir`: flat (`<utterance>.TextGrid`) if that exists, else MFA's
    per-speaker path (which may not exist: the utterance then has no phones)."""
    flat = pathlib.Path(alignment_dir) / f"{utterance_id}.TextGrid"
    return flat if flat.is_file() else textgrid_path(alignment_dir, speaker, utterance_id)


def read_coverage(alignment_dir):
    """{utterance_id: row dict} of the coverage report in `alignment_dir`; {} when there is none."""
    path = pathlib.Path(alignment_dir) / COVERAGE_REPORT
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split("\t")) != COVERAGE_COLUMNS:
        raise ValueError(f"{path}: not an alignment coverage report (expected the header "
                         f"{chr(9).join(COVERAGE_COLUMNS)!r})")
    rows = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(COVERAGE_COLUMNS) or fields[2] not in ACTIONS:
            raise ValueError(f"{path}:{number}: malformed row {line!r}")
        rows[fields[0]] = dict(zip(COVERAGE_COLUMNS, fields))
    return rows


def skip_reasons(alignment_dir):
    """{utterance_id: reason} of the utterances the coverage report in `alignment_dir` marks "skip"."""
    report = pathlib.Path(alignment_dir) / COVERAGE_REPORT
    return {utterance_id: f"no phone alignment ({row['status']}: {row['detail']}; {report})"
            for utterance_id, row in read_coverage(alignment_dir).items() if row["action"] == "skip"}


def write_coverage(alignment_dir, rows):
    """Writes the coverage report (rows: dicts with COVERAGE_COLUMNS), sorted by utterance id; returns its path."""
    path = pathlib.Path(alignment_dir) / COVERAGE_REPORT
    text = "\t".join(COVERAGE_COLUMNS) + "\n"
    for row in sorted(rows, key=lambda row: row["utterance_id"]):
        text += "\t".join(" ".join(str(row[column]).split()) for column in COVERAGE_COLUMNS) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
