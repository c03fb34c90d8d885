"""DBSCAN's radius from the data: the sorted k-dist heuristic of the DBSCAN paper (Ester et al., KDD 1996, sec. 4.2).

A fixed Jaccard radius (the papers' eps = 0.6, the ``cpu`` preset's 0.4) is tuned on one dataset: on another
target its features are spread differently and the same radius leaves most images out as outliers (a
synthetic-to-real run left 69-87 % of CUHK03's images out at eps = 0.4; docs/results.md). The DBSCAN paper
chooses eps from the data instead. With k = min_samples, let

    d_k(i) = the distance from point i to its k-th nearest point, i itself counted first   (Eq. A1)

(sklearn's convention: i is a core point iff at least k points, i included, lie within eps, i.e. iff
d_k(i) <= eps). Sorting d_k gives the "sorted k-dist graph"; points to the right of its knee are noise, and
the paper sets eps at the d_k of the noise share the user expects:

    eps = Q_{1 - p}(d_k)        (Eq. A2; Q_q the q-quantile over the N points, p the expected noise share)

so that a share 1 - p of the points are core points. Non-core points within eps of a core point still join
its cluster (DBSCAN's border points), so the outlier share ends at p or below. ``p`` is ``uda.auto_eps_noise``
(0 = off: the fixed ``uda.eps``); it is a share of images, which carries from one dataset to another where a
Jaccard radius does not. Not in either paper; a named switch.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

#: eps stays in (0, 1): at 1 every pair of points would be neighbours (the Jaccard distance is at most 1)
EPS_FLOOR, EPS_CEIL = 1e-6, 1.0 - 1e-6


def kth_neighbour_distance(dist, k: int) -> np.ndarray:
    """Eq. A1: (N,) d_k(i) from a Jaccard distance matrix, dense (numpy or torch, N x N) or sparse CSR.

    In the sparse matrix an absent entry is a distance of 1 (:func:`~reid_uda_lib.cluster.jaccard_distance`
    stores every pair with d < 1). The point itself is counted first at distance 0 whatever the diagonal
    holds. ``k`` is DBSCAN's ``min_samples``.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k (min_samples) must be >= 1; got {k}")
    if sp.issparse(dist):
        dist = sp.csr_matrix(dist)
        n = dist.shape[0]
        out = np.ones(n, dtype=np.float64)
        if k == 1:
            return np.zeros(n)
        for i in range(n):
            lo, hi = dist.indptr[i], dist.indptr[i + 1]
            others = dist.data[lo:hi][dist.indices[lo:hi] != i]
            if others.size >= k - 1:
                out[i] = np.partition(others, k - 2)[k - 2]
        return out
    d = dist.detach().cpu().numpy() if isinstance(dist, torch.Tensor) else np.asarray(dist)
    n = d.shape[0]
    if d.ndim != 2 or d.shape[1] != n:
        raise ValueError(f"dist must be a square N x N matrix; got shape {tuple(d.shape)}")
    if k == 1:
        return np.zeros(n)
    if k > n:
        return np.ones(n)
    d = np.array(d, dtype=np.float64)
    np.fill_diagonal(d, np.inf)                         # the point itself is counted separately, first
    return np.partition(d, k - 2, axis=1)[:, k - 2]


def eps_for_noise(kdist: np.ndarray, noise: float) -> float:
    """Eq. A2: the radius at which a share ``1 - noise`` of the points are core points.

    The quantile is an observed d_k (numpy's ``"lower"`` method), so exactly the points with d_k at or below
    it are core. Kept inside (0, 1): where more than ``noise`` of the points have fewer than k neighbours at
    any distance below 1, the largest d_k below 1 is used (the outlier share then exceeds ``noise`` and
    the loop logs it).
    """
    noise = float(noise)
    if not 0.0 < noise < 1.0:
        raise ValueError(f"uda.auto_eps_noise (the expected noise share p) must be in (0, 1); got {noise!r}")
    kdist = np.asarray(kdist, dtype=np.float64)
    if kdist.size == 0:
        raise ValueError("eps_for_noise: no points")
    eps = float(np.quantile(kdist, 1.0 - noise, method="lower"))
    if eps >= EPS_CEIL:
        below = kdist[kdist < EPS_CEIL]
        eps = float(below.max()) if below.size else EPS_CEIL
    return min(max(eps, EPS_FLOOR), EPS_CEIL)
