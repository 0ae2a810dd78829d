"""Media layer: audio reading/resampling, manifest verification, cached landmark extraction."""

import hashlib
import pathlib

import cv2
import numpy as np
import pytest
import soundfile
from skimage import data as skimage_data

from artser_jax import landmarks
from artser_jax.data import audio, landmark_extraction, manifest

# The real CREMA-D media manifest, vendored (tests/data/crema-d-metadata/README.md).
REAL_MANIFEST = pathlib.Path(__file__).resolve().parent / "data" / "crema-d-metadata" / "media-manifest.tsv"


def _write_tone(path, rate, seconds=0.5, channels=1, frequency=440.0):
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * frequency * t).astype(np.float32)
    soundfile.write(path, np.stack([tone] * channels, axis=1), rate, subtype="PCM_16")


def test_load_audio_resamples_and_downmixes(tmp_path):
    _write_tone(tmp_path / "stereo44.wav", 44100, channels=2)
    mono = audio.load_audio(tmp_path / "stereo44.wav")
    assert mono.dtype == np.float32 and mono.ndim == 1
    assert abs(len(mono) - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(mono))
    assert abs(np.argmax(spectrum) * 16000 / len(mono) - 440) < 5, "the tone survives resampling"
    _write_tone(tmp_path / "mono16.wav", 16000)
    stored = audio.to_int16(audio.load_audio(tmp_path / "mono16.wav"))
    on_disk, _ = soundfile.read(tmp_path / "mono16.wav", dtype="int16")
    np.testing.assert_array_equal(stored, on_disk, err_msg="16 kHz int16 files are stored bit-exactly")
    with pytest.raises(audio.AudioError, match=r"stereo44.wav: sample rate 44100 Hz, expected 16000 Hz"):
        audio.load_audio(tmp_path / "stereo44.wav", expected_rate=16000)


def test_load_audio_rejects_non_audio(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not a wav file at all\n" * 10)
    soundfile.write(tmp_path / "no_samples.wav", np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(audio.AudioError, match=r"empty.wav: empty file"):
        audio.load_audio(tmp_path / "empty.wav")
    with pytest.raises(audio.AudioError, match=r"text.wav: not a readable audio file"):
        audio.load_audio(tmp_path / "text.wav")
    with pytest.raises(audio.AudioError, match=r"no_samples.wav: audio file holds no samples"):
        audio.load_audio(tmp_path / "no_samples.wav")
    with pytest.raises(audio.AudioError, match=r"absent.wav: audio file not found"):
        audio.load_audio(tmp_path / "absent.wav")


def test_manifest_verification_finds_each_problem(tmp_path):
    root = tmp_path / "corpus"
    (root / "AudioWAV").mkdir(parents=True)
    contents = {f"AudioWAV/{i}.wav": bytes([i]) * (100 + i) for i in range(5)}
    for path, content in contents.items():
        (root / path).write_bytes(content)
    rows = ["path\tsize\tsha256"] + [f"{p}\t{len(c)}\t{hashlib.sha256(c).hexdigest()}"
                                     for p, c in contents.items()]
    (tmp_path / "m.tsv").write_text("\n".join(rows) + "\n")
    entries = manifest.read_manifest(tmp_path / "m.tsv")
    assert manifest.verify_media(root, entries, progress=False).ok
    (root / "AudioWAV/0.wav").unlink()
    (root / "AudioWAV/1.wav").write_bytes(contents["AudioWAV/1.wav"][:50])
    (root / "AudioWAV/2.wav").write_bytes(b"\x00" * 102)
    (root / "AudioWAV/3.wav").write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 103\n")
    report = manifest.verify_media(root, entries, progress=False)
    assert report.checked == 5
    assert {(problem, path) for problem, path, _ in report.problems} == {
        ("missing", "AudioWAV/0.wav"), ("truncated", "AudioWAV/1.wav"), ("corrupted", "AudioWAV/2.wav"),
        ("lfs_pointer", "AudioWAV/3.wav")}
    assert "4 of 5 media files do not match" in report.summary()
    (tmp_path / "bad.tsv").write_text("path\tsize\tsha256\nAudioWAV/0.wav\tlots\tabc\n")
    with pytest.raises(ValueError, match=r"bad.tsv:2: expected"):
        manifest.read_manifest(tmp_path / "bad.tsv")


def test_real_crema_d_manifest_reads():
    entries = manifest.read_manifest(REAL_MANIFEST)
    assert len(entries) == 3 * 7442
    assert {e.path.split("/")[0] for e in entries} == {"AudioWAV", "AudioMP3", "VideoFlash"}


def _write_video(path, frames, fps=25.0):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A face video whose middle frames are blanked, a no-face video and an undecodable file."""
    root = tmp_path_factory.mktemp("videos")
    face = cv2.resize(skimage_data.astronaut(), (256, 256))
    frames = [np.roll(face, shift, axis=1) for shift in range(8)]
    frames[3] = frames[4] = np.zeros_like(face)
    _write_video(root / "face.avi", frames)
    rng = np.random.default_rng(0)
    _write_video(root / "noise.avi", [rng.integers(0, 256, face.shape, dtype=np.uint8) for _ in range(4)])
    (root / "broken.avi").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return root


def test_extract_track_masks_faceless_frames(videos):
    track = landmark_extraction.extract_track(videos / "face.avi")
    assert track.landmarks.shape == (8, landmarks.NUM_KEPT, 3) and track.landmarks.dtype == np.float32
    np.testing.assert_array_equal(track.valid, [True, True, True, False, False, True, True, True])
    assert np.all(track.landmarks[~track.valid] == 0)
    np.testing.assert_allclose(track.frame_times, np.arange(8) / 25.0, atol=1e-6)
    assert (track.width, track.height, track.frame_rate) == (256, 256, 25.0)
    # The lips lie in the lower middle of the astronaut's face, inside the frame.
    lips = track.landmarks[0, :len(landmarks.LIP_INDICES), :2]
    assert np.all((lips > 0) & (lips < 256))


def test_extract_landmarks_caches_and_reports_skips(videos, tmp_path):
    paths = [videos / "face.avi", videos / "noise.avi", videos / "broken.avi"]
    first = landmark_extraction.extract_landmarks(paths, tmp_path / "cache", num_workers=2, progress=False)
    assert [o.from_cache for o in first.values()] == [False, False, False]
    assert first[str(paths[0])].skip_reason is None and first[str(paths[0])].num_frames == 8
    assert first[str(paths[1])].skip_reason == "no face found in any of its 4 frames"
    assert first[str(paths[2])].skip_reason.startswith("undecodable video")
    assert len(list((tmp_path / "cache").iterdir())) == 3
    second = landmark_extraction.extract_landmarks(paths, tmp_path / "cache", num_workers=1, progress=False)
    assert all(o.from_cache for o in second.values())
    assert [o.skip_reason for o in second.values()] == [o.skip_reason for o in first.values()]
    cached = landmark_extraction.LandmarkCache(
        tmp_path / "cache", landmark_extraction.settings_tag(landmark_extraction.assets.face_model_path()))
    direct = landmark_extraction.extract_track(paths[0])
    np.testing.assert_array_equal(cached.load_track(first[str(paths[0])].sha256).landmarks, direct.landmarks)
