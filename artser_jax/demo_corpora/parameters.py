"""The frozen parameters of the demo corpora (documented in docs/demo_corpora.md).

They were set once for realism, before any method was compared on the corpora, and are not tuned
afterwards. Changing any of them changes the parameters version, which the generator records in each
corpus's completion marker. Two versions exist side by side: version 1 (the module-level tables below,
the README demo) and version 2 (issue 11's controlled experiment: stronger acoustic emotion and a
documented premise strength; the `V2_` tables at the end). `emotion_parameters(version, strength)`
returns the tables one version uses.
"""

import dataclasses

PARAMETERS_VERSION = 1  # what `generate_demo_corpora` uses unless asked for another version
PARAMETERS_VERSIONS = (1, 2)

# --- Texts ------------------------------------------------------------------------------------------
# CREMA-D's 12 sentences are in artser_jax.data.crema_d.SENTENCES.
# MSP-IMPROV-like target sentences: our own 20 short sentences (NOT the real MSP-IMPROV target sentences,
# which we do not have); sentence code Snn = index + 1.
MSP_TARGET_SENTENCES = (
    "I can't believe you did that",
    "We are going to the park today",
    "Please put the box back on the shelf",
    "My mother made pancakes this morning",
    "The bus was late again",
    "Nobody told me about the party",
    "I bought a map of the city",
    "Maybe we should wait a bit longer",
    "That was my favorite movie",
    "Bring the blue bag upstairs",
    "You promised to call me back",
    "The market opens at nine",
    "Put your bike by the door",
    "I have to move out by Monday",
    "Mark parked the car behind the barn",
    "Are you coming home for dinner",
    "Everybody passed the exam",
    "Stop playing with the ball",
    "The baby is finally asleep",
    "Tom painted the room purple",
)
# Other turns of the improvisations (conditions T and P): our own free lines.
MSP_FREE_LINES = (
    "Well I told you so",
    "What do you want me to say",
    "Come on, be serious",
    "I really need a break",
    "Oh, look at that",
    "No way, that is my bike",
    "Can we talk about it later",
    "It's been a long week",
    "Let me think about it",
    "Why would anybody do that",
    "Thank you so much",
    "I am not sure about this",
)

# --- Voices -----------------------------------------------------------------------------------------
# eSpeak NG accents and voice variants; the two corpora share neither accents nor variants.
CREMA_ACCENTS = ("en-us", "en-us-nyc")
CREMA_VARIANTS = {"female": ("f2", "f3", "Annie", "linda", "Alicia", "aunty"),
                  "male": ("m1", "m2", "m3", "adam", "Andy", "michael", "david")}
MSP_ACCENTS = ("en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan")
MSP_VARIANTS = {"female": ("f4", "f5", "belinda", "steph", "Andrea", "anika"),
                "male": ("m4", "m5", "m6", "m7", "Alex", "edward", "john")}

# Speaker baseline (uniform ranges): eSpeak pitch 0..99, pitch range 0..99, rate (words/min), volume.
SPEAKER_PITCH = (38, 62)
SPEAKER_PITCH_RANGE = (40, 60)
SPEAKER_RATE = (150, 185)
SPEAKER_VOLUME = (85, 115)
# Expressiveness: multiplies every emotional deviation of a speaker (uniform range).
SPEAKER_EXPRESSIVENESS = (0.45, 1.15)
# Per-speaker, per-emotion idiosyncrasy: normal noise (std) added to the emotion's deviations, in
# units of each dimension (pitch, range, rate change, volume change, spectral tilt dB/octave); the
# neutral emotion is each speaker's baseline and gets no idiosyncrasy.
SPEAKER_EMOTION_NOISE = (4.0, 6.0, 0.05, 0.08, 0.8)
# Per-utterance noise (std), same units.
UTTERANCE_NOISE = (3.0, 5.0, 0.04, 0.06, 0.5)

# --- Emotions as prosody ----------------------------------------------------------------------------
# Deviations from the speaker's neutral baseline at full intensity: (pitch, pitch range, relative
# rate change, relative volume change, spectral tilt change in dB/octave above 1 kHz).
EMOTION_PROSODY = {
    "NEU": (0.0, 0.0, 0.00, 0.00, 0.0),
    "HAP": (10.0, 18.0, 0.06, 0.12, 1.0),
    "ANG": (6.0, 10.0, 0.10, 0.40, 2.5),
    "SAD": (-8.0, -20.0, -0.16, -0.25, -2.0),
    "FEA": (14.0, -6.0, 0.14, -0.08, 0.5),
    "DIS": (-4.0, 6.0, -0.10, 0.02, -0.5),
}
# Utterance intensity (scales the deviations): CREMA-D level codes, and the XX/unspecified range.
INTENSITY_LEVELS = {"LO": 0.5, "MD": 0.8, "HI": 1.1}
INTENSITY_UNSPECIFIED = (0.6, 1.05)

# --- Mouth (visemes) --------------------------------------------------------------------------------
# Viseme classes: ARPABET phones -> (opening 0..1, spread -1..1; negative spread = rounded lips).
VISEME_CLASSES = {
    "bilabial": (("P", "B", "M"), (0.0, 0.0)),
    "labiodental": (("F", "V"), (0.12, 0.05)),
    "open": (("AA", "AE", "AY", "AW", "AH"), (1.0, 0.15)),
    "mid": (("EH", "ER", "EY"), (0.6, 0.25)),
    "spread": (("IY", "IH", "Y"), (0.35, 0.6)),
    "rounded": (("UW", "UH", "OW", "OY", "W", "AO"), (0.45, -0.8)),
    "postalveolar": (("SH", "ZH", "CH", "JH", "R"), (0.25, -0.4)),
    "other_consonant": (("T", "D", "N", "L", "S", "Z", "K", "G", "NG", "HH", "TH", "DH"), (0.25, 0.1)),
}
REST_MOUTH = (0.05, 0.0)
# Mouth-opening scale in pixels of the 512x512 photograph (its mouth is 42 px wide).
MAX_OPENING_PX = 12.0
MAX_SPREAD_PX = 5.0
MAX_CORNER_LIFT_PX = 3.5
# Co-articulation: Gaussian smoothing of the viseme targets (seconds); bilabials still close fully.
COARTICULATION_SIGMA_S = 0.018
# Emotion style of the mouth: (opening gain, added spread, corner lift -1..1).
EMOTION_MOUTH_STYLE = {
    "NEU": (1.0, 0.0, 0.0),
    "HAP": (1.05, 0.35, 0.8),
    "ANG": (1.3, 0.1, -0.4),
    "SAD": (0.65, -0.1, -0.8),
    "FEA": (1.2, 0.4, -0.3),
    "DIS": (0.8, -0.05, -0.6),
}

# --- Appearance per speaker -------------------------------------------------------------------------
APPEARANCE_SCALE = (0.9, 1.1)
APPEARANCE_SHIFT_PX = 12.0
APPEARANCE_ROTATION_DEG = 4.0
APPEARANCE_TINT = (0.85, 1.15)      # per colour channel
APPEARANCE_BRIGHTNESS = (0.85, 1.15)
HEAD_SWAY_PX = 1.5                  # slow head motion within a clip
HEAD_SWAY_DEG = 1.0

# --- Corpora: layout, channel, sizes ----------------------------------------------------------------
CORPORA = {
    "crema_d": {
        "sample_rate": 16000,
        "frame_rate": 30.0,
        "frame_size": (320, 240),
        # Crop of the 512x512 photograph (x0, y0, width, height) that fills the frame.
        "crop": (105, 35, 240, 180),
        "leading_silence_s": (0.25, 0.45),
        "trailing_silence_s": (0.2, 0.4),
        # Studio channel: high-pass, no reverberation, faint white noise.
        "highpass_hz": 70.0, "lowpass_hz": None, "reverb_rt60_s": None,
        "noise_snr_db": (38.0, 45.0), "noise_color": "white", "gain_db": (-2.0, 2.0),
        "blur_sigma_px": 0.0, "image_noise_std": 1.0,
    },
    "msp_improv": {
        "sample_rate": 48000,
        "frame_rate": 30000 / 1001,
        "frame_size": (384, 288),
        "crop": (75, 20, 300, 225),
        "leading_silence_s": (0.1, 0.3),
        "trailing_silence_s": (0.1, 0.3),
        # Lapel microphone in a room: band limiting, reverberation (per session), pink noise, lower level.
        "highpass_hz": 180.0, "lowpass_hz": 5500.0, "reverb_rt60_s": (0.35, 0.6),
        "noise_snr_db": (16.0, 24.0), "noise_color": "pink", "gain_db": (-9.0, -5.0),
        "blur_sigma_px": 0.8, "image_noise_std": 3.0,
    },
}

# Sizes: speakers and clips per speaker.
SIZES = {
    "tiny": {
        # 12 actors: the 70/10/20 actor split (crema_d.actor_split) gives 8/1/3 (with 10 the validation
        # split would be empty); one sentence each (IEO for the levels, three with bilabials), the 4
        # classes; the first two actors also DIS and FEA.
        "crema_d_actors": 12, "crema_d_sentences_per_actor": 1, "crema_d_emotions": ("ANG", "HAP", "NEU", "SAD"),
        "crema_d_sentence_pool": ("IEO", "MTI", "IOM", "TAI"), "crema_d_all_emotion_actors": 2,
        # 3 sessions x 2 speakers, 2 turns per scenario emotion.
        "msp_sessions": 3, "msp_turns_per_emotion": 2,
    },
    "controls": {
        # Issue 11's power: 44 actors split 30/5/9 (crema_d.actor_split), 48 clips each (12 sentences x 4
        # classes): 240 dev and 432 test utterances. MSP-IMPROV-like: 4 sessions (train 1-2, dev 3, test 4),
        # 2 speakers x 4 emotions x 42 turns = 336 clips per session.
        "crema_d_actors": 44, "crema_d_sentences_per_actor": 12, "crema_d_emotions": ("ANG", "HAP", "NEU", "SAD"),
        "crema_d_sentence_pool": None, "crema_d_all_emotion_actors": 0,
        "msp_sessions": 4, "msp_turns_per_emotion": 42,
    },
    "demo": {
        # 14 actors: split 9/2/3.
        "crema_d_actors": 14, "crema_d_sentences_per_actor": 5,
        "crema_d_emotions": ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"),
        "crema_d_sentence_pool": None, "crema_d_all_emotion_actors": 0,
        "msp_sessions": 6, "msp_turns_per_emotion": 8,
    },
}
# MSP-IMPROV recording conditions and how often each is drawn.
MSP_CONDITIONS = {"R": 0.25, "S": 0.35, "T": 0.2, "P": 0.2}

# --- Perception study (labels) ----------------------------------------------------------------------
# Raters per clip, and how a rater's perceived emotion is drawn: the intended emotion with probability
# rising with the clip's intensity and the speaker's expressiveness, else a confusable emotion.
RATERS_PER_CLIP = {"crema_d": (8, 12), "msp_improv": (7, 12)}
RECOGNITION_BASE = 0.45
RECOGNITION_GAIN = 0.4
CONFUSIONS = {
    "NEU": ("SAD", "HAP"), "HAP": ("NEU", "FEA"), "ANG": ("DIS", "NEU"), "SAD": ("NEU", "FEA"),
    "FEA": ("SAD", "ANG"), "DIS": ("ANG", "NEU"),
}


# --- Version 2 (issue 11): stronger acoustic emotion and the premise strength ------------------------
# Deviations at full intensity as in EMOTION_PROSODY, larger, and smaller speaker and utterance noise,
# so that emotion is about as recognisable from the voice as in CREMA-D (docs/controls.md).
V2_EMOTION_PROSODY = {
    "NEU": (0.0, 0.0, 0.00, 0.00, 0.0),
    "HAP": (16.0, 30.0, 0.10, 0.20, 1.5),
    "ANG": (8.0, 14.0, 0.18, 0.60, 4.0),
    "SAD": (-14.0, -30.0, -0.28, -0.35, -3.5),
    "FEA": (22.0, -10.0, 0.22, -0.10, 1.0),
    "DIS": (-6.0, 8.0, -0.15, 0.03, -1.0),
}
V2_SPEAKER_EXPRESSIVENESS = (0.8, 1.2)
V2_SPEAKER_EMOTION_NOISE = (2.0, 3.0, 0.03, 0.05, 0.4)
V2_UTTERANCE_NOISE = (1.5, 2.5, 0.02, 0.04, 0.3)
# The paper's premise: each emotion's articulation style in the mouth, the same in both corpora, at
# premise strength 1 (opening gain, added spread -1..1, corner lift -1..1). At strength s a clip of
# emotion e shows neutral + s * (style[e] - neutral); strength 0 makes the mouth independent of emotion.
V2_PREMISE_MOUTH_STYLE = {
    "NEU": (1.0, 0.0, 0.0),
    "HAP": (1.0, 0.6, 1.0),      # spread lips, raised corners
    "ANG": (1.6, 0.15, -0.5),    # larger opening
    "SAD": (0.45, -0.3, -0.9),   # reduced opening, lowered corners
    "FEA": (1.35, 0.5, -0.3),
    "DIS": (0.8, -0.1, -0.7),
}
V2_DEFAULT_PREMISE_STRENGTH = 1.0


@dataclasses.dataclass(frozen=True)
class EmotionParameters:
    """The emotion tables of one parameters version (and, from version 2, one premise strength)."""
    version: int
    premise_strength: float     # None for version 1, whose mouth style is EMOTION_MOUTH_STYLE
    prosody: dict
    speaker_expressiveness: tuple
    speaker_emotion_noise: tuple
    utterance_noise: tuple
    mouth_style: dict

    def record(self):
        """What the generator's run record stores about these parameters."""
        record = {"parameters_version": self.version}
        if self.premise_strength is not None:
            record["premise_strength"] = float(self.premise_strength)
        return record


def emotion_parameters(version=PARAMETERS_VERSION, premise_strength=None):
    """The emotion tables of parameters `version`; `premise_strength` (version 2 only, >= 0, default
    V2_DEFAULT_PREMISE_STRENGTH) scales each emotion's mouth style away from the neutral one."""
    if version == 1:
        if premise_strength is not None:
            raise ValueError("premise_strength is a parameter of version 2; version 1 has a fixed mouth style")
        return EmotionParameters(1, None, EMOTION_PROSODY, SPEAKER_EXPRESSIVENESS, SPEAKER_EMOTION_NOISE,
                                 UTTERANCE_NOISE, EMOTION_MOUTH_STYLE)
    if version == 2:
        strength = V2_DEFAULT_PREMISE_STRENGTH if premise_strength is None else float(premise_strength)
        if strength < 0:
            raise ValueError(f"premise_strength must be >= 0, got {strength}")
        neutral = V2_PREMISE_MOUTH_STYLE["NEU"]
        style = {emotion: tuple(n + strength * (v - n) for n, v in zip(neutral, values))
                 for emotion, values in V2_PREMISE_MOUTH_STYLE.items()}
        return EmotionParameters(2, strength, V2_EMOTION_PROSODY, V2_SPEAKER_EXPRESSIVENESS,
                                 V2_SPEAKER_EMOTION_NOISE, V2_UTTERANCE_NOISE, style)
    raise ValueError(f"unknown parameters version {version!r}; known: {PARAMETERS_VERSIONS}")
