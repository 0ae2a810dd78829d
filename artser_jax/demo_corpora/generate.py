"""Generates the two demo corpora in the on-disk layouts of CREMA-D and MSP-IMPROV (docs/data.md section 3).

    out_dir/crema_d/     AudioWAV/, VideoFlash/, SentenceFilenames.csv, VideoDemographics.csv,
                         processedResults/summaryTable.csv, processedResults/tabulatedVotes.csv
    out_dir/msp_improv/  Audio/session<k>/S<nn><E>/<cond>/<stem>.wav (+ .TextGrid),
                         Video/session<k>/S<nn><E>/<cond>/<stem>.avi, Evaluation.txt
    out_dir/.demo_generator/  run record, per-clip done-markers, scratch files

Deterministic for a seed; resumable: finished clips (done-marker and files present) are skipped, and a
corpus whose completion record matches the request is skipped as a whole.
"""

import csv
import io
import json
import logging
import multiprocessing
import os
import pathlib
import time

import numpy as np
import tqdm

from artser_jax.data import crema_d
from artser_jax.demo_corpora import face, plan, render
from artser_jax.demo_corpora import parameters as P

CORPORA = ("crema_d", "msp_improv")


def _write_atomic(path, text):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8", newline="")
    os.replace(partial, path)


def _csv_text(header, rows, quote_numbers=True):
    """CSV as CREMA-D writes it: every field quoted except bare numbers (when quote_numbers is False)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL if quote_numbers else csv.QUOTE_NONNUMERIC,
                        lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_crema_d_metadata(root, speakers, clips, seed):
    """SentenceFilenames.csv, VideoDemographics.csv, processedResults/summaryTable.csv, tabulatedVotes.csv."""
    root = pathlib.Path(root)
    _write_atomic(root / crema_d.SENTENCE_FILENAMES,
                  _csv_text(["Stimulus_Number", "Filename"], [[i, clip.stem] for i, clip in enumerate(clips, 1)],
                            quote_numbers=False))
    _write_atomic(root / crema_d.DEMOGRAPHICS, _csv_text(
        ["ActorID", "Age", "Sex", "Race", "Ethnicity"],
        [[int(s.speaker_id), s.age, s.gender.capitalize(), s.race, s.ethnicity] for s in speakers],
        quote_numbers=False))
    by_id = {s.speaker_id: s for s in speakers}
    summary, tabulated = [], {"voice": [], "face": [], "multimodal": []}
    letters = list(crema_d.VOTE_LETTERS)
    for number, clip in enumerate(clips, 1):
        ratings = plan.crema_d_ratings(clip, by_id[clip.speaker_id], seed)
        row = [str(number), clip.stem]
        for modality in ("voice", "face", "multimodal"):
            vote, level = plan.majority_vote(ratings[modality])
            row += [vote, level]
            tabulated[modality].append((number, clip.stem, ratings[modality]))
        summary.append(row)
    _write_atomic(root / crema_d.SUMMARY_TABLE, _csv_text(
        ["", "FileName", "VoiceVote", "VoiceLevel", "FaceVote", "FaceLevel", "MultiModalVote", "MultiModalLevel"],
        summary))
    # tabulatedVotes.csv: one row per clip and modality (ids 1xxxxx voice, 2xxxxx face, 3xxxxx both), vote
    # counts, agreement, and mean intensity per perceived emotion (-1 where nobody chose it). The "Norm"
    # columns rescale each response by its modality's overall mean and spread (our choice of normalisation).
    names = ["Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad"]
    header = (["", *letters, "fileName", "numResponses", "agreement", "emoVote", "meanEmoResp"] +
              [f"mean{n}Resp" for n in names] + ["medianEmoResp", "meanEmoRespNorm"] +
              [f"mean{n}RespNorm" for n in names] + ["medianEmoRespNorm"])
    rows = []
    for prefix, modality in enumerate(("voice", "face", "multimodal"), 1):
        levels = np.array([lvl for _, _, responses in tabulated[modality] for _, lvl in responses])
        mean, spread = levels.mean(), levels.std() + 1e-9

        def normalise(values):
            return 50 + 20 * (np.asarray(values) - mean) / spread

        for number, stem, responses in tabulated[modality]:
            emotions = [crema_d.VOTE_LETTERS[letter] for letter in letters]
            counts = [sum(1 for e, _ in responses if e == emotion) for emotion in emotions]
            vote, _ = plan.majority_vote(responses)
            all_levels = [lvl for _, lvl in responses]
            per_emotion = [[lvl for e, lvl in responses if e == emotion] for emotion in emotions]
            raw = [float(np.mean(v)) if v else -1 for v in per_emotion]
            normed = [float(np.mean(normalise(v))) if v else -1 for v in per_emotion]
            rows.append([f"{prefix}{number:05d}", *counts, stem, len(responses), max(counts) / len(responses),
                         vote.split(":")[0], float(np.mean(all_levels)), *raw, float(np.median(all_levels)),
                         float(np.mean(normalise(all_levels))), *normed, float(np.median(normalise(all_levels)))])
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _write_atomic(root / "processedResults" / "tabulatedVotes.csv", buffer.getvalue())


def write_msp_evaluation(root, speakers, clips, seed):
    """Evaluation.txt: an utterance line (consensus, mean A/V/D/N) followed by its rater lines."""
    by_id = {s.speaker_id: s for s in speakers}
    lines = []
    for clip in clips:
        raters = plan.msp_ratings(clip, by_id[clip.speaker_id], seed)
        consensus = plan.msp_consensus(raters)
        means = [np.mean([getattr(r, name) for r in raters]) for name in
                 ("arousal", "valence", "dominance", "naturalness")]
        video_id = "UTD-IMPROV-" + clip.stem[len("MSP-IMPROV-"):] + ".avi"
        lines.append(f"{video_id}; {consensus}; A:{means[0]:.6f}; V:{means[1]:.6f}; D:{means[2]:.6f} ; "
                     f"N:{means[3]:.6f};")
        for r in raters:
            lines.append(f"{r.rater}; {plan.MSP_RATER_NAMES[r.primary]}; {','.join(r.secondary)}; "
                         f"A:{r.arousal:.6f}; V:{r.valence:.6f}; D:{r.dominance:.6f}; N:{r.naturalness:.6f};")
        lines.append("")
    _write_atomic(pathlib.Path(root) / "Evaluation.txt", "\n".join(lines))


_METADATA_WRITERS = {"crema_d": write_crema_d_metadata, "msp_improv": write_msp_evaluation}

# Worker-process state (one synthesiser and mouth warper per process).
_CONTEXT = None


def _init_worker(out_dir, seed, geometry, emotion_parameters):
    global _CONTEXT
    _CONTEXT = render.RenderContext(pathlib.Path(out_dir), seed, geometry, emotion_parameters)


def _render_job(job):
    clip, speaker = job
    return clip.stem, render.render_clip(clip, speaker, _CONTEXT)


def _run_record(size, seed, emotion_parameters):
    return {"size": size, "seed": int(seed), **emotion_parameters.record()}


def _check_run_record(out_dir, record):
    """Refuses to mix corpora of different sizes, seeds or parameter versions in one folder."""
    path = pathlib.Path(out_dir) / ".demo_generator" / "run.json"
    if path.is_file():
        existing = json.loads(path.read_text())
        if existing != record:
            raise ValueError(f"{out_dir} holds demo corpora generated with {existing}, not {record}; "
                             "use another --out_dir or delete that one")
    else:
        _write_atomic(path, json.dumps(record))


def generate_demo_corpora(out_dir, size="tiny", seed=0, num_workers=1, corpora=CORPORA, model_path=None,
                          parameters_version=P.PARAMETERS_VERSION, premise_strength=None):
    """Generates (or completes) the demo corpora under `out_dir`; returns a summary.

    `parameters_version` and `premise_strength` (version 2 only) select the emotion parameters
    (`parameters.emotion_parameters`). `num_workers` > 1 renders clips in that many processes. The summary gives, per corpus, the clip and
    speaker counts, the video frames and the number of clips rendered in this call; and the seconds spent.
    """
    out_dir = pathlib.Path(out_dir)
    if size not in P.SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(P.SIZES)}")
    unknown = set(corpora) - set(CORPORA)
    if unknown:
        raise ValueError(f"unknown corpora {sorted(unknown)}; choose from {CORPORA}")
    emotion_parameters = P.emotion_parameters(parameters_version, premise_strength)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = _run_record(size, seed, emotion_parameters)
    _check_run_record(out_dir, record)
    started = time.time()
    summary, plans, jobs = {}, {}, []
    for corpus in corpora:
        speakers, clips = plan.plan_corpus(corpus, size, seed, emotion_parameters)
        complete = render.state_dir(out_dir, corpus) / "complete.json"
        if complete.is_file() and json.loads(complete.read_text()).get("record") == record:
            logging.info("%s: already complete in %s, skipped", corpus, out_dir / corpus)
            summary[corpus] = {**json.loads(complete.read_text())["summary"], "rendered": 0}
            continue
        plans[corpus] = (speakers, clips)
        by_id = {s.speaker_id: s for s in speakers}
        todo = [(clip, by_id[clip.speaker_id]) for clip in clips if not render.clip_is_done(out_dir, clip)]
        logging.info("%s: %d clips planned, %d to render", corpus, len(clips), len(todo))
        jobs += todo
    if jobs:
        geometry = face.locate_mouth(model_path=model_path)
        with tqdm.tqdm(total=len(jobs), desc="demo clips", unit="clip") as progress:
            if num_workers > 1:
                context = multiprocessing.get_context("spawn")
                with context.Pool(num_workers, initializer=_init_worker,
                                  initargs=(str(out_dir), seed, geometry, emotion_parameters)) as pool:
                    for _ in pool.imap_unordered(_render_job, jobs, chunksize=2):
                        progress.update()
            else:
                _init_worker(str(out_dir), seed, geometry, emotion_parameters)
                for job in jobs:
                    _render_job(job)
                    progress.update()
    for corpus, (speakers, clips) in plans.items():
        _METADATA_WRITERS[corpus](out_dir / corpus, speakers, clips, seed)
        frames = sum(int(render.done_marker(out_dir, clip).read_text()) for clip in clips)
        rendered = sum(1 for clip, _ in jobs if clip.corpus == corpus)
        corpus_summary = {"clips": len(clips), "speakers": len(speakers), "video_frames": frames}
        _write_atomic(render.state_dir(out_dir, corpus) / "complete.json",
                      json.dumps({"record": record, "summary": corpus_summary}))
        summary[corpus] = {**corpus_summary, "rendered": rendered}
        logging.info("%s: %s", corpus, summary[corpus])
    summary["seconds"] = round(time.time() - started, 1)
    return summary
