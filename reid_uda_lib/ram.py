"""Memory guards: refuse settings whose memory would exceed what the machine has, before allocating.

Each estimate comes with its formula, so the message says why (seen: ``uda.k1=100000`` on 1,305 target
images was clipped to k1 = 1304, then the k-reciprocal stage grew to 24 GB and the OOM killer ended the
kernel). The estimates are upper-end rules of thumb measured on CPU; the guard only refuses what cannot fit.
"""
from __future__ import annotations

import os
from typing import Any, Optional

#: bytes per (i, candidate) entry of the k-reciprocal expansion (int64 indices, float32 values, masks);
#: measured peak at N = 1,305: k1 = 100 -> 0.30 GB, k1 = 200 -> 0.57 GB (estimate 0.2 / 0.8 GB).
JACCARD_BYTES_PER_ENTRY = 16


class MemoryGuardError(MemoryError):
    """A setting would need more memory than the machine has; nothing was allocated."""


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def jaccard_estimate(n: int, k1: int) -> tuple[int, str]:
    """Bytes of the k-reciprocal Jaccard stage on ``n`` points, and the formula (k1 clipped to n - 1)."""
    k = max(1, min(int(k1), int(n) - 1))
    nbytes = int(n) * k * k * JACCARD_BYTES_PER_ENTRY
    return nbytes, f"N x k1^2 x {JACCARD_BYTES_PER_ENTRY} B = {n} x {k}^2 x {JACCARD_BYTES_PER_ENTRY} B"


def check_memory(what: str, nbytes: int, formula: str, available: Optional[int] = None,
                 hint: str = "") -> None:
    """Raise :class:`MemoryGuardError` when ``nbytes`` exceeds the available memory."""
    available = available_memory() if available is None else available
    if available is not None and nbytes > available:
        raise MemoryGuardError(
            f"{what} would need about {_gb(nbytes)} ({formula}) but this machine has {_gb(available)} "
            f"available; refused before allocating{'. ' + hint if hint else ''}")


def check_run_memory(cfg: Any, target: Any, available: Optional[int] = None,
                     clusterings: Optional[list[tuple[str, str, int]]] = None) -> None:
    """Check the memory-heavy steps of a run of ``cfg`` adapting to ``target`` (a ReidDataset; None for a
    source-only run), before any work. ``clusterings``: ``[(field, "dbscan" | "kmeans", n_clusters)]``, the
    clusterings of one round as the method runs them (:meth:`UDAMethod.clusterings
    <reid_uda_lib.methods.base.UDAMethod.clusterings>`; LF²: one per level, from ``lf2.*``); default: the
    ``uda.*`` clustering."""
    d = cfg.data
    n_target_train = len(target.train) if target is not None else 0
    n_query, n_gallery = (len(target.query), len(target.gallery)) if target is not None else (0, 0)
    if clusterings is None:
        clusterings = [("uda", cfg.uda.cluster, cfg.uda.n_clusters)]
    for section, kind, k in clusterings:
        if kind == "dbscan" and n_target_train > 1:
            nbytes, formula = jaccard_estimate(n_target_train, cfg.uda.k1)
            nbytes += 4 * n_target_train ** 2                       # the dense N x N distance it returns
            check_memory(f"uda.k1={cfg.uda.k1} (k-reciprocal Jaccard on {n_target_train} target images)",
                         nbytes, formula + " + N^2 x 4 B", available, hint="Lower uda.k1 (the papers use 20-30)")
        if kind == "kmeans":
            nbytes = 8 * n_target_train * max(1, k)
            check_memory(f"{section}.n_clusters={k} (k-means)", nbytes,
                         f"N x n_clusters x 8 B = {n_target_train} x {k} x 8 B", available,
                         hint=f"Lower {section}.n_clusters")
    nbytes = 4 * n_query * n_gallery
    check_memory("evaluation distance matrix", nbytes, f"query x gallery x 4 B = {n_query} x {n_gallery} x 4 B",
                 available)
    for name, bs in (("data.batch_size", 2 * d.batch_size), ("data.test_batch_size", d.test_batch_size)):
        nbytes = bs * 3 * d.height * d.width * 4 * max(1, d.num_workers)
        check_memory(f"{name}={bs} images of {d.height}x{d.width}", nbytes,
                     f"batch x 3 x H x W x 4 B x max(1, workers) = {bs} x 3 x {d.height} x {d.width} x 4 B "
                     f"x {max(1, d.num_workers)}", available, hint=f"Lower {name}")


def _gb(nbytes: int) -> str:
    return f"{nbytes / 2 ** 30:.1f} GiB" if nbytes >= 2 ** 27 else f"{nbytes / 2 ** 20:.0f} MiB"
