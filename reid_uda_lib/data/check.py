"""Dataset checks: :func:`check_dataset` (``python -m reid_uda_lib check PATH``) and the structural checks
that :func:`~reid_uda_lib.data.load_dataset` runs on every load.

Three levels of findings:

* **error** -- the folder cannot be used as it is: it does not parse, a query identity has no image in
  the gallery, the same file or the same image content is both in train and in query/gallery, an image
  cannot be decoded. ``check`` exits with 1; ``load_dataset`` raises :class:`DatasetCheckError` for the
  structural ones (image contents are only read by ``check`` and by ``load_dataset(verify=...)``).
* **warning** -- usable, but probably not what was meant: the same file in query and gallery, a copy
  of a query image in the gallery under another name, tiny images, empty person folders (``check`` only
  for the last three). ``load_dataset`` issues them with :mod:`warnings`.
* **note** -- facts that decide the evaluation protocol: no camera ids / all camera ids equal (needs
  ``evaluation.cross_camera_only=false``), queries without a gallery match from another camera.

"The same file" is the same absolute, normalised path; "the same image" (``check`` only) is the same
file content (SHA-1 of the bytes).
"""
from __future__ import annotations

import hashlib
import io
import os
import statistics
from dataclasses import dataclass, field
from typing import Optional

from PIL import Image
from tqdm.auto import tqdm

from .datasets import ReidDataset, load_dataset
from .problems import (SWITCH, DatasetCheckError, Problem, _norm, _some, raise_on_problems,  # noqa: F401
                       require_role, structural_problems)
from .folder_layout import parse_folder_layout
from .image_dataset import _DECODE_ERRORS
from .layouts import DatasetLayoutError, detect_layout

__all__ = ["check_dataset", "CheckReport", "Problem", "DatasetCheckError", "structural_problems",
           "raise_on_problems", "require_role", "MIN_SIDE"]

MIN_SIDE = 16          # an image smaller than this (pixels) on either side is reported as tiny
LAYOUT_NAMES = {"market": "Market-1501 (bounding_box_train/ query/ bounding_box_test/)",
                "msmt": "MSMT17 list files", "folder": "folder per person (train/ query/ gallery/<person>/)"}
SPLITS = ("train", "query", "gallery")




def _inspect(path: str) -> tuple[tuple[int, int], str]:
    """``((width, height), sha1 of the bytes)``; raises ``CorruptImageError``-like ValueError or OSError."""
    with open(path, "rb") as fh:
        data = fh.read()
    with Image.open(io.BytesIO(data)) as im:
        size = im.size
        if im.format == "JPEG":
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
        im.load()
    return size, hashlib.sha1(data).hexdigest()


def image_problems(ds: ReidDataset, min_side: int = MIN_SIDE, progress: bool = False) -> list[Problem]:
    """Decode every image once: unreadable files, tiny images, identical content in train and test."""
    out: list[Problem] = []
    bad, tiny, digest = [], [], {}
    paths = list(dict.fromkeys(p for split in SPLITS for p, _, _ in getattr(ds, split)))
    for path in tqdm(paths, desc="check images", leave=False, disable=not progress):
        try:
            (w, h), digest[path] = _inspect(path)
        except (FileNotFoundError, *_DECODE_ERRORS) as exc:
            bad.append(f"{path} ({type(exc).__name__}: {exc})")
            continue
        if min(w, h) < min_side:
            tiny.append(f"{path} ({w}x{h})")
    if bad:
        out.append(Problem("error", f"{len(bad)} unreadable image(s): {_some(bad, 2)}"))
    if tiny:
        out.append(Problem("warning", f"{len(tiny)} tiny image(s) (under {min_side} px on a side): "
                                      f"{_some(tiny, 2)}"))
    train = {digest[p]: p for p, _, _ in ds.train if p in digest}
    dup = [f"{train[digest[p]]} = {p}" for p, _, _ in ds.query + ds.gallery
           if p in digest and digest[p] in train]
    if dup:
        out.append(Problem("error", f"{len(dup)} query/gallery image(s) have the same content as a train image: "
                                    f"{_some(dup, 2)}"))
    gallery = {digest[p]: p for p, _, _ in ds.gallery if p in digest}
    copies = [f"{p} = {gallery[digest[p]]}" for p, _, _ in ds.query
              if p in digest and digest[p] in gallery and _norm(p) != _norm(gallery[digest[p]])]
    if copies:
        out.append(Problem("warning", f"{len(copies)} query image(s) have a copy under another name in the gallery "
                                      f"(not ignored as 'the query image itself': an easy match): {_some(copies, 2)}"))
    return out


@dataclass
class CheckReport:
    """What :func:`check_dataset` found. ``ok`` is False when there is any error; ``text()`` prints it."""

    path: str
    layout: Optional[str] = None
    dataset: Optional[ReidDataset] = None
    problems: list[Problem] = field(default_factory=list)
    images_checked: int = 0

    @property
    def ok(self) -> bool:
        return not any(p.level == "error" for p in self.problems)

    def roles(self) -> dict[str, tuple[bool, str]]:
        """``{"source": (usable, why), "target": (usable, why)}``."""
        ds = self.dataset
        if ds is None or not self.ok:
            return {"source": (False, "fix the errors first"), "target": (False, "fix the errors first")}
        if not ds.train:
            source = (False, "no training images")
        elif not ds.labelled_train:
            source = (False, "training images have no identities: an unlabelled target")
        elif ds.num_train_pids < 2:
            source = (False, "needs at least 2 training identities")
        else:
            source = (True, f"{ds.num_train_pids} labelled training identities")
        if not ds.train:
            target = (False, "no training images")
        elif not ds.query:
            target = (False, "no query/gallery to evaluate on")
        elif len({c for _, _, c in ds.query + ds.gallery}) < 2:
            target = (True, f"no distinct camera ids: evaluation needs {SWITCH}")
        else:
            target = (True, "cross-camera evaluation, the default protocol")
        return {"source": source, "target": target}

    def text(self) -> str:
        lines = [f"dataset: {self.path}", f"layout:  {LAYOUT_NAMES.get(self.layout, 'not recognised')}"]
        ds = self.dataset
        if ds is not None:
            lines += ["", f"  {'split':<8} {'ids':>6} {'images':>8} {'cameras':>8}   images per id (min/median/max)"]
            for split in SPLITS:
                items = getattr(ds, split)
                per_id: dict[int, int] = {}
                for _, p, _ in items:
                    if p >= 0:
                        per_id[p] = per_id.get(p, 0) + 1
                n_ids, n_img, n_cam = ReidDataset._stats(items)
                ids = str(n_ids) if per_id or not items else "unlab."
                counts = sorted(per_id.values())
                spread = f"{counts[0]}/{statistics.median(counts):g}/{counts[-1]}" if counts else "-"
                cams = str(n_cam) if n_cam or not items else "none"
                lines.append(f"  {split:<8} {ids:>6} {n_img:>8} {cams:>8}   {spread}")
            lines.append("")
            lines.append(f"images opened: {self.images_checked}" if self.images_checked
                         else "images: not opened (--no-images / images=False)")
        for p in self.problems:
            lines.append(str(p))
        if ds is not None or self.problems:
            if not self.problems:
                lines.append("no problems found")
        for role, (usable, why) in self.roles().items():
            lines.append(f"as {role}: {'yes' if usable else 'no'} ({why})")
        lines.append("result: OK" if self.ok else "result: FAILED")
        return "\n".join(lines)

    __str__ = text


def check_dataset(path: str | os.PathLike, root: str | os.PathLike | None = None,
                  cam_pattern: str | None = None, images: bool = True, min_side: int = MIN_SIDE,
                  progress: bool = False) -> CheckReport:
    """Check a dataset folder (or name, with ``root``) and return a :class:`CheckReport`.

    Detects the layout, counts identities / images / cameras per split and images per identity, and
    reports the problems described in this module's docstring. ``images=False`` skips decoding the
    images (unreadable / tiny / same content). Never raises for a bad folder: the report says why.
    """
    report = CheckReport(path=os.fspath(path))
    folder = path if root is None or os.path.isabs(path) else os.path.join(root, path)
    report.layout = detect_layout(folder) if os.path.isdir(folder) else None
    try:
        ds = load_dataset(path, root=root, cam_pattern=cam_pattern, check=False)
    except (DatasetLayoutError, ValueError) as exc:
        report.problems.append(Problem("error", str(exc)))
        return report
    report.dataset, report.layout, report.path = ds, ds.layout, ds.root
    report.problems += structural_problems(ds)
    if ds.layout == "folder":
        empty = parse_folder_layout(ds.root, cam_pattern)[3].empty_id_dirs   # lists folders, opens no image
        if empty:
            report.problems.append(Problem("warning", f"{len(empty)} person folder(s) hold no image and are "
                                                      f"ignored: {_some(empty)}"))
    if images:
        report.problems += image_problems(ds, min_side=min_side, progress=progress)
        report.images_checked = len({p for s in SPLITS for p, _, _ in getattr(ds, s)})
    order = {"error": 0, "warning": 1, "note": 2}
    report.problems.sort(key=lambda p: order[p.level])
    return report
