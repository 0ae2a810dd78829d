"""Verification of a user's media files against a manifest of expected paths, sizes and SHA-256 digests.

The manifest is a tab-separated file with the header `path	size	sha256` and paths relative to the corpus
root (for CREMA-D: `tests/data/crema-d-metadata/media-manifest.tsv`, read from the Git LFS pointers).
Verification runs before the expensive landmark extraction, so a bad download is found in minutes.
"""

import collections
import dataclasses
import pathlib

import tqdm

from artser_jax import assets

MANIFEST_NAME = "media-manifest.tsv"
_HEADER = ["path", "size", "sha256"]
# What a file checked out without `git lfs pull` holds instead of the media.
_LFS_POINTER_PREFIX = b"version https://git-lfs"


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    path: str
    size: int
    sha256: str


@dataclasses.dataclass
class VerificationReport:
    checked: int = 0
    problems: list = dataclasses.field(default_factory=list)   # (problem, path, detail)

    @property
    def ok(self):
        return not self.problems

    def counts(self):
        return collections.Counter(problem for problem, _, _ in self.problems)

    def summary(self, max_listed=20):
        if self.ok:
            return f"all {self.checked} media files match the manifest"
        lines = [f"{len(self.problems)} of {self.checked} media files do not match the manifest: "
                 + ", ".join(f"{count} {problem}" for problem, count in sorted(self.counts().items()))]
        lines += [f"  {problem}: {path} ({detail})" for problem, path, detail in self.problems[:max_listed]]
        if len(self.problems) > max_listed:
            lines.append(f"  ... and {len(self.problems) - max_listed} more")
        return "\n".join(lines)

    def write_tsv(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write("problem\tpath\tdetail\n")
            for row in self.problems:
                f.write("\t".join(row) + "\n")


def read_manifest(path):
    """The entries of a manifest file; ValueError naming the file and line for a malformed row."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: media manifest not found")
    entries = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != _HEADER:
            raise ValueError(f"{path}:1: expected the header {_HEADER}, got {header}")
        for line_number, line in enumerate(f, start=2):
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 3 or not fields[1].isdigit() or len(fields[2]) != 64:
                raise ValueError(f"{path}:{line_number}: expected <path>\\t<size>\\t<sha256>, got {line!r}")
            entries.append(ManifestEntry(fields[0], int(fields[1]), fields[2].lower()))
    return entries


def verify_media(root, entries, prefixes=None, check_hashes=True, progress=True):
    """Checks every manifest entry (under one of `prefixes`, if given) against the files under `root`.

    Size is checked first (missing, truncated, too long, a Git LFS pointer instead of the media); the
    SHA-256 only for files of the right size (`check_hashes=False` skips that slow part).
    """
    root = pathlib.Path(root)
    if prefixes:
        entries = [e for e in entries if e.path.startswith(tuple(prefixes))]
    report = VerificationReport()
    for entry in tqdm.tqdm(entries, desc="verifying media", unit="file", disable=not progress):
        report.checked += 1
        path = root / entry.path
        if not path.is_file():
            report.problems.append(("missing", entry.path, "no such file"))
            continue
        size = path.stat().st_size
        if size != entry.size:
            with open(path, "rb") as f:
                head = f.read(len(_LFS_POINTER_PREFIX))
            if head == _LFS_POINTER_PREFIX:
                report.problems.append(("lfs_pointer", entry.path, "a Git LFS pointer: run `git lfs pull`"))
            elif size < entry.size:
                report.problems.append(("truncated", entry.path, f"{size} of {entry.size} bytes"))
            else:
                report.problems.append(("wrong_size", entry.path, f"{size} bytes, expected {entry.size}"))
            continue
        if check_hashes:
            digest = assets.sha256_of(path)
            if digest != entry.sha256:
                report.problems.append(("corrupted", entry.path, f"sha256 {digest}, expected {entry.sha256}"))
    return report
