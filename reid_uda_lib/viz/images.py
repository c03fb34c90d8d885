"""Images for figures: load items as network input, undo the normalisation, draw framed thumbnails."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..data.image_dataset import read_image
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

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
               width: float = 3.0, fontsize: int = 7) -> None:
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
