"""DCDFA's losses on original and recomposed features (Zhang et al., sec. 3.3).

For pair k (source image i, target image j) the set {f_i^s, f_j^t, r_j^s, r_i^t} holds two identities
(i: f_i^s and r_i^t; j: f_j^t and r_j^s) and two domains (source: f_i^s and r_j^s; target: f_j^t and r_i^t).
L_CID (Eq. 6) asks the identities to follow the base feature b, L_Domain (Eq. 7) the domains to follow the
enhancement e. Inputs are (N, C) feature rows or (N, 2) logits, row k holding pair k.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# positions in the stacked set (f_s, f_t, r_s, r_t) = (f_i^s, f_j^t, r_j^s, r_i^t)
_POSITIVE = (3, 2, 1, 0)          # f_i^s <-> r_i^t (identity i), f_j^t <-> r_j^s (identity j)


def _check_rows(fn: str, **tensors: torch.Tensor) -> int:
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    first = next(iter(tensors.values()))
    if first.dim() != 2 or any(v.shape != first.shape for v in tensors.values()):
        raise ValueError(f"{fn}: every input must be an (N, C) tensor of the same shape, row k holding pair "
                         f"k; got {shapes}")
    if first.shape[0] == 0:
        raise ValueError(f"{fn}: got 0 pairs")
    return first.shape[0]


def cid_loss(f_s: torch.Tensor, f_t: torch.Tensor, r_s: torch.Tensor, r_t: torch.Tensor,
             tau: torch.Tensor | float, centre: bool = False) -> torch.Tensor:
    """Cross-domain ReID loss L_CID, DCDFA Eq. 6.

    Row k: ``f_s[k] = f_i^s``, ``f_t[k] = f_j^t``, ``r_s[k] = r_j^s``, ``r_t[k] = r_i^t``. Each of the four
    elements is an anchor once; its positive is the element with its identity (f_i^s ↔ r_i^t,
    f_j^t ↔ r_j^s) and the two others are negatives. With cosine similarities s::

        ℓ_m = log(1 + exp(−s_m⁺/τ) · Σ_n exp(s_mn⁻/τ))        (computed as softplus(logsumexp(s⁻/τ) − s⁺/τ))
        L_CID = mean over the N pairs of (1/4) Σ_m ℓ_m

    ``tau`` is the learnable temperature (a positive scalar tensor, see ``models.dcdfa.Temperature``).

    ``centre`` (this project's addition, config ``dcdfa.cid_centre``, off in the paper's rows): the cosines are
    taken after subtracting the mean of the 4N features of the batch. Features after a ReLU share one orthant,
    so their cosines all sit near 1 (0.84–0.98 in the lab) and every ℓ_m near ln 3 whatever the identities;
    centring measures the similarities around the batch's common direction instead.
    """
    _check_rows("cid_loss", f_s=f_s, f_t=f_t, r_s=r_s, r_t=r_t)
    x = torch.stack([f_s, f_t, r_s, r_t], dim=1).float()                              # (N, 4, C)
    if centre:
        x = x - x.mean(dim=(0, 1), keepdim=True)
    x = F.normalize(x, dim=2)
    sim = torch.einsum("nac,nbc->nab", x, x) / tau                                   # (N, 4, 4)
    anchors = torch.arange(4, device=x.device)
    positive = torch.tensor(_POSITIVE, device=x.device)
    s_pos = sim[:, anchors, positive]                                                # (N, 4)
    neg_mask = torch.ones(4, 4, dtype=torch.bool, device=x.device)
    neg_mask[anchors, anchors] = False
    neg_mask[anchors, positive] = False
    s_neg = sim.masked_fill(~neg_mask, float("-inf"))                                # (N, 4, 4)
    per_anchor = F.softplus(torch.logsumexp(s_neg, dim=2) - s_pos)
    return per_anchor.mean()


def domain_loss(logits_f_s: torch.Tensor, logits_r_s: torch.Tensor, logits_f_t: torch.Tensor,
                logits_r_t: torch.Tensor) -> torch.Tensor:
    """Domain classification loss L_Domain, DCDFA Eq. 7, on (N, 2) logits (column 1 = "source").

    With p = softmax probability of "source"::

        L_Domain = −(1/4) (log p(f_i^s) + log p(r_j^s) + log(1 − p(f_j^t)) + log(1 − p(r_i^t)))

    averaged over the N pairs; computed with ``log_softmax`` so that it stays finite for confident logits.
    """
    _check_rows("domain_loss", logits_f_s=logits_f_s, logits_r_s=logits_r_s, logits_f_t=logits_f_t,
                logits_r_t=logits_r_t)
    if logits_f_s.shape[1] != 2:
        raise ValueError(f"domain_loss expects (N, 2) logits [target, source]; got {tuple(logits_f_s.shape)}")
    log_src = [F.log_softmax(z.float(), dim=1)[:, 1] for z in (logits_f_s, logits_r_s)]
    log_tgt = [F.log_softmax(z.float(), dim=1)[:, 0] for z in (logits_f_t, logits_r_t)]
    return -(sum(log_src) + sum(log_tgt)).mean() / 4.0


def domain_ce(logits_s: torch.Tensor, logits_t: torch.Tensor) -> torch.Tensor:
    """Plain domain cross-entropy of DANN (the adversarial baseline): source = 1, target = 0, mean of both."""
    if logits_s.dim() != 2 or logits_s.shape[1] != 2 or logits_t.dim() != 2 or logits_t.shape[1] != 2:
        raise ValueError(f"domain_ce expects (N, 2) logits; got {tuple(logits_s.shape)} and "
                         f"{tuple(logits_t.shape)}")
    y_s = torch.ones(len(logits_s), dtype=torch.long, device=logits_s.device)
    y_t = torch.zeros(len(logits_t), dtype=torch.long, device=logits_t.device)
    return 0.5 * (F.cross_entropy(logits_s.float(), y_s) + F.cross_entropy(logits_t.float(), y_t))
