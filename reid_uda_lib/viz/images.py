"""Images for figures: load items as network input, undo the normalisation, draw framed thumbnails, and a
contact sheet of a dataset split (one row per person, labelled with its id and each image's camera)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.image_dataset import read_image
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from .figure import NotebookFigure, new_figure, save_figure

GOOD, BAD, NEUTRAL = "#1a9850", "#d73027", "#4d4d4d"      # true match / false match / query frames


def load_images(items: Sequence[tuple], cfg_data) -> torch.Tensor:
    """The test-time network input (B, 3, H, W) of ``items`` ``(path, pid, camid)`` at the config's size."""
    if len(items) == 0:
        raise ValueError("load_images: no items given")
    tf = build_transforms(cfg_data.height, cfg_data.width, train=False)
    return torch.stack([tf(read_image(it[0])) for it in items])


def denormalize(x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """A normalised image (3, H, W) or batch (B, 3, H, W) back to RGB in [0, 1], channels last (numpy)."""
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"denormalize expects (3, H, W) or (B, 3, H, W) tensors; got {tuple(x.shape)}")
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    img = (x.detach() * s + m).clamp(0, 1)
    return img.movedim(-3, -1).cpu().numpy()


def show_image(ax, img: np.ndarray, frame: str | None = None, title: str | None = None,
               width: float = 3.0, fontsize: float = 9) -> None:
    """Draw an RGB array on ``ax`` without ticks, with an optional coloured frame and title."""
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_edgecolor(frame)
            spine.set_linewidth(width)
    if title:
        ax.set_title(title, fontsize=fontsize, color=frame if frame not in (None, NEUTRAL) else "black")


def plot_contact_sheet(items: Sequence[tuple], n_ids: int = 6, per_id: int = 8, title: str = "",
                       path: str | Path | None = None) -> NotebookFigure:
    """A contact sheet of ``items`` ``(path, pid, camid)`` (e.g. a dataset's ``gallery``): one row per person,
    ``n_ids`` persons spread evenly over the sorted ids, each row labelled ``id <pid>`` and each image with its
    camera (``cam <camid>``, 0-based as in the dataset API), up to ``per_id`` images sorted by camera (spread
    evenly over them when a person has more, so every camera stays represented)."""
    if len(items) == 0:
        raise ValueError("plot_contact_sheet: no items given (pass a split such as load_dataset(...).gallery)")
    if n_ids < 1 or per_id < 1:
        raise ValueError(f"plot_contact_sheet: n_ids and per_id must be >= 1; got {n_ids} and {per_id}")
    by_pid: dict[int, list[tuple]] = {}
    for it in items:
        by_pid.setdefault(int(it[1]), []).append(it)
    pids = sorted(by_pid)
    chosen = [pids[int(i)] for i in np.unique(np.linspace(0, len(pids) - 1, min(n_ids, len(pids))).round())]
    fig = new_figure(figsize=(0.8 * per_id + 0.9, 1.75 * len(chosen) + (0.5 if title else 0.1)))
    axes = fig.subplots(len(chosen), per_id, squeeze=False)
    for r, pid in enumerate(chosen):
        row = sorted(by_pid[pid], key=lambda it: (it[2], str(it[0])))
        if len(row) > per_id:
            row = [row[int(i)] for i in np.linspace(0, len(row) - 1, per_id).round()]
        for c, ax in enumerate(axes[r]):
            if c < len(row):
                show_image(ax, np.asarray(read_image(row[c][0])), title=f"cam {row[c][2]}", fontsize=9)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(f"id {pid}", rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
