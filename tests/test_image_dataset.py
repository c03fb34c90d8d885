"""read_image and ImageDataset: RGB conversion, corrupt files named in errors, DataLoader integration."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from reid_uda_lib.data import CorruptImageError, ImageDataset, PKSampler, build_transforms, read_image


def _save(path: Path, mode: str, size=(4, 8), fmt=None) -> Path:
    color = {"L": 77, "RGBA": (10, 20, 30, 40), "RGB": (10, 20, 30), "P": 3}[mode]
    Image.new(mode, size, color).save(path, fmt)
    return path


def test_read_image_converts_to_rgb(tmp_path):
    gray = read_image(_save(tmp_path / "g.png", "L"))
    assert gray.mode == "RGB" and gray.size == (4, 8)
    assert np.asarray(gray)[0, 0].tolist() == [77, 77, 77]
    rgba = read_image(_save(tmp_path / "a.png", "RGBA"))
    assert rgba.mode == "RGB" and np.asarray(rgba)[0, 0].tolist() == [10, 20, 30]
    jpg = read_image(str(_save(tmp_path / "c.jpg", "RGB")))
    assert jpg.mode == "RGB" and jpg.size == (4, 8)


def test_read_image_errors_name_the_file(tmp_path):
    bad = tmp_path / "0001_c1s1_000001_00.jpg"
    bad.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(CorruptImageError, match=r"cannot read image .*0001_c1s1_000001_00\.jpg"):
        read_image(bad)
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*missing\.jpg"):
        read_image(tmp_path / "missing.jpg")


def test_read_image_detects_truncated_jpeg(tmp_path):
    path = tmp_path / "t.jpg"
    Image.effect_noise((64, 128), 60).convert("RGB").save(path, "JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptImageError, match=r"t\.jpg.*truncated"):
        read_image(path)


def test_image_dataset_items_and_transform(tmp_path):
    items = [(str(_save(tmp_path / f"{k}.jpg", "RGB", size=(16, 32))), 10 + k, k % 2) for k in range(3)]
    plain = ImageDataset(items)
    assert len(plain) == 3
    img, pid, cam, idx = plain[2]
    assert isinstance(img, Image.Image) and (pid, cam, idx) == (12, 0, 2)
    ds = ImageDataset(items, build_transforms(8, 4, train=False))
    img, pid, cam, idx = ds[1]
    assert img.shape == (3, 8, 4) and img.dtype == torch.float32 and (pid, cam, idx) == (11, 1, 1)


def test_image_dataset_raises_on_corrupt_file(tmp_path):
    good = _save(tmp_path / "0001_c1s1_000001_00.jpg", "RGB")
    bad = tmp_path / "0002_c2s1_000001_00.jpg"
    bad.write_bytes(b"not an image")
    ds = ImageDataset([(str(good), 0, 0), (str(bad), 1, 1)])
    ds[0]
    with pytest.raises(CorruptImageError, match=r"0002_c2s1_000001_00\.jpg"):
        ds[1]


def test_image_dataset_rejects_malformed_items():
    with pytest.raises(ValueError, match=r"\(path, pid, camid\).*item 0"):
        ImageDataset([("a.jpg", 1)])


def test_dataloader_with_pk_sampler(tmp_path):
    items = []
    for pid in range(4):
        for k in range(3):
            p = tmp_path / f"{pid}_{k}.jpg"
            Image.new("RGB", (8, 16), (pid * 60, k * 80, 0)).save(p)
            items.append((str(p), pid, k))
    sampler = PKSampler([pid for _, pid, _ in items], num_instances=2, batch_size=4, num_batches=3, seed=1)
    loader = DataLoader(ImageDataset(items, build_transforms(16, 8, train=True, pad=2)), batch_size=4,
                        sampler=sampler, drop_last=True)
    batches = list(loader)
    assert len(batches) == 3
    for img, pid, cam, idx in batches:
        assert img.shape == (4, 3, 16, 8)
        assert pid.tolist() == [items[i][1] for i in idx.tolist()]
        assert cam.tolist() == [items[i][2] for i in idx.tolist()]
        assert len(set(pid.tolist())) == 2
