"""The demo corpora: layouts parsed by the builders' own readers, sample and frame rates, exact phone
timings, a face MediaPipe finds, lips that follow the phones, determinism and resumability."""

import json
import shutil

import cv2
import numpy as np
import pytest
import soundfile

from artser_jax import landmarks
from artser_jax.data import crema_d, msp_improv, textgrid
from artser_jax.demo_corpora import channel, face, generate, plan, render
from artser_jax.demo_corpora import parameters as P
from artser_jax.demo_corpora.speech import IsolatedSynthesizer, Prosody

OPEN_VOWELS = set(P.VISEME_CLASSES["open"][0])
BILABIALS = set(P.VISEME_CLASSES["bilabial"][0])


def _crema_clips(root):
    return {p.stem: p for p in (root / crema_d.AUDIO_DIR).glob("*.wav")}


def _msp_clips(root):
    return {p.stem: p for p in (root / "Audio").rglob("*.wav")}


def test_crema_d_layout_parses_with_the_builder_reader(tiny_corpora):
    root = tiny_corpora / "crema_d"
    metadata = crema_d.load_metadata(root)
    wavs = _crema_clips(root)
    assert sorted(metadata.stems) == sorted(wavs)
    for stem in metadata.stems:
        name = crema_d.parse_stem(stem)
        assert name.actor in metadata.actors
        assert (root / crema_d.VIDEO_DIR / f"{stem}.flv").is_file()
        assert stem in metadata.votes
    actors = {crema_d.parse_stem(stem).actor for stem in metadata.stems}
    assert len(actors) >= 10
    assert set(crema_d.actor_split(actors).values()) == {"train", "validation", "test"}
    labels = crema_d.clip_labels(metadata.stems)
    assert set(labels.values()) == set(crema_d.EMOTIONS_4)
    # Perceived labels differ from the intended ones for some clips, as in the real perception study.
    voice = crema_d.clip_labels(metadata.stems, "voice_vote", votes=metadata.votes)
    assert 0 < sum(voice.get(stem) != label for stem, label in labels.items()) < len(labels) / 2
    tabulated = (root / "processedResults" / "tabulatedVotes.csv").read_text().splitlines()
    assert len(tabulated) == 1 + 3 * len(metadata.stems)


def test_msp_improv_layout_parses_with_the_builder_reader(tiny_corpora):
    root = tiny_corpora / "msp_improv"
    metadata = msp_improv.load_metadata(root)
    wavs = _msp_clips(root)
    videos = {p.stem: p for p in (root / "Video").rglob("*.avi")}
    assert sorted(wavs) == sorted(videos) == sorted(metadata.evaluations)
    sessions, conditions = set(), set()
    for stem, path in wavs.items():
        name = msp_improv.parse_stem(stem)
        scenario = stem.split("-")[2]
        assert path.relative_to(root).parts == ("Audio", f"session{name.session}", scenario, name.condition, path.name)
        assert videos[stem].relative_to(root).parts[1:4] == path.relative_to(root).parts[1:4]
        assert name.speaker[1:] == f"{name.session:02d}"
        assert len(metadata.evaluations[stem].raters) >= 5
        sessions.add(name.session)
        conditions.add(name.condition)
    assert len(sessions) >= 3 and len(conditions) >= 3
    consensus = msp_improv.utterance_labels(list(wavs), evaluations=metadata.evaluations)
    scenario = msp_improv.utterance_labels(list(wavs), "scenario", evaluations=metadata.evaluations)
    assert set(consensus.values()) == set(msp_improv.EMOTIONS_4)
    assert 0 < sum(consensus.get(stem) != label for stem, label in scenario.items()) < len(scenario) / 2


def test_every_wav_has_the_layout_sample_rate_and_a_matching_textgrid(tiny_corpora):
    for corpus, clips in (("crema_d", _crema_clips(tiny_corpora / "crema_d")),
                          ("msp_improv", _msp_clips(tiny_corpora / "msp_improv"))):
        for path in clips.values():
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (P.CORPORA[corpus]["sample_rate"], 1, "PCM_16")
            phones = textgrid.read_phones(path.with_suffix(".TextGrid"))
            assert phones and phones[-1].end <= info.duration + 1e-6
            assert all(a.end <= b.start + 1e-9 for a, b in zip(phones, phones[1:]))
            for interval in phones:
                face.viseme_of(interval.label)  # every label is a known ARPABET phone


def test_phone_timings_are_those_of_the_audio(tiny_corpora):
    """Before the first phone there is only the channel's noise; the phones carry the speech energy."""
    for path in list(_crema_clips(tiny_corpora / "crema_d").values())[:6]:
        audio, rate = soundfile.read(path, dtype="float32")
        phones = textgrid.read_phones(path.with_suffix(".TextGrid"))
        first = int(phones[0].start * rate)
        last = int(phones[-1].end * rate)
        lead_rms = np.sqrt(np.mean(audio[: first - int(0.01 * rate)] ** 2))
        speech_rms = np.sqrt(np.mean(audio[first:last] ** 2))
        assert speech_rms > 30 * lead_rms, path.name
        onset = np.flatnonzero(np.abs(audio) > 0.1 * np.abs(audio).max())[0] / rate
        assert phones[0].start - 0.002 <= onset < phones[0].end, path.name


def test_espeak_phones_for_a_known_sentence_reproducibly():
    synthesizer = IsolatedSynthesizer()
    synthesis = synthesizer.synthesize("It's eleven o'clock", "en-us", Prosody(50, 50, 175, 100))
    synthesizer.synthesize("Maybe tomorrow it will be cold", "en-gb-x-rp+m4", Prosody(70, 30, 140, 150))
    again = synthesizer.synthesize("It's eleven o'clock", "en-us", Prosody(50, 50, 175, 100))
    synthesizer.close()
    assert np.array_equal(again.waveform, synthesis.waveform) and again.phones == synthesis.phones
    labels = [label for _, _, label in synthesis.phones]
    assert labels == ["IH", "T", "S", "IH", "L", "EH", "V", "AH", "N", "AH", "K", "L", "AA", "K"]
    assert synthesis.sample_rate == 22050
    assert synthesis.phones[-1][1] <= len(synthesis.waveform) / synthesis.sample_rate
    assert [word for _, _, word in synthesis.words] == ["it's", "eleven", "o'clock"]


def test_every_video_opens_at_the_layout_frame_rate(tiny_corpora):
    for corpus, pattern in (("crema_d", "VideoFlash/*.flv"), ("msp_improv", "Video/*/*/*/*.avi")):
        settings = P.CORPORA[corpus]
        videos = sorted((tiny_corpora / corpus).glob(pattern))
        assert videos
        for path in videos:
            capture = cv2.VideoCapture(str(path))
            assert capture.isOpened(), path
            assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(settings["frame_rate"], abs=0.005)
            size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            assert size == settings["frame_size"]
            capture.release()


def _lip_measurements(path, detector, start_ms):
    """Inner-lip aperture / inter-ocular distance per frame (NaN without a face), and the frame rate."""
    capture = cv2.VideoCapture(str(path))
    frame_rate = capture.get(cv2.CAP_PROP_FPS)
    apertures = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        points = landmarks.detect(detector, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB),
                                  timestamp_ms=start_ms + len(apertures) * 1000 / frame_rate)
        if points is None:
            apertures.append(np.nan)
            continue
        upper, lower = (points[landmarks.kept_position(i)][:2] for i in landmarks.INNER_MID)
        right_eye, left_eye = points[landmarks.kept_position(33)][:2], points[landmarks.kept_position(263)][:2]
        apertures.append(np.linalg.norm(upper - lower) / np.linalg.norm(right_eye - left_eye))
    capture.release()
    return np.array(apertures), frame_rate


def _mean_in(apertures, frame_rate, intervals):
    times = np.arange(len(apertures)) / frame_rate
    # The middle of each interval, where the mouth has reached the phone's shape.
    inside = np.zeros(len(times), bool)
    for interval in intervals:
        margin = 0.25 * (interval.end - interval.start)
        inside |= (times >= interval.start + margin) & (times <= interval.end - margin)
    return np.nanmean(apertures[inside]) if np.any(inside & ~np.isnan(apertures)) else np.nan


def test_mediapipe_finds_the_face_and_lips_follow_the_phones(tiny_corpora):
    """On sampled clips of both corpora: a face in >= 95% of frames; inner-lip aperture smaller during
    bilabial closures (p, b, m) than during open vowels, on average over each clip."""
    detector = landmarks.create_face_landmarker(running_mode="video")
    found, total, compared, start_ms = 0, 0, 0, 0
    crema = sorted(_crema_clips(tiny_corpora / "crema_d").items())
    msp = sorted(_msp_clips(tiny_corpora / "msp_improv").items())
    sampled = crema[::9] + msp[::9]
    try:
        for stem, wav in sampled:
            if stem.startswith("MSP"):
                root = tiny_corpora / "msp_improv"
                video = root / "Video" / wav.relative_to(root / "Audio").with_suffix(".avi")
            else:
                video = tiny_corpora / "crema_d" / crema_d.VIDEO_DIR / f"{stem}.flv"
            apertures, frame_rate = _lip_measurements(video, detector, start_ms)
            start_ms += 100_000  # video mode needs increasing timestamps across clips
            found += int(np.sum(~np.isnan(apertures)))
            total += len(apertures)
            phones = textgrid.read_phones(wav.with_suffix(".TextGrid"))
            closed = _mean_in(apertures, frame_rate, [p for p in phones if p.label in BILABIALS])
            opened = _mean_in(apertures, frame_rate, [p for p in phones if p.label in OPEN_VOWELS])
            if np.isnan(closed) or np.isnan(opened):
                continue
            compared += 1
            assert closed < opened, f"{stem}: aperture {closed:.3f} in bilabials vs {opened:.3f} in open vowels"
    finally:
        detector.close()
    assert found / total >= 0.95, f"face found in {found}/{total} frames"
    assert compared >= 6


def test_rerun_skips_finished_clips_and_rerenders_interrupted_ones_identically(tiny_corpora, tmp_path):
    copy = tmp_path / "corpora"
    shutil.copytree(tiny_corpora, copy)
    state = copy / ".demo_generator"
    # Interrupt one clip of each corpus: no done-marker, a half-written scratch file, a missing video.
    speakers, clips = plan.plan_corpus("crema_d", "tiny", 0)
    crema_clip = clips[5]
    original_audio = (copy / "crema_d" / crema_clip.audio_path).read_bytes()
    render.done_marker(copy, crema_clip).unlink()
    (copy / "crema_d" / crema_clip.video_path).unlink()
    (state / "crema_d" / "partial").mkdir(exist_ok=True)
    (state / "crema_d" / "partial" / f"{crema_clip.stem}.wav").write_bytes(b"RIFF")
    _, msp_clips = plan.plan_corpus("msp_improv", "tiny", 0)
    render.done_marker(copy, msp_clips[3]).unlink()
    for corpus in ("crema_d", "msp_improv"):
        (state / corpus / "complete.json").unlink()

    summary = generate.generate_demo_corpora(copy, size="tiny", seed=0, num_workers=1)
    assert summary["crema_d"]["rendered"] == 1 and summary["msp_improv"]["rendered"] == 1
    assert (copy / "crema_d" / crema_clip.audio_path).read_bytes() == original_audio
    assert (copy / "crema_d" / crema_clip.video_path).is_file()
    for name in ("SentenceFilenames.csv", "processedResults/summaryTable.csv"):
        assert (copy / "crema_d" / name).read_bytes() == (tiny_corpora / "crema_d" / name).read_bytes()
    assert (copy / "msp_improv" / "Evaluation.txt").read_bytes() == \
        (tiny_corpora / "msp_improv" / "Evaluation.txt").read_bytes()

    again = generate.generate_demo_corpora(copy, size="tiny", seed=0, num_workers=1)
    assert again["crema_d"]["rendered"] == 0 and again["msp_improv"]["rendered"] == 0
    with pytest.raises(ValueError, match="seed"):
        generate.generate_demo_corpora(copy, size="tiny", seed=1)
    assert json.loads((state / "run.json").read_text())["seed"] == 0


def test_plans_are_deterministic_and_voices_disjoint():
    for size in ("tiny", "demo"):
        crema_speakers, crema_clips = plan.plan_corpus("crema_d", size, 3)
        msp_speakers, msp_clips = plan.plan_corpus("msp_improv", size, 3)
        assert plan.plan_corpus("crema_d", size, 3)[1] == crema_clips
        crema_voices = {s.voice for s in crema_speakers}
        msp_voices = {s.voice for s in msp_speakers}
        assert len(crema_voices) == len(crema_speakers) and len(msp_voices) == len(msp_speakers)
        accents = lambda voices: {v.split("+")[0] for v in voices}
        variants = lambda voices: {v.split("+")[1] for v in voices}
        assert not accents(crema_voices) & accents(msp_voices)
        assert not variants(crema_voices) & variants(msp_voices)
    assert len(crema_speakers) >= 8 and len(msp_speakers) >= 8
    assert len(crema_clips) >= 300 and len(msp_clips) >= 300
    assert plan.plan_corpus("crema_d", "demo", 4)[0][0] != crema_speakers[0]


def test_channel_filters_and_noise():
    rng = np.random.default_rng(0)
    rate = 48000
    tone = lambda hz: np.sin(2 * np.pi * hz * np.arange(rate) / rate).astype(np.float32)
    limited = channel.band_limit(tone(100) + tone(1000) + tone(9000), rate, 180.0, 5500.0)
    spectrum = np.abs(np.fft.rfft(limited)) / (rate / 2)
    assert spectrum[1000] > 0.9 and spectrum[100] < 0.2 and spectrum[9000] < 0.05
    noisy = channel.add_noise(tone(1000), 20.0, "pink", rng)
    snr = 10 * np.log10(np.mean(tone(1000) ** 2) / np.mean((noisy - tone(1000)) ** 2))
    assert snr == pytest.approx(20.0, abs=0.3)
    assert channel.to_int16(np.array([0.5, -3.0, 3.0], np.float32), 0.0).tolist() == [16384, -32767, 32767]
    assert channel.resample(tone(1000), rate, 16000).shape == (16000,)


def test_separability_protocol_holds_speakers_out():
    """Speaker-independent folds: a label that only a speaker's identity reveals cannot be learnt."""
    from artser_jax.demo_corpora import separability

    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(8), 20).astype(str)
    labels = np.array(separability.CLASSES)[rng.integers(0, 4, len(speakers))]
    informative = np.eye(4)[[separability.CLASSES.index(l) for l in labels]] + rng.normal(0, 0.3, (len(labels), 4))
    total, per_fold = separability.within_corpus_uar(informative, labels, speakers)
    assert total > 90 and len(per_fold) == 5
    # Each speaker's clips all share one label: a speaker-independent split must stay near chance.
    speaker_labels = np.array(separability.CLASSES)[np.arange(8) % 4][np.repeat(np.arange(8), 20)]
    speaker_identity = np.eye(8)[np.repeat(np.arange(8), 20)] + rng.normal(0, 0.1, (160, 8))
    leaky, _ = separability.within_corpus_uar(speaker_identity, speaker_labels, speakers)
    assert leaky < 50
    assert separability.cross_corpus_uar(informative, labels, informative, labels) > 90
