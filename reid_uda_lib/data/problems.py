"""The checks every load runs, from the file lists alone (no image is opened): structural problems of a
dataset (errors refuse it, warnings are issued), and whether it can serve as a source, a target or an
evaluation set. ``python -m reid_uda_lib check`` (:mod:`.check`) adds the image contents and a report.

Whether a dataset can serve in a role is decided by one function, :func:`role_problem`, against the
:class:`RoleNeeds` of one configuration: ``pretrain``/``adapt`` refuse with it (:func:`require_role`, through
:func:`reid_uda_lib.train.checks.check_start`) and ``check`` prints its verdict, so the two cannot disagree.
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
        raise DatasetCheckError(f"dataset {ds.root} fails its checks: " + "; ".join(errors)
                                + f" (full report: python -m reid_uda_lib check {ds.root})")
    for p in problems:
        if p.level == "warning":
            warnings.warn(f"dataset {ds.root}: {p.message}", stacklevel=stacklevel + 1)


ROLES = ("source", "target", "evaluation")


@dataclass(frozen=True)
class RoleNeeds:
    """What a training run asks of its data, derived from its configuration by :meth:`from_config`.

    ``pids_per_batch``: P = ``data.batch_size // data.num_instances``, the identities a PK batch draws (the
    sampler refuses fewer: a source needs P labelled identities, a target's clustering P pseudo identities);
    ``target_images``: the fewest target training images from which the run's clusterings can give P
    clusters, ``target_why`` says how it follows from the config; ``cross_camera_only``: the evaluation
    protocol. The default (no config) asks only what every run needs.
    """

    label: str = "any run"
    pids_per_batch: int = 1
    batch_size: int = 1
    num_instances: int = 1
    target_images: int = 1
    target_why: str = "one cluster"
    cross_camera_only: bool = True

    @classmethod
    def from_config(cls, cfg, clusterings=None) -> "RoleNeeds":
        """The needs of a run of ``cfg``; ``clusterings``: ``[(section, "dbscan" | "kmeans", n_clusters)]`` of
        one round (the method's, :meth:`UDAMethod.clusterings <reid_uda_lib.methods.base.UDAMethod.clusterings>`;
        default: the ``uda`` clustering). A DBSCAN cluster forms around a point with ``uda.min_samples``
        neighbours, so P clusters take about P x min_samples images; k-means needs an image per cluster."""
        bs, k = int(cfg.data.batch_size), int(cfg.data.num_instances)
        p = max(1, bs // k)
        if clusterings is None:
            clusterings = [("uda", cfg.uda.cluster, cfg.uda.n_clusters)]
        need, why = p, f"P = {p} pseudo identities per batch"
        for section, kind, n_clusters in clusterings:
            if kind == "dbscan":
                n, w = p * cfg.uda.min_samples, (f"P = {p} DBSCAN clusters of uda.min_samples = "
                                                 f"{cfg.uda.min_samples} images")
            else:
                n, w = int(n_clusters), f"{section}.n_clusters = {n_clusters} k-means clusters (one image each)"
            if n > need:
                need, why = n, w
        return cls(label=f"preset {cfg.preset}, method {cfg.uda.method}", pids_per_batch=p, batch_size=bs,
                   num_instances=k, target_images=need, target_why=why,
                   cross_camera_only=bool(cfg.evaluation.cross_camera_only))

    def describe(self) -> str:
        """One line: what this run asks of a source and of a target."""
        return (f"{self.label}: a source needs {self.pids_per_batch} labelled identities (P = data.batch_size "
                f"{self.batch_size} // data.num_instances {self.num_instances}), a target {self.target_images} "
                f"training images ({self.target_why}); evaluation "
                + ("cross-camera" if self.cross_camera_only else f"on all cameras ({SWITCH})"))


def role_problem(ds: ReidDataset, role: str, needs: RoleNeeds | None = None, evaluate_source: bool = True
                 ) -> str | None:
    """Why ``ds`` cannot serve as ``role`` in a run with ``needs`` (None when it can): the one judgement that
    ``require_role`` (training) and ``check`` (the report) share.

    ``"source"`` needs P labelled identities (and, when it has a query split, to be evaluable: the source is
    evaluated in-domain); ``"target"`` needs ``needs.target_images`` training images and to be evaluable;
    ``"evaluation"`` needs a query/gallery split that the protocol can rank (cross-camera evaluation of data
    whose camera ids are all equal or absent fails, naming the switch). ``evaluate_source=False``: a source's
    in-domain evaluation is left to the caller.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    needs = needs or RoleNeeds()
    p = needs.pids_per_batch
    if role == "source":
        if not ds.train:
            return "it has no training images"
        if not ds.labelled_train:
            return ("its training images have no identities (images directly in train/): a source domain needs "
                    "train/<person>/<image>")
        n = ds.num_train_pids
        if n < p:
            return (f"it has {n} labelled training identit{'y' if n == 1 else 'ies'}, fewer than the P = {p} "
                    f"that one batch draws ({needs.label}: data.batch_size {needs.batch_size} // "
                    f"data.num_instances {needs.num_instances}); add identities or lower data.batch_size")
        return _evaluation_problem(ds, needs) if ds.query and evaluate_source else None
    if role == "target":
        if not ds.train:
            return "it has no training images"
        n = len(ds.train)
        if n < needs.target_images:
            return (f"it has {n} training image(s), fewer than the {needs.target_images} that {needs.target_why} "
                    f"need ({needs.label}; a PK batch draws P = {p} pseudo identities); add images or lower "
                    "data.batch_size")
    return _evaluation_problem(ds, needs)


def _evaluation_problem(ds: ReidDataset, needs: RoleNeeds) -> str | None:
    if not (ds.query and ds.gallery):
        return "it has no query/gallery split to evaluate on (query/<person>/<image>, gallery/<person>/<image>)"
    try:
        protocol_camids([c for _, _, c in ds.query], [c for _, _, c in ds.gallery], needs.cross_camera_only,
                        [p for p, _, _ in ds.query], [p for p, _, _ in ds.gallery])
    except ValueError as exc:
        return str(exc)
    return None


def require_role(ds: ReidDataset, role: str, cross_camera_only: bool = True, needs: RoleNeeds | None = None
                 ) -> None:
    """Raise :class:`DatasetCheckError` when ``ds`` cannot serve as ``role`` (:func:`role_problem`), before any
    training starts. ``needs`` (from the run's config, :func:`reid_uda_lib.train.checks.role_needs`) is what
    ``check_start`` asks; without it only what every run needs is asked, with ``cross_camera_only`` as the
    protocol, and a source's in-domain evaluation is the caller's to check (role ``"evaluation"``)."""
    why = role_problem(ds, role, needs or RoleNeeds(cross_camera_only=cross_camera_only),
                       evaluate_source=needs is not None)
    if why is not None:
        raise DatasetCheckError(f"dataset {ds.root} cannot serve as the {role}: {why}")


