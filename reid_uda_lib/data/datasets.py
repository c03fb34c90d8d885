"""Re-ID datasets: :class:`ReidDataset`, the named datasets and :func:`load_dataset`.

The on-disk layouts (Market-1501, MSMT17 lists, folder per person) and their parsers live in
:mod:`reid_uda_lib.data.layouts` and :mod:`reid_uda_lib.data.folder_layout`; :func:`load_dataset`
picks the layout by itself and runs the structural checks of :mod:`reid_uda_lib.data.check` so that a
bad folder fails before a long run starts.

Every split is a list of ``(path, pid, camid)``; camids are 0-based (-1 = no camera information);
train pids are relabelled to ``0..n-1`` in sorted order of the original ids (-1 = unlabelled target
image), query/gallery keep the original ids.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from tqdm.auto import tqdm

from .folder_layout import FOLDER_TREE, parse_folder_layout
from .image_dataset import CorruptImageError, check_image
from .problems import raise_on_problems
from .layouts import (JUNK, MARKET_SPLITS, MARKET_TREE, MSMT_TREE, DatasetLayoutError, _child_dirs, _has_layout,
                      _layout_score, _raise_incomplete, detect_layout, parse_market_layout, parse_msmt_layout)

__all__ = ["DatasetLayoutError", "ReidDataset", "load_dataset", "DATASET_NAMES", "find_dataset_dir",
           "parse_market_layout", "parse_msmt_layout", "parse_folder_layout", "detect_layout"]

Item = tuple[str, int, int]
VERIFY_MODES = ("none", "error", "skip")
DATA_ROOT_ENV = "REID_UDA_DATA_ROOT"


@dataclass
class ReidDataset:
    """A re-ID dataset: train / query / gallery lists of ``(path, pid, camid)``.

    ``layout`` is ``"market"``, ``"msmt"`` or ``"folder"``; ``id_names`` (folder layout) maps a
    query/gallery pid back to its person folder name. Negative pids (unlabelled target images) and
    camids (-1: no camera information) are not counted as identities / cameras.
    """

    name: str
    root: str
    train: list[Item] = field(default_factory=list)
    query: list[Item] = field(default_factory=list)
    gallery: list[Item] = field(default_factory=list)
    layout: str = "market"
    id_names: tuple[str, ...] = ()
    #: ``(path, why)`` of every file in the split folders that is not read (junk ids, non-images, hidden files,
    #: broken links, files in sub-folders); ``load_dataset`` warns about them, ``check`` lists them
    skipped: list[tuple[str, str]] = field(default_factory=list, repr=False)

    @staticmethod
    def _stats(items: Sequence[Item]) -> tuple[int, int, int]:
        return (len({p for _, p, _ in items if p >= 0}), len(items),
                len({c for _, _, c in items if c >= 0}))

    @property
    def labelled_train(self) -> bool:
        """True when every training image has an identity (needed to serve as a source domain)."""
        return bool(self.train) and all(p >= 0 for _, p, _ in self.train)

    @property
    def has_cameras(self) -> bool:
        """True when the query/gallery images carry camera ids (-1 = absent)."""
        return any(c >= 0 for _, _, c in self.query + self.gallery)

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
    for p in tqdm(list(dict.fromkeys(paths)), desc="verify images", leave=True, disable=None):
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
    """Map pids to ``0..n-1`` in sorted order of the original ids (classification labels).

    Negative pids (unlabelled images of a folder-per-person target) stay -1.
    """
    mapping = {pid: k for k, pid in enumerate(sorted({p for _, p, _ in items if p >= 0}))}
    return [(path, mapping.get(pid, -1), cam) for path, pid, cam in items]


def load_dataset(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None,
                 verify: str = "none", cam_pattern: str | None = None, check: bool = True) -> ReidDataset:
    """Load a re-ID dataset by name or by folder; the layout is detected.

    Parameters
    ----------
    name_or_path
        A dataset name — ``market1501``, ``dukemtmc``, ``msmt17``, ``cuhk03`` (case-insensitive;
        aliases like ``Market-1501``, ``DukeMTMC-reID``, ``cuhk03-np`` work) — looked up under ``root``
        with :func:`find_dataset_dir`; or a path to a folder in Market-1501 layout, MSMT17 list layout or
        folder-per-person layout (``train/ query/ gallery/`` with one folder per person), e.g. a
        synthetic domain ``data/synthetic/A``. A string that is a bare dataset name is treated as a
        name: write ``./cuhk03`` (or pass a ``Path``) for a folder of that name.
    root
        Folder holding the datasets (names), or base for a relative path. Default for names:
        ``$REID_UDA_DATA_ROOT``, else ``data``.
    verify
        ``"none"``: trust the files. ``"error"``: decode every image and raise
        :class:`CorruptImageError` naming the first unreadable one. ``"skip"``: drop unreadable images
        with one warning (count and first names); the returned counts reflect what is kept.
    cam_pattern
        Folder-per-person layout only: a regular expression with a named group ``cam`` searched in each
        file name (default: ``reid_dataset.json`` in the folder, else no camera ids).
    check
        Run the structural checks of :func:`reid_uda_lib.data.check.structural_problems` (query ids
        absent from the gallery, the same file in train and test, ...): errors raise
        :class:`~reid_uda_lib.data.check.DatasetCheckError`, warnings are issued with ``warnings``.
        Image contents are checked by ``verify`` and by :func:`~reid_uda_lib.data.check_dataset`.

    Returns
    -------
    ReidDataset
        train pids relabelled to ``0..n-1`` (-1: unlabelled), query/gallery with original pids,
        camids 0-based (-1: no camera information).
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
    if cam_pattern is not None and layout != "folder":
        raise ValueError(f"cam_pattern applies to the folder-per-person layout only; {folder} has the "
                         f"{layout} layout, whose file names already give the camera")
    id_names: tuple[str, ...] = ()
    skipped: list[tuple[str, str]] = []
    if layout == "market":
        splits = parse_market_layout(folder, max_cam, skipped)
    elif layout == "msmt":
        splits = parse_msmt_layout(folder, max_cam or 15, skipped)
    else:
        *splits, finfo = parse_folder_layout(folder, cam_pattern)
        id_names, skipped = finfo.id_names, finfo.skipped
    skipped = sorted(skipped)
    unread = [(p, why) for p, why in skipped if why != JUNK]
    if unread:                       # nothing is dropped in silence (junk ids: the protocol's, noted by check)
        warnings.warn(f"{len(unread)} file(s) in {folder} are not read: {describe_skipped(unread, folder)} "
                      f"(python -m reid_uda_lib check {folder} lists them)", stacklevel=2)
    train, query, gallery = _apply_verify(tuple(splits), verify, folder)
    ds = ReidDataset(name=name, root=str(folder), train=relabel(train), query=list(query),
                     gallery=list(gallery), layout=layout, id_names=id_names, skipped=skipped)
    if check:
        raise_on_problems(ds, stacklevel=3)
    return ds


def describe_skipped(skipped: Sequence[tuple[str, str]], root: str | os.PathLike, n: int = 3) -> str:
    """The first ``n`` skipped files as ``relative/path (why)``, comma-separated, ``...`` when there are more."""
    shown = [f"{os.path.relpath(p, root)} ({why})" for p, why in list(skipped)[:n]]
    return ", ".join(shown) + (", ..." if len(skipped) > n else "")


def _path_layout(folder: Path) -> str:
    """``"market"``, ``"msmt"`` or ``"folder"`` for a folder given by path; a helpful error otherwise."""
    if not folder.is_dir():
        raise DatasetLayoutError(
            f"dataset folder not found: {folder}; give a dataset name ({', '.join(DATASET_NAMES)}) with "
            f"root=<folder>, or the path of a folder with this layout:\n{MARKET_TREE}")
    layout = detect_layout(folder)
    if layout is not None:
        return layout
    hint = [str(cand) for c in _child_dirs(folder) for cand in [c] + _child_dirs(c)
            if _has_layout(cand, "market") or _has_layout(cand, "msmt")]
    extra = f"\nfolders below it that have a dataset layout: {', '.join(dict.fromkeys(hint))}" if hint else ""
    raise DatasetLayoutError(
        f"{folder} is not a dataset folder: missing {', '.join(s + '/' for s in MARKET_SPLITS)}; expected "
        f"layout:\n{MARKET_TREE}\n(or the MSMT17 list layout:\n{MSMT_TREE}\nor one folder per person:\n"
        f"{FOLDER_TREE}){extra}")
