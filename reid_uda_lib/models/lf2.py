"""LF² model pieces (Ding & Zhou, sec. III-C): part features, the Fusion Module (Eq. 5), the experts, and the
teacher's concatenated inference feature.

Notation of the paper: Φ^P0 is the teacher's last feature map (C, H, W), φ^P0 = GAP(Φ^P0) its global
feature; F^Pj (j = 1..K) are the student's K horizontal stripes, average-pooled; Z^Pj is the Fusion Module's
attention, Φ^Pj = σ(Z^Pj) ⊗ Φ^P0 the fusion map and φ^Pj = GAP(Φ^Pj) the fusion feature that is clustered;
f^Pj = Expert-j(F^Pj) is the student's part feature trained with the labels of φ^Pj.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FM_MODES = ("add", "mul", "mul_outside")


def part_features(fmap: torch.Tensor, num_parts: int = 2) -> torch.Tensor:
    """F^Pj: the (B, C, H, W) map split into ``num_parts`` horizontal stripes, each average-pooled: (B, K, C).

    Equals ``F.adaptive_avg_pool2d(fmap, (K, 1))`` (the PCB convention): stripe j covers rows
    ``floor(j·H/K)`` to ``ceil((j+1)·H/K)``, so H need not be divisible by K (stripes then overlap by a row).
    """
    if fmap.dim() != 4:
        raise ValueError(f"part_features: fmap must be (B, C, H, W); got shape {tuple(fmap.shape)}")
    if int(num_parts) != num_parts or num_parts < 1 or num_parts > fmap.shape[2]:
        raise ValueError(f"part_features: num_parts must be an integer in [1, H={fmap.shape[2]}]; got {num_parts!r}")
    return F.adaptive_avg_pool2d(fmap, (int(num_parts), 1)).squeeze(3).transpose(1, 2)


def fusion_map(phi0_map: torch.Tensor, f_part: torch.Tensor, mlp_out: torch.Tensor, mode: str = "add"
               ) -> torch.Tensor:
    """LF² Eq. 5: the fusion map Φ^Pj = σ(Z^Pj) ⊗ Φ^P0, broadcast over H × W.

    Parameters
    ----------
    phi0_map : (B, C, H, W) the teacher's global map Φ^P0.
    f_part : (B, C) the student's pooled stripe F^Pj.
    mlp_out : (B, C) MLP(F^Pj) = W2 ReLU(W1 F^Pj).
    mode : how F^Pj enters the gate -- the text and Eq. 5's lines give three readings:

        * ``"add"`` (default): σ(Z) ⊗ Φ^P0 with Z = MLP(F) + F. Sec. III-C says the residual structure (the
          red line of Fig. 3) "aggregate[s] F^Pj and the output of MLP to obtain the attention map Z^Pj", and
          a residual connection is an addition (He et al.); line 1 of Eq. 5, Φ = σ(Z) ⊗ Φ^P0, then holds.
          The default: the prose and Fig. 3 both describe it, and line 1 of Eq. 5 holds for it.
        * ``"mul"``: σ(MLP(F) ⊗ F) ⊗ Φ^P0, the literal line 2 of Eq. 5 (Z = MLP(F) ⊗ F).
        * ``"mul_outside"``: σ(MLP(F)) ⊗ F ⊗ Φ^P0, the literal line 3 of Eq. 5 (F outside the sigmoid; the
          per-channel factor σ(MLP(F)) · F is not a σ(Z) as line 1 writes it, and is not bounded by 1).
    """
    if mode == "add":
        gate = torch.sigmoid(mlp_out + f_part)
    elif mode == "mul":
        gate = torch.sigmoid(mlp_out * f_part)
    elif mode == "mul_outside":
        gate = torch.sigmoid(mlp_out) * f_part
    else:
        raise ValueError(f"fusion_map: mode must be one of {FM_MODES}; got {mode!r} (config lf2.fm_mode)")
    return gate[:, :, None, None] * phi0_map


class FusionModule(nn.Module):
    """LF² Fusion Module (Eq. 5, Fig. 3): one MLP per part (C → C/r → C, ReLU), the attention Z^Pj from the
    residual combination with F^Pj, and σ(Z^Pj) broadcast onto the teacher's map Φ^P0.

    ``forward(phi0_map, f_parts)`` with ``f_parts`` (B, K, C) returns the fusion features φ^Pj = GAP(Φ^Pj)
    as (B, K, C). Since σ(Z^Pj) is constant over H × W, GAP(σ(Z) ⊗ Φ^P0) = σ(Z) ⊙ φ^P0: the module gates
    the teacher's global feature channel by channel, with gates computed from the student's stripe j.

    How it learns: see :mod:`reid_uda_lib.methods.lf2` (the paper gives it no loss).
    """

    def __init__(self, channels: int, num_parts: int = 2, reduction: int = 4, mode: str = "add"):
        super().__init__()
        if mode not in FM_MODES:
            raise ValueError(f"FusionModule: mode must be one of {FM_MODES}; got {mode!r} (config lf2.fm_mode)")
        if reduction < 1 or channels // reduction < 1:
            raise ValueError(f"FusionModule: reduction r must be in [1, C={channels}]; got {reduction!r}")
        hidden = channels // reduction
        self.mode = mode
        self.num_parts = int(num_parts)
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
            for _ in range(self.num_parts))

    def fusion_maps(self, phi0_map: torch.Tensor, f_parts: torch.Tensor) -> list[torch.Tensor]:
        """Φ^Pj for j = 1..K, each (B, C, H, W)."""
        self._check(phi0_map, f_parts)
        return [fusion_map(phi0_map, f_parts[:, j], mlp(f_parts[:, j]), self.mode)
                for j, mlp in enumerate(self.mlps)]

    def forward(self, phi0_map: torch.Tensor, f_parts: torch.Tensor) -> torch.Tensor:
        """φ^Pj = GAP(Φ^Pj): (B, K, C)."""
        return torch.stack([m.mean(dim=(2, 3)) for m in self.fusion_maps(phi0_map, f_parts)], dim=1)

    def _check(self, phi0_map: torch.Tensor, f_parts: torch.Tensor) -> None:
        if phi0_map.dim() != 4 or f_parts.dim() != 3 or f_parts.shape[1] != self.num_parts \
                or f_parts.shape[2] != phi0_map.shape[1] or f_parts.shape[0] != phi0_map.shape[0]:
            raise ValueError(f"FusionModule: expects phi0_map (B, C, H, W) and f_parts (B, K={self.num_parts}, C) "
                             f"with the same B and C; got {tuple(phi0_map.shape)} and {tuple(f_parts.shape)}")


class Experts(nn.Module):
    """Expert-j (LF² sec. III-C, IV-A): FC → BN on the student's stripe F^Pj, one per part, C → C.
    ``forward(f_parts)`` (B, K, C) → f^Pj as (B, K, C)."""

    def __init__(self, channels: int, num_parts: int = 2):
        super().__init__()
        self.experts = nn.ModuleList(nn.Sequential(nn.Linear(channels, channels), nn.BatchNorm1d(channels))
                                     for _ in range(int(num_parts)))

    def forward(self, f_parts: torch.Tensor) -> torch.Tensor:
        if f_parts.dim() != 3 or f_parts.shape[1] != len(self.experts):
            raise ValueError(f"Experts: f_parts must be (B, K={len(self.experts)}, C); got {tuple(f_parts.shape)}")
        return torch.stack([e(f_parts[:, j]) for j, e in enumerate(self.experts)], dim=1)


def concat_feature(fmap: torch.Tensor, num_parts: int = 2) -> torch.Tensor:
    """LF²'s inference feature: [φ^P0, p_1, ..., p_K] of one (teacher) map, each L2-normalised, concatenated:
    (B, (K + 1)·C). φ^P0 is the map's GAP, p_j its stripe j pooled (:func:`part_features`). Normalising each
    piece gives the global feature and each part the same weight in the cosine distance."""
    pieces = [fmap.mean(dim=(2, 3)).unsqueeze(1), part_features(fmap, num_parts)]
    return F.normalize(torch.cat(pieces, dim=1), dim=2).flatten(1)


class ConcatFeatureNet(nn.Module):
    """Inference wrapper: ``net(x)["feat"]`` is :func:`concat_feature` of ``net``'s map (LF² sec. III-C: only
    the teacher is used at test time; its map is split into K parts, pooled and concatenated with the global
    feature). ``global_only=True`` gives φ^P0 alone (the paper's "disappointing" global-only variant)."""

    def __init__(self, net: nn.Module, num_parts: int = 2, global_only: bool = False):
        super().__init__()
        self.net = net
        self.num_parts = int(num_parts)
        self.global_only = global_only
        # start in the wrapped net's mode: extract_features restores the wrapper's mode afterwards, and a
        # fresh module is in train mode, which would switch the (eval-mode) teacher's BatchNorms to training
        self.train(net.training)

    def forward(self, x: torch.Tensor) -> dict:
        out = self.net(x)
        if self.global_only:
            return {"feat": out["f"]}
        return {"feat": concat_feature(out["fmap"], self.num_parts)}
