"""k-means in torch on the features' device (LF²'s multi-level clustering: M = 500 / 700 / 900 clusters).

LF² clusters K + 1 = 3 feature sets per epoch at N ≈ 13–17k, d = 2048; sklearn's ``KMeans`` takes 16–20 s
per call on the faster 2-core CPU of this project (48–81 s were measured on the slower one), which would
dominate training. This version is Lloyd k-means on the L2-normalised features whose final labels are
nearest-centroid in the full space; ``benchmarks/bench_kmeans.py`` measures it against sklearn (README,
"Benchmarks"). It is fast by five choices:

* **Work in the top principal components first.** A seeded randomised PCA (Halko et al. 2011; the basis from
  at most ``pca_rows`` random rows, every row projected) gives ``init_dim`` = 128 coordinates. k-means++
  seeding (Arthur & Vassilvitskii 2007, greedy with sklearn's ``2 + ln k`` local trials) and Lloyd to
  convergence run there, where a pass costs 1/16 of a full one. (A random Gaussian projection to 128-d was
  1.3 % worse in inertia on ReID-like features; PCA keeps the directions the clusters differ in.)
* **Then Lloyd in the full space**, from the full-dimensional means of the subspace clusters: it only has to
  correct the points the projection misplaced, typically 1–5 passes.
* **Elkan-style pruning** (Elkan 2003) in a GEMM-friendly form: per point an upper bound on the distance to
  its own centroid and a lower bound on every other one, moved by the centroid shifts; the upper bound is
  tightened (one gathered row) only where it crosses a lower bound, and only the rows still in doubt are
  recomputed, with one matrix product.
* **One matrix product per pass** for the distances (``‖x‖² + ‖c‖² − 2 x·c``), in row chunks.
* **Stopping** when at most ``tol`` × N points changed cluster in a pass (``tol = 0``: until no point moves,
  sklearn's "strict convergence"); the default 1e-3 is 13 points of Market's 12,936.

Seeded through a CPU ``torch.Generator`` (``seed``), so a CPU run repeats bit for bit; empty clusters are
re-seeded with the points farthest from their centroids (sklearn's rule).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .knn import few_threads, matmul


class KMeansResult(NamedTuple):
    """``labels`` (N,) int64 on the features' device, ``inertia`` (Σ_i ‖x_i − c_{l_i}‖² of the L2-normalised
    features to the means of their clusters), ``centroids`` (k, d), ``n_iter`` (assignment passes in the full
    space), ``n_iter_pca`` (passes in the principal subspace before them; 0 when it was not used)."""
    labels: torch.Tensor
    inertia: float
    centroids: torch.Tensor
    n_iter: int
    n_iter_pca: int = 0


def _row_chunk(n_cols: int, budget: int = 1 << 24) -> int:
    return max(1, budget // max(n_cols, 1))


def _sq_dists(x: torch.Tensor, x_sq: torch.Tensor, c: torch.Tensor, c_sq: torch.Tensor,
              big: bool = False) -> torch.Tensor:
    """(n, k) squared Euclidean distances ``‖x‖² + ‖c‖² − 2 x·c``, clamped at 0 (rounding); ``big``: the
    product uses every thread (inside :func:`few_threads`)."""
    prod = matmul(x, c.t()) if big else x @ c.t()
    return prod.mul_(-2.0).add_(c_sq.unsqueeze(0)).add_(x_sq.unsqueeze(1)).clamp_min_(0.0)


def pca_projection(x: torch.Tensor, dim: int, generator: torch.Generator, n_power: int = 2,
                   max_rows: int = 4096) -> torch.Tensor:
    """(N, dim) coordinates of the centred rows of ``x`` on their top ``dim`` principal axes.

    The axes come from a seeded randomised range finder (Halko et al. 2011: Gaussian sketch, ``n_power``
    power iterations, then the SVD of the small projected matrix) run on at most ``max_rows`` rows drawn
    with ``generator`` (``max_rows <= 0``: all rows); every row is then projected.
    """
    n = x.shape[0]
    rows = x if max_rows <= 0 or n <= max_rows else x[torch.randperm(n, generator=generator)[:max_rows].to(x.device)]
    mean = rows.mean(0, keepdim=True)
    rc = rows - mean
    y = matmul(rc, torch.randn(x.shape[1], dim, generator=generator).to(x.device, x.dtype))
    for _ in range(n_power):
        y = matmul(rc, matmul(rc.t(), torch.linalg.qr(y)[0]))
    basis = torch.linalg.qr(y)[0]
    _, _, vh = torch.linalg.svd(matmul(basis.t(), rc), full_matrices=False)
    return matmul(x - mean, vh.t())


def kmeans_plusplus(x: torch.Tensor, n_clusters: int, generator: torch.Generator,
                    n_local_trials: int | None = None) -> torch.Tensor:
    """Indices (k,) of k-means++ seeds among the rows of ``x`` (greedy: ``2 + ln k`` D²-sampled candidates
    per step, sklearn's number; the one that lowers the potential most is kept)."""
    n = x.shape[0]
    dev = x.device
    x_sq = (x * x).sum(1)
    trials = n_local_trials or 2 + int(math.log(n_clusters))
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    closest = _sq_dists(x[first:first + 1], x_sq[first:first + 1], x, x_sq)[0]
    uniforms = torch.rand(n_clusters, trials, generator=generator, dtype=torch.float64).to(dev)
    for step in range(1, n_clusters):
        cum = torch.cumsum(closest.double(), 0)
        cand = torch.searchsorted(cum, uniforms[step] * cum[-1]).clamp_max_(n - 1)
        d_cand = _sq_dists(x[cand], x_sq[cand], x, x_sq)                  # (trials, n)
        new = torch.minimum(closest.unsqueeze(0), d_cand)
        best = int(torch.argmin(new.double().sum(1)))
        closest = new[best]
        chosen.append(int(cand[best]))
    return torch.as_tensor(chosen, dtype=torch.long, device=dev)


def _means(x: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    sums = torch.zeros(k, x.shape[1], device=x.device, dtype=x.dtype).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=k)
    return sums / counts.clamp_min(1).unsqueeze(1).to(x.dtype), counts


def _inertia(x: torch.Tensor, labels: torch.Tensor, c: torch.Tensor) -> float:
    total = 0.0
    step = _row_chunk(x.shape[1], 1 << 22)
    for i in range(0, x.shape[0], step):
        diff = x[i:i + step] - c[labels[i:i + step]]
        total += float((diff * diff).sum(dtype=torch.float64))
    return total


def _lloyd(x: torch.Tensor, centers: torch.Tensor, max_iter: int, tol: float
           ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Lloyd iterations with Elkan-style pruning; returns (labels, centroid means, passes)."""
    n, k = x.shape[0], centers.shape[0]
    x_sq = (x * x).sum(1)
    chunk = _row_chunk(k)
    labels = torch.empty(n, dtype=torch.long, device=x.device)
    upper = torch.empty(n, dtype=x.dtype, device=x.device)      # upper bound on the distance to the own centroid
    lower = torch.empty(n, k, dtype=x.dtype, device=x.device)   # lower bounds on every other distance
    rows = torch.arange(n, device=x.device)
    active = rows
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        c_sq = (centers * centers).sum(1)
        old = labels[active].clone() if n_iter > 1 else None
        everyone = active.numel() == n
        for i in range(0, active.numel(), chunk):
            idx = slice(i, i + chunk) if everyone else active[i:i + chunk]    # a view, not a copy, when all rows
            dist = _sq_dists(x[idx], x_sq[idx], centers, c_sq, big=True).sqrt_()
            best = dist.argmin(1)
            labels[idx] = best
            upper[idx] = dist.gather(1, best.unsqueeze(1)).squeeze(1)
            dist.scatter_(1, best.unsqueeze(1), float("inf"))
            lower[idx] = dist
        changed = active.numel() if old is None else int((labels[active] != old).sum())
        new_centers, counts = _means(x, labels, k)
        empty = (counts == 0).nonzero().squeeze(1)
        if empty.numel():                                         # re-seed with the farthest points
            far = torch.topk(upper, empty.numel()).indices
            new_centers[empty] = x[far]
            labels[far] = empty
            lower[far] = 0.0                                      # their bounds are void: recompute
            changed += empty.numel()
        if changed <= tol * n and n_iter > 1:
            centers = new_centers
            break
        shift = (new_centers - centers).norm(dim=1)
        centers = new_centers
        # bounds after the move (triangle inequality): the own distance grows by at most its centroid's
        # shift, every other one shrinks by at most its own
        upper.add_(shift[labels])
        lower.sub_(shift.unsqueeze(0))
        lower.scatter_(1, labels.unsqueeze(1), float("inf"))
        nearest_other = lower.amin(1)
        doubt = rows[nearest_other < upper]
        if doubt.numel():                                         # tighten: the exact own distance
            upper[doubt] = _own_dist(x[doubt], labels[doubt], centers)
        active = doubt[nearest_other[doubt] < upper[doubt]]
        if active.numel() == 0:
            break
    return labels, centers, n_iter


def _own_dist(x: torch.Tensor, labels: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    step = _row_chunk(x.shape[1], 1 << 22)
    for i in range(0, x.shape[0], step):
        out[i:i + step] = (x[i:i + step] - c[labels[i:i + step]]).norm(dim=1)
    return out


def kmeans(features, n_clusters: int, seed: int = 0, max_iter: int = 100, tol: float = 1e-3,
           n_init: int = 1, init_dim: int = 128, pca_rows: int = 4096) -> KMeansResult:
    """k-means of the L2-normalised rows of ``features`` (torch tensor on any device, or numpy).

    Parameters
    ----------
    features : (N, d) array; rows are L2-normalised here (all-zero rows are an error).
    n_clusters : k in [1, N].
    seed : seeds the CPU generator of the PCA and the k-means++ seeding (run r of ``n_init`` uses ``seed + r``).
    max_iter : cap on assignment passes, in the subspace and again in the full space.
    tol : stop when at most ``tol`` × N points changed cluster in a pass (0 = until none changes).
    n_init : independent seedings; the lowest inertia wins.
    init_dim : dimension of the principal subspace where seeding and the first Lloyd passes run
        (0, or ``init_dim >= min(N, d)``: everything in the full space).
    pca_rows : at most this many random rows estimate the principal axes (0 = all).

    Returns
    -------
    :class:`KMeansResult` ``(labels, inertia, centroids, n_iter, n_iter_pca)``; labels are 0..k−1 in
    centroid order (renumber with :func:`~reid_uda_lib.cluster.relabel_first_occurrence` if wanted). Every
    point is assigned to its nearest centroid in the full space as of the last pass.
    """
    x = torch.as_tensor(features).detach().float()
    if x.dim() != 2:
        raise ValueError(f"kmeans: features must be an (N, d) array; got shape {tuple(x.shape)}")
    n = x.shape[0]
    if int(n_clusters) != n_clusters or not 1 <= n_clusters <= n:
        raise ValueError(f"kmeans: n_clusters must be an integer in [1, N={n}]; got {n_clusters!r}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("kmeans: features contain NaN or inf")
    norms = x.norm(dim=1, keepdim=True)
    if not bool((norms > 0).all()):
        raise ValueError("kmeans: features has all-zero rows; they cannot be L2-normalised")
    if n_init < 1 or max_iter < 1 or tol < 0 or init_dim < 0:
        raise ValueError(f"kmeans: need n_init >= 1, max_iter >= 1, tol >= 0, init_dim >= 0; "
                         f"got {n_init}, {max_iter}, {tol}, {init_dim}")
    x = x / norms
    k = int(n_clusters)
    best: KMeansResult | None = None
    with few_threads(x.device):        # many small ops: fewer threads are faster; big products use all
        for run in range(int(n_init)):
            gen = torch.Generator().manual_seed(int(seed) + run)
            centers, n_pca = _initial_centers(x, k, gen, int(max_iter), float(tol), int(init_dim), int(pca_rows))
            labels, _, n_iter = _lloyd(x, centers, int(max_iter), float(tol))
            centroids, _ = _means(x, labels, k)
            res = KMeansResult(labels, _inertia(x, labels, centroids), centroids, n_iter, n_pca)
            if best is None or res.inertia < best.inertia:
                best = res
    return best


def _initial_centers(x: torch.Tensor, k: int, gen: torch.Generator, max_iter: int, tol: float,
                     init_dim: int, pca_rows: int) -> tuple[torch.Tensor, int]:
    """Full-space starting centroids: k-means++ seeds refined by Lloyd in the principal subspace (then the
    full-space means of those clusters), or the k-means++ seeds themselves without a subspace."""
    if not 0 < init_dim < min(x.shape):
        return x[kmeans_plusplus(x, k, gen)].clone(), 0
    y = pca_projection(x, init_dim, gen, max_rows=pca_rows)
    seeds = kmeans_plusplus(y, k, gen)
    labels, _, n_pca = _lloyd(y, y[seeds].clone(), max_iter, tol)
    centers, counts = _means(x, labels, k)
    empty = counts == 0                                           # none after Lloyd's re-seeding; kept safe
    centers[empty] = x[seeds[empty]]
    return centers, n_pca


def inertia_of(features, labels) -> float:
    """Σ_i ‖x_i − mean of its cluster‖² of the L2-normalised ``features`` (to compare any two labellings)."""
    x = F.normalize(torch.as_tensor(features).float(), dim=1)
    lab = torch.as_tensor(labels, device=x.device).long()
    uniq, inv = torch.unique(lab, return_inverse=True)
    centroids, _ = _means(x, inv, uniq.numel())
    return _inertia(x, inv, centroids)
