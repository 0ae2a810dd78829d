"""What the demo corpora contain: speakers, clips, prosody and the simulated perception study.

Everything random is drawn here, from generators seeded by (seed, corpus, purpose, index), so a plan is
a pure function of (size, seed, emotion parameters) and rendering a clip needs nothing but its plan entry.
`emotion` arguments are `parameters.EmotionParameters` (version 1 when not given).
"""

import dataclasses

import numpy as np

from artser_jax.data import crema_d
from artser_jax.demo_corpora import face
from artser_jax.demo_corpora import parameters as P
from artser_jax.demo_corpora.speech import Prosody

CORPUS_IDS = {"crema_d": 0, "msp_improv": 1}
MSP_EMOTION_LETTERS = {"ANG": "A", "HAP": "H", "SAD": "S", "NEU": "N"}
MSP_RATER_NAMES = {"ANG": "Angry", "HAP": "Happy", "SAD": "Sad", "NEU": "Neutral", "OTH": "Other"}
CREMA_VOTE_LETTERS = {value: key for key, value in crema_d.VOTE_LETTERS.items()}
# Secondary emotions raters may add (MSP-IMPROV rater lines list them after the primary one).
SECONDARY_EMOTIONS = {"ANG": ("Frustrated", "Annoyed", "Disgusted"), "HAP": ("Excited", "Amused", "Surprised"),
                      "SAD": ("Disappointed", "Concerned", "Depressed"), "NEU": ("Other",),
                      "OTH": ("Surprised", "Concerned")}
# Mean arousal, valence, dominance (1..5) a rater gives to a perceived emotion.
RATING_MEANS = {"ANG": (4.1, 1.8, 3.9), "HAP": (3.6, 4.2, 3.4), "SAD": (2.0, 1.9, 2.2),
                "NEU": (2.6, 3.0, 3.0), "OTH": (3.0, 2.8, 3.0)}
_CREMA_RACES = (("Caucasian", 0.64), ("African American", 0.24), ("Asian", 0.08), ("Unknown", 0.04))


def rng_for(seed, corpus, purpose, index=0):
    """The generator for one purpose (e.g. 'speaker', 'clip') and index within one corpus."""
    purposes = ("speaker", "clip", "room", "rating", "assignment", "prosody", "render")
    return np.random.default_rng([int(seed), CORPUS_IDS[corpus], purposes.index(purpose), int(index)])


@dataclasses.dataclass(frozen=True)
class Speaker:
    speaker_id: str            # '1001' or 'F01'
    gender: str                # 'female' | 'male'
    voice: str                 # eSpeak voice name, accent+variant
    pitch: float
    pitch_range: float
    rate: float
    volume: float
    expressiveness: float
    emotion_offsets: dict      # emotion -> 5 deviations added to EMOTION_PROSODY
    articulation_gain: float
    gain_db: float
    appearance: face.Appearance
    session: int = 0           # MSP-IMPROV session; 0 for CREMA-D
    age: int = 0
    race: str = ""
    ethnicity: str = ""


@dataclasses.dataclass(frozen=True)
class Clip:
    corpus: str
    stem: str
    speaker_id: str
    sentence: str              # 'IEO' or 'S01'
    text: str
    emotion: str               # intended, 3-letter code
    level: str                 # CREMA-D intensity code; 'XX' elsewhere
    intensity: float
    condition: str             # MSP-IMPROV R/S/T/P; '' for CREMA-D
    index: int                 # position in the corpus plan; seeds the clip's generator
    audio_path: str            # relative to the corpus root
    video_path: str

    @property
    def textgrid_path(self):
        return self.audio_path[: -len(".wav")] + ".TextGrid"


def _choose_voices(genders, accents, variants, rng):
    """Distinct eSpeak voices (accent+variant) for speakers of the given genders."""
    voices, used = [], {"female": 0, "male": 0}
    shuffled = {gender: list(rng.permutation(names)) for gender, names in variants.items()}
    for gender in genders:
        pool, k = shuffled[gender], used[gender]
        # A variant is reused only after the whole pool, and then with the next accent.
        variant = pool[k % len(pool)]
        accent = accents[(k + k // len(pool)) % len(accents)]
        used[gender] += 1
        voices.append(f"{accent}+{variant}")
    return voices


def _make_speaker(corpus, seed, index, speaker_id, gender, voice, emotion_parameters, session=0):
    rng = rng_for(seed, corpus, "speaker", index)
    noise = emotion_parameters.speaker_emotion_noise
    offsets = {emotion: (np.zeros(5) if emotion == "NEU" else rng.normal(0.0, noise)).tolist()
               for emotion in emotion_parameters.prosody}
    race = _CREMA_RACES[rng.choice(len(_CREMA_RACES), p=[p for _, p in _CREMA_RACES])][0]
    return Speaker(
        speaker_id=speaker_id, gender=gender, voice=voice,
        pitch=float(rng.uniform(*P.SPEAKER_PITCH)), pitch_range=float(rng.uniform(*P.SPEAKER_PITCH_RANGE)),
        rate=float(rng.uniform(*P.SPEAKER_RATE)), volume=float(rng.uniform(*P.SPEAKER_VOLUME)),
        expressiveness=float(rng.uniform(*emotion_parameters.speaker_expressiveness)), emotion_offsets=offsets,
        articulation_gain=float(rng.uniform(0.85, 1.15)),
        gain_db=float(rng.uniform(*P.CORPORA[corpus]["gain_db"])),
        appearance=face.sample_appearance(rng), session=session,
        age=int(rng.integers(20, 75)), race=race,
        ethnicity="Hispanic" if rng.random() < 0.11 else "Not Hispanic")


def clip_prosody(clip, speaker, seed, emotion_parameters=None):
    """eSpeak prosody and spectral tilt (dB/octave) of one clip."""
    emotion_parameters = emotion_parameters or P.emotion_parameters(1)
    rng = rng_for(seed, clip.corpus, "prosody", clip.index)
    deviation = (np.asarray(emotion_parameters.prosody[clip.emotion]) +
                 np.asarray(speaker.emotion_offsets[clip.emotion]))
    deviation = (deviation * clip.intensity * speaker.expressiveness +
                 rng.normal(0.0, emotion_parameters.utterance_noise))
    pitch, pitch_range, rate_change, volume_change, tilt = deviation
    prosody = Prosody(pitch=int(np.clip(round(speaker.pitch + pitch), 0, 99)),
                      pitch_range=int(np.clip(round(speaker.pitch_range + pitch_range), 0, 99)),
                      rate=int(np.clip(round(speaker.rate * (1 + rate_change)), 80, 400)),
                      volume=int(np.clip(round(speaker.volume * (1 + volume_change)), 10, 200)))
    return prosody, float(tilt)


def _intensity(level, rng):
    if level in P.INTENSITY_LEVELS:
        return P.INTENSITY_LEVELS[level]
    return float(rng.uniform(*P.INTENSITY_UNSPECIFIED))


def plan_crema_d(size, seed, emotion_parameters):
    """Speakers and clips of the CREMA-D-like corpus."""
    spec = P.SIZES[size]
    count = spec["crema_d_actors"]
    rng = rng_for(seed, "crema_d", "assignment")
    genders = list(rng.permutation(["female"] * (count // 2) + ["male"] * (count - count // 2)))
    voices = _choose_voices(genders, P.CREMA_ACCENTS, P.CREMA_VARIANTS, rng)
    speakers = [_make_speaker("crema_d", seed, i, str(1001 + i), genders[i], voices[i], emotion_parameters)
                for i in range(count)]
    codes = list(crema_d.SENTENCES)
    pool = list(spec["crema_d_sentence_pool"] or codes)
    clips = []
    for actor_index, speaker in enumerate(speakers):
        per_actor = spec["crema_d_sentences_per_actor"]
        sentences = [pool[(actor_index * per_actor + j) % len(pool)] for j in range(per_actor)]
        emotions = spec["crema_d_emotions"]
        if actor_index < spec["crema_d_all_emotion_actors"]:
            emotions = crema_d.EMOTIONS_6
        for sentence in sentences:
            for emotion in emotions:
                # As in CREMA-D, only IEO carries LO/MD/HI levels (one per emotion here), neutral is XX.
                level = "XX"
                if sentence == "IEO" and emotion != "NEU":
                    level = ("LO", "MD", "HI")[(actor_index + crema_d.EMOTIONS_6.index(emotion)) % 3]
                stem = f"{speaker.speaker_id}_{sentence}_{emotion}_{level}"
                index = len(clips)
                clip_rng = rng_for(seed, "crema_d", "clip", index)
                clips.append(Clip(
                    corpus="crema_d", stem=stem, speaker_id=speaker.speaker_id, sentence=sentence,
                    text=crema_d.SENTENCES[sentence], emotion=emotion, level=level,
                    intensity=_intensity(level, clip_rng), condition="", index=index,
                    audio_path=f"{crema_d.AUDIO_DIR}/{stem}.wav", video_path=f"{crema_d.VIDEO_DIR}/{stem}.flv"))
    return speakers, clips


def plan_msp_improv(size, seed, emotion_parameters):
    """Speakers and clips of the MSP-IMPROV-like corpus: sessions k with speakers F0k and M0k."""
    spec = P.SIZES[size]
    sessions = spec["msp_sessions"]
    rng = rng_for(seed, "msp_improv", "assignment")
    genders = [gender for _ in range(sessions) for gender in ("female", "male")]
    voices = _choose_voices(genders, P.MSP_ACCENTS, P.MSP_VARIANTS, rng)
    speakers = []
    for i, gender in enumerate(genders):
        session = i // 2 + 1
        speaker_id = f"{'F' if gender == 'female' else 'M'}{session:02d}"
        speakers.append(_make_speaker("msp_improv", seed, i, speaker_id, gender, voices[i], emotion_parameters,
                                      session=session))
    conditions, weights = zip(*P.MSP_CONDITIONS.items())
    clips, turn_numbers = [], {}
    for speaker_index, speaker in enumerate(speakers):
        partner = "M" if speaker.gender == "female" else "F"
        for emotion_index, emotion in enumerate(MSP_EMOTION_LETTERS):
            for turn in range(spec["msp_turns_per_emotion"]):
                index = len(clips)
                clip_rng = rng_for(seed, "msp_improv", "clip", index)
                sentence_index = (speaker_index * 7 + emotion_index * 5 + turn * 3) % len(P.MSP_TARGET_SENTENCES)
                condition = conditions[clip_rng.choice(len(conditions), p=np.asarray(weights))]
                if condition in ("R", "S"):
                    text = P.MSP_TARGET_SENTENCES[sentence_index]
                else:
                    text = P.MSP_FREE_LINES[clip_rng.integers(len(P.MSP_FREE_LINES))]
                sentence = f"S{sentence_index + 1:02d}"
                key = (sentence, emotion, speaker.speaker_id, condition)
                turn_numbers[key] = turn_numbers.get(key, 0) + 1
                scenario = f"{sentence}{MSP_EMOTION_LETTERS[emotion]}"
                stem = (f"MSP-IMPROV-{scenario}-{speaker.speaker_id}-{condition}-"
                        f"{speaker.speaker_id[0]}{partner}{turn_numbers[key]:02d}")
                folder = f"session{speaker.session}/{scenario}/{condition}"
                clips.append(Clip(
                    corpus="msp_improv", stem=stem, speaker_id=speaker.speaker_id, sentence=sentence,
                    text=text, emotion=emotion, level="XX", intensity=_intensity("XX", clip_rng),
                    condition=condition, index=index, audio_path=f"Audio/{folder}/{stem}.wav",
                    video_path=f"Video/{folder}/{stem}.avi"))
    return speakers, clips


def plan_corpus(corpus, size, seed, emotion_parameters=None):
    """(speakers, clips) of one corpus; version 1's emotion parameters unless others are given."""
    if size not in P.SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(P.SIZES)}")
    planners = {"crema_d": plan_crema_d, "msp_improv": plan_msp_improv}
    return planners[corpus](size, seed, emotion_parameters or P.emotion_parameters(1))


# --- Simulated perception study ------------------------------------------------------------------------

def _perceived(clip, speaker, choices, rng, extra_recognition=0.0):
    """One rater's perceived emotion: the intended one with a probability that grows with how
    strongly the clip expresses it, else a confusable emotion (or any other)."""
    strength = 0.8 if clip.emotion == "NEU" else min(1.0, clip.intensity * speaker.expressiveness)
    recognition = min(0.95, P.RECOGNITION_BASE + P.RECOGNITION_GAIN * strength + extra_recognition)
    if rng.random() < recognition:
        return clip.emotion
    confusable = [e for e in P.CONFUSIONS[clip.emotion] if e in choices]
    if confusable and rng.random() < 0.75:
        return confusable[0] if (len(confusable) == 1 or rng.random() < 0.6) else confusable[1]
    others = [e for e in choices if e != clip.emotion]
    return others[rng.integers(len(others))]


def crema_d_ratings(clip, speaker, seed):
    """Per modality ('voice', 'face', 'multimodal'): list of (emotion, intensity 0..100) responses."""
    rng = rng_for(seed, "crema_d", "rating", clip.index)
    ratings = {}
    # Faces show the emotion about as well as voices in CREMA-D, the combination best.
    for modality, extra in (("voice", 0.0), ("face", 0.05), ("multimodal", 0.12)):
        count = int(rng.integers(P.RATERS_PER_CLIP["crema_d"][0], P.RATERS_PER_CLIP["crema_d"][1] + 1))
        responses = []
        for _ in range(count):
            emotion = _perceived(clip, speaker, crema_d.EMOTIONS_6, rng, extra)
            level = float(np.clip(rng.normal(35 + 40 * clip.intensity, 15), 1, 100))
            responses.append((emotion, level))
        ratings[modality] = responses
    return ratings


def majority_vote(responses):
    """(votes joined by ':' in letter order, mean levels of those votes joined by ':')."""
    counts = {}
    for emotion, _ in responses:
        counts[emotion] = counts.get(emotion, 0) + 1
    best = max(counts.values())
    winners = sorted((CREMA_VOTE_LETTERS[e], e) for e, c in counts.items() if c == best)
    levels = [np.mean([level for emotion, level in responses if emotion == e]) for _, e in winners]
    return ":".join(letter for letter, _ in winners), ":".join(f"{round(level, 2):g}" for level in levels)


@dataclasses.dataclass(frozen=True)
class RaterLine:
    rater: str
    primary: str          # 3-letter code or 'OTH'
    secondary: tuple
    arousal: int
    valence: int
    dominance: int
    naturalness: int


def msp_ratings(clip, speaker, seed):
    """The rater lines of one MSP-IMPROV-like clip."""
    rng = rng_for(seed, "msp_improv", "rating", clip.index)
    count = int(rng.integers(P.RATERS_PER_CLIP["msp_improv"][0], P.RATERS_PER_CLIP["msp_improv"][1] + 1))
    raters = rng.choice(200, size=count, replace=False)
    lines = []
    for rater in raters:
        primary = _perceived(clip, speaker, tuple(MSP_EMOTION_LETTERS), rng)
        if rng.random() < 0.06:
            primary = "OTH"
        choices = SECONDARY_EMOTIONS[primary]
        secondary = tuple(rng.choice(choices, size=min(len(choices), int(rng.integers(0, 3))), replace=False))
        means = np.asarray(RATING_MEANS[primary])
        arousal, valence, dominance = np.clip(np.round(means + rng.normal(0, 0.7, 3)), 1, 5).astype(int)
        naturalness = int(np.clip(round(3.4 + rng.normal(0, 0.8) + (0.4 if clip.condition == "P" else 0)), 1, 5))
        lines.append(RaterLine(f"UTD-Rater-{rater:03d}", primary, secondary, int(arousal), int(valence),
                               int(dominance), naturalness))
    return lines


def msp_consensus(lines):
    """Plurality of the primary emotions as A/H/S/N/O; X when the plurality is tied."""
    counts = {}
    for line in lines:
        counts[line.primary] = counts.get(line.primary, 0) + 1
    best = max(counts.values())
    winners = [emotion for emotion, count in counts.items() if count == best]
    if len(winners) > 1:
        return "X"
    return "O" if winners[0] == "OTH" else MSP_EMOTION_LETTERS[winners[0]]
