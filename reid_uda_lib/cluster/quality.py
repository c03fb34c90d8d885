"""Pseudo-label quality against the (hidden) true identities, logged by the engine every round."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def purity(pred_labels, true_labels) -> float:
    """Fraction of points whose cluster's majority identity is their own: Σ_c max_t |c ∩ t| / N."""
    pred = np.asarray(pred_labels)
    if pred.size == 0:
        return float("nan")
    table = contingency_matrix(np.asarray(true_labels), pred, sparse=True)   # true ids x clusters
    return float(table.max(axis=0).toarray().sum() / pred.size)


def label_quality(pred_labels, true_labels) -> dict:
    """Clustering quality of pseudo labels (-1 = outlier) against true identity labels.

    ``nmi``, ``ari`` (sklearn; NMI with the arithmetic mean) and ``purity`` are computed on the
    non-outlier points only -- they measure the clusters the model is trained on; ``nmi_all`` and
    ``ari_all`` count every outlier as its own singleton cluster, so discarding points is not free.

    Returns
    -------
    dict with ``nmi``, ``ari``, ``purity`` (NaN when every point is an outlier), ``n_clusters``,
    ``outlier_ratio``, ``nmi_all``, ``ari_all``, ``n_points``, ``n_outliers``, ``n_true_ids``.
    """
    pred = np.asarray(pred_labels).reshape(-1)
    true = np.asarray(true_labels).reshape(-1)
    if pred.shape != true.shape:
        raise ValueError(f"pred_labels and true_labels must have the same length, got {pred.size} and {true.size}")
    if pred.size == 0:
        raise ValueError("label_quality needs at least one label, got empty pred_labels")
    if not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"pred_labels must be integers (-1 = outlier), got dtype {pred.dtype}")
    keep = pred >= 0
    n_out = int((~keep).sum())
    nan = float("nan")
    if keep.any():
        nmi = float(normalized_mutual_info_score(true[keep], pred[keep]))
        ari = float(adjusted_rand_score(true[keep], pred[keep]))
        pur = purity(pred[keep], true[keep])
    else:
        nmi = ari = pur = nan
    singletons = pred.astype(np.int64)
    singletons[~keep] = singletons.max(initial=-1) + 1 + np.arange(n_out)
    return {
        "nmi": nmi,
        "ari": ari,
        "purity": pur,
        "n_clusters": int(np.unique(pred[keep]).size),
        "outlier_ratio": n_out / pred.size,
        "nmi_all": float(normalized_mutual_info_score(true, singletons)),
        "ari_all": float(adjusted_rand_score(true, singletons)),
        "n_points": int(pred.size),
        "n_outliers": n_out,
        "n_true_ids": int(np.unique(true).size),
    }
