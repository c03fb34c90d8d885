"""The folder-per-person layout: ``root/{train,query,gallery}/<person>/<image>``.

For one's own photos, without renaming files:

* the **identity** is the name of the person folder (any string: ``alice``, ``0042``, ``team-7``);
  names are mapped to integers ``0..n-1`` in sorted (Python string) order over all three splits, so a
  person has the same integer in query and gallery (``ReidDataset.id_names[pid]`` gives the name back);
* the **camera** is read from the file name with an optional regular expression that has a named group
  ``cam`` (e.g. ``r"cam(?P<cam>\\d+)"`` or ``r"_c(?P<cam>\\d+)"``), given as ``load_dataset(...,
  cam_pattern=...)`` or stored in ``root/reid_dataset.json`` as ``{"cam_pattern": "..."}``. Camera
  values are mapped to ``0..n-1`` in sorted order (numeric when all are digits). Without a pattern the
  camera is absent: every camid is ``NO_CAMERA`` (-1), and evaluation needs
  ``evaluation.cross_camera_only=false``;
* an **unlabelled target** may put its training images directly in ``train/`` (``train/<image>``);
  their pid is ``UNLABELLED`` (-1). Query and gallery always need person folders (evaluation needs ids).

Any of the three split folders may be missing (e.g. a source without a test split); items are sorted by
(person folder, file name), so the order does not depend on the file system.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .layouts import FOLDER_SPLITS, HIDDEN, DatasetLayoutError, _files_below, _image_files, skipped_hint

__all__ = ["parse_folder_layout", "FolderInfo", "FOLDER_TREE", "SETTINGS_FILE", "NO_CAMERA", "UNLABELLED",
           "compile_cam_pattern", "read_settings"]

Item = tuple[str, int, int]
NO_CAMERA = -1
UNLABELLED = -1
SETTINGS_FILE = "reid_dataset.json"
SETTINGS_KEYS = ("cam_pattern",)

FOLDER_TREE = """\
<dataset folder>/
├── train/                 one folder per person (or images directly in train/: unlabelled target)
│   ├── alice/             cam1_0001.jpg, cam2_0007.jpg, ...
│   └── bob/               ...
├── query/                 query/<person>/<image>   (identities needed for evaluation)
├── gallery/               gallery/<person>/<image>
└── reid_dataset.json      optional: {"cam_pattern": "cam(?P<cam>\\\\d+)"} (camera from the file name)"""


@dataclass
class FolderInfo:
    """What the folder parser learnt besides the items."""

    id_names: tuple[str, ...] = ()          # pid k <-> id_names[k] (query/gallery; train before relabelling)
    cam_names: tuple[str, ...] = ()         # camid k <-> cam_names[k]; empty when cameras are absent
    cam_pattern: Optional[str] = None
    unlabelled_train: bool = False
    empty_id_dirs: list[str] = field(default_factory=list)   # person folders without any image
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, why) of every file not read


def compile_cam_pattern(pattern: str | re.Pattern) -> re.Pattern:
    """Compile a camera pattern; it must have a named group ``cam``."""
    try:
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"camera pattern {pattern!r} is not a valid regular expression: {exc}") from None
    if "cam" not in rx.groupindex:
        raise ValueError(f"camera pattern {rx.pattern!r} has no named group 'cam'; write it like "
                         r"'cam(?P<cam>\d+)' (the group's text is the camera)")
    return rx


def read_settings(folder: str | os.PathLike) -> dict:
    """The optional ``<folder>/reid_dataset.json`` (``{}`` when absent); unknown keys are an error."""
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetLayoutError(f"{path}: cannot read it as JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) - set(SETTINGS_KEYS):
        raise DatasetLayoutError(f"{path}: expected a JSON object with the key(s) {', '.join(SETTINGS_KEYS)}, "
                                 f"e.g. {{\"cam_pattern\": \"cam(?P<cam>\\\\d+)\"}}; got {data!r}")
    return data


def _scan_split(split_dir: Path, split: str, allow_unlabelled: bool, empty: list[str],
                skipped: Optional[list[tuple[str, str]]] = None) -> list[tuple[Optional[str], str]]:
    """``[(person name or None, image path)]`` of one split folder, sorted by (person, file name); every file
    that is not read (hidden, not an image, a broken link, in a folder below a person folder) goes to
    ``skipped`` as ``(path, why)``."""
    if not split_dir.is_dir():
        return []
    entries = sorted(os.scandir(split_dir), key=lambda e: e.name)
    persons = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    if skipped is not None:
        for e in entries:
            if e.is_dir() and e.name.startswith("."):
                _files_below(e.path, f"{HIDDEN} (in a hidden folder)", skipped)
    loose = _image_files(split_dir, skipped, subfolders=False)
    if loose and (persons or not allow_unlabelled):
        why = (f"it also holds person folders ({persons[0]!r}, ...): use one or the other" if persons
               else "query and gallery need one folder per person (identities are needed for evaluation)")
        raise DatasetLayoutError(
            f"{split_dir} holds {len(loose)} image(s) directly (first: {loose[0]!r}) but {why}; "
            f"expected layout:\n{FOLDER_TREE}")
    if loose:
        return [(None, str(split_dir / f)) for f in loose]
    out = []
    for person in persons:
        files = _image_files(split_dir / person, skipped)
        if not files:
            empty.append(f"{split}/{person}")
        out += [(person, str(split_dir / person / f)) for f in files]
    return out


def _cam_sort_key(names: set[str]):
    return (lambda v: (int(v), v)) if all(v.isdigit() for v in names) else (lambda v: v)


def parse_folder_layout(folder: str | os.PathLike, cam_pattern: str | re.Pattern | None = None
                        ) -> tuple[list[Item], list[Item], list[Item], FolderInfo]:
    """Parse a folder-per-person dataset into ``(train, query, gallery, info)``.

    ``cam_pattern`` (default: the one in ``reid_dataset.json``, else none) is searched in each file name;
    every image must match it. Train pids are *not* relabelled here (``load_dataset`` does it).

    Raises
    ------
    DatasetLayoutError
        naming the folder or file: no split folder, no image at all, images directly in
        ``query/``/``gallery/``, a file name that does not match the camera pattern.
    """
    folder = Path(folder)
    if not any((folder / s).is_dir() for s in FOLDER_SPLITS):
        raise DatasetLayoutError(f"{folder} has none of {', '.join(s + '/' for s in FOLDER_SPLITS)}; "
                                 f"expected layout:\n{FOLDER_TREE}")
    if cam_pattern is None:
        cam_pattern = read_settings(folder).get("cam_pattern")
    rx = compile_cam_pattern(cam_pattern) if cam_pattern else None
    info = FolderInfo(cam_pattern=rx.pattern if rx else None)
    raw = {s: _scan_split(folder / s, s, s == "train", info.empty_id_dirs, info.skipped) for s in FOLDER_SPLITS}
    if not any(raw.values()):
        raise DatasetLayoutError(f"no images found in {folder}/{{{','.join(FOLDER_SPLITS)}}}/<person>/"
                                 f"{skipped_hint(info.skipped)}; expected layout:\n{FOLDER_TREE}")
    info.unlabelled_train = bool(raw["train"]) and raw["train"][0][0] is None

    cams: dict[str, str] = {}
    if rx is not None:
        bad = []
        for items in raw.values():
            for _, path in items:
                m = rx.search(os.path.basename(path))
                if m is None or m.group("cam") is None:
                    bad.append(path)
                else:
                    cams[path] = m.group("cam")
        if bad:
            raise DatasetLayoutError(
                f"{len(bad)} image(s) in {folder} do not match the camera pattern '{rx.pattern}' (named group "
                f"'cam' searched in the file name); first: {bad[0]}")
    names = sorted({p for items in raw.values() for p, _ in items if p is not None})
    pid_of = {name: k for k, name in enumerate(names)}
    cam_names = sorted(set(cams.values()), key=_cam_sort_key(set(cams.values())))
    camid_of = {c: k for k, c in enumerate(cam_names)}
    info.id_names, info.cam_names = tuple(names), tuple(cam_names)

    def items(split: str) -> list[Item]:
        return [(path, UNLABELLED if person is None else pid_of[person],
                 camid_of[cams[path]] if rx is not None else NO_CAMERA) for person, path in raw[split]]

    return items("train"), items("query"), items("gallery"), info
