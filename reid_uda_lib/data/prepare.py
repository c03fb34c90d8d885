"""Prepare a downloaded dataset archive: checksum → extract → locate → check the layout.

Used by ``data_scripts/prepare_dataset.py``; kept here so that it is importable and tested.
"""
from __future__ import annotations

import hashlib
import os
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Optional

from .datasets import DATASET_NAMES, ReidDataset, _dataset_name, load_dataset

__all__ = ["ChecksumError", "KNOWN_CHECKSUMS", "file_digests", "verify_checksum", "extract_archive",
           "prepare_dataset"]


class ChecksumError(ValueError):
    """An archive's digest differs from the expected one; the message names the file and both digests."""


# Checksums published in public code for the usual archive names, keyed by file name:
# (algorithm, hex digest, where it is documented). Only digests actually found in a public source are
# listed; MSMT17 and CUHK03 archives have none we could find, so they are checked only with --sha256.
KNOWN_CHECKSUMS: dict[str, tuple[str, str, str]] = {
    "Market-1501-v15.09.15.zip": (
        "md5", "65005ab7d12ec1c44de4eeafe813e68a",
        "open-reid (github.com/Cysu/open-reid, reid/datasets/market1501.py)"),
    "DukeMTMC-reID.zip": (
        "md5", "62d8f3c7d6b2c5dc3d8ca6af7515847c",
        "open-reid-style loaders of DukeMTMC-reID.zip from vision.cs.duke.edu (reid/datasets/dukemtmc.py)"),
}

_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def file_digests(path: str | os.PathLike, algorithms: tuple[str, ...] = ("sha256",),
                 chunk: int = 1 << 20) -> dict[str, str]:
    """Hex digests of a file for each algorithm, computed in one pass."""
    hashes = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def verify_checksum(path: str | os.PathLike, expected: str, algorithm: str = "sha256",
                    source: str = "the value given") -> None:
    """Raise :class:`ChecksumError` if ``path``'s ``algorithm`` digest is not ``expected``."""
    expected = expected.strip().lower()
    length = hashlib.new(algorithm).digest_size * 2
    if not re.fullmatch(rf"[0-9a-f]{{{length}}}", expected):
        raise ValueError(f"expected {algorithm} checksum must be {length} hexadecimal digits, got {expected!r}")
    actual = file_digests(path, (algorithm,))[algorithm]
    if actual != expected:
        raise ChecksumError(f"{algorithm} of {path} is {actual}, expected {expected} ({source}); "
                            "the download is corrupt or a different file")


def _archive_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_ARCHIVE_SUFFIXES[1:]):
        return "tar"
    # unknown extension: trust the content
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise ValueError(f"{path} is not a zip or tar archive (expected one of {', '.join(_ARCHIVE_SUFFIXES)})")


def _safe_tar_members(tar: tarfile.TarFile, out: Path):
    """Members of ``tar`` that stay inside ``out`` (for Pythons without tarfile's 'data' filter)."""
    base = out.resolve()
    for m in tar.getmembers():
        target = (out / m.name).resolve()
        if not (m.isfile() or m.isdir()) or (target != base and base not in target.parents):
            raise ValueError(f"refusing to extract {m.name!r}: links and paths outside {out} are not allowed")
        yield m


def extract_archive(archive: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into ``out_dir`` (created if needed).

    Member paths that would land outside ``out_dir`` are rejected (zip: sanitised by :mod:`zipfile`;
    tar: the ``"data"`` extraction filter). ``__MACOSX/`` resource-fork folders are skipped.
    Returns ``out_dir``.
    """
    archive, out = Path(archive), Path(out_dir)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    kind = _archive_kind(archive)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if not m.startswith("__MACOSX/")]
            zf.extractall(out, members=members)
    else:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                try:
                    tf.extractall(out, filter="data")
                except tarfile.FilterError as exc:  # e.g. a member path outside out_dir
                    raise ValueError(f"refusing to extract {archive}: {exc}") from exc
            else:  # Python < 3.10.12 / 3.11.4
                tf.extractall(out, members=list(_safe_tar_members(tf, out)))
    return out


def prepare_dataset(name: str, archive: str | os.PathLike, out_dir: str | os.PathLike,
                    sha256: Optional[str] = None, check_known: bool = True, verify: str = "none",
                    log=print) -> ReidDataset:
    """Verify, extract and check a dataset archive; return the loaded :class:`ReidDataset`.

    Parameters
    ----------
    name
        ``market1501`` | ``dukemtmc`` | ``msmt17`` | ``cuhk03`` (case-insensitive).
    archive
        The downloaded zip/tar file.
    out_dir
        Where to extract; afterwards ``load_dataset(name, root=out_dir)`` finds the dataset.
    sha256
        Expected SHA-256 of the archive, checked when given.
    check_known
        Also check the published digest of well-known archive names (:data:`KNOWN_CHECKSUMS`).
        Turn off for a re-packaged copy you trust.
    verify
        Passed to :func:`load_dataset` (``"error"`` decodes every image).
    log
        Progress messages go here (``print`` by default; ``None`` silences).
    """
    say = log or (lambda *_: None)
    archive = Path(archive)
    canon = _dataset_name(name)
    if canon is None:
        raise ValueError(f"unknown dataset name {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    if sha256 is not None:
        say(f"checking sha256 of {archive} ...")
        verify_checksum(archive, sha256, "sha256", source="--sha256")
    known = KNOWN_CHECKSUMS.get(archive.name) if check_known else None
    if known is not None:
        algorithm, digest, source = known
        say(f"checking {algorithm} of {archive.name} against the published value ...")
        try:
            verify_checksum(archive, digest, algorithm, source=f"published in {source}")
        except ChecksumError as exc:
            raise ChecksumError(f"{exc}. If this is a re-packaged copy you trust, pass --skip-known-checksum "
                                "(check_known=False)") from None
    say(f"extracting {archive} into {out_dir} ...")
    extract_archive(archive, out_dir)
    ds = load_dataset(canon, root=out_dir, verify=verify)
    say(ds.summary())
    return ds
