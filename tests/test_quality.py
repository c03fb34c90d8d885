"""Pseudo-label quality metrics on worked examples."""
from __future__ import annotations

import math

import numpy as np
import pytest

from reid_uda_lib.cluster import label_quality, purity


def test_perfect_clustering_scores_one_under_any_renaming():
    true = np.array([3, 3, 3, 9, 9, 4, 4, 4])
    pred = np.array([1, 1, 1, 0, 0, 2, 2, 2])          # same partition, other names
    q = label_quality(pred, true)
    assert q["nmi"] == pytest.approx(1.0) and q["ari"] == pytest.approx(1.0) and q["purity"] == 1.0
    assert q["n_clusters"] == 3 and q["outlier_ratio"] == 0.0 and q["n_true_ids"] == 3
    assert q["nmi_all"] == pytest.approx(1.0) and q["ari_all"] == pytest.approx(1.0)


def test_purity_hand_counted():
    # cluster 0 = {5, 5, 7}: majority 2; cluster 1 = {7, 7, 8}: majority 2 -> (2 + 2) / 6
    assert purity([0, 0, 0, 1, 1, 1], [5, 5, 7, 7, 7, 8]) == pytest.approx(4 / 6)
    # one cluster holding everything: purity = share of the largest identity
    assert purity([0] * 5, [1, 1, 1, 2, 3]) == pytest.approx(3 / 5)


def test_outliers_are_excluded_then_counted_as_singletons():
    true = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    pred = np.array([0, 0, -1, 1, 1, 1, -1, -1])
    q = label_quality(pred, true)
    # on the 5 kept points the clustering is perfect
    assert q["nmi"] == pytest.approx(1.0) and q["ari"] == pytest.approx(1.0) and q["purity"] == 1.0
    assert q["n_clusters"] == 2 and q["n_outliers"] == 3 and q["outlier_ratio"] == pytest.approx(3 / 8)
    # with each outlier its own cluster, identity 2 is split in two and point 2 leaves its group
    assert q["nmi_all"] < 1.0 and q["ari_all"] < 1.0
    from sklearn.metrics import adjusted_rand_score
    assert q["ari_all"] == pytest.approx(adjusted_rand_score(true, [0, 0, 2, 1, 1, 1, 3, 4]))


def test_all_outliers_give_nan_scores():
    q = label_quality(np.array([-1, -1, -1]), np.array([0, 1, 1]))
    assert math.isnan(q["nmi"]) and math.isnan(q["ari"]) and math.isnan(q["purity"])
    assert q["n_clusters"] == 0 and q["outlier_ratio"] == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="same length"):
        label_quality(np.array([0, 1]), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="must be integers"):
        label_quality(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="at least one label"):
        label_quality(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
