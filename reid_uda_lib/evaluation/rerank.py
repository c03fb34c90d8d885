"""k-reciprocal re-ranking for query/gallery evaluation (Zhong et al., CVPR 2017).

The k-reciprocal sets, their expansion, the Gaussian-kernel encoding, the query expansion and the
min/max Jaccard all come from :mod:`reid_uda_lib.cluster.jaccard`; this module only sets the
parameters of the paper's reference code (``re_ranking`` in zhunzhong07/person-re-ranking, the
version most ReID repositories carry) and mixes in the original distance.
"""
from __future__ import annotations

import torch

from ..cluster.jaccard import as_feature_tensor, check_k, jaccard_from_sum_min, reciprocal_encoding, sum_min
from ..cluster.knn import few_threads, matmul


def re_ranking(query_features, gallery_features, k1: int = 20, k2: int = 6, lambda_value: float = 0.3):
    """Re-ranked query x gallery distance: (1 - λ) * Jaccard + λ * original distance.

    Convention of the paper's reference code (Zhong et al. 2017, final distance d*):

    * the original distance is the squared Euclidean distance of the features as given (no
      normalisation here; pass L2-normalised features for the usual cosine set-up) over
      query ∪ gallery, each row divided by its largest value over all Q + G points;
    * neighbour lists hold k1 + 1 entries (the point itself first, ties by lower index);
      k-reciprocal sets, the round(k1/2) expansion with the 2/3 rule, the weights exp(-distance)
      normalised per row, and the mean over the first k2 list entries are computed for every point,
      so queries can be neighbours of each other, as in the reference;
    * the Jaccard distance is needed, and computed, only for query rows against gallery columns.

    Parameters
    ----------
    query_features : (Q, D) numpy array or torch tensor.
    gallery_features : (G, D), same type family and D.
    k1, k2 : neighbourhood sizes (paper: 20, 6); k1 >= Q + G is clipped to Q + G - 1 with a warning.
    lambda_value : weight λ of the original distance, in [0, 1] (paper: 0.3).

    Returns
    -------
    (Q, G) float32 distance: numpy when the query features are numpy, else a torch tensor on their
    device. Negative Jaccard values from float rounding are clipped to 0.
    """
    q, q_np = as_feature_tensor(query_features, "query_features")
    g, _ = as_feature_tensor(gallery_features, "gallery_features")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query_features and gallery_features must have the same dimension, got "
                         f"{q.shape[1]} and {g.shape[1]}")
    if q.shape[0] == 0 or g.shape[0] == 0:
        raise ValueError(f"re_ranking needs at least one query and one gallery feature, got "
                         f"Q={q.shape[0]}, G={g.shape[0]}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}")
    g = g.to(q.device)
    n_q = q.shape[0]
    x = torch.cat([q, g])
    n = x.shape[0]
    k1, k2 = check_k(n, k1, k2, name="query_features + gallery_features")
    lam = float(lambda_value)
    out = torch.empty((n_q, n - n_q), dtype=torch.float32, device=x.device)
    with few_threads(x.device):
        v, _, row_max = reciprocal_encoding(x, k1, k2, list_len=k1 + 1, metric="sqeuclidean",
                                            scale_by_row_max=True)
        sq = (x * x).sum(1)
        for r0, r1, c0, m in sum_min(v, rows=(0, n_q), cols=(n_q, n)):
            dot = matmul(x[r0:r1], x[n_q:].T)
            original = ((sq[r0:r1, None] + sq[None, n_q:]) - 2 * dot) / row_max[r0:r1, None]
            out[r0:r1] = jaccard_from_sum_min(m) * (1 - lam) + original * lam
    return out.cpu().numpy() if q_np else out
