"""DBSCAN / k-means pseudo labels, relabelling, empty-cluster errors, sklearn's sparse semantics."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN

from reid_uda_lib.cluster import (EmptyClusterError, check_clusters, jaccard_distance, label_quality,
                                  pseudo_labels, relabel_first_occurrence)
P = importlib.import_module("reid_uda_lib.cluster.pseudo_labels")  # the package attribute is the function


def blobs(ids=8, per_id=10, d=16, spread=0.25, outliers=0, seed=0):
    """Well-separated identities (plus far-away singletons); returns features and true ids."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids + outliers, d)) * 3
    true = np.concatenate([np.repeat(np.arange(ids), per_id), ids + np.arange(outliers)])
    perm = rng.permutation(true.size)
    true = true[perm]
    x = centres[true] + spread * rng.standard_normal((true.size, d))
    return x.astype(np.float32), true


def test_relabel_first_occurrence_worked_example():
    out = relabel_first_occurrence(np.array([5, 5, -1, 2, 7, 2, -1, 5]))
    assert out.dtype == np.int64
    assert out.tolist() == [0, 0, -1, 1, 2, 1, -1, 0]


def test_dbscan_recovers_separated_identities():
    x, true = blobs(outliers=3)
    # k2=1: with query expansion a far singleton borrows its nearest cluster's encoding (distance 0.5)
    labels = pseudo_labels(x, eps=0.6, min_samples=4, k1=10, k2=1)
    assert labels.dtype == np.int64 and labels.shape == (x.shape[0],)
    q = label_quality(labels, true)
    assert q["n_clusters"] == 8 and q["nmi"] == pytest.approx(1.0) and q["purity"] == 1.0
    assert (labels[true >= 8] == -1).all() and q["n_outliers"] == 3       # the singletons
    # contiguous ids numbered by first occurrence
    kept = labels[labels >= 0]
    assert kept.min() == 0 and kept.max() == 7
    assert list(dict.fromkeys(kept.tolist())) == list(range(8))


def test_sparse_and_dense_paths_give_identical_labels():
    # a harder set: overlapping identities, so there are outliers and border points
    x, _ = blobs(ids=12, per_id=9, spread=2.5, seed=3)
    dense = pseudo_labels(x, eps=0.4, min_samples=3, k1=12, k2=4, sparse=False)
    sparse = pseudo_labels(x, eps=0.4, min_samples=3, k1=12, k2=4, sparse=True)
    assert (dense == -1).any() and dense.max() >= 2
    np.testing.assert_array_equal(sparse, dense)


def test_auto_sparse_threshold_is_used(monkeypatch):
    seen = []
    real = P._dbscan
    monkeypatch.setattr(P, "_dbscan", lambda *a: seen.append(a[5]) or real(*a))     # its `sparse` argument
    x, _ = blobs()
    monkeypatch.setattr(P, "SPARSE_AUTO_MIN_N", x.shape[0])
    pseudo_labels(x, k1=10, k2=3)
    monkeypatch.setattr(P, "SPARSE_AUTO_MIN_N", x.shape[0] + 1)
    pseudo_labels(x, k1=10, k2=3)
    assert seen == [True, False]


def test_sklearn_sparse_precomputed_semantics():
    # what the sparse path relies on: stored entries <= eps (explicit zeros included) are neighbours,
    # absent entries are not, each point is its own neighbour
    zero_pair = sp.csr_matrix((np.array([0.0, 0.0], np.float32), np.array([1, 0]), np.array([0, 1, 2, 2])),
                              shape=(3, 3))
    assert zero_pair.nnz == 2                                   # explicit zeros are stored
    assert DBSCAN(eps=0.5, min_samples=2, metric="precomputed").fit_predict(zero_pair).tolist() == [0, 0, -1]
    empty = sp.csr_matrix((3, 3), dtype=np.float32)             # nothing stored: nobody is a neighbour
    assert DBSCAN(eps=0.5, min_samples=2, metric="precomputed").fit_predict(empty).tolist() == [-1, -1, -1]
    assert DBSCAN(eps=0.5, min_samples=1, metric="precomputed").fit_predict(empty).tolist() == [0, 1, 2]
    # and on a real Jaccard matrix: dense (absent = 1 > eps) and sparse agree
    x, _ = blobs(ids=5, per_id=6, spread=0.9, seed=2)
    dense = jaccard_distance(x, k1=8, k2=3, sparse=False)
    csr = jaccard_distance(x, k1=8, k2=3, sparse=True)
    db = DBSCAN(eps=0.55, min_samples=3, metric="precomputed")
    np.testing.assert_array_equal(db.fit_predict(csr), db.fit_predict(dense))


def test_all_outliers_raise_a_helpful_error():
    x, _ = blobs(ids=4, per_id=3)
    with pytest.raises(EmptyClusterError, match=r"0 cluster\(s\).*12 points, 12 outliers") as err:
        pseudo_labels(x, eps=0.6, min_samples=10, k1=6, k2=2)
    assert isinstance(err.value, ValueError)
    for knob in ("eps", "min_samples", "k1"):
        assert knob in str(err.value)


def test_check_clusters():
    assert check_clusters(np.array([0, 0, 1, -1]), min_clusters=2) == 2
    with pytest.raises(EmptyClusterError, match=r"1 cluster\(s\), fewer than the 2 needed: 4 points, 1 outliers"):
        check_clusters(np.array([0, 0, 0, -1]), min_clusters=2)


def test_kmeans_is_seeded_and_complete():
    x, true = blobs(ids=6, per_id=8, spread=0.2, seed=1)
    a = pseudo_labels(torch.from_numpy(x), method="kmeans", n_clusters=6, seed=3)
    b = pseudo_labels(x, method="kmeans", n_clusters=6, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and (a >= 0).all() and a[0] == 0
    assert sorted(set(a.tolist())) == list(range(6))
    assert label_quality(a, true)["ari"] == pytest.approx(1.0)


def test_bad_arguments():
    x, _ = blobs(ids=3, per_id=4)
    with pytest.raises(ValueError, match="method must be 'dbscan' or 'kmeans'"):
        pseudo_labels(x, method="hdbscan")
    with pytest.raises(ValueError, match=r"eps must be in \(0, 1\)"):
        pseudo_labels(x, eps=1.0)
    with pytest.raises(ValueError, match="min_samples must be a positive integer"):
        pseudo_labels(x, min_samples=0)
    with pytest.raises(ValueError, match=r"n_clusters must be an integer in \[1, N=12\]"):
        pseudo_labels(x, method="kmeans", n_clusters=13)
    with pytest.raises(ValueError, match="NaN"):
        y = x.copy()
        y[0, 0] = np.nan
        pseudo_labels(y, method="kmeans", n_clusters=2)
    with pytest.raises(ValueError, match="at least 2 points"):
        pseudo_labels(x[:1])
