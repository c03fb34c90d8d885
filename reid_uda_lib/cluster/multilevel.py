"""Multi-level clustering (LF² sec. III-C): one label set per feature level, their quality and agreement.

LF² clusters the teacher's global feature φ^P0 and the K fusion features φ^Pj separately, so every target
image gets K + 1 pseudo labels. :func:`cluster_levels` does that with one setting per level;
:func:`level_report` logs, per round, each level's quality against the hidden identities and the
**obscure-learning agreement**: ARI and NMI between the global labels and each part's labels (LF² Fig. 6
claims the label sets converge to each other as training goes on; this is the number that checks it).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from .pseudo_labels import pseudo_labels
from .quality import label_quality


def level_n_clusters(n_clusters: Sequence[int] | int, n_levels: int) -> list[int]:
    """M_{t,j} per level: one value for every level, or exactly ``n_levels`` values."""
    values = [int(n_clusters)] if isinstance(n_clusters, (int, np.integer)) else [int(v) for v in n_clusters]
    if len(values) == 1:
        return values * n_levels
    if len(values) != n_levels:
        raise ValueError(f"lf2.n_clusters needs 1 value (all levels) or {n_levels} values (one per level: "
                         f"global + {n_levels - 1} parts); got {len(values)}: {tuple(values)}")
    return values


def cluster_levels(features: Sequence, method: str = "kmeans", n_clusters: Sequence[int] | int = 500,
                   seed: int = 0, **dbscan) -> list[np.ndarray]:
    """Cluster each (N, D_j) feature set of ``features`` separately (k-means with ``n_clusters[j]`` clusters,
    or DBSCAN on the Jaccard distance with the ``dbscan`` keywords: eps, min_samples, k1, k2).

    Returns one np.int64 (N,) array per level (-1 = DBSCAN outlier).
    """
    ks = level_n_clusters(n_clusters, len(features))
    return [pseudo_labels(f, method=method, n_clusters=k, seed=seed, **dbscan) for f, k in zip(features, ks)]


def label_agreement(labels_a, labels_b) -> dict:
    """ARI and NMI between two label sets of the same images, on the points that neither marks -1."""
    a, b = np.asarray(labels_a).reshape(-1), np.asarray(labels_b).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"label_agreement: both label sets must label the same images; got {a.size} and {b.size}")
    keep = (a >= 0) & (b >= 0)
    if not keep.any():
        return {"ari": float("nan"), "nmi": float("nan"), "n_points": 0}
    return {"ari": float(adjusted_rand_score(a[keep], b[keep])),
            "nmi": float(normalized_mutual_info_score(a[keep], b[keep])), "n_points": int(keep.sum())}


def level_report(levels: Sequence, names: Sequence[str], true_ids) -> dict:
    """``{name: label_quality(...)}`` for every level, plus ``"agreement": {name_j: {"ari", "nmi", ...}}``
    between level 0 and each other level (the obscure-learning agreement, logged in metrics.jsonl)."""
    if len(levels) != len(names):
        raise ValueError(f"level_report: {len(levels)} label sets but {len(names)} names ({list(names)})")
    out: dict = {name: label_quality(lab, true_ids) for name, lab in zip(names, levels)}
    out["agreement"] = {name: label_agreement(levels[0], lab) for name, lab in zip(names[1:], levels[1:])}
    return out
