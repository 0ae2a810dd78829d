"""Video -> mouth landmark tracks: MediaPipe on every frame, in parallel, cached by file content.

Usable without TFDS. `extract_landmarks(videos, cache_dir, num_workers)` runs the MediaPipe Face Landmarker
in VIDEO mode over every frame of every video, in a pool of worker processes, with a progress bar. Each
outcome is stored in `cache_dir` under the SHA-256 of the video file (plus a tag of the extractor's
settings), as soon as it is known, so a rebuild or an interrupted build never redoes a finished video:

- a track: landmarks `(T, 45, 3)` float32 pixels (`landmarks.KEPT_INDICES`), validity `(T,)` bool
  (False where no face was found; those frames hold zeros), frame times `(T,)` seconds, frame rate;
- a skip, with its reason: the video cannot be decoded, or no frame has a face.

An unreadable cache entry (a truncated `.npz`, say) is reported with its path, deleted and recomputed. An
exception in the caller while the pool runs (a KeyboardInterrupt, or whatever a signal handler raises)
terminates the workers at once: no further video starts, and every video finished so far is already in
the cache. MediaPipe's native log lines (absl/TFLite, written straight to file descriptor 2) are silenced
during extraction unless `native_logs=True`.
"""

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
import pathlib
import signal
import sys
import tempfile
import threading
import zipfile

import numpy as np
import tqdm

from artser_jax import assets
from artser_jax import landmarks as face_landmarks

# Bump when the stored track changes meaning; it is part of every cache key.
EXTRACTION_VERSION = 1


@dataclasses.dataclass
class LandmarkTrack:
    landmarks: np.ndarray    # (T, NUM_KEPT, 3) float32 pixels
    valid: np.ndarray        # (T,) bool
    frame_times: np.ndarray  # (T,) float32 seconds from the start of the clip
    frame_rate: float
    width: int
    height: int


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one video: its content hash, and the skip reason (None when a track exists)."""
    path: str
    sha256: str
    skip_reason: str = None
    from_cache: bool = False
    num_frames: int = 0
    frame_rate: float = 0.0
    cache_problem: str = None  # why a cache entry of this video was unreadable (it was recomputed)


class VideoSkipped(Exception):
    """A video that yields no track; the message is the reason written to the skip report."""


class CorruptCacheEntry(ValueError):
    """A landmark-cache file that cannot be read; the message names the file and the problem."""


def decode_video(path):
    """(frame rate, generator of RGB uint8 frames); VideoSkipped if the file cannot be opened."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoSkipped("undecodable video: OpenCV/FFmpeg cannot open it")
    frame_rate = capture.get(cv2.CAP_PROP_FPS)
    if not (math.isfinite(frame_rate) and frame_rate > 0):
        capture.release()
        raise VideoSkipped(f"undecodable video: no usable frame rate ({frame_rate})")

    def frames():
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    return frame_rate, frames()


def extract_track(path, model_path=None):
    """The landmark track of one video (a fresh VIDEO-mode landmarker, so no tracking state carries over
    from another video). Raises VideoSkipped for an undecodable video or one with no face in any frame."""
    frame_rate, frames = decode_video(path)
    points, valid = [], []
    width = height = 0
    with face_landmarks.create_face_landmarker(model_path, running_mode="video") as landmarker:
        last_timestamp_ms = -1
        for index, frame in enumerate(frames):
            height, width = frame.shape[:2]
            # VIDEO mode needs strictly increasing integer milliseconds.
            timestamp_ms = max(last_timestamp_ms + 1, round(index * 1000.0 / frame_rate))
            last_timestamp_ms = timestamp_ms
            kept = face_landmarks.detect(landmarker, frame, timestamp_ms)
            valid.append(kept is not None)
            points.append(kept if kept is not None else np.zeros((face_landmarks.NUM_KEPT, 3), np.float32))
    if not points:
        raise VideoSkipped("undecodable video: no frame could be decoded")
    valid = np.array(valid, bool)
    if not valid.any():
        raise VideoSkipped(f"no face found in any of its {len(valid)} frames")
    return LandmarkTrack(landmarks=np.stack(points).astype(np.float32), valid=valid,
                         frame_times=(np.arange(len(valid)) / frame_rate).astype(np.float32),
                         frame_rate=float(frame_rate), width=width, height=height)


def settings_tag(model_path):
    """Short hash of everything besides the video that determines a track: the model file, the kept
    points and the extractor version. Part of the cache key, so a new model never reuses old tracks."""
    description = json.dumps({"version": EXTRACTION_VERSION, "model_sha256": assets.sha256_of(model_path),
                              "kept": list(face_landmarks.KEPT_INDICES)})
    return hashlib.sha256(description.encode()).hexdigest()[:12]


def _atomic_write(path, write):
    """Writes through a temporary file in the same directory, so a killed process leaves no partial entry."""
    path = pathlib.Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class LandmarkCache:
    """Per-video outcomes on disk, keyed by `<video sha256>-<settings tag>`."""

    def __init__(self, directory, tag):
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tag = tag

    def _track_path(self, sha256):
        return self.directory / f"{sha256}-{self.tag}.npz"

    def _skip_path(self, sha256):
        return self.directory / f"{sha256}-{self.tag}.skip.json"

    def lookup(self, sha256):
        """('track', LandmarkTrack) / ('skip', reason) / None for a video not processed yet.

        Reads the whole entry, so a damaged one is found here: CorruptCacheEntry naming the file.
        """
        skip_path = self._skip_path(sha256)
        if skip_path.is_file():
            try:
                return "skip", json.loads(skip_path.read_text())["reason"]
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
                raise CorruptCacheEntry(f"{skip_path}: unreadable landmark-cache entry "
                                        f"({type(error).__name__}: {error})") from None
        if self._track_path(sha256).is_file():
            return "track", self.load_track(sha256)
        return None

    def discard(self, sha256):
        for path in (self._track_path(sha256), self._skip_path(sha256)):
            path.unlink(missing_ok=True)

    def store_track(self, sha256, track):
        _atomic_write(self._track_path(sha256), lambda f: np.savez(
            f, landmarks=track.landmarks, valid=track.valid, frame_times=track.frame_times,
            frame_rate=np.float64(track.frame_rate), width=np.int64(track.width),
            height=np.int64(track.height)))

    def store_skip(self, sha256, reason):
        _atomic_write(self._skip_path(sha256), lambda f: f.write(json.dumps({"reason": reason}).encode()))

    def load_track(self, sha256):
        path = self._track_path(sha256)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no cached landmark track for video sha256 {sha256}")
        try:
            with np.load(path) as stored:
                return LandmarkTrack(landmarks=stored["landmarks"], valid=stored["valid"],
                                     frame_times=stored["frame_times"], frame_rate=float(stored["frame_rate"]),
                                     width=int(stored["width"]), height=int(stored["height"]))
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError) as error:
            raise CorruptCacheEntry(f"{path}: unreadable landmark-cache entry "
                                    f"({type(error).__name__}: {error})") from None


# Reference count of the threads inside `_native_stderr_silenced` (a Beam worker runs bundles in threads):
# the first one in points fd 2 at /dev/null, the last one out puts it back.
_silence = {"lock": threading.Lock(), "depth": 0, "saved": None}


@contextlib.contextmanager
def _native_stderr_silenced():
    """Points file descriptor 2 at /dev/null for the duration: MediaPipe's C++ logging (absl, TFLite)
    writes there directly and ignores GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL and Python's logging."""
    with _silence["lock"]:
        if _silence["depth"] == 0:
            sys.stderr.flush()
            _silence["saved"] = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _silence["depth"] += 1
    try:
        yield
    finally:
        with _silence["lock"]:
            _silence["depth"] -= 1
            if _silence["depth"] == 0:
                os.dup2(_silence["saved"], 2)
                os.close(_silence["saved"])


# Per-worker state, set once by `_init_worker` (each worker process handles many videos).
_worker = {}


def _init_worker(cache_dir, tag, model_path, native_logs):
    import cv2

    cv2.setNumThreads(1)  # one process per core: no extra decoder threads competing with the pool
    _worker.update(cache=LandmarkCache(cache_dir, tag), model_path=model_path, native_logs=native_logs)


def _init_pool_worker(*args):
    # Ctrl-C reaches the whole process group; the main process alone decides when the workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(*args)


def _process_video(path):
    """Pool worker task: `process_video` with this worker's cache and settings."""
    return process_video(path, _worker["cache"], _worker["model_path"], _worker["native_logs"])


def process_video(path, cache, model_path, native_logs=False):
    """The Outcome of one video: hash it, look it up in `cache` (a LandmarkCache), else extract its track
    and store it. Never raises for a bad video (its skip is cached too); a damaged cache entry is deleted,
    recomputed and named in `cache_problem`. The unit of work of the process pool and of the Beam build."""
    sha256 = assets.sha256_of(path)
    cache_problem = None
    try:
        cached = cache.lookup(sha256)
    except CorruptCacheEntry as error:
        cache.discard(sha256)
        cached, cache_problem = None, str(error)
    if cached is not None:
        kind, value = cached
        if kind == "skip":
            return Outcome(str(path), sha256, skip_reason=value, from_cache=True)
        return Outcome(str(path), sha256, from_cache=True, num_frames=len(value.valid),
                       frame_rate=value.frame_rate)
    silenced = contextlib.nullcontext() if native_logs else _native_stderr_silenced()
    try:
        with silenced:
            track = extract_track(path, model_path)
    except VideoSkipped as skipped:
        cache.store_skip(sha256, str(skipped))
        return Outcome(str(path), sha256, skip_reason=str(skipped), cache_problem=cache_problem)
    cache.store_track(sha256, track)
    return Outcome(str(path), sha256, num_frames=len(track.valid), frame_rate=track.frame_rate,
                   cache_problem=cache_problem)


def _terminate_pool(pool):
    """Stops the pool now: queued videos are cancelled and running ones abandoned (cache writes are atomic,
    so nothing partial is left). `shutdown` alone would let every running video finish first."""
    # ProcessPoolExecutor has no public way to end running tasks before Python 3.14 (`terminate_workers`).
    workers = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=10)
        if worker.is_alive():
            worker.kill()
            worker.join()


def extract_landmarks(video_paths, cache_dir, num_workers=1, model_path=None, progress=True, native_logs=False):
    """{path (str): Outcome} for every video, running MediaPipe only on videos not yet in the cache.

    `num_workers` <= 1 runs in this process; more uses a spawn-context process pool (MediaPipe and JAX
    are not fork-safe). Missing files are a FileNotFoundError up front: they are the caller's business
    (a builder reports them before it gets here). `native_logs`: let MediaPipe's C++ log lines through.
    """
    video_paths = [str(p) for p in video_paths]
    missing = [p for p in video_paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} video files do not exist, e.g. {missing[:3]}")
    model_path = str(model_path or assets.face_model_path())
    tag = settings_tag(model_path)
    outcomes = {}
    counts = {"cached": 0, "skipped": 0}
    bar = tqdm.tqdm(total=len(video_paths), desc="mouth landmarks", unit="video", disable=not progress)

    def record(outcome):
        if outcome.cache_problem:
            logging.warning("%s; deleted it and extracted %s again", outcome.cache_problem, outcome.path)
        outcomes[outcome.path] = outcome
        counts["cached"] += outcome.from_cache
        counts["skipped"] += outcome.skip_reason is not None
        bar.update(1)
        bar.set_postfix(counts, refresh=False)

    try:
        if num_workers <= 1:
            _init_worker(cache_dir, tag, model_path, native_logs)
            for path in video_paths:
                record(_process_video(path))
        else:
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=num_workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_pool_worker, initargs=(str(cache_dir), tag, model_path, native_logs))
            try:
                futures = [pool.submit(_process_video, path) for path in video_paths]
                for future in concurrent.futures.as_completed(futures):
                    record(future.result())
            except BaseException:
                _terminate_pool(pool)
                logging.info("Landmarks: stopped with %d of %d videos done; they are cached in %s",
                             len(outcomes), len(video_paths), cache_dir)
                raise
            pool.shutdown()
    except concurrent.futures.BrokenExecutor as error:
        raise RuntimeError(f"a landmark-extraction worker process died ({error}); the {len(outcomes)} videos "
                           f"finished so far are cached in {cache_dir}, a rerun resumes from there") from error
    finally:
        bar.close()
    logging.info("Landmarks: %d videos, %d from cache, %d skipped", len(outcomes), counts["cached"],
                 counts["skipped"])
    return {path: outcomes[path] for path in video_paths}
