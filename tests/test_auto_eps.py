"""DBSCAN's radius from the data (``uda.auto_eps_noise``, cluster/auto_eps.py Eqs. A1-A2): worked values, the
dense and sparse matrices agreeing, DBSCAN's outliers bounded by the noise share, and the SBase label path
passing the setting and logging the radius it used."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from reid_uda_lib.cluster import pseudo_labels
from reid_uda_lib.cluster.auto_eps import eps_for_noise, kth_neighbour_distance
from reid_uda_lib.cluster.jaccard import jaccard_distance
from reid_uda_lib.config import ConfigError, get_preset
from reid_uda_lib.methods.base import ClusterContext
from reid_uda_lib.methods.registry import METHODS
from reid_uda_lib.methods.validate import validate_config

#: 4 points; the diagonal holds a value that must not count (each point is its own first neighbour at 0)
D = np.array([[0.5, 0.2, 0.6, 0.9],
              [0.2, 0.5, 0.3, 1.0],
              [0.6, 0.3, 0.5, 0.4],
              [0.9, 1.0, 0.4, 0.5]])


def test_eq_a1_worked_values_dense_torch_and_sparse():
    # k = 2: the nearest other point; k = 3: the second nearest; k = 1: the point itself
    np.testing.assert_allclose(kth_neighbour_distance(D, 2), [0.2, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(kth_neighbour_distance(D, 3), [0.6, 0.3, 0.4, 0.9])
    np.testing.assert_allclose(kth_neighbour_distance(D, 1), [0, 0, 0, 0])
    np.testing.assert_allclose(kth_neighbour_distance(torch.tensor(D), 3), [0.6, 0.3, 0.4, 0.9])
    # sparse: entries of 1 are absent (a distance of 1), the diagonal absent or stored
    S = D.copy()
    S[S >= 1] = 0
    np.fill_diagonal(S, 0)
    sparse = sp.csr_matrix(S)
    np.testing.assert_allclose(kth_neighbour_distance(sparse, 3), [0.6, 0.3, 0.4, 0.9])
    np.testing.assert_allclose(kth_neighbour_distance(sparse, 4), [0.9, 1.0, 0.6, 1.0])
    with pytest.raises(ValueError, match="min_samples"):
        kth_neighbour_distance(D, 0)


def test_eq_a2_worked_values_and_the_ceiling():
    kdist = np.array([0.9, 0.1, 0.4, 0.2, 0.3])
    assert eps_for_noise(kdist, 0.2) == 0.4          # sorted .1 .2 .3 .4 .9: the 0.8-quantile, 'lower' -> .4
    assert eps_for_noise(kdist, 0.5) == 0.3
    assert eps_for_noise(kdist, 0.01) == 0.4         # 0.99-quantile, 'lower': position 3.96 -> index 3 -> .4
    # more than half the points have no k-th neighbour below 1: the largest d_k below 1 instead of 1
    assert eps_for_noise(np.array([1.0, 1.0, 1.0, 0.5]), 0.5) == 0.5
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="auto_eps_noise"):
            eps_for_noise(kdist, bad)


def _blobs(seed=0, ids=12, per=6, loners=6, dim=16):
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(ids, dim, generator=g), dim=1)
    x = centres.repeat_interleave(per, 0) + 0.15 * torch.randn(ids * per, dim, generator=g)
    return torch.cat([x, torch.randn(loners, dim, generator=g)])          # a few images of no identity


def test_dbscan_with_the_derived_radius_dense_equals_sparse_and_bounds_the_noise():
    x = _blobs()
    for p in (0.05, 0.2, 0.4):
        infos = [{}, {}]
        dense = pseudo_labels(x, eps=0.5, min_samples=4, k1=8, k2=3, sparse=False, noise=p, info=infos[0])
        spars = pseudo_labels(x, eps=0.5, min_samples=4, k1=8, k2=3, sparse=True, noise=p, info=infos[1])
        np.testing.assert_array_equal(dense, spars)
        assert infos[0]["eps"] == pytest.approx(infos[1]["eps"], abs=1e-6)
        want = eps_for_noise(kth_neighbour_distance(jaccard_distance(x, k1=8, k2=3), 4), p)
        assert infos[0]["eps"] == pytest.approx(want, abs=1e-6)
        assert (dense < 0).mean() <= p + 1e-9                                  # border points may join: <= p
    # the given radius is used, and reported, when noise is 0
    info = {}
    pseudo_labels(x, eps=0.33, min_samples=4, k1=8, k2=3, info=info)
    assert info["eps"] == 0.33


def test_sbase_label_path_passes_the_setting_and_logs_the_radius(monkeypatch):
    import reid_uda_lib.cluster as cluster
    import reid_uda_lib.core.features as features
    feats = torch.nn.functional.normalize(_blobs(1), dim=1)
    items = [(f"img{i}.jpg", i, 1 + i % 2) for i in range(len(feats))]
    monkeypatch.setattr(features, "extract_features", lambda *a, **k: feats)
    seen = {}
    real = cluster.pseudo_labels

    def spy(x, **settings):
        seen.update(settings)
        return real(x, **settings)

    monkeypatch.setattr(cluster, "pseudo_labels", spy)
    for noise in (0.0, 0.25):
        cfg = get_preset("tiny", **{"uda.auto_eps_noise": noise, "uda.k1": 8, "uda.k2": 3})
        sets = METHODS["sbase"].pseudo_labels(ClusterContext(None, None, None, None, items, cfg,
                                                             torch.device("cpu"), 0, False))
        assert seen["noise"] == noise
        if noise:
            assert 0 < sets.info["eps"] < 1 and sets.info["eps"] != cfg.uda.eps
        else:
            assert sets.info == {}                 # a fixed radius adds nothing to the log


def test_config_range():
    with pytest.raises(ConfigError, match="uda.auto_eps_noise"):
        validate_config(get_preset("tiny", **{"uda.auto_eps_noise": 1.0}))
    validate_config(get_preset("tiny", **{"uda.auto_eps_noise": 0.1}))


def test_eps_scan_tool_rows():
    from tools.eps_scan import scan
    x = _blobs(2)
    dist = jaccard_distance(x, k1=8, k2=3, sparse=True)
    true_ids = np.r_[np.repeat(np.arange(12), 6), 100 + np.arange(6)]
    rows = scan(dist, true_ids, 4, [0.5], [0.2])
    assert [r["setting"] for r in rows] == ["eps 0.5", "noise 0.2"]
    assert rows[0]["eps"] == 0.5
    assert rows[1]["eps"] == pytest.approx(eps_for_noise(kth_neighbour_distance(dist, 4), 0.2))
    assert rows[1]["outliers"] <= 0.2 + 1e-9 and rows[1]["true_ids"] == 18
    for r in rows:                                  # outliers cost: every one of them is a singleton in ARI all
        assert (r["ari_all"] < r["ari"]) == (r["outliers"] > 0)


def test_eps_scan_tool_kmeans_rows():
    from tools.eps_scan import kmeans_scan
    x = _blobs(2)
    true_ids = np.r_[np.repeat(np.arange(12), 6), 100 + np.arange(6)]
    rows = kmeans_scan(x, true_ids, [12, 18])
    assert [r["setting"] for r in rows] == ["kmeans 12", "kmeans 18"]
    assert rows[0]["m_per_image"] == pytest.approx(12 / 78) and rows[1]["clusters"] == 18
    assert rows[0]["nmi"] > 0.9                     # 12 separated blobs (and 6 loners) at M = 12
