"""Reading images and the torch ``Dataset`` over ``(path, pid, camid)`` items."""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

from PIL import Image
from torch.utils.data import Dataset

from . import image_cache

__all__ = ["CorruptImageError", "read_image", "check_image", "ImageDataset"]


class CorruptImageError(ValueError):
    """An image file exists but cannot be decoded; the message names the file and the cause."""


# What PIL raises on bad data: OSError (truncated / unidentified), SyntaxError (some broken headers),
# ValueError and friends from decoders, DecompressionBombError for absurd sizes.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, Image.DecompressionBombError)


def _missing(path: str) -> FileNotFoundError:
    return FileNotFoundError(f"image file not found: {path}")


def read_image(path: str | os.PathLike) -> Image.Image:
    """Read an image file as an RGB PIL image (fully decoded).

    Raises
    ------
    FileNotFoundError
        if ``path`` does not exist.
    CorruptImageError
        if the file cannot be decoded; the message names the file and PIL's error.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _missing(path)
    try:
        with Image.open(path) as im:
            return im.convert("RGB")  # convert() decodes the pixels, so truncation is caught here
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from exc


def check_image(path: str | os.PathLike) -> None:
    """Raise :class:`CorruptImageError` (or FileNotFoundError) if ``path`` cannot be decoded.

    Faster than :func:`read_image`: JPEGs are decoded in draft mode (at 1/8 scale), which still
    reads every entropy-coded block, so truncated or garbled files are caught.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _missing(path)
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from exc


class ImageDataset(Dataset):
    """A map-style dataset over ``(path, pid, camid)`` items.

    ``__getitem__(i)`` returns ``(img, pid, camid, i)``: ``img`` is the RGB PIL image passed through
    ``transform`` (a tensor with :func:`~reid_uda_lib.data.build_transforms`); ``i`` lets the caller
    map a batch back to its items (memory banks, pseudo labels). Extra fields in an item are ignored.

    Decoded images are kept in a bounded process-wide cache (:mod:`~reid_uda_lib.data.image_cache`; a
    changed file is read again), so repeated passes over the same files decode each once.

    Raises :class:`CorruptImageError` naming the file when an image cannot be decoded.
    """

    def __init__(self, items: Sequence[Sequence], transform: Optional[Callable] = None):
        for k, item in enumerate(items[:1]):
            if len(item) < 3:
                raise ValueError(f"ImageDataset items must be (path, pid, camid) tuples; item {k} is {item!r}")
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, pid, camid = self.items[index][:3]
        img = image_cache.cached(os.fspath(path), read_image)
        if self.transform is not None:
            img = self.transform(img)
        return img, int(pid), int(camid), int(index)

    def __repr__(self) -> str:
        return f"ImageDataset({len(self)} images, transform={self.transform!r})"
