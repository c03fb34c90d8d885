"""Pseudo labels from target features: DBSCAN on the k-reciprocal Jaccard distance, or k-means.

DBSCAN (SpCL / MMT / DCDFA's SBase: eps = 0.6, min_samples = 4, k1 = 30, k2 = 6) marks outliers -1;
k-means (LF²: M = 500 / 700 / 900 clusters) labels every point.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from .auto_eps import eps_for_noise, kth_neighbour_distance
from .jaccard import as_feature_tensor, jaccard_distance
from .kmeans import kmeans

#: ``pseudo_labels(sparse=None)`` uses the sparse Jaccard matrix from this many points on. Labels are
#: identical either way (for eps < 1, see :func:`_dbscan`); the sparse path needs far less memory
#: (a dense float32 N x N is 64 MB at N = 4096, 670 MB at 12,936 and 4.3 GB at 32,621).
SPARSE_AUTO_MIN_N = 4096


class EmptyClusterError(ValueError):
    """Clustering produced too few clusters (typically: every point is an outlier)."""


def relabel_first_occurrence(labels: np.ndarray) -> np.ndarray:
    """Map cluster ids to 0..M-1 in order of first occurrence; -1 (outlier) stays -1."""
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, dtype=np.int64)
    keep = labels >= 0
    _, first, inverse = np.unique(labels[keep], return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    out[keep] = rank[inverse]
    return out


def check_clusters(labels, min_clusters: int = 2) -> int:
    """Return the number of clusters in ``labels`` (-1 = outlier); raise if fewer than ``min_clusters``.

    Raises
    ------
    EmptyClusterError
        With the number of points and outliers and the knobs that change the outcome.
    """
    labels = np.asarray(labels)
    n = labels.size
    n_out = int((labels < 0).sum())
    n_clusters = int(np.unique(labels[labels >= 0]).size)
    if n_clusters < min_clusters:
        head = (f"clustering gave {n_clusters} cluster(s), fewer than the {min_clusters} needed: {n} points, "
                f"{n_out} outliers ({100.0 * n_out / max(n, 1):.0f}%).")
        if n_clusters >= 1 and n_out < n / 2:   # identities merged, not dropped: the radius is too large
            raise EmptyClusterError(
                f"{head} The points merged: for DBSCAN lower eps (the Jaccard radius) or lower k1 (smaller "
                "k-reciprocal sets keep identities apart); for k-means raise n_clusters. Features from an "
                "untrained / collapsed model also cause this.")
        raise EmptyClusterError(
            f"{head} For DBSCAN raise eps (the Jaccard "
            "radius, < 1), lower min_samples, or raise k1 (larger k-reciprocal sets make points closer); "
            "for k-means raise n_clusters. Too few points per identity (fewer than min_samples) or "
            "features from an untrained / collapsed model also cause this.")
    return n_clusters


def _dbscan(features, eps: float, min_samples: int, k1: int, k2: int, sparse: bool,
            noise: float = 0.0) -> tuple[np.ndarray, float]:
    """DBSCAN(metric="precomputed") on the Jaccard distance, dense or sparse (same labels).

    sklearn reads a sparse precomputed matrix as a neighbour graph: stored entries (explicit zeros
    included) with value <= eps are neighbours, absent entries never are, and the diagonal is made
    explicit, so each point is its own neighbour. The sparse Jaccard stores every pair with d < 1
    (the others are exactly 1), so for eps < 1 the neighbourhoods, hence the labels, equal the dense
    ones. Entries > eps are dropped first: they can never be neighbours and only cost memory.
    ``noise`` > 0 replaces ``eps`` by the radius derived from the distances (:mod:`.auto_eps`, Eq. A2).
    Returns the labels and the radius used.
    """
    dist = jaccard_distance(features, k1=k1, k2=k2, sparse=sparse)
    if noise:
        eps = eps_for_noise(kth_neighbour_distance(dist, min_samples), noise)
    if sparse:
        near = dist.data <= eps
        rows = np.repeat(np.arange(dist.shape[0]), np.diff(dist.indptr))
        indptr = np.zeros(dist.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[near], minlength=dist.shape[0]), out=indptr[1:])
        dist = sp.csr_matrix((dist.data[near], dist.indices[near], indptr), shape=dist.shape)
    elif not isinstance(dist, np.ndarray):
        dist = dist.cpu().numpy()
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dist), eps


def pseudo_labels(features, method: str = "dbscan", eps: float = 0.6, min_samples: int = 4, k1: int = 30,
                  k2: int = 6, n_clusters: int = 500, seed: int = 0, sparse: bool | None = None,
                  n_init: int = 1, noise: float = 0.0, info: dict | None = None) -> np.ndarray:
    """Cluster (N, D) features into pseudo identities.

    Parameters
    ----------
    features : numpy array or torch tensor (any device); L2-normalised here.
    method : ``"dbscan"`` (on the k-reciprocal Jaccard distance, :func:`jaccard_distance`) or
        ``"kmeans"`` (:func:`~reid_uda_lib.cluster.kmeans.kmeans`, torch, on the features' device;
        Euclidean on L2-normalised features).
    eps, min_samples : DBSCAN radius (0 < eps < 1; at eps >= 1 every pair would be a neighbour)
        and core-point size (the point itself included, sklearn's convention).
    k1, k2 : Jaccard neighbourhood sizes (k1 >= N is clipped to N - 1 with a warning).
    n_clusters, seed, n_init : k-means settings (seeded, deterministic).
    sparse : Jaccard matrix layout for DBSCAN; None -> sparse from ``SPARSE_AUTO_MIN_N`` points on.
    noise : > 0: DBSCAN's radius is derived from the data instead of ``eps``, so that about this share of
        the points are noise (:mod:`reid_uda_lib.cluster.auto_eps`; ``uda.auto_eps_noise``).
    info : a dict that receives ``"eps"``, the radius DBSCAN used (derived or given).

    Returns
    -------
    np.int64 array (N,): clusters numbered 0..M-1 in order of first occurrence, -1 = outlier.

    Raises
    ------
    EmptyClusterError
        When DBSCAN marks every point as an outlier.
    """
    x, _ = as_feature_tensor(features)
    n = x.shape[0]
    if method == "dbscan":
        if not 0 < float(eps) < 1:
            raise ValueError(f"eps must be in (0, 1) for the Jaccard distance, got {eps!r} "
                             "(at eps >= 1 every pair of points would be neighbours)")
        if int(min_samples) != min_samples or min_samples < 1:
            raise ValueError(f"min_samples must be a positive integer, got {min_samples!r}")
        use_sparse = n >= SPARSE_AUTO_MIN_N if sparse is None else bool(sparse)
        labels, used = _dbscan(features, float(eps), int(min_samples), k1, k2, use_sparse, float(noise))
        if info is not None:
            info["eps"] = used
        if (labels < 0).all():
            check_clusters(labels, min_clusters=1)
    elif method == "kmeans":
        if int(n_clusters) != n_clusters or not 1 <= n_clusters <= n:
            raise ValueError(f"n_clusters must be an integer in [1, N={n}] for k-means, got {n_clusters!r}")
        if not bool((x.norm(dim=1) > 0).all()):
            raise ValueError("features has all-zero rows; they cannot be L2-normalised for k-means")
        labels = kmeans(x, int(n_clusters), seed=seed, n_init=int(n_init)).labels.cpu().numpy()
    else:
        raise ValueError(f"method must be 'dbscan' or 'kmeans', got {method!r}")
    return relabel_first_occurrence(labels)
