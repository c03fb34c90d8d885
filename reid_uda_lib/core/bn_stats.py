"""Target BatchNorm statistics (AdaBN, Li et al. 2016) for the network that clusters and is evaluated.

During UDA the student normalises batches that hold source *and* target images, and the Mean-Net copies
the student's running statistics (``models/ema.py``). Those statistics are a mix of the two domains, so the
evaluated network normalises target images with partly source statistics: a style gap that BatchNorm could
remove at no cost. With ``uda.target_bn = true`` the loop re-estimates every BatchNorm layer's running mean
and variance of the evaluated network on the unlabelled target *train* images (test transforms, no
augmentation, the cumulative average over the batches) right before it clusters the target features and right before
it evaluates. Nothing else changes: the weights are untouched, and the Mean-Net copies the student's buffers
again at its next update, so training itself never sees these statistics. The target *test* images are never
used.

On the synthetic validation pair (resnet18 at 64x32), re-estimating the source-pretrained model's
statistics alone lifts target mAP from 16.1 to 21.3: most of the domain gap there is a style gap.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from tqdm.auto import tqdm

from ..config import DataConfig
from .loaders import test_loader


def bn_subset(items: Sequence[tuple], max_images: int = 0) -> list:
    """The images the statistics are estimated on: all of ``items`` (``max_images`` 0 or >= their number), else
    ``max_images`` of them evenly spaced over the list (deterministic, so every camera and identity of a sorted
    split is represented; ``uda.target_bn_images``). Running means and variances settle within a few hundred
    images, and the pass is repeated every epoch."""
    items = list(items)
    n = int(max_images)
    if n < 0:
        raise ValueError(f"uda.target_bn_images must be >= 0 (0: every target train image); got {max_images!r}")
    if n == 0 or n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


@torch.no_grad()
def refresh_bn_stats(net: nn.Module, items: Sequence[tuple], cfg: DataConfig, device: torch.device,
                     desc: str = "target BN statistics", progress: bool = True) -> int:
    """Replace the running mean/variance of every BatchNorm layer of ``net`` by their exact average over
    ``items`` (one pass, test transforms, the test batch size). Returns the number of layers refreshed.

    Only the BatchNorm layers run in training mode during the pass (dropout and the rest stay in eval mode);
    ``net``'s own mode and each layer's momentum are restored afterwards. Draws nothing from the global RNG.
    """
    layers = [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers:
        return 0
    if not items:
        raise ValueError("refresh_bn_stats: no target images to estimate the BatchNorm statistics from")
    was_training = net.training
    momenta = [m.momentum for m in layers]
    groups = [getattr(m, "bn_samples", None) for m in layers]   # BatchNorm groups (models/bn_groups.py)
    net.eval()
    for m in layers:
        if getattr(m, "bn_samples", None) is not None:
            m.bn_samples = 0               # statistics of the whole set, not of training groups
        m.reset_running_stats()
        m.momentum = None                  # cumulative average over the batches
        m.train()
    try:
        for img, *_ in tqdm(test_loader(items, cfg), desc=desc, leave=True, disable=not progress):
            net(img.to(device))
    finally:
        for m, mom, g in zip(layers, momenta, groups):
            m.momentum = mom
            if g is not None:
                m.bn_samples = g
        net.train(was_training)
    return len(layers)


class TargetBNStats:
    """Refreshes a network's target statistics only when its weights changed since the last refresh.

    The UDA loop refreshes before it evaluates (end of an epoch) and before it clusters (start of the next);
    nothing trains in between, and :func:`refresh_bn_stats` is a function of the weights and the images alone
    (it resets the statistics first), so the second pass would reproduce the first bit for bit. ``ensure``
    skips it; ``invalidate`` is called once training changes the weights.

    ``first_pass``: what makes the first refresh, on the weights the network has when this object is made (the
    UDA loop gives :meth:`~.pass_cache.PassCache.bn_stats` at the start of a fresh run: the rows of a seed
    share it); every later refresh is a :func:`refresh_bn_stats` pass.
    """

    def __init__(self, net: nn.Module, items: Sequence[tuple], cfg: DataConfig, device: torch.device,
                 progress: bool = True, first_pass: Optional[Callable[..., int]] = None):
        self.net, self.items, self.cfg, self.device, self.progress = net, items, cfg, device, progress
        self.fresh = False
        self.passes = 0
        self.first_pass = first_pass

    def ensure(self) -> None:
        if not self.fresh:
            refresh = self.first_pass if self.first_pass is not None and self.passes == 0 else refresh_bn_stats
            refresh(self.net, self.items, self.cfg, self.device, progress=self.progress)
            self.passes += 1
            self.fresh = True

    def invalidate(self) -> None:
        self.fresh = False
