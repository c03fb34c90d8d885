"""LF² target-domain losses (Ding & Zhou, sec. III-C, Eq. 6–10).

* Eq. 6–7, the softmax triplet on each part feature f^Pj: :func:`reid_uda_lib.losses.softmax_triplet`.
* Eq. 8, CE of the target classifier on f^P0: :func:`lf2_cls_loss`.
* Eq. 9, the batch-hard triplet on f^P0: :func:`reid_uda_lib.losses.batch_hard_triplet` (the usual hinge;
  the leading minus sign printed in Eq. 9 — and in Eq. 2 — is a typo: with it the loss would reward
  violated margins).
* Eq. 10, the weighted total: :func:`lf2_total`.
* Not in the paper: :func:`fusion_loss`, the term that trains the Fusion Module in the ``lf2_fmloss`` row
  (see :mod:`reid_uda_lib.methods.lf2`; the ``lf2`` row is Eq. 10 without it).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .reid import cross_entropy_ls, softmax_triplet


def lf2_cls_loss(logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.0) -> torch.Tensor:
    """LF² Eq. 8: L^t_cls = 1/N Σ_i L_ce(C^t(f^P0(x_i)), ŷ_i,0), the cross-entropy of the target classifier
    C^t on the global feature with the global pseudo labels. ``epsilon > 0`` smooths the labels (the
    library's CE-LS; ε = 0 is Eq. 8 as printed). The LF² rows pass ``lf2.label_smoothing``: 0.1 in the ``tiny``,
    ``ci`` and ``cpu`` presets (this project's choice), 0 in ``paper`` and ``paper_lf2``."""
    return cross_entropy_ls(logits, labels, epsilon=epsilon)


def lf2_total(l_cls: torch.Tensor, l_tri: torch.Tensor, l_tri_parts: Sequence[torch.Tensor],
              alpha: float = 1.0, lam: float = 0.5, gamma: float = 0.5) -> dict[str, torch.Tensor]:
    """LF² Eq. 10: L_total = α·(L^t_cls + λ·L^t_tri) + γ·Σ_j L^Pj_tri, returned as its weighted terms
    ``{"t_ce": α·L_cls, "t_tri": α·λ·L_tri, "p1_tri": γ·L^P1_tri, ...}`` (their sum is L_total; the loop logs
    each). The paper's weights: α = 1, λ = 0.5, γ = 0.5."""
    terms = {"t_ce": alpha * l_cls, "t_tri": alpha * lam * l_tri}
    for j, l in enumerate(l_tri_parts, start=1):
        terms[f"p{j}_tri"] = gamma * l
    return terms


def fusion_loss(phi_part: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The Fusion Module's training signal of the ``lf2_fmloss`` row (ours; Eq. 10 gives the FM no loss): the
    softmax triplet of Eq. 6–7 on the L2-normalised fusion features φ^Pj of the batch with the level-j labels, i.e.
    φ^Pj must separate the identities that its own clustering proposed. Normalised because the labels
    come from k-means on normalised φ^Pj; anchors with label -1 (DBSCAN outliers) are left out."""
    keep = labels >= 0
    return softmax_triplet(F.normalize(phi_part[keep], dim=1), labels[keep])
