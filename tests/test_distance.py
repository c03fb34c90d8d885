"""pairwise_distance(): Euclidean / cosine against torch.cdist and the formulas, chunking, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid_uda_lib.evaluation import pairwise_distance


def features(seed: int, n: int, dim: int = 16, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_hand_worked_values():
    q = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    g = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    # Euclidean: |(3,4)-(0,0)| = 5, |(3,4)-(3,0)| = 4, |(3,4)-(0,2)| = sqrt(9+4); row 2: 1, 2, sqrt(5)
    want = torch.tensor([[5.0, 4.0, 13 ** 0.5], [1.0, 2.0, 5 ** 0.5]])
    assert torch.allclose(pairwise_distance(q, g), want, atol=1e-6)
    # cosine: cos((3,4),(3,0)) = 9/15 = 0.6 -> 0.4; cos((3,4),(0,2)) = 8/10 -> 0.2; zero vector -> 1
    want_cos = torch.tensor([[1.0, 0.4, 0.2], [1.0, 0.0, 1.0]])
    assert torch.allclose(pairwise_distance(q, g, metric="cosine"), want_cos, atol=1e-6)
    # normalize=True: unit vectors (0.6, 0.8) and (1, 0): distance sqrt(0.16 + 0.64) to (1, 0)
    dn = pairwise_distance(q, g, normalize=True)
    assert dn[0, 1].item() == pytest.approx(0.8 ** 0.5, abs=1e-6)
    # a zero vector stays zero after normalising: distance |(0.6, 0.8)| = 1
    assert dn[0, 0].item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("chunk", [1, 3, 4096])
def test_euclidean_matches_cdist(chunk):
    q, g = features(0, 37), features(1, 53)
    d = pairwise_distance(q, g, chunk_size=chunk)
    assert d.dtype == torch.float32 and d.shape == (37, 53)
    assert torch.allclose(d, torch.cdist(q.double(), g.double()).float(), atol=1e-4)
    assert (d >= 0).all()


@pytest.mark.parametrize("chunk", [2, 4096])
def test_cosine_and_normalized_match_formulas(chunk):
    q, g = features(2, 29, dtype=torch.float64), features(3, 41, dtype=torch.float64)
    qn, gn = F.normalize(q, dim=1), F.normalize(g, dim=1)
    cos = pairwise_distance(q, g, metric="cosine", chunk_size=chunk)
    assert cos.dtype == torch.float32
    assert torch.allclose(cos.double(), 1 - qn @ gn.T, atol=1e-6)
    eu = pairwise_distance(q, g, normalize=True, chunk_size=chunk)
    assert torch.allclose(eu.double(), torch.cdist(qn, gn), atol=1e-6)
    # cosine ignores normalize; on unit vectors squared Euclidean = 2 * cosine distance
    assert torch.equal(pairwise_distance(q, g, metric="cosine", normalize=True), cos)
    assert torch.allclose(eu.double() ** 2, 2 * cos.double(), atol=1e-5)


def test_identical_points_have_zero_distance():
    x = features(4, 10) * 100  # large norms: |q|^2 + |g|^2 - 2 q.g cancels; the clamp must prevent NaN
    d = pairwise_distance(x, x)
    assert torch.isfinite(d).all() and (d >= 0).all()
    # float32 cancellation leaves at most ~sqrt(eps) * |x| on the diagonal, tiny next to real distances
    assert d.diagonal().max() <= 1e-3 * d[~torch.eye(10, dtype=torch.bool)].min()


def test_numpy_and_half_inputs():
    q, g = features(5, 8), features(6, 9)
    want = pairwise_distance(q, g)
    got = pairwise_distance(q.numpy(), g.numpy())
    assert isinstance(got, torch.Tensor) and got.device.type == "cpu" and torch.allclose(got, want)
    half = pairwise_distance(q.half(), g.half(), metric="cosine")
    assert half.dtype == torch.float32
    assert torch.allclose(half, pairwise_distance(q.half().float(), g.half().float(), metric="cosine"))


def test_errors_name_the_argument():
    q, g = features(7, 4), features(8, 5)
    with pytest.raises(ValueError, match="metric must be one of"):
        pairwise_distance(q, g, metric="manhattan")
    with pytest.raises(ValueError, match="different feature sizes: 16 vs 8"):
        pairwise_distance(q, g[:, :8])
    with pytest.raises(ValueError, match=r"gallery_features must be 2-D .* got shape \(16,\)"):
        pairwise_distance(q, g[0])
    with pytest.raises(ValueError, match="query_features is empty"):
        pairwise_distance(q[:0], g)
    with pytest.raises(ValueError, match="query_features must hold floating-point"):
        pairwise_distance(q.long(), g)
    bad = g.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="gallery_features contains NaN or infinite"):
        pairwise_distance(q, bad)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        pairwise_distance(q, g, chunk_size=0)
    with pytest.raises(ValueError, match="query_features must be a torch tensor or numpy array"):
        pairwise_distance([[1.0]], g)
