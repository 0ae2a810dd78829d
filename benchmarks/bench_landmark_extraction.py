"""Landmark-extraction throughput: the pipeline with 1 and 2 worker processes next to raw MediaPipe.

    python benchmarks/bench_landmark_extraction.py [--videos='DIR/VideoFlash/*.flv'] [--workers=1,2] \
        [--num_videos=16 --num_frames=60] [--repeats=3] [--out=results.json]

Three numbers, all in video frames per second on the same videos, each the best and the median of
--repeats runs (the best is the least disturbed by other processes on a shared machine):
- `mediapipe_raw`: the frames decoded beforehand, then only `detect_for_video` in one process (one
  fresh VIDEO-mode landmarker per video, as the pipeline does) - MediaPipe's own rate;
- `pipeline_<n>_workers`: `landmark_extraction.extract_landmarks` with an empty cache and n processes -
  hashing, decoding, detection, cache writes and the process pool's start-up included;
- `pipeline_cached`: the same call again, every video found in the cache.
Also `decode_only_fps` (one run of OpenCV decoding + RGB conversion), the part of the pipeline's
per-frame work that is not MediaPipe.
Without --videos it writes synthetic videos: the astronaut photograph (a real face) moving a little,
320x240 at 30 fps, FLV like CREMA-D. The machine's load average is printed too: on a shared machine
other processes take cores away from the pool.
"""

import glob
import json
import os
import pathlib
import tempfile
import time

from absl import app
from absl import flags
import cv2
import numpy as np
from skimage import data as skimage_data

from artser_jax import landmarks
from artser_jax.data import landmark_extraction

_VIDEOS = flags.DEFINE_string("videos", None, "Glob of existing videos to use instead of synthetic ones.")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 16, "Synthetic videos to write (without --videos).")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 60, "Frames per synthetic video.")
_WORKERS = flags.DEFINE_list("workers", ["1", "2"], "Worker counts to time the pipeline with.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Runs of each measurement; best and median are reported.")
_OUT = flags.DEFINE_string("out", None, "Also write the results as JSON here.")


def write_synthetic_videos(directory, num_videos, num_frames, size=(320, 240), fps=30.0):
    face = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)[35:35 + 360, 60:60 + 480]
    face = cv2.resize(face, size)
    paths = []
    for index in range(num_videos):
        path = pathlib.Path(directory) / f"video{index:03d}.flv"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FLV1"), fps, size)
        for frame in range(num_frames):
            # A small drift, different per video, so that every file (and its hash) is distinct.
            shift = np.float32([[1, 0, 3 * np.sin(frame / 7 + index)], [0, 1, 2 * np.cos(frame / 5 + index)]])
            writer.write(cv2.warpAffine(face, shift, size, borderMode=cv2.BORDER_REFLECT))
        writer.release()
        paths.append(path)
    return paths


def decode_all(paths):
    decoded = []
    for path in paths:
        frame_rate, frames = landmark_extraction.decode_video(path)
        decoded.append((frame_rate, list(frames)))
    return decoded


def mediapipe_raw_seconds(decoded):
    """Seconds of detection alone over pre-decoded frames, one VIDEO-mode landmarker per video."""
    start = time.perf_counter()
    for frame_rate, frames in decoded:
        with landmarks.create_face_landmarker(running_mode="video") as landmarker:
            for index, frame in enumerate(frames):
                landmarks.detect(landmarker, frame, round(index * 1000.0 / frame_rate))
    return time.perf_counter() - start


def pipeline_seconds(paths, cache_dir, workers):
    """(seconds, frames extracted) of one `extract_landmarks` call."""
    start = time.perf_counter()
    outcomes = landmark_extraction.extract_landmarks(paths, cache_dir, num_workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    skipped = [o.path for o in outcomes.values() if o.skip_reason]
    if skipped:
        raise SystemExit(f"error: the benchmark videos must have faces; skipped {skipped}")
    return elapsed, sum(o.num_frames for o in outcomes.values())


def record(results, name, frames, seconds):
    """Best and median frames/s of several runs."""
    rates = sorted(frames / s for s in seconds)
    results[f"{name}_fps_best"] = rates[-1]
    results[f"{name}_fps_median"] = float(np.median(rates))


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as scratch:
        if _VIDEOS.value:
            paths = sorted(glob.glob(_VIDEOS.value))
            if not paths:
                raise SystemExit(f"error: no files match --videos={_VIDEOS.value}")
        else:
            paths = write_synthetic_videos(scratch, _NUM_VIDEOS.value, _NUM_FRAMES.value)
        start = time.perf_counter()
        decoded = decode_all(paths)
        decode_seconds = time.perf_counter() - start
        frames = sum(len(video_frames) for _, video_frames in decoded)
        results = {"videos": len(paths), "frames": frames, "repeats": _REPEATS.value,
                   "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()[0],
                   "decode_only_fps": frames / decode_seconds}
        record(results, "mediapipe_raw", frames, [mediapipe_raw_seconds(decoded) for _ in range(_REPEATS.value)])
        del decoded
        for workers in (int(w) for w in _WORKERS.value):
            runs = [pipeline_seconds(paths, pathlib.Path(scratch) / f"cache_{workers}_{run}", workers)
                    for run in range(_REPEATS.value)]
            if any(extracted != frames for _, extracted in runs):
                raise SystemExit(f"error: the pipeline extracted {[e for _, e in runs]} frames, decoded {frames}")
            record(results, f"pipeline_{workers}_workers", frames, [seconds for seconds, _ in runs])
        cache_dir = pathlib.Path(scratch) / "cache_1_0"
        record(results, "pipeline_cached", frames,
               [pipeline_seconds(paths, cache_dir, 1)[0] for _ in range(_REPEATS.value)])
        results["load_average_after"] = os.getloadavg()[0]
    for key, value in results.items():
        print(f"{key:>32}: {value:.1f}" if isinstance(value, float) else f"{key:>32}: {value}")
    if _OUT.value:
        pathlib.Path(_OUT.value).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    app.run(main)
