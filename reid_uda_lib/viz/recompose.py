"""DCDFA's recomposition made visible: for a few pairs, the two images and the 4 × 4 cosine similarities
inside the set {f_i^s, f_j^t, r_j^s, r_i^t} that L_CID (Eq. 6) works on."""
from __future__ import annotations

from pathlib import Path

import torch

from .figure import NotebookFigure, new_figure, save_figure
from .images import denormalize, show_image

SET_NAMES = ("f_i^s", "f_j^t", "r_j^s", "r_i^t")


def plot_pair_similarities(x_source: torch.Tensor, x_target: torch.Tensor, sims: torch.Tensor, n: int = 3,
                           title: str = "", path: str | Path | None = None) -> NotebookFigure:
    """Per pair k < n: source image i, its paired target image j, and the (4, 4) similarities ``sims[k]``.

    ``x_target`` must already be in pair order (row k = the target image of pair k); ``sims`` is (N, 4, 4)
    over (f_i^s, f_j^t, r_j^s, r_i^t). L_CID wants the anti-diagonal positives (f_i^s ↔ r_i^t, f_j^t ↔ r_j^s)
    above the other off-diagonal entries.
    """
    s = sims.detach().float().cpu().numpy()
    if s.ndim != 3 or s.shape[1:] != (4, 4) or len(x_source) < len(s) or len(x_target) < len(s):
        raise ValueError(f"plot_pair_similarities: sims must be (N, 4, 4) with N images per domain; got "
                         f"sims {s.shape}, images {len(x_source)} and {len(x_target)}")
    n = min(n, len(s))
    fig = new_figure(figsize=(6.2, 2.3 * n))
    axes = fig.subplots(n, 3, squeeze=False, gridspec_kw={"width_ratios": [1, 1, 2.6]})
    for k in range(n):
        show_image(axes[k, 0], denormalize(x_source[k]), title=f"pair {k}: source i")
        show_image(axes[k, 1], denormalize(x_target[k]), title="target j")
        ax = axes[k, 2]
        im = ax.imshow(s[k], vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(4), SET_NAMES, fontsize=7)
        ax.set_yticks(range(4), SET_NAMES, fontsize=7)
        for a in range(4):
            for b in range(4):
                ax.text(b, a, f"{s[k, a, b]:.2f}", ha="center", va="center", fontsize=6,
                        fontweight="bold" if a + b == 3 else "normal")
        ax.set_title("cosine similarity (bold: L_CID positives)", fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
