"""Section 6 of ``gpu_check.py``: from section 2's two batch sizes, the largest batch that fits a 16 GB and a
40 GB card, per method, precision and BatchNorm setting, and the time of the papers' schedule on the measured
device. Derived from the measured rows, no new measurement.

Peak memory is close to affine in the batch: ``peak(b) = a + c * b`` (``a``: weights, Mean-Net, optimiser
state, memory bank; ``c``: the activations of one image per domain). Through the two measured points
``(b1, p1)``, ``(b2, p2)``: ``c = (p2 - p1) / (b2 - b1)``, ``a = p1 - c * b1``, and on a card with ``M`` MiB
usable the largest batch is ``floor((M - a) / c)`` rounded down to a multiple of K (the PK sampler's images
per identity in the method's preset).
"""
from __future__ import annotations

import math

from reid_uda_lib.config import get_preset

# total memory torch reports on such cards (GiB), minus the headroom below = what a step may allocate
CARDS = (("16 GB", "T4 / V100 16 GB (Colab)", 14.75), ("40 GB", "A100 40 GB", 39.39))
HEADROOM_GIB = 1.0      # CUDA context (outside max_memory_allocated) and the caching allocator's slack
FORMULA = ("peak(b) = a + c*b through the two measured batches b1 < b2: c = (p2 - p1)/(b2 - b1), a = p1 - c*b1; "
           "largest batch per domain = floor((M - a)/c) rounded down to a multiple of K (images per identity of "
           "the method's preset), with M = "
           + ", ".join(f"{total} - {HEADROOM_GIB:g} GiB for {name} ({label})" for name, label, total in CARDS)
           + " (total memory as torch reports it, minus the CUDA context and allocator slack)")


def affine_fit(b1: int, p1: float, b2: int, p2: float) -> tuple[float, float]:
    """``(a, c)`` of ``peak(b) = a + c * b`` through two points (``b1 != b2``)."""
    if b1 == b2:
        raise ValueError(f"affine_fit needs two different batch sizes; got {b1} twice")
    c = (p2 - p1) / (b2 - b1)
    return p1 - c * b1, c


def largest_batch(a: float, c: float, memory_mib: float, multiple: int = 4) -> int | None:
    """The largest batch ``b`` (a multiple of ``multiple``) with ``a + c * b <= memory_mib``; 0 when not even one
    multiple fits, ``None`` when the fit does not grow with the batch (``c <= 0``: no estimate)."""
    if c <= 0:
        return None
    b = math.floor((memory_mib - a) / c)
    return max(0, b // multiple * multiple)


def capacity(steps: dict, clustering: dict | None) -> dict:
    """Section 6 from section 2's record (``steps``) and section 4's (``clustering``, for the per-epoch
    clustering time); ``{"formula", "schedule", "rows"}``."""
    paper = get_preset("paper")
    epochs, iters = paper.uda.epochs, paper.uda.iters_per_epoch      # the same in every paper* preset
    levels = paper.lf2.num_parts + 1
    cluster_s = {}
    for r in (clustering or {}).get("rows", []):
        if r.get("device_s") is not None:
            cluster_s[r["key"]] = r["device_s"]
    groups: dict = {}
    for r in steps.get("rows", []):
        groups.setdefault((r["method"], r["amp"], r["bn_samples"]), {})[r["batch"]] = r
    rows = []
    for (method, amp, bn), by_batch in groups.items():
        if all(r.get("status", "").startswith("skipped") for r in by_batch.values()):
            continue
        k = next(iter(by_batch.values())).get("num_instances", 4)
        row = {"method": method, "amp": amp, "bn_samples": bn, "num_instances": k, "status": "measured"}
        pts = sorted((b, r["peak_mib"]) for b, r in by_batch.items() if r.get("peak_mib") is not None)
        oom = sorted(b for b, r in by_batch.items() if r.get("status") == "out of memory")
        if len(pts) >= 2:
            (b1, p1), (b2, p2) = pts[0], pts[-1]
            a, c = affine_fit(b1, p1, b2, p2)
            row.update(a_mib=a, c_mib_per_image=c, points=[[b1, p1], [b2, p2]])
            for name, _, total in CARDS:
                row[f"max_batch_{name.replace(' ', '')}"] = largest_batch(a, c, (total - HEADROOM_GIB) * 1024, k)
        elif oom:
            row["note"] = f"out of memory at {', '.join(map(str, oom))} per domain on the measured device"
        else:
            row["note"] = "peak memory not available (CUDA only)" if not pts else "one batch size measured: no fit"
        timed_batches = [b for b, r in by_batch.items() if r.get("ms_median") is not None]
        if timed_batches:
            row["schedule_batch"] = max(timed_batches)
            row["schedule_h"] = epochs * iters * by_batch[max(timed_batches)]["ms_median"] / 1000 / 3600
            key = "kmeans" if method.startswith("lf2") else "dbscan"
            if key in cluster_s:
                per_epoch = cluster_s[key] * (levels if key == "kmeans" else 1)
                row["clustering_h"] = epochs * per_epoch / 3600
        rows.append(row)
    return {"formula": FORMULA, "headroom_gib": HEADROOM_GIB, "cards": [list(c) for c in CARDS],
            "schedule": (f"{epochs} epochs x {iters} steps (paper preset) x the median step at the largest "
                         f"timed batch (in brackets); clustering: {epochs} x section 4's device time "
                         f"(Jaccard + DBSCAN; LF²: {levels} k-means, one per level); feature extraction, target "
                         "BatchNorm statistics and evaluation not included"),
            "rows": rows}
