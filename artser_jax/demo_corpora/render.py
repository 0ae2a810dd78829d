"""Rendering one clip: speech, channel, phone alignment (TextGrid) and talking-face video.

All three files are first written completely under a scratch folder outside the corpus tree and only
then moved into place with `os.replace` (atomic); a done-marker written after the moves is what makes a
clip count as finished, so an interrupted run never leaves a half-written file in the corpus tree, and a
rerun renders every clip that has no marker again.
"""

import dataclasses
import math
import os
import pathlib

import cv2
import numpy as np
import soundfile

from artser_jax.data import textgrid
from artser_jax.demo_corpora import channel, face, plan
from artser_jax.demo_corpora import parameters as P
from artser_jax.demo_corpora.speech import IsolatedSynthesizer

# Codec tags for the two containers: Flash Video with Sorenson H.263 (FLV's own tag 2 for it; the
# four-character code 'FLV1' makes FFmpeg warn and fall back to that tag), AVI with MJPEG.
_FOURCC = {".flv": 2, ".avi": cv2.VideoWriter_fourcc(*"MJPG")}


@dataclasses.dataclass
class RenderContext:
    """Per-process state: the synthesiser and the mouth warper are built once per worker."""
    out_dir: pathlib.Path
    seed: int
    geometry: face.MouthGeometry
    emotion_parameters: P.EmotionParameters = dataclasses.field(default_factory=P.emotion_parameters)
    synthesizer: IsolatedSynthesizer = None
    warper: face.MouthWarper = None

    def __post_init__(self):
        self.synthesizer = IsolatedSynthesizer()
        self.warper = face.MouthWarper(self.geometry)


def state_dir(out_dir, corpus):
    return pathlib.Path(out_dir) / ".demo_generator" / corpus


def done_marker(out_dir, clip):
    return state_dir(out_dir, clip.corpus) / "done" / clip.stem


def clip_is_done(out_dir, clip):
    root = pathlib.Path(out_dir) / clip.corpus
    return done_marker(out_dir, clip).is_file() and all(
        (root / relative).is_file() for relative in (clip.audio_path, clip.textgrid_path, clip.video_path))


def room_response(corpus, seed, session, sample_rate):
    """The (per session) room of a corpus, or None for a dry studio."""
    settings = P.CORPORA[corpus]
    if not settings["reverb_rt60_s"]:
        return None
    rng = plan.rng_for(seed, corpus, "room", session)
    return channel.room_impulse_response(sample_rate, float(rng.uniform(*settings["reverb_rt60_s"])), rng)


def synthesize_clip(clip, speaker, context):
    """int16 audio at the corpus rate and the phone/word intervals (seconds) of one clip."""
    settings = P.CORPORA[clip.corpus]
    rng = plan.rng_for(context.seed, clip.corpus, "render", clip.index)
    prosody, tilt = plan.clip_prosody(clip, speaker, context.seed, context.emotion_parameters)
    synthesis = context.synthesizer.synthesize(clip.text, speaker.voice, prosody)
    waveform = channel.spectral_tilt(synthesis.waveform, synthesis.sample_rate, tilt)
    lead = float(rng.uniform(*settings["leading_silence_s"]))
    trail = float(rng.uniform(*settings["trailing_silence_s"]))
    rate = settings["sample_rate"]
    waveform = channel.resample(waveform, synthesis.sample_rate, rate)
    lead_samples, trail_samples = int(round(lead * rate)), int(round(trail * rate))
    waveform = np.concatenate([np.zeros(lead_samples, np.float32), waveform, np.zeros(trail_samples, np.float32)])
    offset = lead_samples / rate
    phones = [(start + offset, end + offset, label) for start, end, label in synthesis.phones]
    words = [(start + offset, end + offset, label) for start, end, label in synthesis.words]
    waveform = channel.band_limit(waveform, rate, settings["highpass_hz"], settings["lowpass_hz"])
    room = room_response(clip.corpus, context.seed, speaker.session, rate)
    if room is not None:
        waveform = channel.reverberate(waveform, room)
    waveform = channel.add_noise(waveform, float(rng.uniform(*settings["noise_snr_db"])), settings["noise_color"], rng)
    return channel.to_int16(waveform, speaker.gain_db), phones, words


def render_video(path, clip, speaker, phones, duration_s, context):
    """Writes the talking-face video of one clip; returns the number of frames."""
    settings = P.CORPORA[clip.corpus]
    rng = plan.rng_for(context.seed, clip.corpus, "render", 1_000_000 + clip.index)
    frame_rate, frame_size = settings["frame_rate"], settings["frame_size"]
    num_frames = max(1, math.ceil(duration_s * frame_rate))
    frame_times = np.arange(num_frames) / frame_rate
    opening, spread, lift = face.mouth_track(phones, frame_times, clip.emotion, speaker.articulation_gain,
                                             context.emotion_parameters.mouth_style)
    sway_phase = rng.uniform(0, 2 * np.pi, 3)
    noise = face.sensor_noise(frame_size, settings["image_noise_std"], rng)
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, _FOURCC[path.suffix],
                             frame_rate, frame_size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV could not open a {path.suffix} video writer "
                           "(needs OpenCV with the FFMPEG backend)")
    face_center = (float(context.warper.center_x), float(context.warper.mouth_y) - 15.0)
    try:
        for index, time in enumerate(frame_times):
            sway = (P.HEAD_SWAY_PX * np.sin(1.3 * time + sway_phase[0]),
                    P.HEAD_SWAY_PX * np.sin(0.9 * time + sway_phase[1]))
            matrix = face.frame_transform(settings["crop"], frame_size, speaker.appearance, face_center,
                                          sway, P.HEAD_SWAY_DEG * np.sin(0.7 * time + sway_phase[2]))
            photo = context.warper.render(float(opening[index]), float(spread[index]), float(lift[index]))
            frame = face.finish_frame(photo, matrix, frame_size, speaker.appearance,
                                      settings["blur_sigma_px"], noise[index % len(noise)])
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return num_frames


def render_clip(clip, speaker, context):
    """Renders one clip into the corpus tree; returns its number of video frames."""
    root = context.out_dir / clip.corpus
    scratch = state_dir(context.out_dir, clip.corpus) / "partial"
    scratch.mkdir(parents=True, exist_ok=True)
    audio, phones, words = synthesize_clip(clip, speaker, context)
    rate = P.CORPORA[clip.corpus]["sample_rate"]
    duration = len(audio) / rate
    partial_audio = scratch / f"{clip.stem}.wav"
    soundfile.write(partial_audio, audio, rate, subtype="PCM_16")
    partial_grid = scratch / f"{clip.stem}.TextGrid"
    textgrid.write_textgrid(partial_grid, {
        textgrid.WORDS_TIER: [textgrid.Interval(*word) for word in words],
        textgrid.PHONES_TIER: [textgrid.Interval(*phone) for phone in phones]}, end_time=duration)
    partial_video = scratch / f"{clip.stem}{pathlib.Path(clip.video_path).suffix}"
    num_frames = render_video(partial_video, clip, speaker, phones, duration, context)
    for partial, relative in ((partial_audio, clip.audio_path), (partial_grid, clip.textgrid_path),
                              (partial_video, clip.video_path)):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target)
    marker = done_marker(context.out_dir, clip)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{num_frames}\n")
    return num_frames
