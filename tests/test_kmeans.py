"""Torch k-means: seeded and deterministic, exact on separable data, close to sklearn's inertia, empty
clusters re-seeded, clear errors; ``pseudo_labels(method="kmeans")`` uses it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from reid_uda_lib.cluster import kmeans, label_quality, pseudo_labels, relabel_first_occurrence
from reid_uda_lib.cluster.kmeans import _lloyd, inertia_of, kmeans_plusplus, pca_projection


def blobs(ids=8, per_id=10, dim=16, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    x = np.repeat(centres, per_id, axis=0) + rng.normal(scale=spread, size=(ids * per_id, dim))
    return x.astype(np.float32), np.repeat(np.arange(ids), per_id)


def test_recovers_separable_clusters_and_reports_its_inertia():
    x, true = blobs()
    res = kmeans(x, 8, seed=0)
    assert res.labels.dtype == torch.int64 and res.labels.shape == (80,)
    assert label_quality(res.labels.numpy(), true)["ari"] == pytest.approx(1.0)
    assert res.centroids.shape == (8, 16)
    xn = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    by_hand = sum(float(((xn[res.labels == c] - xn[res.labels == c].mean(0)) ** 2).sum()) for c in range(8))
    assert res.inertia == pytest.approx(by_hand, rel=1e-5)
    assert res.inertia == pytest.approx(inertia_of(x, res.labels), rel=1e-9)
    assert torch.allclose(res.centroids[res.labels[0]], xn[res.labels == res.labels[0]].mean(0), atol=1e-6)


def test_seeded_and_bit_identical_on_cpu():
    x, _ = blobs(ids=20, per_id=6, dim=32, spread=0.6, seed=1)
    a, b = kmeans(x, 15, seed=3), kmeans(torch.from_numpy(x), 15, seed=3)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centroids, b.centroids) and a.inertia == b.inertia
    seeds = [kmeans_plusplus(torch.nn.functional.normalize(torch.from_numpy(x), dim=1), 15,
                             torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert torch.equal(seeds[0], seeds[1]) and not torch.equal(seeds[0], seeds[2])
    assert seeds[0].unique().numel() == 15                         # k-means++ never picks a seed twice


def test_inertia_within_one_percent_of_sklearn():
    x, _ = blobs(ids=40, per_id=15, dim=32, spread=0.8, seed=2)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    ours = kmeans(x, 40, seed=0, tol=0).inertia
    sk = KMeans(40, n_init=1, random_state=0).fit(xn)
    assert ours <= 1.01 * inertia_of(xn, sk.labels_)


def test_pca_projection_keeps_the_distances_of_data_in_a_subspace():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g) @ torch.randn(6, 40, generator=g) + 3.0   # rank 6, off-centre
    for max_rows in (0, 50):                                       # axes from all rows, or from 50 of them
        y = pca_projection(x, 6, torch.Generator().manual_seed(1), max_rows=max_rows)
        assert y.shape == (300, 6)
        exact = "donot_use_mm_for_euclid_dist"
        assert torch.allclose(torch.cdist(y, y, compute_mode=exact), torch.cdist(x, x, compute_mode=exact), atol=1e-3)
        if max_rows == 0:                                          # centred on the mean of all rows
            assert torch.allclose(y.mean(0), torch.zeros(6), atol=1e-4)


def test_subspace_start_then_full_space_lloyd():
    """d > init_dim: seeding and the first passes run on the principal coordinates, then Lloyd in the full
    space; the labels are nearest-centroid in the full space and the inertia is within 1 % of sklearn's."""
    x, _ = blobs(ids=30, per_id=20, dim=96, spread=1.0, seed=6)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    res = kmeans(x, 30, seed=0, tol=0, init_dim=16, pca_rows=256)
    assert res.n_iter_pca > 0 and res.n_iter >= 1
    nearest = torch.cdist(torch.from_numpy(xn), res.centroids).argmin(1)
    assert torch.equal(nearest, res.labels)
    sk = KMeans(30, n_init=1, random_state=0).fit(xn)
    assert res.inertia <= 1.01 * inertia_of(xn, sk.labels_)
    again = kmeans(torch.from_numpy(x), 30, seed=0, tol=0, init_dim=16, pca_rows=256)
    assert torch.equal(again.labels, res.labels) and again.inertia == res.inertia
    assert kmeans(x, 30, seed=0, tol=0, init_dim=0).n_iter_pca == 0   # init_dim 0: no subspace


def test_converges_and_k_equal_n_gives_zero_inertia():
    x, _ = blobs(ids=5, per_id=4, dim=8, spread=0.5, seed=3)
    res = kmeans(x, 5, tol=0, max_iter=50)
    assert res.n_iter < 50                                         # stopped because no point moved
    full = kmeans(x, 20)
    assert full.inertia == pytest.approx(0.0, abs=1e-9) and full.labels.unique().numel() == 20


def test_empty_cluster_is_reseeded_with_the_farthest_point():
    x = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.1], [1.0, -0.1], [0.0, 1.0]]), dim=1)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])   # nothing is near the third one
    labels, means, _ = _lloyd(x, centres, max_iter=10, tol=0.0)
    assert torch.bincount(labels, minlength=3).tolist() == [2, 1, 1]  # the empty cluster got a point back
    assert labels[3] == 1 and labels[0] == 0                         # ... one of the two off-centre points
    assert torch.isfinite(means).all()


def test_pseudo_labels_kmeans_uses_the_torch_kmeans():
    x, true = blobs(ids=6, per_id=8, dim=8, spread=0.2, seed=4)
    lab = pseudo_labels(x, method="kmeans", n_clusters=6, seed=5)
    np.testing.assert_array_equal(lab, relabel_first_occurrence(kmeans(x, 6, seed=5).labels.numpy()))
    assert label_quality(lab, true)["ari"] == pytest.approx(1.0)


def test_clear_errors():
    x, _ = blobs(ids=2, per_id=3, dim=4)
    with pytest.raises(ValueError, match=r"n_clusters must be an integer in \[1, N=6\]"):
        kmeans(x, 7)
    z = x.copy()
    z[1] = 0
    with pytest.raises(ValueError, match="all-zero rows"):
        kmeans(z, 2)
    z[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        kmeans(z, 2)
    with pytest.raises(ValueError, match=r"\(N, d\) array"):
        kmeans(x[0], 2)
    with pytest.raises(ValueError, match="n_init >= 1"):
        kmeans(x, 2, n_init=0)
