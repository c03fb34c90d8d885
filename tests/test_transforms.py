"""build_transforms: shapes, a worked reference for the test pipeline, flip, pad+crop, random erasing."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reid_uda_lib.data import build_transforms
from reid_uda_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD

H, W = 16, 8


def _image(h=40, w=20) -> Image.Image:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    arr[:, : w // 2, 0] = 255  # left half red: not left-right symmetric
    return Image.fromarray(arr)


def _reference(img: Image.Image) -> torch.Tensor:
    """Resize (bilinear) → [0, 1] → (x - mean) / std, written out by hand."""
    arr = np.asarray(img.resize((W, H), Image.BILINEAR), dtype=np.float32) / 255.0
    arr = (arr - np.array(IMAGENET_MEAN, dtype=np.float32)) / np.array(IMAGENET_STD, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1)


def test_test_transform_matches_reference_and_is_deterministic():
    img = _image()
    t = build_transforms(H, W, train=False)
    out = t(img)
    assert out.shape == (3, H, W) and out.dtype == torch.float32
    torch.testing.assert_close(out, _reference(img), atol=1e-5, rtol=0)
    assert torch.equal(t(img), out)


def test_train_transform_shape():
    torch.manual_seed(0)
    out = build_transforms(H, W, train=True, random_erasing_p=0.5)(_image(37, 23))
    assert out.shape == (3, H, W)


def test_flip_flips():
    img = _image()
    ref = build_transforms(H, W, train=False)(img)
    flipped = build_transforms(H, W, train=True, pad=0, flip_p=1.0)(img)
    assert torch.equal(flipped, ref.flip(-1))
    assert not torch.equal(flipped, ref)
    kept = build_transforms(H, W, train=True, pad=0, flip_p=0.0)(img)
    assert torch.equal(kept, ref)


def test_pad_and_crop_is_a_zero_filled_shift():
    """The output equals the resized image shifted by some (dy, dx) in [-pad, pad], black outside."""
    img, pad = _image(), 3
    ref = build_transforms(H, W, train=False)(img)
    black = ((0.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)).view(3, 1, 1)
    canvas = black.expand(3, H + 2 * pad, W + 2 * pad).clone()
    canvas[:, pad:pad + H, pad:pad + W] = ref
    t = build_transforms(H, W, train=True, pad=pad, flip_p=0.0)
    torch.manual_seed(123)
    seen = set()
    for _ in range(30):
        out = t(img)
        hits = [(i, j) for i in range(2 * pad + 1) for j in range(2 * pad + 1)
                if torch.allclose(out, canvas[:, i:i + H, j:j + W], atol=1e-6)]
        assert hits, "train output is not a crop of the zero-padded image"
        seen.add(hits[0])
    assert len(seen) > 3  # the crop really is random


def test_random_erasing_p1_erases_a_rectangle_with_zeros():
    img = _image()
    ref = build_transforms(H, W, train=False)(img)
    torch.manual_seed(0)
    out = build_transforms(H, W, train=True, pad=0, flip_p=0.0, random_erasing_p=1.0)(img)
    changed = (out != ref).any(0)
    assert changed.any()
    rows, cols = changed.any(1).nonzero().squeeze(1), changed.any(0).nonzero().squeeze(1)
    box = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
    assert torch.all(out[:, box[0], box[1]] == 0)  # filled with 0 (= the mean after normalisation)
    outside = torch.ones(H, W, dtype=torch.bool)
    outside[box] = False
    assert torch.equal(out[:, outside], ref[:, outside])


def test_argument_errors():
    with pytest.raises(ValueError, match="random_erasing_p.*1.5"):
        build_transforms(H, W, train=True, random_erasing_p=1.5)
    with pytest.raises(ValueError, match="flip_p"):
        build_transforms(H, W, train=True, flip_p=-0.1)
    with pytest.raises(ValueError, match="pad.*-2"):
        build_transforms(H, W, train=True, pad=-2)
    with pytest.raises(ValueError, match="height and width.*height=0"):
        build_transforms(0, W, train=False)
    with pytest.raises(ValueError, match="mean and std"):
        build_transforms(H, W, train=False, std=(0.2, 0.2))
