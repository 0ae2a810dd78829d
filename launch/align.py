"""Forced phone alignment of a corpus with PocketSphinx, into a folder the dataset builders read.

    python launch/align.py --corpus=crema_d|msp_improv --manual_dir=DIR --out_dir=ALIGN_DIR \
        [--transcripts=FILE] [--missing_transcript=windows|skip] [--num_workers=N]
    python launch/prepare_data.py ... --alignment_dir=ALIGN_DIR

Writes one TextGrid per utterance in the Montreal Forced Aligner's layout,
`<out_dir>/<speaker>/<utterance>.TextGrid` (tiers "words" and "phones", ARPAbet without stress digits,
silences as empty intervals), and `<out_dir>/alignment_coverage.tsv`: per utterance, aligned / failed (with
the reason) / no transcript, and what the builders do with it.

Texts: CREMA-D's twelve sentences are known from the file names. MSP-IMPROV turns are improvised, so their
text comes from --transcripts, a UTF-8 file of `utterance_id<TAB>text` lines (blank lines and lines
starting with `#` are ignored); turns without a transcript are built without phones (`windows`: the
segment method `phones_or_windows` then gives them windows and every aligned clip its phones) or left out
of the datasets (`skip`).

Resumable: TextGrids already in --out_dir are kept, so an interrupted run continues where it stopped.
"""

import concurrent.futures
import multiprocessing
import os
import pathlib

from absl import app
from absl import flags
import tqdm

from artser_jax import alignment
from artser_jax.data import crema_d, msp_improv

CORPORA = ("crema_d", "msp_improv")
_CORPUS = flags.DEFINE_enum("corpus", None, CORPORA, "Which corpus to align.", required=True)
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "The corpus as the user has it on disk.", required=True)
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for the TextGrids and the coverage report "
                               "(pass it to prepare_data.py as --alignment_dir).", required=True)
_TRANSCRIPTS = flags.DEFINE_string("transcripts", None, "File of `utterance_id<TAB>text` lines (MSP-IMPROV).")
_MISSING_TRANSCRIPT = flags.DEFINE_enum(
    "missing_transcript", "windows", ("windows", "skip"),
    "Utterances without a transcript: built without phones (windows) or left out of the datasets (skip).")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", os.cpu_count() or 1, "Alignment processes.")


def read_transcripts(path):
    """{utterance_id: text} from a `utterance_id<TAB>text` file; ValueError naming the file and line."""
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: transcript file not found")
    transcripts = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        utterance_id, tab, text = line.partition("\t")
        if not tab or not utterance_id.strip() or not text.strip():
            raise ValueError(f"{path}:{number}: expected `utterance_id<TAB>text`, got {line!r}")
        utterance_id = msp_improv.canonical_stem(utterance_id)
        if utterance_id in transcripts:
            raise ValueError(f"{path}:{number}: second transcript of {utterance_id}")
        transcripts[utterance_id] = text.strip()
    return transcripts


def list_utterances(corpus, manual_dir, transcripts):
    """[(utterance_id, speaker, audio_path, text or None)] of every audio file of the corpus."""
    manual_dir = pathlib.Path(manual_dir).expanduser()
    if corpus == "crema_d":
        audio_dir = manual_dir / crema_d.AUDIO_DIR
        if not audio_dir.is_dir():
            raise FileNotFoundError(f"{audio_dir}: CREMA-D audio directory not found")
        utterances = []
        for path in sorted(audio_dir.glob("*.wav")):
            name = crema_d.parse_stem(path.stem, source=str(path))
            utterances.append((path.stem, name.actor, path, name.text))
        return utterances
    wavs = msp_improv.find_media(manual_dir, ".wav")
    unknown = sorted(set(transcripts) - set(wavs))
    if unknown:
        raise ValueError(f"{_TRANSCRIPTS.value}: {len(unknown)} transcripts name utterances with no audio in "
                         f"{manual_dir} (e.g. {unknown[:3]})")
    return [(stem, msp_improv.parse_stem(stem).speaker, path, transcripts.get(stem))
            for stem, path in sorted(wavs.items())]


def main(argv):
    del argv
    out_dir = pathlib.Path(_OUT_DIR.value).expanduser()
    try:
        transcripts = read_transcripts(_TRANSCRIPTS.value) if _TRANSCRIPTS.value else {}
        utterances = list_utterances(_CORPUS.value, _MANUAL_DIR.value, transcripts)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}")
    if not utterances:
        raise SystemExit(f"error: {_MANUAL_DIR.value}: no {_CORPUS.value} audio files found")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, jobs = [], []
    for utterance_id, speaker, audio_path, text in utterances:
        if text is None:
            rows.append(dict(utterance_id=utterance_id, status="no_transcript", action=_MISSING_TRANSCRIPT.value,
                             audio_file=audio_path, detail=f"not in {_TRANSCRIPTS.value or 'any transcript file'}"))
        else:
            jobs.append((utterance_id, audio_path, text, alignment.textgrid_path(out_dir, speaker, utterance_id)))
    if jobs:
        utterance_ids, audio_paths, texts, textgrid_paths = zip(*jobs)
        workers = max(1, min(_NUM_WORKERS.value, len(jobs)))
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = pool.map(alignment.align_file, audio_paths, texts, textgrid_paths,
                               chunksize=max(1, min(16, len(jobs) // (4 * workers))))
            progress = tqdm.tqdm(results, total=len(jobs), desc="aligning", unit="utt")
            for utterance_id, audio_path, (status, detail) in zip(utterance_ids, audio_paths, progress):
                rows.append(dict(utterance_id=utterance_id, status=status,
                                 action="phones" if status == "aligned" else "windows",
                                 audio_file=audio_path, detail=detail))
    report = alignment.write_coverage(out_dir, rows)
    counts = {status: sum(row["status"] == status for row in rows)
              for status in ("aligned", "failed", "no_transcript")}
    kept = sum(row["detail"] == "existing TextGrid kept" for row in rows)
    print(f"{_CORPUS.value}: {counts['aligned']} of {len(rows)} utterances aligned ({kept} already present), "
          f"{counts['failed']} failed (built without phones), {counts['no_transcript']} without a transcript "
          f"({_MISSING_TRANSCRIPT.value}); TextGrids in {out_dir}, report {report}")


if __name__ == "__main__":
    app.run(main)
