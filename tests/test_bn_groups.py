"""BatchNorm groups (``model.bn_samples``, models/bn_groups.py): Eq. G1 (outputs and gradients equal separate
forwards of the groups), Eq. G2 (running statistics, worked values), the source/target layout, every model and
method's modules, the errors, and bit-identity of the default."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reid_uda_lib.config import ModelConfig, get_preset
from reid_uda_lib.config import ConfigError
from reid_uda_lib.methods.validate import validate_config
from reid_uda_lib.runtime.distributed import setup_bn_groups
from reid_uda_lib.methods.registry import get_method
from reid_uda_lib.models import build_model
from reid_uda_lib.models.bn_groups import (GhostBatchNorm1d, GhostBatchNorm2d, apply_layout, domain_layout,
                                           invert_layout, layout_groups, use_bn_groups)


def _bn_layers(module):
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("arch", ["tiny", "resnet18"])
def test_groups_equal_separate_forwards_of_the_chunks(arch):
    """Test 1: with bn_samples = B/4 the training-mode output and every parameter gradient equal those of four
    separate forwards of the four chunks (Eq. G1)."""
    torch.manual_seed(0)
    ref = build_model(ModelConfig(arch=arch), num_classes=5).train()
    ghost = use_bn_groups(copy.deepcopy(ref), 4)
    x = torch.randn(16, 3, 64, 32)
    w = torch.randn(16, ref.feat_dim)

    out = ghost(x)
    (out["bn"] * w).sum().add(out["logits"]["source"].square().sum()).backward()
    outs = [ref(c) for c in x.split(4)]
    ref_bn = torch.cat([o["bn"] for o in outs])
    ref_logits = torch.cat([o["logits"]["source"] for o in outs])
    (ref_bn * w).sum().add(ref_logits.square().sum()).backward()

    torch.testing.assert_close(out["bn"], ref_bn, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["fmap"], torch.cat([o["fmap"] for o in outs]), rtol=1e-4, atol=1e-4)
    for (name, p), q in zip(ghost.named_parameters(), ref.parameters()):
        if p.requires_grad:
            # float tolerance relative to the gradient's scale (sums over 16 vs 4 images accumulate differently)
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5 * float(q.grad.abs().max()), msg=name)
    # whole-batch BatchNorm differs: the test can tell the two apart
    assert (ref.train()(x)["bn"] - out["bn"]).abs().max() > 1e-2


def test_running_statistics_follow_the_mean_over_groups_rule():
    """Test 2 (Eq. G2), worked values: two groups of two images, one channel, momentum 0.1.
    Group 1 = [1, 3] -> mean 2, unbiased var 2; group 2 = [5, 9] -> mean 7, var 8.
    running_mean = 0.9·0 + 0.1·(2 + 7)/2 = 0.45; running_var = 0.9·1 + 0.1·(2 + 8)/2 = 1.4."""
    bn = use_bn_groups(nn.BatchNorm1d(1, momentum=0.1), 2).train()
    assert isinstance(bn, GhostBatchNorm1d)
    y = bn(torch.tensor([[1.0], [3.0], [5.0], [9.0]]))
    assert bn.running_mean.item() == pytest.approx(0.45)
    assert bn.running_var.item() == pytest.approx(1.4)
    assert int(bn.num_batches_tracked) == 1
    # each group normalised by its own (biased) moments: (1 - 2) / sqrt(1 + eps) = -1, ..., (9 - 7) / 2 = 1
    torch.testing.assert_close(y.squeeze(1), torch.tensor([-1.0, 1.0, -1.0, 1.0]), rtol=1e-4, atol=1e-4)


def test_running_statistics_2d_and_cumulative_momentum():
    """BatchNorm2d: per-group mean/var over (images, height, width), averaged; momentum=None is the cumulative
    average of the groups' means."""
    torch.manual_seed(1)
    x = torch.randn(6, 3, 4, 5)
    bn = use_bn_groups(nn.BatchNorm2d(3, momentum=None), 3).train()
    assert isinstance(bn, GhostBatchNorm2d)
    bn(x)
    g = x.view(2, 3, 3, 4, 5).transpose(1, 2).reshape(2, 3, -1)
    torch.testing.assert_close(bn.running_mean, g.mean(2).mean(0))
    torch.testing.assert_close(bn.running_var, g.var(2, unbiased=True).mean(0))


def test_eval_mode_and_whole_batch_are_plain_batchnorm():
    """Evaluation mode is unchanged; bn_samples >= the batch and bn_samples = 0 are bit-identical to BatchNorm."""
    torch.manual_seed(2)
    ref = build_model(ModelConfig(arch="tiny"), num_classes=3)
    x = torch.randn(8, 3, 64, 32)
    same = use_bn_groups(copy.deepcopy(ref), 8)
    assert torch.equal(ref.train()(x)["bn"], same.train()(x)["bn"])
    ghost = use_bn_groups(copy.deepcopy(ref), 2)
    assert torch.equal(ref.eval()(x)["bn"], ghost.eval()(x)["bn"])
    untouched = use_bn_groups(copy.deepcopy(ref), 0)
    assert all(type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) for m in _bn_layers(untouched))
    # the state dict keeps its keys: checkpoints load either way
    assert list(ghost.state_dict()) == list(ref.state_dict())


def test_layout_gives_equal_domain_shares_and_its_inverse_restores_the_order():
    """Test 3: every group holds n_s/G source and n_t/G target images; the inverse restores [source; target]."""
    n_s, n_t, groups = 8, 8, 4
    order = domain_layout(n_s, n_t, groups)
    x = torch.arange(n_s + n_t)
    laid = x[order]
    for g in laid.view(groups, -1):
        assert (g < n_s).sum() == n_s // groups and (g >= n_s).sum() == n_t // groups
    assert laid[:4].tolist() == [0, 1, 8, 9]              # group 0 = source chunk 0 + target chunk 0
    assert torch.equal(laid[invert_layout(order)], x)
    out = {"f": laid.float().unsqueeze(1), "logits": {"h": laid.float().unsqueeze(1)}}
    back = apply_layout(out, invert_layout(order))
    assert back["logits"]["h"].squeeze(1).tolist() == x.float().tolist()
    assert torch.equal(domain_layout(3, 5, 1), torch.arange(8))     # one group: the plain concatenation
    # unequal domains: 4 source + 8 target in 2 groups of 2 + 4
    assert domain_layout(4, 8, 2).tolist() == [0, 1, 4, 5, 6, 7, 2, 3, 8, 9, 10, 11]


def test_errors_name_the_setting():
    bn = use_bn_groups(nn.BatchNorm1d(2), 4).train()
    with pytest.raises(ValueError, match=r"model.bn_samples = 4.*batch of 6 images"):
        bn(torch.randn(6, 2))
    with pytest.raises(ValueError, match="model.bn_samples = 5 must divide the local batch of 16"):
        layout_groups(8, 8, 5)
    with pytest.raises(ValueError, match="same share"):
        layout_groups(6, 10, 4)                             # 4 groups cannot share 6 source images equally
    assert layout_groups(4, 12, 4) == 4                     # 1 source + 3 target per group is fine
    with pytest.raises(ValueError, match="non-negative"):
        use_bn_groups(nn.BatchNorm1d(2), -1)
    with pytest.raises(ValueError, match="larger than the 16 images"):
        setup_bn_groups(32, 16, nn.BatchNorm1d(2))
    with pytest.raises(ConfigError, match="model.bn_samples"):
        validate_config(get_preset("tiny", **{"model.bn_samples": 24}))       # divides neither 32 nor 64
    with pytest.raises(ConfigError, match="model.bn_samples"):
        validate_config(get_preset("tiny", **{"model.bn_samples": -2}))


def test_paper_preset_sets_the_papers_groups():
    assert get_preset("paper").model.bn_samples == 32
    assert get_preset("cpu").model.bn_samples == 0 and get_preset("tiny").model.bn_samples == 0


@pytest.mark.parametrize("method", ["dcdfa", "lf2", "lf2_dcdfa", "sbase_dann"])
def test_every_methods_modules_get_groups(method):
    """The method's modules (DCDFA's b-neck, LF²'s experts) are grouped like the backbone."""
    cfg = get_preset("tiny", **{"uda.method": method, "model.bn_samples": 16})
    model = build_model(cfg.model, num_classes=4)
    extra = get_method(method).extra_modules(model, cfg)
    setup_bn_groups(16, 64, model, extra, n_source=32)
    layers = _bn_layers(model) + _bn_layers(extra)
    assert layers and all(isinstance(m, (GhostBatchNorm1d, GhostBatchNorm2d)) and m.bn_samples == 16
                          for m in layers)
