"""Convert a dataset between the folder-per-person layout and the Market-1501 layout.

* :func:`market_to_folder`: ``bounding_box_train/0002_c1s1_000451_03.jpg`` ->
  ``train/0002/0002_c1s1_000451_03.jpg`` (``query/`` -> ``query/``, ``bounding_box_test/`` ->
  ``gallery/``). File names are kept, the person folder is the file name's identity prefix, junk images
  (identity -1) are dropped, and ``reid_dataset.json`` records the camera pattern ``_c(?P<cam>\\d+)`` so
  the cameras survive. Items load in the same order as the original (sorted by person, then file name,
  which is the Market file-name order), so a training run gives the same numbers on both copies.
* :func:`folder_to_market`: ``train/alice/x.jpg`` -> ``bounding_box_train/0001_c1s1_000000_00.jpg``.
  Person folders named by integers keep their number, other names are numbered 1..n in sorted order;
  ``identities.csv`` and ``files.csv`` record both mappings. Cameras come from the camera pattern
  (numbered 1..n in sorted order); without one every image gets camera 1 (evaluate such a copy with
  ``evaluation.cross_camera_only=false``). An unlabelled ``train/`` cannot be written in Market layout.

Files are copied, hard-linked or symlinked (``mode``). The output folder must not exist or be empty.
The command line is ``data_scripts/convert_layout.py``.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from .folder_layout import SETTINGS_FILE, parse_folder_layout
from .layouts import MARKET_SPLITS, _image_files, parse_market_layout

__all__ = ["market_to_folder", "folder_to_market", "place_file", "LINK_MODES", "MARKET_CAM_PATTERN"]

LINK_MODES = ("copy", "hardlink", "symlink")
MARKET_CAM_PATTERN = r"^(?:-1|\d+)_c(?P<cam>\d+)"
FOLDER_OF = dict(zip(MARKET_SPLITS, ("train", "query", "gallery")))


def place_file(src: str | os.PathLike, dst: str | os.PathLike, mode: str = "copy") -> None:
    """Copy (``copy2``), hard-link or symlink (absolute target) ``src`` to ``dst``, creating folders."""
    if mode not in LINK_MODES:
        raise ValueError(f"mode must be one of {LINK_MODES}, got {mode!r}")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mode == "copy":
        shutil.copy2(src, dst)
    elif mode == "hardlink":
        os.link(src, dst)
    else:
        os.symlink(os.path.abspath(src), dst)


def prepare_output(out: str | os.PathLike) -> Path:
    """``out`` as a Path; refuse a non-empty existing folder (no silent mixing of two datasets)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"output folder {out} exists and is not empty; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def market_to_folder(src: str | os.PathLike, out: str | os.PathLike, mode: str = "copy") -> dict:
    """Write the Market-layout dataset ``src`` as a folder-per-person tree in ``out``.

    Returns ``{"train": n, "query": n, "gallery": n, "junk_dropped": n}`` (image counts).
    """
    src = Path(src)
    splits = parse_market_layout(src)
    out = prepare_output(out)
    counts: dict[str, int] = {"junk_dropped": 0}
    for market_split, items in zip(MARKET_SPLITS, splits):
        split = FOLDER_OF[market_split]
        counts["junk_dropped"] += len(_image_files(src / market_split)) - len(items)
        for path, _, _ in items:
            name = os.path.basename(path)
            place_file(path, out / split / name.split("_", 1)[0] / name, mode)
        counts[split] = len(items)
    (out / SETTINGS_FILE).write_text(json.dumps({"cam_pattern": MARKET_CAM_PATTERN}) + "\n")
    return counts


def folder_to_market(src: str | os.PathLike, out: str | os.PathLike, cam_pattern: str | None = None,
                     mode: str = "copy") -> dict:
    """Write the folder-per-person dataset ``src`` in Market layout in ``out``.

    Returns ``{"train": n, "query": n, "gallery": n, "cameras": n}`` (``cameras`` 0 = absent, all c1).

    Raises
    ------
    ValueError
        when ``train/`` is unlabelled (images directly in it): Market file names need an identity.
    """
    src = Path(src)
    train, query, gallery, info = parse_folder_layout(src, cam_pattern)
    if info.unlabelled_train:
        raise ValueError(f"{src / 'train'} holds unlabelled images (no person folders): the Market layout "
                         "needs an identity in every file name; use the folder-per-person tree directly")
    names = info.id_names
    numeric = all(n.isdigit() for n in names) and len({int(n) for n in names}) == len(names)
    market_pid = {k: (int(n) if numeric else k + 1) for k, n in enumerate(names)}
    out = prepare_output(out)
    counts: dict[str, int] = {"cameras": len(info.cam_names)}
    rows = []
    for market_split, items in zip(MARKET_SPLITS, (train, query, gallery)):
        for k, (path, pid, cam) in enumerate(items):
            ext = os.path.splitext(path)[1].lower()
            name = f"{market_pid[pid]:04d}_c{cam + 1 if cam >= 0 else 1}s1_{k:06d}_00{ext}"
            place_file(path, out / market_split / name, mode)
            rows.append((f"{market_split}/{name}", os.path.relpath(path, src).replace(os.sep, "/")))
        (out / market_split).mkdir(exist_ok=True)
        counts[FOLDER_OF[market_split]] = len(items)
    with open(out / "identities.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("market_pid", "person_folder")]
                                 + [(market_pid[k], n) for k, n in enumerate(names)])
    with open(out / "files.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("market_file", "original_file")] + rows)
    return counts
