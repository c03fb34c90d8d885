"""DataLoaders built from a :class:`~reid_uda_lib.data.ReidDataset` and a config."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import DataConfig
from ..data import ImageDataset, PKSampler, build_transforms
from ..data.samplers import DistributedPKSampler
from ..runtime import distributed as ddp


class SeededSampler(Sampler):
    """Wraps a :class:`PKSampler` and yields ``(index, sample_seed)``; the seeds depend on (seed, epoch,
    position) only. Forwards ``set_epoch`` and the wrapped sampler's attributes."""

    def __init__(self, sampler: PKSampler):
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        seeds = np.random.SeedSequence([self.sampler.seed, self.sampler.epoch, 0x5EED]).generate_state(
            len(self.sampler), dtype=np.uint64) >> np.uint64(1)      # non-negative int64 for torch.manual_seed
        return zip(iter(self.sampler), (int(x) for x in seeds))

    def __getattr__(self, name: str):
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


class SeededImages(Dataset):
    """An :class:`ImageDataset` indexed by ``(index, seed)``: each image's augmentation draws from torch's
    generator seeded with ``seed`` (the global state is restored), so the images -- hence the numbers -- are
    the same whatever ``data.num_workers`` is."""

    def __init__(self, dataset: ImageDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed would also queue a CUDA seeding (with a stack trace)
            # for every image, 0.06 ms each, and the transforms draw from the CPU generator alone
            torch.default_generator.manual_seed(seed)
            return self.dataset[index]


def train_loader(items: Sequence[tuple], cfg: DataConfig, seed: int, random_erasing_p: float,
                 num_batches: int | None = None) -> DataLoader:
    """A PK-sampled training loader over ``items`` ``(path, label, camid)``; label -1 is never sampled.

    Call ``loader.sampler.set_epoch(epoch)`` before each epoch: the order and the augmentations then depend
    on (seed, epoch) only -- not on ``cfg.num_workers`` --, which is what makes resumed runs identical to
    uninterrupted ones. Under torchrun each process loads its share ``batch_size / G`` of the same global
    batches (:class:`~reid_uda_lib.data.samplers.DistributedPKSampler`).
    """
    transform = build_transforms(cfg.height, cfg.width, train=True, pad=cfg.pad, flip_p=cfg.flip_p,
                                 random_erasing_p=random_erasing_p)
    sampler = SeededSampler(PKSampler([pid for _, pid, _ in items], num_instances=cfg.num_instances,
                                      batch_size=cfg.batch_size, num_batches=num_batches, seed=seed))
    batch = cfg.batch_size
    if ddp.is_distributed():
        sampler = DistributedPKSampler(sampler, cfg.batch_size, cfg.num_instances, ddp.world_size(), ddp.rank())
        batch = sampler.local
    return DataLoader(SeededImages(ImageDataset(list(items), transform)), batch_size=batch, sampler=sampler,
                      num_workers=cfg.num_workers, drop_last=True,
                      persistent_workers=False, pin_memory=False)


def test_loader(items: Sequence[tuple], cfg: DataConfig) -> DataLoader:
    """Items in order, test transforms. Its own generator: iterating it never draws from the global RNG, so
    feature extraction (clustering, evaluation, probes) leaves the training's random stream untouched."""
    transform = build_transforms(cfg.height, cfg.width, train=False)
    return DataLoader(ImageDataset(list(items), transform), batch_size=cfg.test_batch_size, shuffle=False,
                      num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(0))


def num_batches_for(n_items: int, cfg: DataConfig, iters_per_epoch: int) -> int:
    """``iters_per_epoch`` when set, else one pass over ``n_items`` (at least one batch)."""
    if iters_per_epoch > 0:
        return iters_per_epoch
    return max(1, n_items // cfg.batch_size)


def to_device(batch, device: torch.device):
    img, pid, camid, index = batch
    return img.to(device, non_blocking=True), pid.to(device), camid, index.to(device)
