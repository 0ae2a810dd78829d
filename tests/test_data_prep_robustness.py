"""Data preparation under stress: stopped by signals, a damaged landmark cache, forced rebuilds, a wrong
manual dir, media whose lengths disagree, and MediaPipe's native logging kept off the terminal."""

import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import psutil
import pytest
import soundfile
import tensorflow_datasets as tfds

from artser_jax import assets
from artser_jax.data import builders, crema_d, crema_d_builder, landmark_extraction, media_checks, prepare

REPO = pathlib.Path(__file__).resolve().parents[1]
PREPARE_DATA = str(REPO / "launch" / "prepare_data.py")
# MediaPipe's native log lines: C++ logging before InitGoogle (no date: "W0000 00:00:..."), and TFLite's
# "INFO: Created TensorFlow Lite XNNPACK delegate". absl's Python logging ("I1125 08:36:43...") is not one.
NATIVE_LOG_RE = re.compile(r"^[IWEF]0000 00:00:|before InitGoogle|XNNPACK delegate", re.MULTILINE)
LANDMARKS_LOG_RE = re.compile(r"Landmarks: (\d+) videos, (\d+) from cache, (\d+) skipped")


def _cache_entries(cache_dir):
    return sorted(p.name for p in pathlib.Path(cache_dir).glob("*") if p.suffix in (".npz", ".json"))


def _wait_for_new_cache_entry(process, cache_dir, before, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_cache_entries(cache_dir)) > before:
            return
        assert process.poll() is None, f"prepare_data.py ended early: {process.communicate()}"
        time.sleep(0.2)
    pytest.fail(f"no landmark-cache entry appeared in {cache_dir} within {timeout} s")


def _running(pids):
    """The pids of `pids` that still run (a zombie has exited; only its parent's bookkeeping remains)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _stop_midway(command, cache_dir, stop_signal):
    """Starts `command`, waits for a new cache entry, sends `stop_signal`; (result, seconds to stop, children)."""
    before = len(_cache_entries(cache_dir)) if pathlib.Path(cache_dir).is_dir() else 0
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    _wait_for_new_cache_entry(process, cache_dir, before)
    children = [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
    start = time.monotonic()
    process.send_signal(stop_signal)
    stdout, stderr = process.communicate(timeout=60)
    return (process.returncode, stdout, stderr), time.monotonic() - start, children


def test_signals_stop_the_workers_and_the_rerun_resumes(tiny_corpora, tmp_path):
    data_dir, cache_dir = tmp_path / "data", tmp_path / "data" / "landmark_cache"
    command = [sys.executable, PREPARE_DATA, "--corpus=crema_d", f"--manual_dir={tiny_corpora / 'crema_d'}",
               f"--data_dir={data_dir}", "--num_workers=2"]
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        (returncode, _, stderr), seconds, children = _stop_midway(command, cache_dir, stop_signal)
        assert returncode == 128 + stop_signal, stderr
        assert len(children) >= 2, "two workers (and the resource tracker) ran"
        deadline = time.monotonic() + 10
        while _running(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(children), f"{stop_signal.name} left processes behind"
        assert seconds < 15, f"{stop_signal.name} took {seconds:.1f} s to stop"
        last_line = stderr.strip().splitlines()[-1]
        assert last_line == (f"stopped by {stop_signal.name}: the landmarks extracted so far are cached in "
                             f"{cache_dir}; resume with: {shlex.join(command)}")
        assert "Traceback" not in stderr
        assert not NATIVE_LOG_RE.search(stderr), "MediaPipe's native log lines reach the terminal"
    assert not (data_dir / "crema_d_av" / "emotion4" / "1.0.0").exists()
    cached = len(_cache_entries(cache_dir))

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert rerun.returncode == 0, rerun.stderr
    assert "crema_d_av/emotion4: built at" in rerun.stdout
    videos, from_cache, _ = map(int, LANDMARKS_LOG_RE.search(rerun.stderr).groups())
    assert from_cache == cached and 0 < cached < videos
    assert len(_cache_entries(cache_dir)) == videos
    assert not NATIVE_LOG_RE.search(rerun.stderr)


def test_native_logs_reach_stderr_only_when_asked(tiny_corpora, tmp_path):
    video = sorted((tiny_corpora / "crema_d" / "VideoFlash").glob("*.flv"))[0]
    script = ("import sys\nfrom artser_jax.data import landmark_extraction as le\n"
              "le.extract_landmarks([sys.argv[1]], sys.argv[2], num_workers=2, progress=False, "
              "native_logs=sys.argv[3] == 'True')\n")
    for native_logs in (True, False):
        result = subprocess.run([sys.executable, "-c", script, str(video), str(tmp_path / str(native_logs)),
                                 str(native_logs)], capture_output=True, text=True, timeout=300, cwd=REPO)
        assert result.returncode == 0, result.stderr
        assert bool(NATIVE_LOG_RE.search(result.stderr)) == native_logs, result.stderr


def test_corrupt_cache_entry_is_reported_deleted_and_recomputed(tiny_corpora, tmp_path, caplog):
    video = sorted((tiny_corpora / "crema_d" / "VideoFlash").glob("*.flv"))[0]
    first = landmark_extraction.extract_landmarks([video], tmp_path, progress=False)[str(video)]
    cache = landmark_extraction.LandmarkCache(
        tmp_path, landmark_extraction.settings_tag(assets.face_model_path()))
    entry = tmp_path / _cache_entries(tmp_path)[0]
    original = cache.load_track(first.sha256)
    entry.write_bytes(entry.read_bytes()[:entry.stat().st_size // 2])
    with pytest.raises(landmark_extraction.CorruptCacheEntry, match=re.escape(f"{entry}: unreadable")):
        cache.load_track(first.sha256)

    again = landmark_extraction.extract_landmarks([video], tmp_path, progress=False)[str(video)]
    assert not again.from_cache and again.num_frames == first.num_frames
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(f"{entry}: unreadable landmark-cache entry (BadZipFile")
    assert f"deleted it and extracted {video} again" in warnings[0]
    np.testing.assert_array_equal(cache.load_track(first.sha256).landmarks, original.landmarks)


def _crema_d_copy(tiny_corpora, tiny_data_dir, tmp_path):
    """A copy of the tiny CREMA-D corpus and of the session's landmark cache (so nothing is re-extracted)."""
    manual_dir = tmp_path / "crema_d"
    shutil.copytree(tiny_corpora / "crema_d", manual_dir)
    shutil.copytree(tiny_data_dir / "landmark_cache", tmp_path / "landmark_cache")
    return manual_dir, tmp_path / "landmark_cache"


def _train_stems(manual_dir):
    metadata = crema_d.load_metadata(manual_dir)
    split = metadata.split_of_actor()
    return sorted(s for s in metadata.labels() if split[crema_d.parse_stem(s).actor] == "train")


def _skip_reasons(dataset_path):
    rows = [line.split("\t") for line in (dataset_path / builders.SKIP_REPORT).read_text().splitlines()[1:]]
    return {uid: (file, reason) for uid, file, reason in rows}


def _utterances(data_dir, split="train"):
    source = tfds.data_source("crema_d_av/emotion4", split=split, data_dir=str(data_dir))
    return {source[i]["utterance_id"].decode() for i in range(len(source))}


def test_force_rebuilds_and_a_failed_rebuild_keeps_the_previous(tiny_corpora, tiny_data_dir, tmp_path):
    manual_dir, cache_dir = _crema_d_copy(tiny_corpora, tiny_data_dir, tmp_path)
    data_dir = tmp_path / "data"
    build = dict(landmark_cache_dir=cache_dir, progress=False)
    assert prepare.prepare_dataset("crema_d", manual_dir, data_dir, **build)["emotion4"][0] == "built"
    removed = _train_stems(manual_dir)[0]
    (manual_dir / "AudioWAV" / f"{removed}.wav").unlink()
    command = [sys.executable, PREPARE_DATA, "--corpus=crema_d", f"--manual_dir={manual_dir}",
               f"--data_dir={data_dir}", f"--landmark_cache_dir={cache_dir}", "--num_workers=1"]
    unforced = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert unforced.returncode == 0 and "crema_d_av/emotion4: already built at" in unforced.stdout
    assert removed in _utterances(data_dir)

    forced = subprocess.run(command + ["--force"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert forced.returncode == 0, forced.stderr
    assert "crema_d_av/emotion4: rebuilt at" in forced.stdout
    path = pathlib.Path(forced.stdout.split("rebuilt at ")[1].strip())
    assert _skip_reasons(path)[removed][1] == "missing audio file"
    assert removed not in _utterances(data_dir)
    assert sorted(p.name for p in path.parent.iterdir()) == ["1.0.0"], "the replaced build is gone"

    for stem in _train_stems(manual_dir)[1:6]:
        (manual_dir / "AudioWAV" / f"{stem}.wav").unlink()
    with pytest.raises(RuntimeError, match="more than max_skip_fraction"):
        prepare.prepare_dataset("crema_d", manual_dir, data_dir, force=True, **build)
    assert crema_d_builder.CremaDAv(config="emotion4", data_dir=str(data_dir)).is_prepared()
    assert _skip_reasons(path).keys() == {removed}, "the previous build is back"
    assert sorted(p.name for p in path.parent.iterdir()) == ["1.0.0"]


@pytest.mark.parametrize("layout", ["empty", "wrong"])
def test_empty_or_wrong_manual_dir_is_one_line_naming_the_layout(tmp_path, layout):
    manual_dir = tmp_path / "crema"
    manual_dir.mkdir()
    if layout == "wrong":
        (manual_dir / "AudioWAV").mkdir()
        (manual_dir / "notes.txt").write_text("not the corpus\n")
    result = subprocess.run([sys.executable, PREPARE_DATA, "--corpus=crema_d", f"--manual_dir={manual_dir}",
                             f"--data_dir={tmp_path / 'data'}"], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and "AssertionError" not in result.stderr
    problem = ("the crema_d_av manual directory is empty" if layout == "empty" else
               "not a crema_d manual directory: it lacks AudioWAV/*.wav, VideoFlash/, SentenceFilenames.csv, "
               "VideoDemographics.csv, processedResults/summaryTable.csv")
    assert lines[-1] == f"error: {manual_dir}: {problem}. {crema_d_builder.CremaDAv.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    with pytest.raises(FileNotFoundError, match=r"the release folder as the manual dir. It must hold Evaluation"):
        prepare.prepare_dataset("msp_improv", manual_dir, tmp_path / "data")


def _cut_video_to_one_frame(path):
    capture = cv2.VideoCapture(str(path))
    frame_rate = capture.get(cv2.CAP_PROP_FPS)
    ok, frame = capture.read()
    capture.release()
    assert ok
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FLV1"), frame_rate,
                             (frame.shape[1], frame.shape[0]))
    writer.write(frame)
    writer.release()


def test_inconsistent_media_are_skipped_with_all_three_durations(tiny_corpora, tiny_data_dir, tmp_path):
    manual_dir, cache_dir = _crema_d_copy(tiny_corpora, tiny_data_dir, tmp_path)
    truncated_wav, one_frame_video = _train_stems(manual_dir)[:2]
    wav = manual_dir / "AudioWAV" / f"{truncated_wav}.wav"
    samples, rate = soundfile.read(wav, dtype="int16")
    soundfile.write(wav, samples[:128], rate)
    _cut_video_to_one_frame(manual_dir / "VideoFlash" / f"{one_frame_video}.flv")
    audio_seconds = soundfile.info(manual_dir / "AudioWAV" / f"{one_frame_video}.wav").duration
    data_dir = tmp_path / "data"
    build = dict(landmark_cache_dir=cache_dir, progress=False)

    with pytest.raises(RuntimeError, match=r"2 of \d+ clips .* more than max_skip_fraction=1.0%"):
        prepare.prepare_dataset("crema_d", manual_dir, data_dir, max_skip_fraction=0.01, **build)
    failed_report = data_dir / f"crema_d_av-emotion4-FAILED-{builders.SKIP_REPORT}"
    assert failed_report.is_file()

    status, path = prepare.prepare_dataset("crema_d", manual_dir, data_dir, **build)["emotion4"]
    assert status == "built"
    assert not failed_report.exists(), "a successful build removes the stale FAILED report"
    reasons = _skip_reasons(path)
    assert reasons.keys() == {truncated_wav, one_frame_video}
    assert reasons[truncated_wav] == (str(wav), f"audio too short: 0.008 s in {wav.name}, the minimum is 0.30 s")
    file, reason = reasons[one_frame_video]
    assert file == str(manual_dir / "AudioWAV" / f"{one_frame_video}.wav")
    match = re.fullmatch(
        rf"inconsistent media durations: audio ([\d.]+) s \({one_frame_video}.wav\), video ([\d.]+) s "
        rf"\({one_frame_video}.flv\), alignment end ([\d.]+) s \({one_frame_video}.TextGrid\); "
        rf"allowed difference ([\d.]+) s", reason)
    assert match, reason
    audio, video, alignment_end, allowed = map(float, match.groups())
    assert audio == pytest.approx(audio_seconds, abs=1e-3) and video == pytest.approx(1 / 30, abs=1e-3)
    assert 0 < alignment_end <= audio and allowed == pytest.approx(media_checks.tolerance(audio_seconds), abs=0.01)
    assert _utterances(data_dir) == set(_train_stems(manual_dir)) - {truncated_wav, one_frame_video}


def test_duration_rule():
    wav, flv, grid = pathlib.Path("a.wav"), pathlib.Path("a.flv"), pathlib.Path("a.TextGrid")
    assert media_checks.duration_mismatch(wav, 2.0, flv, 2.45, grid, 1.6) is None
    assert media_checks.duration_mismatch(wav, 2.0, flv, 2.55, grid, 1.6).startswith("inconsistent")
    assert media_checks.duration_mismatch(wav, 10.0, flv, 10.9, None, None) is None, "10% of a long clip"
    assert media_checks.duration_mismatch(wav, 2.0, flv, 2.0, grid, 2.6).endswith("allowed difference 0.50 s")
    assert media_checks.duration_mismatch(wav, 6.0, flv, 6.0, grid, 1.0) is None, "trailing silence is fine"
    assert media_checks.audio_too_short(wav, 0.29) and media_checks.audio_too_short(wav, 0.3) is None
