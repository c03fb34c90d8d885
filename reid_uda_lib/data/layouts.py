"""On-disk dataset layouts and their parsers.

Three layouts are understood (:func:`detect_layout` tells them apart, ``load_dataset`` uses it):

* **Market-1501 layout** (Market-1501, DukeMTMC-reID, CUHK03-NP, our CUHK03 tree, the synthetic
  domains): ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` with file names
  ``PPPP_cC...jpg`` (identity, camera).  Identity ``-1`` marks junk images and is dropped, as the
  standard protocol does; identity ``0000`` (Market-1501 distractors) is kept in the gallery.
* **MSMT17 list layout** (V1: ``train/`` ``test/``; V2: ``mask_train_v2/`` ``mask_test_v2/``) with
  ``list_{train,val,query,gallery}.txt``.  As customary in UDA work (MMT, SpCL, DCDFA, LF2), the
  training set is ``list_train`` + ``list_val`` (32,621 images, 1,041 identities).
* **Folder per person** (``train/``, ``query/``, ``gallery/`` with one folder per identity): parsed by
  :mod:`reid_uda_lib.data.folder_layout`.

Parsers return raw ``(train, query, gallery)`` lists of ``(path, pid, camid)`` with original pids and
0-based camids.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

__all__ = ["DatasetLayoutError", "detect_layout", "parse_market_layout", "parse_msmt_layout",
           "MARKET_TREE", "MSMT_TREE", "IMAGE_EXTS", "JUNK"]

Item = tuple[str, int, int]
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}
MARKET_SPLITS = ("bounding_box_train", "query", "bounding_box_test")
MSMT_LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
MSMT_DIRS = (("train", "test"), ("mask_train_v2", "mask_test_v2"))  # V1, V2 (V2 has blurred faces)


# Anchored at the start of the base name; camera digits are greedy so CUHK03's c10 parses, and the
# camera range is checked per dataset instead (Market 1-6, Duke 1-8, CUHK03 1-10).
MARKET_NAME_RE = re.compile(r"^(-1|\d+)_c(\d+)")
MARKET_NAME_HELP = ("'PPPP_cC...<ext>': identity number (-1 = junk), '_c', camera number from 1, "
                    "e.g. 0002_c1s1_000451_03.jpg (Market-1501) or 0005_c2_f0046985.jpg (DukeMTMC-reID)")
MSMT_LINE_HELP = "'<pid folder>/<file name> <pid>', e.g. '0000/0000_000_01_0303morning_0015_0.jpg 0'"

MARKET_TREE = """\
<dataset folder>/
├── bounding_box_train/   training images, e.g. 0002_c1s1_000451_03.jpg
├── query/                query images
└── bounding_box_test/    gallery images (pid -1 = junk, dropped; 0000 = distractor, kept)"""

MSMT_TREE = """\
MSMT17_V1/  (or MSMT17_V2/)
├── train/   (V2: mask_train_v2/)   0000/0000_000_01_0303morning_0015_0.jpg, ...
├── test/    (V2: mask_test_v2/)
├── list_train.txt     lines '0000/0000_000_01_0303morning_0015_0.jpg 0'
├── list_val.txt
├── list_query.txt
└── list_gallery.txt"""


class DatasetLayoutError(FileNotFoundError, ValueError):
    """A dataset folder is missing, incomplete, or holds files that do not follow its naming scheme.

    Subclasses both ``FileNotFoundError`` (missing folders/files) and ``ValueError`` (bad names or list
    lines), so either ``except`` clause catches it. The message names the offending folder/file and
    shows the expected layout.
    """


def _subdir_ci(folder: Path, name: str) -> Optional[Path]:
    """``folder/name`` matched case-insensitively (MSMT17 copies spell mask_train_v2 / mask_train_V2)."""
    exact = folder / name
    if exact.is_dir():
        return exact
    try:
        for child in folder.iterdir():
            if child.name.lower() == name.lower() and child.is_dir():
                return child
    except OSError:
        pass
    return None


def _msmt_dirs(folder: Path) -> Optional[tuple[Path, Path]]:
    for train, test in MSMT_DIRS:
        tr, te = _subdir_ci(folder, train), _subdir_ci(folder, test)
        if tr is not None or te is not None:
            return tr or folder / train, te or folder / test
    return None


def _has_layout(folder: Path, layout: str) -> bool:
    if layout == "market":
        return all((folder / s).is_dir() for s in MARKET_SPLITS)
    return (folder / "list_train.txt").is_file() and _msmt_dirs(folder) is not None


def _layout_score(folder: Path, layout: str) -> int:
    if layout == "market":
        return sum((folder / s).is_dir() for s in MARKET_SPLITS)
    return sum((folder / f).is_file() for f in MSMT_LISTS) + 2 * (_msmt_dirs(folder) is not None)


def _child_dirs(folder: Path) -> list[Path]:
    try:
        return sorted((c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")),
                      key=lambda c: c.name.lower())
    except OSError:
        return []


def _raise_incomplete(folder: Path, layout: str) -> None:
    if layout == "market":
        missing = [s + "/" for s in MARKET_SPLITS if not (folder / s).is_dir()]
        raise DatasetLayoutError(
            f"dataset folder {folder} is missing {', '.join(missing)}; expected layout:\n{MARKET_TREE}")
    missing = [f for f in MSMT_LISTS if not (folder / f).is_file()]
    if _msmt_dirs(folder) is None:
        missing.append("train/ + test/ (V1) or mask_train_v2/ + mask_test_v2/ (V2)")
    raise DatasetLayoutError(
        f"MSMT17 folder {folder} is missing {', '.join(missing)}; expected layout:\n{MSMT_TREE}")



# ----------------------------------------------------------------------------------------------
# Layout parsers
# ----------------------------------------------------------------------------------------------

#: Why a file is not read (``ReidDataset.skipped``: ``(path, why)``). Junk images are the protocol's choice
#: (reported as a note by ``check``); every other reason is a warning of each load.
JUNK = "junk image (identity -1), dropped as the protocol does"
HIDDEN = "hidden file"
IN_SUBFOLDER = "in a sub-folder (image folders are read one level deep)"
BROKEN_LINK = "broken symbolic link"
Skipped = list[tuple[str, str]]  # (path, why)


def _not_an_image(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    return (f"not an image ({ext or 'no extension'}; read: {' '.join(sorted(IMAGE_EXTS))})")


def _files_below(folder: str, why: str, skipped: Skipped) -> None:
    """Every file below ``folder`` (a folder that is not read) into ``skipped``, sorted."""
    for dirpath, dirnames, files in os.walk(folder):
        dirnames.sort()
        skipped.extend((os.path.join(dirpath, f), why) for f in sorted(files))


def _image_files(folder: Path, skipped: Optional[Skipped] = None, subfolders: bool = True) -> list[str]:
    """Image file names in ``folder``, sorted. What is not read goes to ``skipped`` as ``(path, why)``: hidden
    files (macOS ``._x.jpg``), non-images, broken symbolic links and, with ``subfolders``, every file in a
    sub-folder (``subfolders=False``: sub-folders are the caller's, e.g. person folders)."""
    names = []
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        path = os.path.join(folder, e.name)
        if e.is_dir():
            if subfolders and skipped is not None:
                _files_below(path, IN_SUBFOLDER, skipped)
        elif not e.is_file():
            if skipped is not None:
                skipped.append((path, BROKEN_LINK if e.is_symlink() else "not a regular file"))
        elif e.name.startswith("."):
            if skipped is not None:
                skipped.append((path, HIDDEN))
        elif os.path.splitext(e.name)[1].lower() not in IMAGE_EXTS:
            if skipped is not None:
                skipped.append((path, _not_an_image(e.name)))
        else:
            names.append(e.name)
    return names


def skipped_hint(skipped: Optional[Skipped], under: str | os.PathLike = "") -> str:
    """``" (N file(s) not read: a (why), ...)"`` for the skipped files below ``under``; "" when none."""
    under = os.fspath(under)
    some = [f"{p} ({why})" for p, why in skipped or () if p.startswith(under)]
    if not some:
        return ""
    return f" ({len(some)} file(s) not read: {', '.join(some[:2])}{', ...' if len(some) > 2 else ''})"


def _parse_market_split(folder: Path, max_cam: Optional[int], skipped: Optional[Skipped] = None) -> list[Item]:
    skipped = [] if skipped is None else skipped
    names = _image_files(folder, skipped)
    if not names:
        raise DatasetLayoutError(
            f"no images in {folder}: expected image files named {MARKET_NAME_HELP}"
            + skipped_hint(skipped, folder))
    items, bad = [], []
    for fname in names:
        m = MARKET_NAME_RE.match(fname)
        if m is None:
            bad.append(fname)
            continue
        pid, cam = int(m.group(1)), int(m.group(2))
        if cam < 1 or (max_cam is not None and cam > max_cam):
            rng = f"1..{max_cam}" if max_cam is not None else ">= 1"
            raise DatasetLayoutError(f"{folder / fname}: camera c{cam} is out of range (expected {rng})")
        if pid == -1:  # junk images: dropped by the standard protocol
            skipped.append((str(folder / fname), JUNK))
            continue
        items.append((str(folder / fname), pid, cam - 1))
    if bad:
        raise DatasetLayoutError(
            f"{len(bad)} file(s) in {folder} do not follow the naming scheme {MARKET_NAME_HELP}; "
            f"first: {bad[0]!r}")
    return items


def parse_market_layout(folder: str | os.PathLike, max_cam: Optional[int] = None,
                        skipped: Optional[Skipped] = None) -> tuple[list[Item], list[Item], list[Item]]:
    """Parse a Market-1501-layout folder into raw ``(train, query, gallery)`` (original pids, 0-based cams);
    the files of the split folders that are not read are appended to ``skipped`` as ``(path, why)``."""
    folder = Path(folder)
    if not all((folder / s).is_dir() for s in MARKET_SPLITS):
        _raise_incomplete(folder, "market")
    return tuple(_parse_market_split(folder / s, max_cam, skipped)  # type: ignore[return-value]
                 for s in MARKET_SPLITS)


def _parse_msmt_list(list_file: Path, image_dir: Path, present: set[str], max_cam: int) -> list[Item]:
    items, missing = [], []
    with open(list_file, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split()
            fname = os.path.basename(parts[0]) if parts else ""
            fields = fname.split("_")
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or len(fields) < 3 \
                    or not fields[2].isdigit():
                raise DatasetLayoutError(
                    f"{list_file}, line {lineno}: {line!r} is not of the form {MSMT_LINE_HELP} "
                    "(camera = third '_' field of the file name)")
            cam = int(fields[2])
            if not 1 <= cam <= max_cam:
                raise DatasetLayoutError(
                    f"{list_file}, line {lineno}: camera {cam} of {parts[0]} is out of range 1..{max_cam}")
            rel = parts[0].replace("\\", "/")
            if rel not in present:
                missing.append(rel)
            items.append((str(image_dir / rel), int(parts[1]), cam - 1))
    if not items:
        raise DatasetLayoutError(f"{list_file} lists no images; expected lines {MSMT_LINE_HELP}")
    if missing:
        raise DatasetLayoutError(
            f"{len(missing)} image(s) listed in {list_file} are missing under {image_dir}; "
            f"first: {missing[0]!r}")
    return items


def _relative_files(folder: Path) -> set[str]:
    out = set()
    for dirpath, _, files in os.walk(folder):
        rel = os.path.relpath(dirpath, folder).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        out.update(prefix + f for f in files)
    return out


def parse_msmt_layout(folder: str | os.PathLike, max_cam: int = 15, skipped: Optional[Skipped] = None
                      ) -> tuple[list[Item], list[Item], list[Item]]:
    """Parse an MSMT17 V1/V2 folder into raw ``(train + val, query, gallery)``.

    The camera is the third ``_`` field of the file name (``0000_000_01_...`` → camera 1 → camid 0);
    pids are the list files' labels (train and val share one id space; query/gallery another). Files of the
    image folders that no list names are appended to ``skipped`` as ``(path, why)``.
    """
    folder = Path(folder)
    dirs = _msmt_dirs(folder)
    if dirs is None or not all((folder / f).is_file() for f in MSMT_LISTS):
        _raise_incomplete(folder, "msmt")
    train_dir, test_dir = dirs  # type: ignore[misc]
    for d in (train_dir, test_dir):
        if not d.is_dir():
            raise DatasetLayoutError(f"MSMT17 folder {folder} is missing {d.name}/; expected layout:\n{MSMT_TREE}")
    train_files, test_files = _relative_files(train_dir), _relative_files(test_dir)
    train = (_parse_msmt_list(folder / "list_train.txt", train_dir, train_files, max_cam)
             + _parse_msmt_list(folder / "list_val.txt", train_dir, train_files, max_cam))
    query = _parse_msmt_list(folder / "list_query.txt", test_dir, test_files, max_cam)
    gallery = _parse_msmt_list(folder / "list_gallery.txt", test_dir, test_files, max_cam)
    if skipped is not None:
        for image_dir, present, items in ((train_dir, train_files, train), (test_dir, test_files, query + gallery)):
            listed = {os.path.relpath(p, image_dir).replace(os.sep, "/") for p, _, _ in items}
            skipped.extend((str(image_dir / rel), "not named by any list_*.txt file")
                           for rel in sorted(present - listed))
    return train, query, gallery


# ----------------------------------------------------------------------------------------------
# Detection
# ----------------------------------------------------------------------------------------------

FOLDER_SPLITS = ("train", "query", "gallery")
LAYOUTS = ("market", "msmt", "folder")


def detect_layout(folder: str | os.PathLike) -> Optional[str]:
    """``"market"``, ``"msmt"`` or ``"folder"`` (folder per person) for a dataset folder, else None.

    Market when ``bounding_box_train/`` or ``bounding_box_test/`` is present (or ``query/`` alone); MSMT17
    when a ``list_*.txt`` file is present (its V1 also has ``train/``);
    otherwise folder per person when any of ``train/ query/ gallery/`` is present.
    """
    folder = Path(folder)
    if (folder / MARKET_SPLITS[0]).is_dir() or (folder / MARKET_SPLITS[2]).is_dir():
        return "market"
    if any((folder / f).is_file() for f in MSMT_LISTS):
        return "msmt"
    if (folder / "query").is_dir() and not any((folder / s).is_dir() for s in ("train", "gallery")):
        return "market"  # a Market tree without its bounding_box_* folders: say what is missing
    if any((folder / s).is_dir() for s in FOLDER_SPLITS):
        return "folder"
    return None
