"""Query x gallery distance matrices (Euclidean or cosine), chunked over queries."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["pairwise_distance"]

_METRICS = ("euclidean", "cosine")


def _as_features(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor or numpy array; got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (num_items x feature_dim); got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): need at least one item with a feature")
    if not x.is_floating_point():
        raise ValueError(f"{name} must hold floating-point features; got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    # float64 stays float64 until the end (accuracy); half types are computed in float32.
    return x.detach() if x.dtype == torch.float64 else x.detach().float()


@torch.no_grad()
def pairwise_distance(query_features: Any, gallery_features: Any, metric: str = "euclidean",
                      normalize: bool = False, *, chunk_size: int = 4096) -> torch.Tensor:
    """Distance between every query and every gallery feature.

    Parameters
    ----------
    query_features : (Q, D) tensor or array.
    gallery_features : (G, D) tensor or array, on the same device as ``query_features``.
    metric : ``"euclidean"`` (``sqrt(max(|q|^2 + |g|^2 - 2 q.g, 0))``, not squared) or ``"cosine"``
        (``1 - cos(q, g)``; a zero vector has cosine 0 with everything, so distance 1).
    normalize : L2-normalise both feature sets first (so Euclidean becomes ``sqrt(2 - 2 cos)``);
        cosine distance does not depend on it.
    chunk_size : queries per chunk: temporaries stay ``chunk_size x G``.

    Returns
    -------
    (Q, G) float32 tensor on the features' device (numpy inputs: CPU).
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}; got {metric!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    q = _as_features(query_features, "query_features")
    g = _as_features(gallery_features, "gallery_features")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query_features and gallery_features have different feature sizes: "
                         f"{q.shape[1]} vs {g.shape[1]}")
    if q.device != g.device:
        raise ValueError(f"query_features is on {q.device} but gallery_features is on {g.device}; "
                         "put both on the same device")
    dtype = torch.promote_types(q.dtype, g.dtype)
    q, g = q.to(dtype), g.to(dtype)
    if normalize or metric == "cosine":
        q, g = F.normalize(q, dim=1), F.normalize(g, dim=1)
    out = torch.empty(q.shape[0], g.shape[0], dtype=torch.float32, device=q.device)
    g_sq = (g * g).sum(dim=1)
    for lo in range(0, q.shape[0], chunk_size):
        qc = q[lo:lo + chunk_size]
        sim = qc @ g.T  # chunk x G: the only large temporary
        if metric == "cosine":
            dist = sim.neg_().add_(1.0)
        else:
            dist = sim.mul_(-2.0).add_(g_sq).add_((qc * qc).sum(dim=1, keepdim=True)).clamp_(min=0).sqrt_()
        out[lo:lo + chunk_size] = dist
    return out
