"""Real re-ID datasets on disk: layout parsers and :func:`load_dataset`.

Two on-disk layouts are understood:

* **Market-1501 layout** (Market-1501, DukeMTMC-reID, CUHK03-NP, our CUHK03 tree, the synthetic
  domains): ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` with file names
  ``PPPP_cC...jpg`` (identity, camera).  Identity ``-1`` marks junk images and is dropped, as the
  standard protocol does; identity ``0000`` (Market-1501 distractors) is kept in the gallery.
* **MSMT17 list layout** (V1: ``train/`` ``test/``; V2: ``mask_train_v2/`` ``mask_test_v2/``) with
  ``list_{train,val,query,gallery}.txt``.  As customary in UDA work (MMT, SpCL, DCDFA, LF2), the
  training set is ``list_train`` + ``list_val`` (32,621 images, 1,041 identities).

Every split is a list of ``(path, pid, camid)``; camids are 0-based; train pids are relabelled to
``0..n-1`` in sorted order of the original ids, query/gallery keep the original ids.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from tqdm.auto import tqdm

from .image_dataset import CorruptImageError, check_image

__all__ = ["DatasetLayoutError", "ReidDataset", "load_dataset", "DATASET_NAMES", "find_dataset_dir",
           "parse_market_layout", "parse_msmt_layout"]

Item = tuple[str, int, int]
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}
MARKET_SPLITS = ("bounding_box_train", "query", "bounding_box_test")
MSMT_LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
MSMT_DIRS = (("train", "test"), ("mask_train_v2", "mask_test_v2"))  # V1, V2 (V2 has blurred faces)
VERIFY_MODES = ("none", "error", "skip")
DATA_ROOT_ENV = "REID_UDA_DATA_ROOT"

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


@dataclass
class ReidDataset:
    """A re-ID dataset: train / query / gallery lists of ``(path, pid, camid)``."""

    name: str
    root: str
    train: list[Item] = field(default_factory=list)
    query: list[Item] = field(default_factory=list)
    gallery: list[Item] = field(default_factory=list)

    @staticmethod
    def _stats(items: Sequence[Item]) -> tuple[int, int, int]:
        return len({p for _, p, _ in items}), len(items), len({c for _, _, c in items})

    num_train_pids = property(lambda self: self._stats(self.train)[0])
    num_train_imgs = property(lambda self: len(self.train))
    num_train_cams = property(lambda self: self._stats(self.train)[2])
    num_query_pids = property(lambda self: self._stats(self.query)[0])
    num_query_imgs = property(lambda self: len(self.query))
    num_query_cams = property(lambda self: self._stats(self.query)[2])
    num_gallery_pids = property(lambda self: self._stats(self.gallery)[0])
    num_gallery_imgs = property(lambda self: len(self.gallery))
    num_gallery_cams = property(lambda self: self._stats(self.gallery)[2])

    def summary(self) -> str:
        """A printable statistics table: ids, images and cameras per subset."""
        rule = "  " + "-" * 42
        lines = [f"=> {self.name} ({self.root})", rule,
                 f"  {'subset':<8} | {'# ids':>5} | {'# images':>8} | {'# cameras':>9}", rule]
        for split in ("train", "query", "gallery"):
            n_ids, n_imgs, n_cams = self._stats(getattr(self, split))
            lines.append(f"  {split:<8} | {n_ids:>5} | {n_imgs:>8} | {n_cams:>9}")
        lines.append(rule)
        return "\n".join(lines)

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}={self._stats(getattr(self, s))[0]} ids/{len(getattr(self, s))} imgs"
                          for s in ("train", "query", "gallery"))
        return f"ReidDataset({self.name!r}, {parts})"


# ----------------------------------------------------------------------------------------------
# Named datasets
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    name: str
    layout: str                    # "market" | "msmt"
    prefixes: tuple[str, ...]      # normalised folder-name prefixes that identify the dataset
    folder_names: tuple[str, ...]  # shown in error messages
    max_cam: Optional[int]
    subdirs: tuple[str, ...] = ()  # preferred sub-variants (CUHK03-NP: detected before labeled)


_SPECS = {
    "market1501": _Spec("market1501", "market", ("market",),
                        ("Market-1501-v15.09.15", "Market-1501", "market1501"), 6),
    "dukemtmc": _Spec("dukemtmc", "market", ("duke",), ("DukeMTMC-reID", "dukemtmc-reid", "dukemtmc"), 8),
    "msmt17": _Spec("msmt17", "msmt", ("msmt",), ("MSMT17_V1", "MSMT17_V2", "msmt17/MSMT17_V1"), 15),
    "cuhk03": _Spec("cuhk03", "market", ("cuhk03",), ("cuhk03", "cuhk03-np/detected"), 10,
                    subdirs=("detected", "labeled")),
}
_ALIASES = {"market1501": "market1501", "market": "market1501", "dukemtmc": "dukemtmc",
            "dukemtmcreid": "dukemtmc", "duke": "dukemtmc", "msmt17": "msmt17", "msmt": "msmt17",
            "cuhk03": "cuhk03", "cuhk03np": "cuhk03"}
DATASET_NAMES = tuple(_SPECS)


def _norm(name: str) -> str:
    return re.sub(r"[-_ .]", "", name.lower())


def _dataset_name(spec: str) -> Optional[str]:
    """The canonical dataset name if ``spec`` is a bare (case-insensitive) dataset name, else None."""
    if "/" in spec or os.sep in spec:
        return None
    return _ALIASES.get(_norm(spec))


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


def find_dataset_dir(name: str, root: str | os.PathLike) -> Path:
    """Locate dataset ``name`` under ``root`` (``root`` itself, a child, or a grandchild).

    Folders are recognised by name (case-insensitive prefix, ignoring ``-_. ``: ``market*``, ``duke*``,
    ``msmt*``, ``cuhk03*``) and must hold the dataset's layout (``root`` itself only when its name
    matches too); CUHK03-NP's ``detected/`` is preferred to
    ``labeled/``; MSMT17_V1 is preferred to MSMT17_V2 when both are present.

    Raises
    ------
    DatasetLayoutError
        naming what was looked for, or the missing parts of a folder that looks like the dataset.
    """
    canon = _dataset_name(name)
    if canon is None:
        raise ValueError(f"unknown dataset name {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    spec = _SPECS[canon]
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError(
            f"data root folder not found: {root} (looking for {spec.name}); pass root=<folder holding the "
            f"dataset> or set ${DATA_ROOT_ENV}")

    def matches(p: Path) -> bool:
        return _norm(p.name).startswith(spec.prefixes)

    def with_subdirs(p: Path) -> list[Path]:
        return [p] + [p / s for s in spec.subdirs if (p / s).is_dir()]

    # root itself counts only when its name says it is the dataset: a Market-layout root of another
    # dataset must not be returned under this name
    named: list[Path] = []
    candidates: list[Path] = []
    if matches(root):
        named.append(root)
        candidates += with_subdirs(root)
    for child in _child_dirs(root):
        if matches(child):
            named.append(child)
            candidates += with_subdirs(child)
            for grand in _child_dirs(child):
                if matches(grand) or grand.name.lower() in spec.subdirs:
                    named.append(grand)
                    candidates += with_subdirs(grand)
    for cand in candidates:
        if _has_layout(cand, spec.layout):
            return cand
    if named:  # a folder that looks like the dataset but is incomplete: say what is missing there
        # the most complete one (the deeper one on ties: the extracted folder inside a renamed one)
        best = max(reversed(named), key=lambda p: _layout_score(p, spec.layout))
        _raise_incomplete(best, spec.layout)
    tree = MARKET_TREE if spec.layout == "market" else MSMT_TREE
    raise DatasetLayoutError(
        f"no {spec.name} folder found under {root}: looked for a folder named like "
        f"{', '.join(spec.folder_names)} (case-insensitive) with this layout:\n{tree}")


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

def _image_files(folder: Path) -> list[str]:
    """Image file names in ``folder``, sorted; hidden files (macOS ``._x.jpg``) and non-images skipped."""
    return sorted(e.name for e in os.scandir(folder)
                  if e.is_file() and not e.name.startswith(".")
                  and os.path.splitext(e.name)[1].lower() in IMAGE_EXTS)


def _parse_market_split(folder: Path, max_cam: Optional[int]) -> list[Item]:
    names = _image_files(folder)
    if not names:
        raise DatasetLayoutError(
            f"no images in {folder}: expected image files named {MARKET_NAME_HELP}")
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
            continue
        items.append((str(folder / fname), pid, cam - 1))
    if bad:
        raise DatasetLayoutError(
            f"{len(bad)} file(s) in {folder} do not follow the naming scheme {MARKET_NAME_HELP}; "
            f"first: {bad[0]!r}")
    return items


def parse_market_layout(folder: str | os.PathLike, max_cam: Optional[int] = None
                        ) -> tuple[list[Item], list[Item], list[Item]]:
    """Parse a Market-1501-layout folder into raw ``(train, query, gallery)`` (original pids, 0-based cams)."""
    folder = Path(folder)
    if not all((folder / s).is_dir() for s in MARKET_SPLITS):
        _raise_incomplete(folder, "market")
    return tuple(_parse_market_split(folder / s, max_cam) for s in MARKET_SPLITS)  # type: ignore[return-value]


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


def parse_msmt_layout(folder: str | os.PathLike, max_cam: int = 15
                      ) -> tuple[list[Item], list[Item], list[Item]]:
    """Parse an MSMT17 V1/V2 folder into raw ``(train + val, query, gallery)``.

    The camera is the third ``_`` field of the file name (``0000_000_01_...`` → camera 1 → camid 0);
    pids are the list files' labels (train and val share one id space; query/gallery another).
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
    return train, query, gallery


# ----------------------------------------------------------------------------------------------
# Verification, relabelling, entry point
# ----------------------------------------------------------------------------------------------

def _bad_images(paths: Iterable[str]) -> dict[str, str]:
    """``{path: reason}`` for every path that cannot be decoded.

    Serial on purpose: on small re-ID crops the per-file Python overhead dominates, and a thread pool
    measured slower than this loop on CUHK03 (14,097 files: about 1.5-2.2 s serial vs 2.0-2.8 s with 2-4
    threads on 2 shared CPU cores).
    """
    bad = {}
    for p in tqdm(list(dict.fromkeys(paths)), desc="verify images", leave=False, disable=None):
        try:
            check_image(p)
        except (CorruptImageError, FileNotFoundError) as exc:
            bad[p] = str(exc)
    return bad


def _apply_verify(splits: tuple[list[Item], ...], mode: str, where: Path) -> tuple[list[Item], ...]:
    if mode == "none":
        return splits
    bad = _bad_images(p for items in splits for p, _, _ in items)
    if not bad:
        return splits
    first = next(iter(bad.values()))
    if mode == "error":
        raise CorruptImageError(f"{first} ({len(bad)} unreadable image(s) in {where}; "
                                "load with verify='skip' to drop them)")
    names = ", ".join(os.path.basename(p) for p in list(bad)[:5])
    warnings.warn(f"skipped {len(bad)} unreadable image(s) in {where}: {names}"
                  f"{', ...' if len(bad) > 5 else ''}", stacklevel=3)
    return tuple([it for it in items if it[0] not in bad] for items in splits)


def relabel(items: Sequence[Item]) -> list[Item]:
    """Map pids to ``0..n-1`` in sorted order of the original ids (classification labels)."""
    mapping = {pid: k for k, pid in enumerate(sorted({p for _, p, _ in items}))}
    return [(path, mapping[pid], cam) for path, pid, cam in items]


def load_dataset(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None,
                 verify: str = "none") -> ReidDataset:
    """Load a re-ID dataset by name or by folder.

    Parameters
    ----------
    name_or_path
        A dataset name — ``market1501``, ``dukemtmc``, ``msmt17``, ``cuhk03`` (case-insensitive;
        aliases like ``Market-1501``, ``DukeMTMC-reID``, ``cuhk03-np`` work) — looked up under ``root``
        with :func:`find_dataset_dir`; or a path to a folder in Market-1501 layout (or MSMT17 list
        layout), e.g. a synthetic domain ``data/synthetic/A``. A string that is a bare dataset name
        is treated as a name: write ``./cuhk03`` (or pass a ``Path``) for a folder of that name.
    root
        Folder holding the datasets (names), or base for a relative path. Default for names:
        ``$REID_UDA_DATA_ROOT``, else ``data``.
    verify
        ``"none"``: trust the files. ``"error"``: decode every image and raise
        :class:`CorruptImageError` naming the first unreadable one. ``"skip"``: drop unreadable images
        with one warning (count and first names); the returned counts reflect what is kept.

    Returns
    -------
    ReidDataset
        train pids relabelled to ``0..n-1``, query/gallery with original pids, camids 0-based.
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    spec = os.fspath(name_or_path)
    canon = None if isinstance(name_or_path, os.PathLike) else _dataset_name(spec)
    if canon is not None:
        folder = find_dataset_dir(canon, root if root is not None else os.environ.get(DATA_ROOT_ENV, "data"))
        info = _SPECS[canon]
        name, layout, max_cam = info.name, info.layout, info.max_cam
    else:
        folder = Path(spec).expanduser()
        if root is not None and not folder.is_absolute():
            folder = Path(root).expanduser() / folder
        name, max_cam = folder.resolve().name, None
        layout = _path_layout(folder)
    if layout == "market":
        splits = parse_market_layout(folder, max_cam)
    else:
        splits = parse_msmt_layout(folder, max_cam or 15)
    train, query, gallery = _apply_verify(splits, verify, folder)
    return ReidDataset(name=name, root=str(folder), train=relabel(train), query=list(query),
                       gallery=list(gallery))


def _path_layout(folder: Path) -> str:
    """``"market"`` or ``"msmt"`` for a folder given by path; a helpful error otherwise."""
    if not folder.is_dir():
        raise DatasetLayoutError(
            f"dataset folder not found: {folder}; give a dataset name ({', '.join(DATASET_NAMES)}) with "
            f"root=<folder>, or the path of a folder with this layout:\n{MARKET_TREE}")
    if any((folder / s).is_dir() for s in MARKET_SPLITS):
        return "market"
    if any((folder / f).is_file() for f in MSMT_LISTS):
        return "msmt"
    hint = [str(cand) for c in _child_dirs(folder) for cand in [c] + _child_dirs(c)
            if _has_layout(cand, "market") or _has_layout(cand, "msmt")]
    extra = f"\nfolders below it that have a dataset layout: {', '.join(dict.fromkeys(hint))}" if hint else ""
    raise DatasetLayoutError(
        f"{folder} is not a dataset folder: missing {', '.join(s + '/' for s in MARKET_SPLITS)}; expected "
        f"layout:\n{MARKET_TREE}\n(or the MSMT17 list layout:\n{MSMT_TREE}){extra}")
