"""DCDFA's recomposition made visible: for a few pairs, the two images and the 4 × 4 cosine similarities
inside the set {f_i^s, f_j^t, r_j^s, r_i^t} that L_CID (Eq. 6) works on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps

from .figure import NotebookFigure, new_figure, save_figure
from .images import denormalize, show_image

SET_NAMES = ("f_i^s", "f_j^t", "r_j^s", "r_i^t")


def plot_pair_similarities(x_source: torch.Tensor, x_target: torch.Tensor, sims: torch.Tensor, n: int = 3,
                           title: str = "", path: str | Path | None = None) -> NotebookFigure:
    """Per pair k < n: source image i, its paired target image j, and the (4, 4) similarities ``sims[k]``.

    ``x_target`` must already be in pair order (row k = the target image of pair k); ``sims`` is (N, 4, 4)
    over (f_i^s, f_j^t, r_j^s, r_i^t). L_CID wants the anti-diagonal positives (f_i^s ↔ r_i^t, f_j^t ↔ r_j^s)
    above the other off-diagonal entries. The colour scale spans the smallest to the largest value shown (its
    range is written on the colour bar), not -1...1: trained features' cosines often sit in a narrow band; the
    diagonal (1, each feature with itself) is grey and left out of the scale.
    """
    s = sims.detach().float().cpu().numpy()
    if s.ndim != 3 or s.shape[1:] != (4, 4) or len(x_source) < len(s) or len(x_target) < len(s):
        raise ValueError(f"plot_pair_similarities: sims must be (N, 4, 4) with N images per domain; got "
                         f"sims {s.shape}, images {len(x_source)} and {len(x_target)}")
    n = min(n, len(s))
    off = ~np.eye(4, dtype=bool)                   # the diagonal (each feature with itself) is 1 and says nothing
    shown = s[:n][:, off]
    # colours span the off-diagonal values shown (cosines of trained features sit in a narrow band, e.g.
    # 0.84-0.98, that a -1...1 scale paints one colour), shared by the pairs so that rows compare
    lo, hi = float(shown.min()), float(shown.max())
    if hi - lo < 1e-6:
        lo, hi = lo - 0.01, hi + 0.01
    fig = new_figure(figsize=(6.4, 2.4 * n))
    axes = fig.subplots(n, 3, squeeze=False, gridspec_kw={"width_ratios": [1, 1, 2.6]})
    for k in range(n):
        show_image(axes[k, 0], denormalize(x_source[k]), title="source i" if k == 0 else None)
        axes[k, 0].set_ylabel(f"pair {k}")
        show_image(axes[k, 1], denormalize(x_target[k]), title="target j" if k == 0 else None)
        ax = axes[k, 2]
        cmap = colormaps["viridis"].with_extremes(bad="#dddddd")
        im = ax.imshow(np.ma.masked_array(s[k], mask=~off), vmin=lo, vmax=hi, cmap=cmap)
        ax.set_xticks(range(4), SET_NAMES)
        ax.set_yticks(range(4), SET_NAMES)
        for a in range(4):
            for b in range(4):
                dark = a != b and (s[k, a, b] - lo) / (hi - lo) < 0.6      # viridis is dark below ~60 %
                ax.text(b, a, f"{s[k, a, b]:.2f}", ha="center", va="center", color="white" if dark else "black",
                        fontweight="bold" if a + b == 3 else "normal")
        if k == 0:
            ax.set_title(f"cosine similarity (bold: L_CID positives)\ncolours span {lo:.2f}–{hi:.2f} (grey: self)")
        fig.colorbar(im, ax=ax, fraction=0.046).set_label("cosine")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
