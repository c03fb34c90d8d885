"""The decoded-image cache: same pixels, re-read on change, copies out, bounded, off in workers and at 0."""
import os

import numpy as np
import pytest
from PIL import Image

from reid_uda_lib.data import ImageDataset
from reid_uda_lib.data import image_cache
from reid_uda_lib.data.image_dataset import CorruptImageError, read_image


@pytest.fixture(autouse=True)
def fresh_cache():
    image_cache.clear()
    old = image_cache.budget_mb()
    yield
    image_cache.set_budget_mb(old)
    image_cache.clear()


def _write(path, value, size=(8, 16)):
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def test_hits_return_equal_copies(tmp_path):
    p = str(tmp_path / "a.png")
    _write(p, 10)
    first = image_cache.cached(p, read_image)
    second = image_cache.cached(p, read_image)
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert image_cache.stats()["hits"] == 1 and image_cache.stats()["misses"] == 1
    assert image_cache.stats()["images"] == 1 and image_cache.stats()["mb"] == 8 * 16 * 3 / 2**20
    second.paste((255, 0, 0), (0, 0, 8, 16))                 # an in-place edit of the copy...
    assert np.asarray(image_cache.cached(p, read_image))[0, 0].tolist() == [10, 10, 10]   # ...not kept


def test_a_rewritten_file_is_read_again(tmp_path):
    p = str(tmp_path / "a.png")
    _write(p, 10)
    assert np.asarray(image_cache.cached(p, read_image))[0, 0, 0] == 10
    _write(str(tmp_path / "b.png"), 200, size=(9, 16))
    os.replace(tmp_path / "b.png", p)                         # new inode, size and time
    img = image_cache.cached(p, read_image)
    assert np.asarray(img)[0, 0, 0] == 200 and img.size == (9, 16)
    assert image_cache.stats()["images"] == 1 and image_cache.stats()["mb"] == 9 * 16 * 3 / 2**20
    with open(p, "wb") as fh:                                 # now corrupt: the clear error, not stale pixels
        fh.write(b"not an image")
    with pytest.raises(CorruptImageError, match="a.png"):
        image_cache.cached(p, read_image)


def test_budget_bounds_and_zero_turns_it_off(tmp_path):
    paths = []
    for k in range(3):
        paths.append(str(tmp_path / f"{k}.png"))
        _write(paths[-1], k)
    image_cache.set_budget_mb(2 * 8 * 16 * 3 / 2**20)        # room for two images
    for p in paths:
        image_cache.cached(p, read_image)
    assert image_cache.stats()["images"] == 2
    assert np.asarray(image_cache.cached(paths[2], read_image))[0, 0, 0] == 2   # still read, not kept
    image_cache.set_budget_mb(0)
    assert image_cache.stats()["images"] == 0
    image_cache.cached(paths[0], read_image)
    assert image_cache.stats()["images"] == 0
    with pytest.raises(ValueError, match=">= 0"):
        image_cache.set_budget_mb(-1)


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("REID_UDA_IMAGE_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="REID_UDA_IMAGE_CACHE_MB must be a number"):
        image_cache._env_budget()
    monkeypatch.setenv("REID_UDA_IMAGE_CACHE_MB", "64")
    assert image_cache._env_budget() == 64.0


def test_missing_file_error_and_dataset_through_cache(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        image_cache.cached(str(tmp_path / "nope.png"), read_image)
    p = tmp_path / "0001_c1s1_000001_00.png"
    _write(str(p), 77)
    ds = ImageDataset([(p, 1, 1)])                          # a Path item goes through the same cache
    assert np.asarray(ds[0][0])[0, 0, 0] == 77 and np.asarray(ds[0][0])[0, 0, 0] == 77
    assert image_cache.stats()["hits"] == 1


def test_workers_read_without_keeping(tmp_path, monkeypatch):
    p = str(tmp_path / "a.png")
    _write(p, 5)
    monkeypatch.setattr(image_cache, "_in_worker", lambda: True)
    image_cache.cached(p, read_image)
    assert image_cache.stats()["images"] == 0
