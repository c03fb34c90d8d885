"""Figures of the two attention mechanisms: DCDFA's channel attention m(F) (Eq. 3) and LF²'s Fusion Module
attention σ(Z^Pj) with its fusion maps Φ^Pj (Eq. 5).

The numbers come from :func:`reid_uda_lib.analysis.dcdfa_features` (m per image) and
:func:`reid_uda_lib.analysis.fusion.fusion_attention` (σ(Z^Pj), Φ^P0, Φ^Pj per image).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .figure import NotebookFigure, legend_below, new_figure, save_figure
from .images import denormalize, show_image

DOMAIN_COLOURS = {"source": "#4575b4", "target": "#d73027"}


def _np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float32)


def channel_split(m_source, m_target, threshold: float = 0.5) -> dict:
    """Which channels go mostly to b (mean m over both domains > ``threshold``) and which to e.

    Returns ``{"order": channels sorted by mean m (descending), "mean": (C,), "to_b": indices, "to_e":
    indices, "share_b": fraction of channels to b}``.
    """
    ms, mt = _np(m_source), _np(m_target)
    if ms.ndim != 2 or mt.ndim != 2 or ms.shape[1] != mt.shape[1]:
        raise ValueError(f"channel_split expects m of shape (N, C) for both domains with the same C; got "
                         f"{ms.shape} and {mt.shape}")
    mean = np.concatenate([ms, mt]).mean(0)
    order = np.argsort(-mean, kind="stable")
    to_b = np.flatnonzero(mean > threshold)
    return {"order": order, "mean": mean, "to_b": to_b, "to_e": np.flatnonzero(mean <= threshold),
            "share_b": float(len(to_b) / len(mean))}


def plot_channel_attention(m: Mapping[str, Mapping[str, object]], threshold: float = 0.5, title: str = "",
                           path: str | Path | None = None) -> NotebookFigure:
    """DCDFA's m(F) per domain, for one or several models (e.g. ``{"before": {...}, "after": {...}}``).

    ``m``: ``{model: {"source": (N_s, C), "target": (N_t, C)}}``. Each model gets a row of two panels: left,
    the distribution of every m value per domain (how sharply the attention splits f into b and e); right,
    the mean m per channel, channels sorted by their mean over both domains, one line per domain, with the
    threshold that sends a channel mostly to b (above) or to e (below).
    """
    if not m:
        raise ValueError("plot_channel_attention needs at least one model's attention")
    fig = new_figure(figsize=(10, 3.4 * len(m)))
    axes = np.atleast_2d(fig.subplots(len(m), 2, squeeze=False))
    for r, (name, doms) in enumerate(m.items()):
        split = channel_split(doms["source"], doms["target"], threshold)
        ax_h, ax_c = axes[r]
        for dom in ("source", "target"):
            vals = _np(doms[dom])
            ax_h.hist(vals.ravel(), bins=40, range=(0, 1), alpha=0.55, density=True, color=DOMAIN_COLOURS[dom],
                      label=f"{dom} (mean {vals.mean():.2f})")
            ax_c.plot(vals.mean(0)[split["order"]], color=DOMAIN_COLOURS[dom], lw=1, label=dom)
        ax_h.set(xlabel="m(F) value", ylabel="density", title=f"{name}: distribution of m(F)")
        ax_c.axhline(threshold, color="k", ls=":", lw=1)
        ax_c.axvspan(-0.5, len(split["to_b"]) - 0.5, color="#1a9850", alpha=0.08)
        ax_c.set(xlabel="channel (sorted by mean m)", ylabel=f"mean m (> {threshold:g}: to b)", ylim=(0, 1),
                 title=f"{name}: {len(split['to_b'])} of {len(split['mean'])} channels to b")
        legend_below(ax_h)                   # the histograms fill their panel
        ax_c.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_fusion_gates(gates, title: str = "", path: str | Path | None = None) -> NotebookFigure:
    """LF²'s Fusion Module attention σ(Z^Pj) per channel: ``gates`` (B, K, C) from ``fusion_attention``.

    Left: the mean gate of every channel for each part j, channels sorted by part 1's mean (with the spread
    over images as a band); right: the distribution of the gate values per part. Gates near 1 keep the
    teacher's channel in the fusion feature φ^Pj, near 0 remove it.
    """
    g = _np(gates)
    if g.ndim != 3:
        raise ValueError(f"plot_fusion_gates expects gates (B, K, C); got shape {g.shape}")
    mean, std = g.mean(0), g.std(0)
    order = np.argsort(-mean[0], kind="stable")
    fig = new_figure(figsize=(10, 3.6))
    ax_c, ax_h = fig.subplots(1, 2)
    x = np.arange(g.shape[2])
    for j in range(g.shape[1]):
        line, = ax_c.plot(x, mean[j, order], lw=1, label=f"part {j + 1}: σ(Z^P{j + 1})")
        ax_c.fill_between(x, (mean[j] - std[j])[order], (mean[j] + std[j])[order], color=line.get_color(),
                          alpha=0.15, lw=0)
        ax_h.hist(g[:, j].ravel(), bins=40, range=(0, 1), alpha=0.55, density=True, color=line.get_color(),
                  label=f"part {j + 1} (mean {g[:, j].mean():.2f})")
    ax_c.set(xlabel="channel (sorted by part 1's mean gate)", ylabel="gate σ(Z) (mean ± std over images)",
             ylim=(0, 1), title="Fusion Module attention per channel")
    ax_h.set(xlabel="gate value", ylabel="density", title="distribution of the gates")
    legend_below(ax_c)
    legend_below(ax_h)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def heat(fmap: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A feature map (C, h, w) summed over channels, upsampled (bilinear) to ``size`` = (H, W), scaled to [0, 1]."""
    if fmap.dim() != 3:
        raise ValueError(f"heat expects one feature map (C, h, w); got {tuple(fmap.shape)}")
    h = fmap.float().sum(0, keepdim=True)[None]
    h = F.interpolate(h, size=size, mode="bilinear", align_corners=False)[0, 0]
    h = h - h.min()
    return (h / h.max().clamp_min(1e-12)).numpy()


def plot_fusion_maps(images: torch.Tensor, attn: Mapping[str, torch.Tensor], n: int = 4, title: str = "",
                     path: str | Path | None = None) -> NotebookFigure:
    """Per image: the image with the K stripes marked, the teacher's map Φ^P0 and each fusion map Φ^Pj as
    heat maps (summed over channels) over the image. ``attn`` is :func:`fusion_attention`'s output for
    ``images``. Since σ(Z^Pj) is one gate per channel, Φ^Pj re-weights Φ^P0's channels: the heat maps show
    where the channels part j keeps are active."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    phi0, maps = attn["phi0_map"], attn["fusion_maps"]
    k = maps.shape[1]
    n = min(n, len(images))
    fig = new_figure(figsize=(1.3 * (k + 2) + 0.4, 2.3 * n * images.shape[2] / (2 * images.shape[3]) + 0.6))
    axes = np.atleast_2d(fig.subplots(n, k + 2, squeeze=False))
    size = tuple(images.shape[2:])
    for i in range(n):
        rgb = denormalize(images[i]).astype(np.float32)
        show_image(axes[i, 0], rgb, title="image, K stripes" if i == 0 else None)
        h = phi0.shape[2]
        for j in range(1, k):                  # stripe borders as part_features splits the map
            axes[i, 0].axhline(j * h / k * size[0] / h - 0.5, color="w", lw=1, ls="--")
        panels = [("Φ^P0 (teacher)", phi0[i])] + [(f"Φ^P{j + 1}", maps[i, j]) for j in range(k)]
        for c, (name, fm) in enumerate(panels, start=1):
            over = show_cam_on_image(rgb, heat(fm, size), use_rgb=True, image_weight=0.5) / 255.0
            show_image(axes[i, c], over, title=name if i == 0 else None)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
