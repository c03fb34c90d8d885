"""Inside LF²'s Fusion Module for a batch of images: the attention σ(Z^Pj) and the fusion maps Φ^Pj (Eq. 5).

:func:`fusion_attention` runs the student (stripes F^Pj) and the teacher (map Φ^P0) on the same images and
evaluates the trained Fusion Module, for the figures of :mod:`reid_uda_lib.viz.attention`. The equation
itself stays in :func:`reid_uda_lib.models.lf2.fusion_map`: σ(Z^Pj) is read from it with a map of ones.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.lf2 import FusionModule, fusion_map, part_features


@torch.no_grad()
def fusion_attention(student: nn.Module, teacher: nn.Module, fm: FusionModule, images: torch.Tensor) -> dict:
    """LF² Eq. 5 on ``images`` (B, 3, H, W) with the trained ``fm``.

    Returns ``{"gates": σ(Z^Pj) (B, K, C), "phi0_map": Φ^P0 (B, C, h, w), "fusion_maps": Φ^Pj (B, K, C, h, w),
    "f_parts": F^Pj (B, K, C)}`` on the CPU. ``student`` gives the stripes, ``teacher`` the global map (the
    Mean-Net), as in the LF² loop; both are used in eval mode and restored afterwards.
    """
    if not isinstance(fm, FusionModule):
        raise TypeError(f"fusion_attention needs LF²'s FusionModule (run.modules['fm'] of an lf2 run); "
                        f"got {type(fm).__name__}")
    dev = next(fm.parameters()).device
    modes = [m.training for m in (student, teacher, fm)]
    for m in (student, teacher, fm):
        m.eval()
    try:
        x = images.to(dev)
        f_parts = part_features(student(x)["fmap"], fm.num_parts)              # F^Pj (B, K, C)
        phi0 = teacher(x)["fmap"]                                             # Φ^P0 (B, C, h, w)
        ones = torch.ones(len(x), f_parts.shape[2], 1, 1, device=dev, dtype=phi0.dtype)
        gates = torch.stack([fusion_map(ones, f_parts[:, j], mlp(f_parts[:, j]), fm.mode)[:, :, 0, 0]
                             for j, mlp in enumerate(fm.mlps)], dim=1)        # σ(Z^Pj) (B, K, C)
        maps = torch.stack(fm.fusion_maps(phi0, f_parts), dim=1)              # Φ^Pj (B, K, C, h, w)
    finally:
        for m, was in zip((student, teacher, fm), modes):
            m.train(was)
    return {"gates": gates.cpu(), "phi0_map": phi0.cpu(), "fusion_maps": maps.cpu(), "f_parts": f_parts.cpu()}
