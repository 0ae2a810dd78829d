"""The export's sidecar `model.json`: writing its integrity record, reading it back and checking it.

Plain Python and numpy only: the ONNX prediction path reads the sidecar in an environment without JAX.

The sidecar carries a SHA-256 per inference-relevant field (labels, sample rate, crop length, segment
options, ...), the SHA-256 of the model parameters and of each portable model file. Loading recomputes
them, so an edited field (swapped labels, a changed sample rate) or a replaced file fails, naming what
no longer matches, instead of silently renaming classes or changing the probabilities.
"""

import hashlib
import json
import pathlib

import numpy as np

FILENAME = "model.json"
# Fields that change what prediction computes or reports; each gets its own hash.
CHECKED_FIELDS = ("labels", "sample_rate", "encoder", "max_seconds", "segments", "method",
                  "min_audio_seconds", "portable")


class ExportError(ValueError):
    """An export that cannot be used: missing or unreadable files, or contents that fail their check."""


def read_json(path):
    """A JSON file's contents; a missing, unreadable or malformed file is an ExportError naming it."""
    path = pathlib.Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ExportError(f"{path}: cannot read ({error})") from None
    except json.JSONDecodeError as error:
        raise ExportError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column "
                          f"{error.colno}); the file is truncated or was edited by hand") from None


def value_hash(value):
    """SHA-256 of a JSON-able value in canonical form (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def params_hash(flat_params):
    """SHA-256 over `{path: array}` in sorted path order: each path, dtype, shape and the raw bytes."""
    digest = hashlib.sha256()
    for path in sorted(flat_params):
        array = np.ascontiguousarray(np.asarray(flat_params[path]))
        digest.update(f"{path}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def file_hash(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def with_integrity(metadata, parameters_sha256, directory):
    """`metadata` plus its `integrity` record: per-field hashes, the parameters' hash and the hashes of
    the portable files named in `metadata['portable']` that exist in `directory`."""
    files = {name: file_hash(pathlib.Path(directory) / name)
             for name in portable_files(metadata) if (pathlib.Path(directory) / name).exists()}
    integrity = {"fields_sha256": {name: value_hash(metadata[name]) for name in CHECKED_FIELDS},
                 "parameters_sha256": parameters_sha256, "files_sha256": files}
    return {**metadata, "integrity": integrity}


def portable_files(metadata):
    portable = metadata.get("portable") or {}
    return [portable[key] for key in ("stablehlo", "onnx") if portable.get(key)]


def read(directory):
    """The sidecar of the export in `directory`, its fields checked against their recorded hashes."""
    path = pathlib.Path(directory) / FILENAME
    if not path.exists():
        raise ExportError(f"{path} not found: {directory} is not a model exported by launch/train.py")
    metadata = read_json(path)
    if not isinstance(metadata, dict) or "integrity" not in metadata:
        raise ExportError(f"{path}: no integrity record; the export predates the self-checking sidecar "
                          f"or was edited by hand; export the model again")
    recorded = metadata["integrity"]["fields_sha256"]
    for name in CHECKED_FIELDS:
        if name not in metadata:
            raise ExportError(f"{path}: field {name!r} is missing")
        if value_hash(metadata[name]) != recorded.get(name):
            raise ExportError(f"{path}: field {name!r} does not match the hash recorded at export "
                              f"(now {json.dumps(metadata[name])[:200]}); the sidecar was edited after export")
    labels = metadata["labels"]
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)
            and len(set(labels)) == len(labels)):
        raise ExportError(f"{path}: 'labels' must be a non-empty list of distinct names, got {labels!r}")
    return metadata


def check_file(directory, metadata, name):
    """Checks the portable model file `name` against the hash in the sidecar; returns its path."""
    path = pathlib.Path(directory) / name
    if not path.exists():
        raise ExportError(f"{path}: file not found (named in {pathlib.Path(directory) / FILENAME})")
    expected = metadata["integrity"]["files_sha256"].get(name)
    if expected is None:
        raise ExportError(f"{pathlib.Path(directory) / FILENAME}: no hash recorded for {name}")
    if file_hash(path) != expected:
        raise ExportError(f"{path}: contents do not match the hash in {FILENAME}; the file was replaced "
                          f"or damaged after export")
    return path


def check_parameters(directory, metadata, flat_params):
    """Checks restored parameters against the sidecar's parameters hash."""
    if params_hash(flat_params) != metadata["integrity"]["parameters_sha256"]:
        raise ExportError(f"{pathlib.Path(directory) / 'params'}: parameters do not match the hash in "
                          f"{FILENAME}; the parameters were replaced or damaged after export")


def check_num_classes(directory, metadata, num_outputs):
    """The model's output count must equal the number of labels in the sidecar."""
    if num_outputs != len(metadata["labels"]):
        raise ExportError(f"{pathlib.Path(directory) / FILENAME}: {len(metadata['labels'])} labels, but the "
                          f"model outputs {num_outputs} classes")
