"""DataLoaders built from a :class:`~reid_uda_lib.data.ReidDataset` and a config."""
from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader

from ..config import DataConfig
from ..data import ImageDataset, PKSampler, build_transforms


def train_loader(items: Sequence[tuple], cfg: DataConfig, seed: int, random_erasing_p: float,
                 num_batches: int | None = None) -> DataLoader:
    """A PK-sampled training loader over ``items`` ``(path, label, camid)``; label -1 is never sampled.

    Call ``loader.sampler.set_epoch(epoch)`` before each epoch: the order then depends on (seed, epoch)
    only, which is what makes resumed runs identical to uninterrupted ones.
    """
    transform = build_transforms(cfg.height, cfg.width, train=True, pad=cfg.pad, flip_p=cfg.flip_p,
                                 random_erasing_p=random_erasing_p)
    sampler = PKSampler([pid for _, pid, _ in items], num_instances=cfg.num_instances,
                        batch_size=cfg.batch_size, num_batches=num_batches, seed=seed)
    return DataLoader(ImageDataset(list(items), transform), batch_size=cfg.batch_size, sampler=sampler,
                      num_workers=cfg.num_workers, drop_last=True,
                      persistent_workers=False, pin_memory=False)


def test_loader(items: Sequence[tuple], cfg: DataConfig) -> DataLoader:
    transform = build_transforms(cfg.height, cfg.width, train=False)
    return DataLoader(ImageDataset(list(items), transform), batch_size=cfg.test_batch_size, shuffle=False,
                      num_workers=cfg.num_workers)


def num_batches_for(n_items: int, cfg: DataConfig, iters_per_epoch: int) -> int:
    """``iters_per_epoch`` when set, else one pass over ``n_items`` (at least one batch)."""
    if iters_per_epoch > 0:
        return iters_per_epoch
    return max(1, n_items // cfg.batch_size)


def to_device(batch, device: torch.device):
    img, pid, camid, index = batch
    return img.to(device, non_blocking=True), pid.to(device), camid, index.to(device)
