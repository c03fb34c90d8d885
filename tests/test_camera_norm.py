"""Per-camera centring of the clustering features (``uda.camera_norm``): worked values, edge cases, errors,
and the SBase/DCDFA label path clustering the centred features only when asked."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid_uda_lib.cluster import camera_centred
from reid_uda_lib.config import get_preset
from reid_uda_lib.methods.base import ClusterContext
from reid_uda_lib.methods.registry import METHODS

R = 2 ** -0.5


def test_worked_values():
    feats = torch.tensor([[1.0, 0.0], [0.0, 2.0],      # camera 1: normalised (1, 0), (0, 1); mean (.5, .5)
                          [3.0, 4.0],                  # camera 2: one image, kept: (.6, .8)
                          [1.0, 1.0], [2.0, 2.0]])     # camera 3: identical directions: centred to 0, kept
    out = camera_centred(feats, [1, 1, 2, 3, 3])
    expected = torch.tensor([[R, -R], [-R, R], [0.6, 0.8], [R, R], [R, R]])
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(out.norm(dim=1), torch.ones(5))


def test_one_camera_equals_global_centring_and_errors():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.rand(6, 4, generator=g), dim=1)
    assert torch.allclose(camera_centred(x, [5] * 6),
                          torch.nn.functional.normalize(x - x.mean(0), dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="N camera ids"):
        camera_centred(x, [1, 2])


@pytest.mark.parametrize("on", [False, True])
def test_sbase_label_path_clusters_centred_features_only_when_asked(monkeypatch, on):
    import reid_uda_lib.cluster as cluster
    import reid_uda_lib.core.features as features
    g = torch.Generator().manual_seed(1)
    feats = torch.nn.functional.normalize(torch.rand(8, 4, generator=g), dim=1)
    items = [(f"img{i}.jpg", i // 2, 1 + i % 2) for i in range(8)]
    seen = {}
    monkeypatch.setattr(features, "extract_features", lambda *a, **k: feats)

    def fake_pseudo_labels(x, **settings):                   # records what would be clustered
        seen["x"] = x
        return np.arange(8) % 2

    monkeypatch.setattr(cluster, "pseudo_labels", fake_pseudo_labels)
    cfg = get_preset("tiny", **{"uda.camera_norm": on})
    ctx = ClusterContext(None, None, None, None, items, cfg, torch.device("cpu"), 0, False)
    sets = METHODS["sbase"].pseudo_labels(ctx)
    want = camera_centred(feats, [c for _, _, c in items]) if on else feats
    assert torch.allclose(torch.as_tensor(seen["x"]), want)
    assert torch.equal(sets.features, feats)                 # centroids and memory use the features as they are
    np.testing.assert_array_equal(sets.labels[0], np.arange(8) % 2)


def test_lf2_clusters_every_level_centred_when_asked(monkeypatch):
    import reid_uda_lib.methods.lf2 as method_lf2
    g = torch.Generator().manual_seed(2)
    levels = [torch.nn.functional.normalize(torch.rand(8, 4, generator=g), dim=1) for _ in range(3)]
    items = [(f"img{i}.jpg", i // 2, 1 + i % 3) for i in range(8)]
    seen = {}
    monkeypatch.setattr(method_lf2, "level_features", lambda *a, **k: (levels, levels[0]))

    def fake_cluster_levels(feats, **settings):
        seen["feats"] = feats
        return [np.arange(8) % 2 for _ in feats]

    monkeypatch.setattr(method_lf2, "cluster_levels", fake_cluster_levels)
    cfg = get_preset("tiny", **{"uda.camera_norm": True})
    ctx = ClusterContext(None, None, None, {"fm": None}, items, cfg, torch.device("cpu"), 0, False)
    METHODS["lf2"].pseudo_labels(ctx)
    cams = [c for _, _, c in items]
    assert len(seen["feats"]) == 3
    for got, level in zip(seen["feats"], levels):
        assert torch.allclose(got, camera_centred(level, cams))
