"""A bounded, process-wide cache of decoded images, so a run decodes each file once instead of each pass.

A UDA row reads every target image a dozen times (BatchNorm statistics, clustering features and evaluation
each epoch, plus the training batches), and each pass decoded every file again. The cache keeps the decoded
RGB image keyed by the file's path, size, modification time and inode (a rewritten or replaced file is
read again) and hands out copies, so a transform that edits its input in place cannot alter it.

Limits: at most :func:`budget_mb` MiB of pixels per process (default 512, the environment variable
``REID_UDA_IMAGE_CACHE_MB`` sets it, 0 turns caching off); once full, further images are read without
being kept. DataLoader worker processes read without caching (they are restarted every epoch unless
``persistent_workers``, so a cache there would only cost memory): the cache serves ``num_workers=0``, the
CPU presets' setting.
"""
from __future__ import annotations

import os
from typing import Callable

from PIL import Image

__all__ = ["budget_mb", "set_budget_mb", "cached", "clear", "stats"]

_ENV = "REID_UDA_IMAGE_CACHE_MB"


def _env_budget() -> float:
    raw = os.environ.get(_ENV, "512")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{_ENV} must be a number of MiB (0 turns the image cache off); got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{_ENV} must be >= 0 MiB; got {raw!r}")
    return value


_images: dict[str, tuple[tuple, Image.Image]] = {}      # path -> (size, mtime, inode), image
_state = {"bytes": 0, "budget": None, "hits": 0, "misses": 0}


def budget_mb() -> float:
    """The cache's size limit in MiB (``REID_UDA_IMAGE_CACHE_MB``, default 512; 0 = off)."""
    if _state["budget"] is None:
        _state["budget"] = _env_budget()
    return _state["budget"]


def set_budget_mb(mb: float) -> None:
    """Change the limit (0 turns caching off); images already kept beyond it are dropped."""
    if mb < 0:
        raise ValueError(f"image cache budget must be >= 0 MiB; got {mb}")
    _state["budget"] = float(mb)
    if _state["bytes"] > mb * 2**20:
        clear()


def clear() -> None:
    """Forget every cached image."""
    _images.clear()
    _state.update(bytes=0, hits=0, misses=0)


def stats() -> dict:
    """``{"images", "mb", "budget_mb", "hits", "misses"}`` for this process."""
    return {"images": len(_images), "mb": _state["bytes"] / 2**20, "budget_mb": budget_mb(),
            "hits": _state["hits"], "misses": _state["misses"]}


def _in_worker() -> bool:
    from torch.utils.data import get_worker_info
    return get_worker_info() is not None


def cached(path: str, read: Callable[[str], Image.Image]) -> Image.Image:
    """``read(path)`` through the cache: a copy of the kept image when the file is unchanged."""
    limit = budget_mb() * 2**20
    if limit <= 0:
        return read(path)
    try:
        st = os.stat(path)
    except OSError:
        return read(path)                      # read() raises the clear error (missing file)
    sig = (st.st_size, st.st_mtime_ns, st.st_ino)
    kept = _images.get(path)
    if kept is not None and kept[0] == sig:
        _state["hits"] += 1
        return kept[1].copy()
    if kept is not None:                       # the file changed: forget the old pixels
        del _images[path]
        _state["bytes"] -= _nbytes(kept[1])
    _state["misses"] += 1
    img = read(path)
    if _state["bytes"] + _nbytes(img) <= limit and not _in_worker():
        _images[path] = (sig, img.copy())
        _state["bytes"] += _nbytes(img)
    return img


def _nbytes(img: Image.Image) -> int:
    return img.width * img.height * len(img.getbands())
