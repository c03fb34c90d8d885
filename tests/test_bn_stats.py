"""Target BatchNorm statistics (AdaBN, core/bn_stats.py): worked values and the loop's use of them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from reid_uda_lib.config import DataConfig
from reid_uda_lib.train import adapt, load_checkpoint
from reid_uda_lib.core.bn_stats import TargetBNStats, bn_subset, refresh_bn_stats
from reid_uda_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from uda_helpers import Interrupt, stop_after_first_epoch, tiny_cfg

COLOURS = [(255, 0, 0), (0, 128, 255), (60, 60, 60)]


def _items(tmp_path):
    items = []
    for i, c in enumerate(COLOURS):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 16), c).save(path)
        items.append((str(path), i, 0))
    return items


def test_refresh_sets_the_exact_target_mean_and_variance(tmp_path):
    """Three flat images (red, azure, grey): the per-channel mean/variance over all their normalised pixels."""
    net = nn.Sequential(nn.BatchNorm2d(3), nn.Dropout(0.5))
    net[0].running_mean.fill_(5.0)          # stale "source" statistics
    net.train()
    cfg = DataConfig(height=16, width=8, test_batch_size=8)     # one batch: the cumulative average is exact
    assert refresh_bn_stats(net, _items(tmp_path), cfg, torch.device("cpu"), progress=False) == 1
    x = (np.asarray(COLOURS, dtype=np.float64) / 255.0 - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)    # (3 images, 3 ch)
    n = 16 * 8                                          # every image contributes n equal pixels
    mean = x.mean(axis=0)
    var_unbiased = ((x - mean) ** 2).sum(axis=0) * n / (3 * n - 1)
    assert np.allclose(net[0].running_mean.numpy(), mean, atol=1e-3)
    assert np.allclose(net[0].running_var.numpy(), var_unbiased, atol=1e-3)
    # the net's mode and the layer's momentum are restored; nothing drew from the global RNG
    assert net.training and net[0].momentum == 0.1


def test_refresh_keeps_the_global_rng_and_needs_images(tmp_path):
    net = nn.BatchNorm2d(3)
    torch.manual_seed(3)
    before = torch.get_rng_state()
    refresh_bn_stats(net, _items(tmp_path), DataConfig(height=16, width=8), torch.device("cpu"), progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    with pytest.raises(ValueError, match="no target images"):
        refresh_bn_stats(net, [], DataConfig(), torch.device("cpu"), progress=False)
    assert refresh_bn_stats(nn.Linear(2, 2), [], DataConfig(), torch.device("cpu")) == 0    # nothing to do


def test_bn_subset_is_evenly_spaced_and_deterministic():
    items = [(f"{i}.png", i // 10, i % 5) for i in range(100)]
    assert bn_subset(items, 0) == items and bn_subset(items, 500) == items
    sub = bn_subset(items, 8)
    assert [p for p, _, _ in sub] == [f"{i}.png" for i in (0, 12, 25, 37, 50, 62, 75, 87)]
    assert sub == bn_subset(items, 8) and len({p for _, p, _ in sub}) == 8     # spread over the identities
    with pytest.raises(ValueError, match="target_bn_images must be >= 0"):
        bn_subset(items, -1)


def test_target_statistics_are_refreshed_once_per_weight_change(tmp_path):
    """Evaluate at the end of an epoch, cluster at the start of the next: one pass, the same statistics."""
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    stats = TargetBNStats(net, _items(tmp_path), DataConfig(height=16, width=8), torch.device("cpu"),
                          progress=False)
    stats.ensure()
    first = net[1].running_mean.clone()
    net[1].running_mean.fill_(7.0)                      # a second pass would overwrite this
    stats.ensure()
    assert stats.passes == 1 and torch.all(net[1].running_mean == 7.0)
    stats.invalidate()                                  # a training step changed the weights
    stats.ensure()
    assert stats.passes == 2 and torch.equal(net[1].running_mean, first)


@pytest.mark.slow
def test_uda_with_target_bn_resumes_exactly_and_changes_the_labels(tiny_pretrained, tmp_path):
    src, tgt, init = tiny_pretrained
    cfg = tiny_cfg("sbase", **{"uda.target_bn": True})
    full = adapt(cfg, src, tgt, init, tmp_path / "full", progress=False)
    with pytest.raises(Interrupt):
        adapt(cfg, src, tgt, init, tmp_path / "cut", progress=False, on_epoch_end=stop_after_first_epoch)
    resumed = adapt(cfg, src, tgt, init, tmp_path / "cut", resume="auto", progress=False)
    assert resumed["target"] == full["target"] and resumed["cluster"] == full["cluster"]
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("cut", "full"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
    # the same run without target statistics clusters other features: the switch reaches the clustering
    plain = adapt(tiny_cfg("sbase"), src, tgt, init, tmp_path / "plain", progress=False)
    assert plain["target"] != full["target"]


def test_refresh_ignores_batchnorm_groups(tmp_path):
    """With model.bn_samples the layers keep their groups for training; the refresh averages the whole set."""
    from reid_uda_lib.models.bn_groups import use_bn_groups
    plain, grouped = nn.BatchNorm2d(3), use_bn_groups(nn.Sequential(nn.BatchNorm2d(3)), 2)
    cfg = DataConfig(height=16, width=8, test_batch_size=3)     # 3 images: not a multiple of the groups of 2
    for net in (plain, grouped):
        refresh_bn_stats(net, _items(tmp_path), cfg, torch.device("cpu"), progress=False)
    assert torch.allclose(plain.running_mean, grouped[0].running_mean)
    assert torch.allclose(plain.running_var, grouped[0].running_var) and grouped[0].bn_samples == 2


@pytest.mark.slow
def test_ladder_direct_bn_row_is_the_pretrained_model_with_target_statistics(tiny_pretrained, tmp_path):
    import json
    from reid_uda_lib.train.evaluate_checkpoint import evaluate_checkpoint
    from reid_uda_lib.experiments.ladder import direct_bn_row
    src, tgt, init = tiny_pretrained
    summary = direct_bn_row(tiny_cfg("sbase"), init, tgt, tmp_path / "direct_bn", progress=False)
    assert json.loads((tmp_path / "direct_bn" / "summary.json").read_text()) == summary
    plain = evaluate_checkpoint(init, tgt, device="cpu", progress=False)
    assert summary["target"]["target_bn"] and not plain["target_bn"]
    assert summary["target"]["mAP"] != plain["mAP"]            # other statistics, other features
    # the checkpoint itself is untouched: evaluating it again gives the plain numbers
    assert evaluate_checkpoint(init, tgt, device="cpu", progress=False)["mAP"] == plain["mAP"]
