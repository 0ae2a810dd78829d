"""Speech synthesis with exact phone timings: the eSpeak NG library through ctypes.

The `espeak-ng` command line prints phone durations only for MBROLA voices, so we call the library
(`libespeak-ng.so.1`, Debian package libespeak-ng1) directly in synchronous mode with phoneme events
switched on. Every phoneme event carries the index of the sample at which eSpeak starts that phoneme in
the audio it hands back, so the timings are those of the synthesised waveform, sample-exact.
Phoneme names are eSpeak's English mnemonics; we map them to ARPABET (the phone set of MFA's English
ARPA models) without stress digits.
"""

import ctypes
import ctypes.util
import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# eSpeak NG API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4

SILENCE_PHONEMES = frozenset({"_", "_:", "_!", "_|", "||", "|"})

# eSpeak NG English phoneme mnemonics -> ARPABET. Silences map to "" (MFA's silence label).
ESPEAK_TO_ARPABET = {
    # vowels
    "a": "AE", "a#": "AH", "aa": "AA", "A:": "AA", "A@": "AA", "A#": "AA", "0": "AA", "0#": "AA",
    "@": "AH", "@2": "AH", "@5": "AH", "@#": "AH", "V": "AH", "VR": "AH", "@L": "L",
    "3": "ER", "3:": "ER", "3:r": "ER",
    "E": "EH", "E2": "EH", "E#": "EH", "e@": "EH", "e": "EH",
    "eI": "EY", "I": "IH", "I#": "IH", "I2": "IH", "I2#": "IH", "i@": "IH", "i@3": "IH", "IR": "IH",
    "i": "IY", "i:": "IY",
    "O": "AO", "O:": "AO", "O@": "AO", "O2": "AO", "o@": "AO", "OI": "OY",
    "oU": "OW", "oU#": "OW", "o": "OW",
    "U": "UH", "U@": "UH", "u:": "UW", "u": "UW",
    "aI": "AY", "aI2": "AY", "aI@": "AY", "aI3": "AY", "aU": "AW", "aU@": "AW",
    # consonants
    "b": "B", "d": "D", "d#": "D", "D": "DH", "dZ": "JH", "f": "F", "g": "G", "h": "HH", "j": "Y", ";": "Y",
    "k": "K", "x": "K", "l": "L", "l/": "L", "m": "M", "n": "N", "n-": "N", "N": "NG", "p": "P",
    "r": "R", "r-": "R", "s": "S", "S": "SH", "t": "T", "t#": "T", "t2": "T", "t[": "T", "?": "T",
    "T": "TH", "tS": "CH", "v": "V", "w": "W", "w#": "W", "z": "Z", "z#": "Z", "Z": "ZH",
}
ESPEAK_TO_ARPABET.update({name: "" for name in SILENCE_PHONEMES})


class SynthesisError(RuntimeError):
    """eSpeak NG is missing or failed, or produced a phoneme we cannot label."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclasses.dataclass(frozen=True)
class Prosody:
    """eSpeak NG voice parameters: pitch and pitch range 0..99 (50 = voice default), rate in words
    per minute (175 default), volume (amplitude) 0..200 (100 default)."""
    pitch: int
    pitch_range: int
    rate: int
    volume: int


@dataclasses.dataclass(frozen=True)
class Synthesis:
    """A synthesised utterance: float32 waveform in [-1, 1] and time-aligned phones and words.

    `phones` and `words` are tuples of (start_s, end_s, label) with silences left out.
    """
    waveform: np.ndarray
    sample_rate: int
    phones: tuple
    words: tuple


class EspeakSynthesizer:
    """The eSpeak NG library in this process.

    The library keeps state from one utterance to the next (timings and samples of the same request
    drift by a few samples, and earlier voices change later output), so for reproducible corpora use
    `IsolatedSynthesizer`, which gives every utterance a fresh library instance.
    """

    def __init__(self):
        library_name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self._lib = ctypes.CDLL(library_name)
        except OSError as error:
            raise SynthesisError(f"cannot load the eSpeak NG library ({library_name}): {error}. "
                                 "Install the Debian package espeak-ng (bash scripts/setup.sh).") from None
        self.sample_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise SynthesisError(f"espeak_Initialize failed (returned {self.sample_rate})")
        self._chunks = []
        self._events = []
        self._callback = _CALLBACK(self._on_audio)  # kept alive as long as the synthesiser
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]

    def _on_audio(self, samples, count, events):
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, (count,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                self._events.append(("phoneme", event.sample, event.id.string.decode("ascii", "replace")))
            elif event.type == _EVENT_WORD:
                self._events.append(("word", event.sample, (event.text_position, event.length)))
            elif event.type == _EVENT_END:
                self._events.append(("end", event.sample, None))
            index += 1
        return 0

    def synthesize(self, text, voice, prosody):
        """Speaks `text` with eSpeak voice name `voice` (e.g. 'en-us+f3') and `prosody`."""
        if self._lib.espeak_SetVoiceByName(voice.encode("ascii")) != 0:
            raise SynthesisError(f"eSpeak NG has no voice {voice!r} (see `espeak-ng --voices=en`)")
        for parameter, value in ((_PARAM_RATE, prosody.rate), (_PARAM_VOLUME, prosody.volume),
                                 (_PARAM_PITCH, prosody.pitch), (_PARAM_RANGE, prosody.pitch_range)):
            self._lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks, self._events = [], []
        encoded = text.encode("utf-8")
        status = self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0 or self._lib.espeak_Synchronize() != 0:
            raise SynthesisError(f"espeak_Synth failed (status {status}) for {text!r} with voice {voice!r}")
        if not self._chunks:
            raise SynthesisError(f"eSpeak NG returned no audio for {text!r} with voice {voice!r}")
        waveform = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        phones, words = self._timeline(text, voice, len(waveform))
        return Synthesis(waveform, self.sample_rate, phones, words)

    def _timeline(self, text, voice, num_samples):
        """Phone and word intervals (seconds) from the recorded events."""
        phoneme_events = [(sample, name) for kind, sample, name in self._events if kind == "phoneme"]
        boundaries = [sample for sample, _ in phoneme_events[1:]] + [num_samples]
        phones = []
        for (start, name), end in zip(phoneme_events, boundaries):
            if name not in ESPEAK_TO_ARPABET:
                raise SynthesisError(f"eSpeak phoneme {name!r} (voice {voice!r}, text {text!r}) has no ARPABET "
                                     "mapping in ESPEAK_TO_ARPABET; add it there")
            label = ESPEAK_TO_ARPABET[name]
            if end > start and label:  # eSpeak emits zero-length phonemes for elided sounds
                phones.append((start / self.sample_rate, end / self.sample_rate, label))
        word_events = [(sample, value) for kind, sample, value in self._events if kind == "word"]
        tokens = text.split()
        if len(tokens) == len(word_events):
            word_events = [(sample, token) for (sample, _), token in zip(word_events, tokens)]
        else:  # eSpeak split the text differently: use its 1-based character spans
            word_events = [(sample, text[position - 1:position - 1 + length])
                           for sample, (position, length) in word_events]
        words = []
        for index, (start, word) in enumerate(word_events):
            next_start = word_events[index + 1][0] if index + 1 < len(word_events) else num_samples
            inside = [phone for phone in phones
                      if start / self.sample_rate - 1e-9 <= phone[0] < next_start / self.sample_rate]
            if inside:
                words.append((inside[0][0], inside[-1][1], word.strip(".,!?;:\"").lower()))
        return tuple(phones), tuple(words)


class IsolatedSynthesizer:
    """Reproducible synthesis: every utterance is spoken by a freshly initialised eSpeak NG.

    A small helper process (this file run with `--serve`, importing only numpy) forks one child per
    request; the child initialises the library, synthesises and saves the result, so no state carries
    over from earlier utterances and the output depends on the request alone.
    """

    def __init__(self):
        self._scratch = tempfile.TemporaryDirectory(prefix="artser_espeak_")
        # Run as a plain script: this file imports only the standard library and numpy.
        self._helper = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._count = 0

    def synthesize(self, text, voice, prosody):
        self._count += 1
        path = os.path.join(self._scratch.name, f"{self._count}.npz")
        request = {"text": text, "voice": voice, "prosody": dataclasses.asdict(prosody), "path": path}
        self._helper.stdin.write(json.dumps(request) + "\n")
        self._helper.stdin.flush()
        reply = self._helper.stdout.readline()
        if not reply:
            raise SynthesisError(f"the eSpeak helper process exited (code {self._helper.poll()})")
        reply = json.loads(reply)
        if reply["error"]:
            raise SynthesisError(reply["error"])
        with np.load(path) as stored:
            result = Synthesis(waveform=stored["waveform"], sample_rate=int(stored["sample_rate"]),
                               phones=tuple(tuple(p) for p in json.loads(str(stored["phones"]))),
                               words=tuple(tuple(w) for w in json.loads(str(stored["words"]))))
        os.remove(path)
        return result

    def close(self):
        if self._helper.poll() is None:
            self._helper.stdin.close()
            self._helper.wait(timeout=10)
        self._scratch.cleanup()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the helper ends with its closed stdin anyway
            pass


def _synthesize_to_file(request):
    synthesis = EspeakSynthesizer().synthesize(request["text"], request["voice"], Prosody(**request["prosody"]))
    np.savez(request["path"], waveform=synthesis.waveform, sample_rate=synthesis.sample_rate,
             phones=json.dumps(synthesis.phones), words=json.dumps(synthesis.words))


def _serve():
    """Helper loop: one JSON request per stdin line, one forked child per request, one JSON reply line."""
    for line in sys.stdin:
        request = json.loads(line)
        error_path = request["path"] + ".error"
        child = os.fork()
        if child == 0:
            code = 0
            try:
                _synthesize_to_file(request)
            except BaseException as error:  # reported to the parent through the error file
                with open(error_path, "w") as f:
                    f.write(f"{type(error).__name__}: {error}")
                code = 1
            os._exit(code)
        _, status = os.waitpid(child, 0)
        error = None
        if os.path.exists(error_path):
            with open(error_path) as f:
                error = f.read()
            os.remove(error_path)
        elif status != 0:
            error = f"eSpeak child process failed with status {status} for {request['text']!r}"
        sys.stdout.write(json.dumps({"error": error}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        raise SystemExit("usage: python speech.py --serve (the helper of IsolatedSynthesizer)")
    _serve()
