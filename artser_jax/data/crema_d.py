"""CREMA-D metadata: file names, the CSV tables, emotion labels and the actor split.

Pure Python (numpy only for the split's random shuffle), so it can be tested on the real metadata tables
without any media. The on-disk layout is described in docs/data.md section 1:

    <manual_dir>/AudioWAV/<stem>.wav, <manual_dir>/VideoFlash/<stem>.flv,
    <manual_dir>/SentenceFilenames.csv, <manual_dir>/VideoDemographics.csv,
    <manual_dir>/processedResults/summaryTable.csv
"""

import csv
import dataclasses
import io
import pathlib
import re

import numpy as np

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
EMOTIONS_6 = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
EMOTIONS_4 = ("ANG", "HAP", "NEU", "SAD")
LEVELS = ("LO", "MD", "HI", "XX")
# Letters used by the perception study's vote columns.
VOTE_LETTERS = {"A": "ANG", "D": "DIS", "F": "FEA", "H": "HAP", "N": "NEU", "S": "SAD"}
LABEL_SOURCES = ("intended", "voice_vote", "multimodal_vote")

# Clips with empty or broken media (docs/data.md section 1); builders skip them with this reason logged.
KNOWN_BAD_CLIPS = {
    "1076_MTI_SAD_XX": "known bad audio (empty wav in the corpus)",
    "1007_ITH_NEU_XX": "known bad video (broken flv in the corpus)",
    "1064_IEO_DIS_MD": "known bad video (broken flv in the corpus)",
    "1040_ITH_SAD_XX": "known bad audio (skipped by the TFDS crema_d builder)",
    "1006_TIE_NEU_XX": "known bad audio (skipped by the TFDS crema_d builder)",
    "1013_WSI_DIS_XX": "known bad audio (skipped by the TFDS crema_d builder)",
    "1017_IWW_FEA_XX": "known bad audio (skipped by the TFDS crema_d builder)",
}

# The TFDS crema_d builder's split: fractions in this order, shuffled with RandomState(SPLIT_SEED).
SPLIT_FRACTIONS = (("train", 0.7), ("validation", 0.1), ("test", 0.2))
SPLIT_SEED = 0

SENTENCE_FILENAMES = "SentenceFilenames.csv"
DEMOGRAPHICS = "VideoDemographics.csv"
SUMMARY_TABLE = "processedResults/summaryTable.csv"
AUDIO_DIR = "AudioWAV"
VIDEO_DIR = "VideoFlash"

_STEM_RE = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")


@dataclasses.dataclass(frozen=True)
class ClipName:
    actor: str
    sentence: str
    emotion: str
    level: str

    @property
    def text(self):
        return SENTENCES[self.sentence]


@dataclasses.dataclass(frozen=True)
class Actor:
    actor: str
    age: int
    sex: str
    race: str
    ethnicity: str

    @property
    def gender(self):
        """'female' or 'male', the names of the builders' gender ClassLabel."""
        return self.sex.lower()


@dataclasses.dataclass(frozen=True)
class Votes:
    """One row of summaryTable.csv: the perception study's majority votes (ties joined by ':')."""
    voice_vote: str
    face_vote: str
    multimodal_vote: str


def parse_stem(stem, source="file name"):
    """`1001_IEO_NEU_XX` -> ClipName; ValueError naming `source` for anything else."""
    match = _STEM_RE.match(stem)
    if match is None:
        raise ValueError(f"{source}: {stem!r} does not match the CREMA-D file-name pattern "
                         "<actor>_<sentence>_<emotion>_<level>, e.g. 1001_IEO_NEU_XX")
    name = ClipName(**match.groupdict())
    if name.sentence not in SENTENCES:
        raise ValueError(f"{source}: {stem!r} has unknown sentence code {name.sentence!r} "
                         f"(known: {', '.join(sorted(SENTENCES))})")
    if name.emotion not in EMOTIONS_6:
        raise ValueError(f"{source}: {stem!r} has unknown emotion code {name.emotion!r} "
                         f"(known: {', '.join(EMOTIONS_6)})")
    if name.level not in LEVELS:
        raise ValueError(f"{source}: {stem!r} has unknown intensity level {name.level!r} "
                         f"(known: {', '.join(LEVELS)})")
    return name


def _read_csv(path, expected_header):
    """Yields (line_number, row dict); checks the header names the expected columns."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CREMA-D label file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 text file ({error})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path}: empty file, expected a header {expected_header}") from None
    missing = [name for name in expected_header if name not in header]
    if missing:
        raise ValueError(f"{path}:1: header {header} lacks the columns {missing}")
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"{path}:{reader.line_num}: expected {len(header)} fields, got {len(row)}: {row}")
        yield reader.line_num, dict(zip(header, row))


def read_sentence_filenames(path):
    """SentenceFilenames.csv -> list of clip stems in file order (each checked against the pattern)."""
    stems = []
    for line, row in _read_csv(path, ("Stimulus_Number", "Filename")):
        stem = row["Filename"].strip()
        parse_stem(stem, source=f"{path}:{line}")
        stems.append(stem)
    return stems


def read_demographics(path):
    """VideoDemographics.csv -> {actor id: Actor}."""
    actors = {}
    for line, row in _read_csv(path, ("ActorID", "Age", "Sex", "Race", "Ethnicity")):
        actor_id = row["ActorID"].strip()
        sex = row["Sex"].strip()
        if not re.fullmatch(r"\d{4}", actor_id):
            raise ValueError(f"{path}:{line}: actor id {actor_id!r} is not a 4-digit number")
        if sex.lower() not in ("female", "male"):
            raise ValueError(f"{path}:{line}: sex {sex!r} is neither Female nor Male")
        try:
            age = int(row["Age"])
        except ValueError:
            raise ValueError(f"{path}:{line}: age {row['Age']!r} is not an integer") from None
        actors[actor_id] = Actor(actor_id, age, sex, row["Race"].strip(), row["Ethnicity"].strip())
    return actors


def _check_vote(vote, path, line, column):
    letters = vote.split(":")
    if not vote or any(letter not in VOTE_LETTERS for letter in letters):
        raise ValueError(f"{path}:{line}: {column} {vote!r} is not a vote of letters "
                         f"{'/'.join(VOTE_LETTERS)} joined by ':'")
    return vote


def read_summary_table(path):
    """processedResults/summaryTable.csv -> {clip stem: Votes}."""
    votes = {}
    for line, row in _read_csv(path, ("FileName", "VoiceVote", "FaceVote", "MultiModalVote")):
        stem = row["FileName"].strip()
        parse_stem(stem, source=f"{path}:{line}")
        votes[stem] = Votes(*(_check_vote(row[column].strip(), path, line, column)
                              for column in ("VoiceVote", "FaceVote", "MultiModalVote")))
    return votes


def perceived_emotion(vote):
    """Majority vote letter -> emotion code; None for a tie (several letters joined by ':')."""
    if ":" in vote:
        return None
    return VOTE_LETTERS[vote]


def clip_labels(stems, label_source="intended", classes=EMOTIONS_4, votes=None):
    """{stem: emotion} for the clips whose label (from `label_source`) is one of `classes`.

    `intended` reads the emotion from the file name; `voice_vote` / `multimodal_vote` take the perceived
    majority from the summary table (`votes`, from `read_summary_table`), dropping ties.
    """
    if label_source not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {label_source!r}; choose one of {LABEL_SOURCES}")
    unknown = [c for c in classes if c not in EMOTIONS_6]
    if unknown:
        raise ValueError(f"unknown emotion classes {unknown}; CREMA-D has {EMOTIONS_6}")
    labels = {}
    for stem in stems:
        if label_source == "intended":
            emotion = parse_stem(stem).emotion
        else:
            if votes is None:
                raise ValueError(f"label source {label_source!r} needs the summary table votes")
            if stem not in votes:
                raise ValueError(f"{SUMMARY_TABLE}: no perception votes for clip {stem}")
            emotion = perceived_emotion(getattr(votes[stem], label_source))
        if emotion in classes:
            labels[stem] = emotion
    return labels


def actor_split(actors, seed=SPLIT_SEED, fractions=SPLIT_FRACTIONS):
    """{actor: split name}, the TFDS crema_d algorithm: sorted unique actor ids shuffled with
    RandomState(seed), then cut at cumulative `int(p * n)` boundaries, the last split taking the rest."""
    groups = sorted(set(actors))
    np.random.RandomState(seed).shuffle(groups)
    n = len(groups)
    assignment = {}
    cumulative = 0.0
    for i, (name, fraction) in enumerate(fractions):
        start = int(cumulative * n)
        cumulative += fraction
        end = n if i == len(fractions) - 1 else int(cumulative * n)
        for actor in groups[start:end]:
            assignment[actor] = name
    return assignment


@dataclasses.dataclass
class Metadata:
    """Everything the CREMA-D tables say: clip stems, actors, perception votes."""
    stems: list
    actors: dict
    votes: dict

    def labels(self, label_source="intended", classes=EMOTIONS_4):
        return clip_labels(self.stems, label_source, classes, self.votes)

    def split_of_actor(self):
        return actor_split(parse_stem(stem).actor for stem in self.stems)


def load_metadata(manual_dir):
    """Reads and cross-checks the three CREMA-D tables under `manual_dir`."""
    manual_dir = pathlib.Path(manual_dir)
    if not manual_dir.is_dir():
        raise FileNotFoundError(f"{manual_dir}: CREMA-D manual directory not found")
    stems = read_sentence_filenames(manual_dir / SENTENCE_FILENAMES)
    actors = read_demographics(manual_dir / DEMOGRAPHICS)
    votes = read_summary_table(manual_dir / SUMMARY_TABLE)
    for stem in stems:
        actor = parse_stem(stem).actor
        if actor not in actors:
            raise ValueError(f"{manual_dir / DEMOGRAPHICS}: no row for actor {actor} (clip {stem})")
    return Metadata(stems=stems, actors=actors, votes=votes)


def audio_path(manual_dir, stem):
    return pathlib.Path(manual_dir) / AUDIO_DIR / f"{stem}.wav"


def video_path(manual_dir, stem):
    return pathlib.Path(manual_dir) / VIDEO_DIR / f"{stem}.flv"
