"""The checks every load runs, from the file lists alone (no image is opened): structural problems of a
dataset (errors refuse it, warnings are issued), and whether it can serve as a source, a target or an
evaluation set. ``python -m reid_uda_lib check`` (:mod:`.check`) adds the image contents and a report.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..evaluation.metrics import protocol_camids
from .layouts import DatasetLayoutError

if TYPE_CHECKING:                   # annotations only: datasets.py imports this module
    from .datasets import ReidDataset

SWITCH = "evaluation.cross_camera_only=false"
class DatasetCheckError(DatasetLayoutError):
    """A dataset folder parses but fails a structural check (the message lists every error)."""


@dataclass
class Problem:
    """One finding: ``level`` is ``"error"``, ``"warning"`` or ``"note"``."""

    level: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper()}: {self.message}"


def _norm(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _some(values: Sequence, n: int = 3) -> str:
    shown = ", ".join(str(v) for v in list(values)[:n])
    return shown + (", ..." if len(values) > n else "")


def _id_label(ds: ReidDataset, pid: int) -> str:
    return repr(ds.id_names[pid]) if ds.id_names and 0 <= pid < len(ds.id_names) else str(pid)


def structural_problems(ds: ReidDataset) -> list[Problem]:
    """Checks that need the file lists only (no image is opened): what ``load_dataset`` runs."""
    out: list[Problem] = []
    if bool(ds.query) != bool(ds.gallery):
        have, miss = ("query", "gallery") if ds.query else ("gallery", "query")
        out.append(Problem("error", f"{have} has {len(getattr(ds, have))} images but {miss} has none: "
                                    "evaluation needs both"))
    q_ids, g_ids = {p for _, p, _ in ds.query}, {p for _, p, _ in ds.gallery}
    missing = sorted(q_ids - g_ids) if ds.gallery else []
    if missing:
        missing_set = set(missing)
        n_img = sum(p in missing_set for _, p, _ in ds.query)
        out.append(Problem("error", f"{len(missing)} query identit{'y has' if len(missing) == 1 else 'ies have'} "
                                    f"no image in the gallery ({n_img} query images cannot be evaluated): "
                                    f"{_some([_id_label(ds, p) for p in missing])}; add gallery images of "
                                    "them or remove them from the query"))
    train = {_norm(p) for p, _, _ in ds.train}
    test = [p for p, _, _ in ds.query + ds.gallery if _norm(p) in train]
    if test:
        out.append(Problem("error", f"{len(test)} file(s) are both in train and in query/gallery: "
                                    f"{_some(test, 2)}"))
    gallery_paths = {_norm(p) for p, _, _ in ds.gallery}
    both = [p for p, _, _ in ds.query if _norm(p) in gallery_paths]
    if both:
        out.append(Problem("warning", f"{len(both)} query file(s) are also in the gallery (each is removed "
                                      f"from its own ranking): {_some(both, 2)}"))
    if ds.query and ds.gallery:
        out += _camera_notes(ds)
    return out


def _camera_notes(ds: ReidDataset) -> list[Problem]:
    cams = {c for _, _, c in ds.query + ds.gallery}
    if cams == {-1}:
        return [Problem("note", "no camera ids: evaluate with " + SWITCH + " (only the query image itself "
                                "is removed from its ranking); the default cross-camera protocol would fail")]
    if len(cams) == 1:
        return [Problem("note", f"all query and gallery images have the same camera id ({cams.pop()}): "
                                f"cross-camera evaluation is impossible, evaluate with {SWITCH}")]
    g_cams: dict[int, set[int]] = {}
    for _, p, c in ds.gallery:
        g_cams.setdefault(p, set()).add(c)
    lonely = sum(1 for _, p, c in ds.query if not (g_cams.get(p, set()) - {c}))
    if lonely:
        return [Problem("note", f"{lonely} of {len(ds.query)} queries have no gallery image of their identity "
                                "from another camera: the cross-camera protocol skips them")]
    return []


def raise_on_problems(ds: ReidDataset, stacklevel: int = 2) -> None:
    """Raise :class:`DatasetCheckError` listing the structural errors; warn about the warnings."""
    problems = structural_problems(ds)
    errors = [p.message for p in problems if p.level == "error"]
    if errors:
        raise DatasetCheckError(f"dataset {ds.root} fails its checks:\n  - " + "\n  - ".join(errors)
                                + f"\n(full report: python -m reid_uda_lib check {ds.root})")
    for p in problems:
        if p.level == "warning":
            warnings.warn(f"dataset {ds.root}: {p.message}", stacklevel=stacklevel + 1)


def require_role(ds: ReidDataset, role: str, cross_camera_only: bool = True) -> None:
    """Raise :class:`DatasetCheckError` when ``ds`` cannot serve as ``role`` (before any training starts).

    ``"source"`` needs labelled training images; ``"target"`` needs training images and a query/gallery
    split; ``"evaluation"`` needs a query/gallery split. For the last two, cross-camera evaluation of data
    whose camera ids are all equal (or absent) fails here with the message naming the switch.
    """
    why = None
    if role == "source" and not ds.labelled_train:
        why = ("its training images have no identities (images directly in train/): a source domain needs "
               "train/<person>/<image>" if ds.train else "it has no training images")
    elif role == "target" and not ds.train:
        why = "it has no training images"
    if role in ("target", "evaluation") and why is None and not (ds.query and ds.gallery):
        why = "it has no query/gallery split to evaluate on (query/<person>/<image>, gallery/<person>/<image>)"
    if why is not None:
        raise DatasetCheckError(f"dataset {ds.root} cannot serve as the {role}: {why}")
    if role in ("target", "evaluation"):
        try:
            protocol_camids([c for _, _, c in ds.query], [c for _, _, c in ds.gallery], cross_camera_only,
                            [p for p, _, _ in ds.query], [p for p, _, _ in ds.gallery])
        except ValueError as exc:
            raise DatasetCheckError(f"dataset {ds.root}: {exc}") from None


