"""Supervised ReID losses: label-smoothed cross-entropy, batch-hard triplet, softmax triplet.

Triplet mining (Hermans, Beyer & Leibe 2017, "In defense of the triplet loss"): for every anchor the
hardest positive (farthest sample with the same label, the anchor itself excluded) and the hardest
negative (closest sample with another label) in the batch. Anchors without a positive or a negative in
the batch are excluded from the mean; with no valid anchor at all the loss is an exact 0 that still has
a (zero) gradient, so a training step never sees NaN.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def _check_features_labels(features: torch.Tensor, labels: torch.Tensor, fn: str,
                           names: tuple[str, str, str] = ("features", "labels", "C")) -> None:
    x_name, y_name, dim = names
    if not torch.is_tensor(features) or features.dim() != 2:
        raise ValueError(f"{fn}: {x_name} must be a (B, {dim}) tensor; got shape "
                         f"{tuple(features.shape) if torch.is_tensor(features) else type(features).__name__}")
    if not torch.is_tensor(labels) or labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"{fn}: {y_name} must be a (B,) tensor with B = {features.shape[0]} (the number of "
                         f"{x_name} rows); got {tuple(labels.shape) if torch.is_tensor(labels) else labels!r}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"{fn}: labels must be an integer tensor; got {labels.dtype}")


def cross_entropy_ls(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy with label smoothing (Szegedy et al. 2016, "Rethinking the Inception architecture").

    ``(1 − ε) · CE(p, y) + ε · mean_k(−log p_k)``, averaged over the batch: the target distribution puts
    ``1 − ε + ε/K`` on the true class and ``ε/K`` on every class.

    Parameters
    ----------
    logits : (B, K) unnormalised scores.
    targets : (B,) class indices in [0, K).
    epsilon : smoothing ε in [0, 1].
    """
    _check_features_labels(logits, targets, "cross_entropy_ls", names=("logits", "targets", "K"))
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"cross_entropy_ls: epsilon must be in [0, 1]; got {epsilon}")
    k = logits.shape[1]
    if targets.numel():
        lo, hi = (int(v) for v in torch.stack([targets.min(), targets.max()]).tolist())
        if lo < 0 or hi >= k:
            raise ValueError(f"cross_entropy_ls: targets must be class indices in [0, {k}); got values in "
                             f"[{lo}, {hi}] (pseudo-label outliers -1 must be dropped before the loss)")
    log_p = F.log_softmax(logits.float(), dim=1)
    nll = -log_p.gather(1, targets.long().unsqueeze(1)).squeeze(1)
    uniform = -log_p.mean(dim=1)
    return ((1.0 - epsilon) * nll + epsilon * uniform).mean()


def euclidean_dist(features: torch.Tensor) -> torch.Tensor:
    """(B, B) Euclidean distances between the rows, in float32, with a finite gradient at distance 0."""
    x = features.float()
    sq = (x * x).sum(dim=1)
    d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (x @ x.t())
    # clamp: rounding can make d2 slightly negative, and sqrt'(0) = inf
    return d2.clamp_min(1e-12).sqrt()


def hardest_pairs(features: torch.Tensor, labels: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch-hard mining: ``(d_ap, d_an, valid)``, each (B,).

    ``d_ap[i]`` is the largest distance from anchor i to another sample with its label, ``d_an[i]`` the
    smallest distance to a sample with another label; ``valid[i]`` says both exist (entries of invalid
    anchors are 0 and must be ignored).
    """
    dist = euclidean_dist(features)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    valid = pos.any(dim=1) & neg.any(dim=1)
    d_ap = dist.masked_fill(~pos, float("-inf")).amax(dim=1)
    d_an = dist.masked_fill(~neg, float("inf")).amin(dim=1)
    zero = torch.zeros_like(d_ap)
    return torch.where(valid, d_ap, zero), torch.where(valid, d_an, zero), valid


def _mean_valid(per_anchor: torch.Tensor, valid: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    if not bool(valid.any()):
        return features.sum() * 0.0  # 0 with a gradient path, never NaN
    return per_anchor[valid].mean()


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor,
                       margin: Optional[float] = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017; LF² Eq. 9; DCDFA L_BReID's triplet term).

    ``mean_i max(0, m + d(a_i, p_i) − d(a_i, n_i))`` with Euclidean distances on the features as given
    (no normalisation) and the hardest positive/negative of each anchor in the batch.
    ``margin=None`` gives the soft-margin version ``log(1 + exp(d_ap − d_an))``.
    (LF² prints Eq. 9 with a leading minus sign; the loss minimised is the positive hinge above.)

    Parameters
    ----------
    features : (B, C) embeddings.
    labels : (B,) integer identities (any values; only equality matters).
    margin : m ≥ 0, or None for the soft margin.
    """
    _check_features_labels(features, labels, "batch_hard_triplet")
    if margin is not None and margin < 0:
        raise ValueError(f"batch_hard_triplet: margin must be >= 0 or None; got {margin}")
    d_ap, d_an, valid = hardest_pairs(features, labels)
    if margin is None:
        per_anchor = F.softplus(d_ap - d_an)
    else:
        per_anchor = F.relu(margin + d_ap - d_an)
    return _mean_valid(per_anchor, valid, features)


def softmax_triplet(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax triplet loss (LF² Eq. 6–7) with batch-hard positives and negatives.

    ``H_i = e^{d_an} / (e^{d_ap} + e^{d_an})`` (Eq. 7) and ``L = −mean_i log H_i`` (Eq. 6), computed as
    ``logsumexp(d_ap, d_an) − d_an`` so large distances cannot overflow. (Algebraically this equals the
    soft-margin triplet ``log(1 + exp(d_ap − d_an))``.)

    Parameters
    ----------
    features : (B, C) embeddings (Euclidean distances on them as given).
    labels : (B,) integer (pseudo) identities.
    """
    _check_features_labels(features, labels, "softmax_triplet")
    d_ap, d_an, valid = hardest_pairs(features, labels)
    log_h = d_an - torch.logsumexp(torch.stack([d_ap, d_an], dim=1), dim=1)
    return _mean_valid(-log_h, valid, features)
