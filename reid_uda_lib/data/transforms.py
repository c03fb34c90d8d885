"""Image transforms for re-ID training and testing (the usual strong-baseline pipeline)."""
from __future__ import annotations

from typing import Sequence

from torchvision import transforms as T

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "build_transforms"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_prob(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


def build_transforms(height: int, width: int, train: bool, pad: int = 10, flip_p: float = 0.5,
                     random_erasing_p: float = 0.0, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> T.Compose:
    """PIL image → normalised ``(3, height, width)`` float tensor.

    ``train=True``: resize → random horizontal flip (``flip_p``) → zero-pad by ``pad`` pixels and
    random-crop back to ``(height, width)`` → tensor → normalise → random erasing (probability
    ``random_erasing_p``; the erased box is filled with 0, i.e. the dataset mean after
    normalisation). ``pad=0`` / ``flip_p=0`` / ``random_erasing_p=0`` leave that step out.
    ``train=False``: resize → tensor → normalise (deterministic).

    Randomness comes from torch's global generator (per worker in a DataLoader).
    """
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"height and width must be positive integers, got height={height}, width={width}")
    if int(pad) != pad or pad < 0:
        raise ValueError(f"pad must be a non-negative integer number of pixels, got {pad}")
    _check_prob("flip_p", flip_p)
    _check_prob("random_erasing_p", random_erasing_p)
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise ValueError(f"mean and std must have 3 entries (RGB) with std > 0, got mean={mean}, std={std}")
    size = (int(height), int(width))
    steps: list = [T.Resize(size, interpolation=T.InterpolationMode.BILINEAR, antialias=True)]
    if train:
        if flip_p > 0:
            steps.append(T.RandomHorizontalFlip(p=flip_p))
        if pad > 0:
            steps += [T.Pad(int(pad), fill=0), T.RandomCrop(size)]
    steps += [T.ToTensor(), T.Normalize(mean=list(mean), std=list(std))]
    if train and random_erasing_p > 0:
        steps.append(T.RandomErasing(p=random_erasing_p, value=0))
    return T.Compose(steps)
