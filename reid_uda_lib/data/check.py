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
  ``evaluation.cross_camera_only=false``), queries without a gallery match from another camera; junk images
  (identity -1) dropped as the protocol does.

Every file of the split folders that is not read (not an image, hidden, a broken link, in a sub-folder) is
counted and the first ones named (a warning; ``load_dataset`` warns about the same files).

The roles (source, target, evaluation) are judged by :func:`~reid_uda_lib.data.problems.role_problem`, the
function training refuses with, against the :class:`~reid_uda_lib.data.problems.RoleNeeds` of the preset the
folder will be used with (``check --preset``, the CLI's default); ``check`` exits with 1 when the folder has
an error or can serve in none of the roles asked (``--role``, default source and target).

"The same file" is the same absolute, normalised path; "the same image" (``check`` only) is the same
file content (SHA-1 of the bytes).
"""
from __future__ import annotations

import hashlib
import io
import os
import statistics
import warnings
from dataclasses import dataclass, field
from typing import Optional

from PIL import Image
from tqdm.auto import tqdm

from .datasets import ReidDataset, load_dataset
from .problems import (ROLES, SWITCH, DatasetCheckError, Problem, RoleNeeds, _norm, _some,  # noqa: F401
                       raise_on_problems, require_role, role_problem, structural_problems)
from .folder_layout import parse_folder_layout
from .image_dataset import _DECODE_ERRORS
from .layouts import JUNK, DatasetLayoutError, detect_layout

__all__ = ["check_dataset", "CheckReport", "Problem", "DatasetCheckError", "structural_problems",
           "raise_on_problems", "require_role", "role_problem", "RoleNeeds", "MIN_SIDE"]

MIN_SIDE = 16          # an image smaller than this (pixels) on either side is reported as tiny
LAYOUT_NAMES = {"market": "Market-1501 (bounding_box_train/ query/ bounding_box_test/)",
                "msmt": "MSMT17 list files", "folder": "folder per person (train/ query/ gallery/<person>/)"}
SPLITS = ("train", "query", "gallery")
DEFAULT_ROLES = ("source", "target")


def default_needs() -> RoleNeeds:
    """The needs of the CLI's default preset (``cpu``, with its ``uda`` clustering): what ``check`` judges without
    ``needs`` (the CLI passes :func:`reid_uda_lib.train.checks.role_needs` of the preset and method asked)."""
    from ..config import get_preset
    return RoleNeeds.from_config(get_preset("cpu"))



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
    for path in tqdm(paths, desc="check images", leave=True, disable=not progress):
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
    """What :func:`check_dataset` found. ``ok`` is False when there is any error; ``usable`` also needs one of
    the roles asked (``role_names``) to be possible with ``needs``; ``text()`` prints it."""

    path: str
    layout: Optional[str] = None
    dataset: Optional[ReidDataset] = None
    problems: list[Problem] = field(default_factory=list)
    images_checked: int = 0
    needs: RoleNeeds = field(default_factory=default_needs)
    role_names: tuple[str, ...] = DEFAULT_ROLES

    @property
    def ok(self) -> bool:
        return not any(p.level == "error" for p in self.problems)

    @property
    def usable(self) -> bool:
        """No error, and the folder can serve in at least one of the roles asked (``check``'s exit code 0)."""
        return self.ok and any(usable for usable, _ in self.roles().values())

    def roles(self) -> dict[str, tuple[bool, str]]:
        """``{role: (usable, why)}`` for each role asked, judged by
        :func:`~reid_uda_lib.data.problems.role_problem` with ``needs``: the verdict ``train`` would give."""
        ds = self.dataset
        if ds is None or not self.ok:
            return {r: (False, "fix the errors first") for r in self.role_names}
        return {r: _verdict(ds, r, self.needs) for r in self.role_names}

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
        lines.append(f"judged for {self.needs.describe()}")
        roles = self.roles()
        for role, (usable, why) in roles.items():
            lines.append(f"as {role}: {'yes' if usable else 'no'} ({why})")
        if not self.ok:
            lines.append("result: FAILED")
        elif not self.usable:
            lines.append(f"result: FAILED (usable in none of the roles asked: {', '.join(roles)})")
        else:
            lines.append(f"result: OK (usable as {', '.join(r for r, (u, _) in roles.items() if u)})")
        return "\n".join(lines)

    __str__ = text


def _verdict(ds: ReidDataset, role: str, needs: RoleNeeds) -> tuple[bool, str]:
    """``(usable, why)`` of one role: the refusal ``require_role`` would raise, or what makes it usable."""
    why = role_problem(ds, role, needs)
    if why is not None:
        return False, why
    if role == "source":
        return True, f"{ds.num_train_pids} labelled training identities"
    protocol = "cross-camera evaluation" if needs.cross_camera_only else f"evaluation on all cameras ({SWITCH})"
    if role == "target":
        return True, f"{len(ds.train)} training images, {protocol}"
    return True, protocol


def skipped_problems(ds: ReidDataset) -> list[Problem]:
    """The files of the split folders that are not read: a warning, and a note for the protocol's junk ids."""
    from .datasets import describe_skipped
    junk = [(p, w) for p, w in ds.skipped if w == JUNK]
    unread = [(p, w) for p, w in ds.skipped if w != JUNK]
    out = []
    if unread:
        out.append(Problem("warning", f"{len(unread)} file(s) are not read: {describe_skipped(unread, ds.root)}"))
    if junk:
        out.append(Problem("note", f"{len(junk)} junk image(s) (identity -1) are dropped, as the evaluation protocol "
                                   f"does: {_some([os.path.relpath(p, ds.root) for p, _ in junk], 2)}"))
    return out


def check_dataset(path: str | os.PathLike, root: str | os.PathLike | None = None,
                  cam_pattern: str | None = None, images: bool = True, min_side: int = MIN_SIDE,
                  progress: bool = False, needs: Optional[RoleNeeds] = None,
                  roles: tuple[str, ...] = DEFAULT_ROLES) -> CheckReport:
    """Check a dataset folder (or name, with ``root``) and return a :class:`CheckReport`.

    Detects the layout, counts identities / images / cameras per split and images per identity, and
    reports the problems described in this module's docstring. ``images=False`` skips decoding the
    images (unreadable / tiny / same content). ``needs``: what the run the folder is meant for asks
    (:func:`reid_uda_lib.train.checks.role_needs` of its config; default: the ``cpu`` preset, the CLI's
    default); ``roles``: the roles asked. Never raises for a bad folder: the report says why.
    """
    for r in roles:
        if r not in ROLES:
            raise ValueError(f"roles: expected some of {', '.join(ROLES)}, got {r!r}")
    report = CheckReport(path=os.fspath(path), needs=needs or default_needs(), role_names=tuple(roles))
    folder = path if root is None or os.path.isabs(path) else os.path.join(root, path)
    report.layout = detect_layout(folder) if os.path.isdir(folder) else None
    try:
        with warnings.catch_warnings():          # the skipped files are listed in the report instead
            warnings.simplefilter("ignore")
            ds = load_dataset(path, root=root, cam_pattern=cam_pattern, check=False)
    except (DatasetLayoutError, ValueError) as exc:
        report.problems.append(Problem("error", str(exc)))
        return report
    report.dataset, report.layout, report.path = ds, ds.layout, ds.root
    report.problems += structural_problems(ds)
    report.problems += skipped_problems(ds)
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
