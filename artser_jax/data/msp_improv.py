"""MSP-IMPROV metadata: file names, the `Evaluation.txt` label file, labels and session splits.

Described from public parsers, not from the corpus itself (docs/data.md section 2), so the readers accept the
known variations (`Evalution.txt`, media with or without an `Audio/` prefix, a missing `N:` field, `NaN`)
and fail with the file and line on anything else.
"""

import collections
import dataclasses
import math
import pathlib
import re

EMOTIONS_4 = ("ANG", "HAP", "NEU", "SAD")
# Consensus and scenario letters -> our emotion codes. O (other) and X (no agreement) have no class.
CATEGORY_LETTERS = {"A": "ANG", "H": "HAP", "N": "NEU", "S": "SAD"}
CONSENSUS_LETTERS = ("A", "H", "S", "N", "O", "X")
LABEL_SOURCES = ("consensus", "scenario")
SESSIONS = (1, 2, 3, 4, 5, 6)
LABEL_FILE_NAMES = ("Evaluation.txt", "Evalution.txt")

_STEM_RE = re.compile(
    r"^MSP-IMPROV-S(?P<sentence>\d{2})(?P<scenario>[AHSN])-(?P<gender>[FM])(?P<session>\d{2})"
    r"-(?P<condition>[RSTP])-(?P<turn>[A-Z0-9]+)$")
_FIELD_RE = re.compile(r"^(?P<key>[AVDN])\s*:\s*(?P<value>\S+)$")


@dataclasses.dataclass(frozen=True)
class UtteranceName:
    sentence: str      # "S01"
    scenario: str      # intended emotion of the scenario, e.g. "ANG"
    speaker: str       # "F01"
    session: int
    condition: str     # R read, S target sentence improvised, T other improvised turn, P natural interaction
    turn: str          # dyad/turn code, e.g. "FM01"

    @property
    def gender(self):
        return "female" if self.speaker[0] == "F" else "male"


@dataclasses.dataclass(frozen=True)
class RaterVote:
    rater: str
    category: str      # as written, e.g. "Angry", "Neutral", "Other"
    fields: tuple      # the remaining `;`-separated fields, as written


@dataclasses.dataclass
class Evaluation:
    """One utterance block of Evaluation.txt: consensus category, mean attributes and per-rater lines."""
    stem: str
    consensus: str                 # A H S N O X
    arousal: float
    valence: float
    dominance: float
    naturalness: float             # NaN when the field is missing
    raters: list = dataclasses.field(default_factory=list)
    line: int = 0


def parse_stem(stem, source="file name"):
    """`MSP-IMPROV-S01A-F01-P-FM01` (or `UTD-IMPROV-...`) -> UtteranceName; ValueError naming `source`."""
    stem = canonical_stem(stem)
    match = _STEM_RE.match(stem)
    if match is None:
        raise ValueError(f"{source}: {stem!r} does not match the MSP-IMPROV file-name pattern "
                         "MSP-IMPROV-S<nn><A|H|S|N>-<F|M><nn>-<R|S|T|P>-<turn>, e.g. MSP-IMPROV-S01A-F01-P-FM01")
    session = int(match["session"])
    if session not in SESSIONS:
        raise ValueError(f"{source}: {stem!r} names session {session}; MSP-IMPROV has sessions 1-6")
    return UtteranceName(sentence=f"S{match['sentence']}", scenario=CATEGORY_LETTERS[match["scenario"]],
                         speaker=f"{match['gender']}{match['session']}", session=session,
                         condition=match["condition"], turn=match["turn"])


def canonical_stem(name):
    """`UTD-IMPROV-S01A-F01-S-FM01.avi` -> `MSP-IMPROV-S01A-F01-S-FM01` (the media files' stem)."""
    stem = name.strip()
    if stem.lower().endswith((".avi", ".wav")):
        stem = stem[:-4]
    if stem.startswith("UTD-IMPROV-"):
        stem = "MSP-IMPROV-" + stem[len("UTD-IMPROV-"):]
    return stem


def find_label_file(manual_dir):
    """The label file at the root of `manual_dir` (either spelling); FileNotFoundError naming both."""
    manual_dir = pathlib.Path(manual_dir)
    if not manual_dir.is_dir():
        raise FileNotFoundError(f"{manual_dir}: MSP-IMPROV manual directory not found")
    for name in LABEL_FILE_NAMES:
        if (manual_dir / name).is_file():
            return manual_dir / name
    raise FileNotFoundError(f"{manual_dir / LABEL_FILE_NAMES[0]}: MSP-IMPROV label file not found "
                            f"(also looked for {LABEL_FILE_NAMES[1]})")


def _parse_float(text, path, line):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}:{line}: {text!r} is not a number (or NaN)") from None


def _parse_utterance_line(fields, path, line):
    stem = canonical_stem(fields[0])
    parse_stem(stem, source=f"{path}:{line}")
    consensus = fields[1]
    if consensus not in CONSENSUS_LETTERS:
        raise ValueError(f"{path}:{line}: consensus category {consensus!r} is not one of {CONSENSUS_LETTERS}")
    values = {}
    for field in fields[2:]:
        match = _FIELD_RE.match(field)
        if match is None:
            raise ValueError(f"{path}:{line}: field {field!r} is not of the form <A|V|D|N>:<number>")
        if match["key"] in values:
            raise ValueError(f"{path}:{line}: field {match['key']} appears twice")
        values[match["key"]] = _parse_float(match["value"], path, line)
    missing = [key for key in "AVD" if key not in values]
    if missing:
        raise ValueError(f"{path}:{line}: utterance line lacks the attribute fields {missing}")
    return Evaluation(stem=stem, consensus=consensus, arousal=values["A"], valence=values["V"],
                      dominance=values["D"], naturalness=values.get("N", math.nan), line=line)


def read_evaluation(path):
    """Evaluation.txt -> {stem: Evaluation}, stems in the media's `MSP-IMPROV-...` form.

    Utterance lines name a `.avi`/`.wav` file (`UTD-IMPROV-...` or `MSP-IMPROV-...`); every other non-blank
    line is a rater line belonging to the utterance above it.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MSP-IMPROV label file not found")
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 text file ({error})") from None
    evaluations = {}
    current = None
    for line_number, text in enumerate(lines, start=1):
        text = text.strip()
        if not text:
            continue
        fields = [field.strip() for field in text.rstrip(";").split(";")]
        if len(fields) < 2:
            raise ValueError(f"{path}:{line_number}: cannot parse {text!r}: expected ';'-separated fields")
        if re.match(r"^(UTD|MSP)-IMPROV-", fields[0]):
            current = _parse_utterance_line(fields, path, line_number)
            if current.stem in evaluations:
                raise ValueError(f"{path}:{line_number}: {current.stem} already evaluated on line "
                                 f"{evaluations[current.stem].line}")
            evaluations[current.stem] = current
        elif current is None:
            raise ValueError(f"{path}:{line_number}: rater line {text!r} before any utterance line")
        else:
            current.raters.append(RaterVote(rater=fields[0], category=fields[1], fields=tuple(fields[2:])))
    if not evaluations:
        raise ValueError(f"{path}: no utterance lines found")
    return evaluations


def utterance_labels(stems, label_source="consensus", evaluations=None, classes=EMOTIONS_4):
    """{stem: emotion} for the utterances whose label is one of `classes`.

    `consensus`: the perceived consensus category of Evaluation.txt (O and X dropped; utterances missing
    from the label file are dropped). `scenario`: the intended emotion of the elicitation scenario.
    """
    if label_source not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {label_source!r}; choose one of {LABEL_SOURCES}")
    labels = {}
    for stem in stems:
        if label_source == "scenario":
            emotion = parse_stem(stem).scenario
        else:
            if evaluations is None:
                raise ValueError("the consensus label source needs the Evaluation.txt entries")
            evaluation = evaluations.get(stem)
            emotion = CATEGORY_LETTERS.get(evaluation.consensus) if evaluation else None
        if emotion in classes:
            labels[stem] = emotion
    return labels


def find_media(manual_dir, suffix):
    """{stem: path} of the `suffix` files (".wav" or ".avi") anywhere under `manual_dir`.

    Covers both `Audio/session<k>/...` and copies without the `Audio/` level. A file whose name does not
    follow the corpus pattern, or two files with one stem, is an error naming the files.
    """
    manual_dir = pathlib.Path(manual_dir)
    found = {}
    for path in sorted(manual_dir.rglob(f"*{suffix}")):
        if not path.is_file():
            continue
        parse_stem(path.stem, source=str(path))
        if path.stem in found:
            raise ValueError(f"{path}: duplicate of {found[path.stem]} (same utterance)")
        found[path.stem] = path
    return found


def default_sessions(present_sessions):
    """(dev_sessions, test_sessions) of the default split: the second-to-last and the last session present
    (sessions 5 and 6 of the full corpus), so that a partial copy or a small demo corpus still splits."""
    present = sorted(set(present_sessions))
    if len(present) < 3:
        raise ValueError(f"a session split needs at least 3 sessions (train, validation, test); found {present}")
    return (present[-2],), (present[-1],)


def session_split(session, dev_sessions, test_sessions):
    """Split name of a session: 'validation', 'test' or 'train'."""
    if set(dev_sessions) & set(test_sessions):
        raise ValueError(f"dev sessions {dev_sessions} and test sessions {test_sessions} overlap")
    if session in test_sessions:
        return "test"
    if session in dev_sessions:
        return "validation"
    return "train"


def leave_one_session_out_folds():
    """[(fold, dev_sessions, test_sessions)]: fold k tests on session k and selects models on the next one."""
    return [(k, (k % len(SESSIONS) + 1,), (k,)) for k in SESSIONS]


@dataclasses.dataclass
class Metadata:
    label_file: pathlib.Path
    evaluations: dict

    def labels(self, stems, label_source="consensus", classes=EMOTIONS_4):
        return utterance_labels(stems, label_source, self.evaluations, classes)


def load_metadata(manual_dir):
    label_file = find_label_file(manual_dir)
    return Metadata(label_file=label_file, evaluations=read_evaluation(label_file))


def consensus_counts(evaluations):
    """Counter of consensus letters, for logging what a label file holds."""
    return collections.Counter(evaluation.consensus for evaluation in evaluations.values())
