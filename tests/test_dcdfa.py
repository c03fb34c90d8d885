"""DCDFA's equations on worked values (2-D features where the answer is computed by hand) and its modules."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from reid_uda_lib.analysis import attention_stats, linear_probe_domain, swap_test
from reid_uda_lib.config import get_preset
from reid_uda_lib.methods.base import StepContext
from reid_uda_lib.methods.registry import METHODS, get_method
from reid_uda_lib.losses.dcdfa import cid_loss, domain_ce, domain_loss
from reid_uda_lib.models import build_model
from reid_uda_lib.models.dcdfa import (ChannelAttention, DomainClassifier, Temperature, disentangle,
                                       grad_reverse, pair_indices, recompose)


def _t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# -- Eq. 3: channel attention --------------------------------------------------------------------------

def test_channel_attention_eq3_worked_values():
    att = ChannelAttention(2, reduction=1)
    with torch.no_grad():
        for lin in (att.mlp[0], att.mlp[2]):
            lin.weight.copy_(torch.eye(2))
            lin.bias.zero_()
    # channel 0 = [1, 3]: avg 2, max 3; channel 1 = [-1, -1]: avg -1, max -1
    fmap = torch.tensor([[[[1.0, 3.0]], [[-1.0, -1.0]]]])                    # (1, 2, 1, 2)
    # W1·ReLU(W0·avg) = [2, 0]; W1·ReLU(W0·max) = [3, 0]; m = σ([5, 0]) = [0.993307, 0.5]
    m = att(fmap)
    assert m.shape == (1, 2)
    assert torch.allclose(m, torch.tensor([[1 / (1 + math.exp(-5)), 0.5]]), atol=1e-6)


def test_channel_attention_checks_shapes_and_reduction():
    with pytest.raises(ValueError, match="divisible by the reduction r=8"):
        ChannelAttention(12, reduction=8)
    att = ChannelAttention(16, reduction=8)
    with pytest.raises(ValueError, match=r"\(B, 16, H, W\)"):
        att(torch.zeros(2, 8, 3, 3))
    m = att(torch.randn(5, 16, 4, 2))
    assert m.shape == (5, 16) and bool(((m > 0) & (m < 1)).all())


# -- Eq. 1-2, 4-5: disentanglement, pairing, recomposition --------------------------------------------

def test_disentangle_eq1_eq2_worked_and_exact_sum():
    b, e = disentangle(_t([2.0, 4.0]), _t([0.25, 0.5]))
    assert torch.equal(b, _t([0.5, 2.0])) and torch.equal(e, _t([1.5, 2.0]))
    f = torch.randn(7, 33)
    b, e = disentangle(f, torch.rand(7, 33))
    assert torch.allclose(b + e, f, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="same shape"):
        disentangle(f, torch.rand(7, 32))


def test_pairing_is_a_seeded_permutation_and_checks_sizes():
    perm = pair_indices(6, 6, torch.Generator().manual_seed(3))
    assert sorted(perm.tolist()) == list(range(6))                    # each target image in exactly one pair
    assert torch.equal(perm, pair_indices(6, 6, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="5 source and 4 target"):
        pair_indices(5, 4, torch.Generator())


def test_recompose_eq5_worked_values():
    b_i, e_i = _t([1.0, 0.0]), _t([0.0, 2.0])          # source image i
    b_j, e_j = _t([0.0, 3.0]), _t([4.0, 0.0])          # target image j
    r_t, r_s = recompose(b_i, e_i, b_j, e_j)
    assert torch.equal(r_t, _t([5.0, 0.0]))            # r_i^t = b_i + e_j^t
    assert torch.equal(r_s, _t([0.0, 5.0]))            # r_j^s = b_j + e_i^s
    with pytest.raises(ValueError, match="row k of every input"):
        recompose(b_i, e_i, b_j, _t([1.0, 2.0, 3.0]))


# -- Eq. 6: L_CID ----------------------------------------------------------------------------------------

def test_cid_loss_eq6_symmetric_worked_value():
    # f_s = r_t = [1, 0] (identity i), f_t = r_s = [0, 1] (identity j): every anchor has s+ = 1 and two
    # negatives with s- = 0, so each term is log(1 + exp(-1/τ)·2).
    f_s, f_t, r_s, r_t = _t([1.0, 0.0]), _t([0.0, 1.0]), _t([0.0, 1.0]), _t([1.0, 0.0])
    assert cid_loss(f_s, f_t, r_s, r_t, 1.0).item() == pytest.approx(math.log(1 + 2 * math.exp(-1)), abs=1e-6)
    assert cid_loss(f_s, f_t, r_s, r_t, 0.5).item() == pytest.approx(0.2395448, abs=1e-6)


def test_cid_loss_eq6_asymmetric_worked_value():
    # f_s=[1,0], f_t=[0,1], r_s=[-1,0], r_t=[0.6,0.8]; τ = 1. Per anchor (s+; s-):
    #   f_s: (0.6; 0, -1)   -> log(1 + e^-0.6 (1 + e^-1))    = 0.560020
    #   f_t: (0;   0, 0.8)  -> log(1 + e^0 (1 + e^0.8))      = 1.441147
    #   r_s: (0;  -1, -0.6) -> log(1 + e^0 (e^-1 + e^-0.6))  = 0.650600
    #   r_t: (0.6; 0.8,-0.6)-> log(1 + e^-0.6 (e^0.8+e^-0.6))= 0.925289
    loss = cid_loss(_t([1.0, 0.0]), _t([0.0, 1.0]), _t([-1.0, 0.0]), _t([0.6, 0.8]), torch.tensor(1.0))
    assert loss.item() == pytest.approx((0.560020 + 1.441147 + 0.650600 + 0.925289) / 4, abs=1e-5)


def test_cid_loss_averages_pairs_and_is_scale_invariant():
    g = torch.Generator().manual_seed(0)
    x = [torch.randn(3, 5, generator=g) for _ in range(4)]
    per_pair = [cid_loss(*(t[k:k + 1] for t in x), 0.7) for k in range(3)]
    assert cid_loss(*x, 0.7).item() == pytest.approx(float(sum(per_pair) / 3), abs=1e-6)
    assert cid_loss(*(3 * t for t in x), 0.7).item() == pytest.approx(cid_loss(*x, 0.7).item(), abs=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        cid_loss(x[0], x[1], x[2], x[3][:2], 1.0)


def test_temperature_is_learnable_and_positive():
    tau = Temperature(1.0)
    assert tau().item() == pytest.approx(1.0)
    x = [torch.randn(4, 3, requires_grad=True) for _ in range(4)]
    cid_loss(*x, tau()).backward()
    assert tau.log_tau.grad is not None and tau.log_tau.grad.abs().item() > 0
    with torch.no_grad():
        tau.log_tau.fill_(-50.0)                     # any value of the parameter keeps τ > 0
    assert tau().item() > 0
    with pytest.raises(ValueError, match="positive"):
        Temperature(0.0)


# -- Eq. 7: L_Domain, the domain classifier, DANN ----------------------------------------------------------

def test_domain_loss_eq7_worked_values():
    z = torch.zeros(2, 2)
    assert domain_loss(z, z, z, z).item() == pytest.approx(math.log(2), abs=1e-6)   # p = 0.5 everywhere
    src = torch.tensor([[0.0, math.log(3)]])           # p(source) = 3 / (1 + 3) = 0.75
    tgt = torch.tensor([[math.log(3), 0.0]])           # 1 - p(source) = 0.75
    assert domain_loss(src, src, tgt, tgt).item() == pytest.approx(-math.log(0.75), abs=1e-6)
    # one wrong term: -(1/4)(3 log 0.75 + log 0.25)
    assert domain_loss(src, tgt, tgt, tgt).item() == pytest.approx(
        -(3 * math.log(0.75) + math.log(0.25)) / 4, abs=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        domain_loss(*(torch.zeros(2, 3),) * 4)


def test_domain_classifier_layout():
    clf = DomainClassifier(128, reduction=8, dropout=0.1)
    widths = [m.out_features for m in clf.net if isinstance(m, nn.Linear)]
    assert widths == [16, 2, 2]
    assert [m.p for m in clf.net if isinstance(m, nn.Dropout)] == [0.1, 0.1]
    assert clf(torch.randn(3, 128)).shape == (3, 2)
    with pytest.raises(ValueError, match="lower dcdfa.reduction"):
        DomainClassifier(32, reduction=8)


def test_grad_reverse_and_domain_ce():
    x = torch.ones(2, 3, requires_grad=True)
    (grad_reverse(x, 0.5) * 2).sum().backward()
    assert torch.equal(x.grad, torch.full((2, 3), -1.0))
    z = torch.zeros(3, 2)
    assert domain_ce(z, z).item() == pytest.approx(math.log(2), abs=1e-6)


# -- the method plug-in ------------------------------------------------------------------------------------

def _ctx(method, n_s=4, n_t=4, **over):
    cfg = get_preset("tiny", **over)
    model = build_model(cfg.model, num_classes=5)
    model.set_classifier("target", 3)
    extra = method.extra_modules(model, cfg)
    out_s, out_t = model(torch.randn(n_s, 3, 64, 32)), model(torch.randn(n_t, 3, 64, 32))
    return StepContext(out_s, out_t, torch.tensor([0, 0, 1, 1][:n_s]), torch.tensor([0, 1, 1, 2][:n_t]),
                       extra, model, cfg, step=7, epoch=0), extra


@pytest.mark.parametrize("name, expected", [
    ("dcdfa_cid", {"cid"}),
    ("dcdfa_cid_rreid", {"cid", "b_ce", "b_tri"}),
    ("dcdfa_cid_domain", {"cid", "domain"}),
    ("dcdfa", {"cid", "domain", "b_ce", "b_tri"}),
    ("sbase_dann", {"adv"}),
])
def test_table3_rows_are_weight_settings(name, expected):
    # which terms exist and that they train; which tensors they see: tests/test_dcdfa_wiring.py
    ctx, extra = _ctx(get_method(name))
    terms = get_method(name).extra_terms(ctx)
    assert set(terms) == expected
    sum(terms.values()).backward()
    trained = {n for n, p in extra.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    if "domain" in expected or "adv" in expected:
        assert any(n.startswith("domain.") for n in trained)
    if "cid" in expected:
        assert {"tau.log_tau", "attention.mlp.0.weight"} <= trained


def test_config_weight_switches_terms_off():
    ctx, _ = _ctx(get_method("dcdfa"), **{"dcdfa.w_domain": 0, "dcdfa.w_rreid": 0.5})
    terms = get_method("dcdfa").extra_terms(ctx)
    assert set(terms) == {"cid", "b_ce", "b_tri"}
    assert get_method("dcdfa").weights(ctx.cfg) == {"cid": 1.0, "domain": 0.0, "rreid": 0.5}


def test_dcdfa_refuses_unequal_batches():
    ctx, _ = _ctx(get_method("dcdfa"), n_s=4, n_t=3)
    with pytest.raises(ValueError, match="4 source and 3 target"):
        get_method("dcdfa").extra_terms(ctx)


def test_every_registered_method_builds_on_every_small_backbone():
    assert {"sbase", "dcdfa", "dcdfa_cid", "sbase_dann"} <= set(METHODS)
    for arch in ("tiny", "resnet18"):
        cfg = get_preset("tiny", **{"model.arch": arch})
        model = build_model(cfg.model, num_classes=3)
        for m in METHODS.values():
            assert isinstance(m.extra_modules(model, cfg), nn.ModuleDict)


# -- probes ---------------------------------------------------------------------------------------------

def test_linear_probe_reads_a_domain_only_where_it_is():
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
    xs[:, 0] += 5.0                                      # the domain lives in dimension 0
    assert linear_probe_domain(xs, xt) == 1.0
    assert 0.3 <= linear_probe_domain(xs[:, 1:], xt[:, 1:]) <= 0.7
    with pytest.raises(ValueError, match="at least 4 images"):
        linear_probe_domain(xs[:2], xt)


def test_swap_test_on_an_ideal_disentanglement():
    # b: two-hot identity (dims 0-2 source persons, 3-5 target persons); e: one-hot domain (6 source,
    # 7 target); the classifier reads dims 6-7 only (column 1 = source = dim 6)
    eye = torch.eye(8)
    pid_s, pid_t = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2])      # ids are per domain
    b_s, b_t = 2 * eye[[0, 1, 2]], 2 * eye[[3, 4, 5]]                   # b dominates f, as it should
    e_s, e_t = eye[[6, 6, 6]], eye[[7, 7, 7]]
    clf = nn.Linear(8, 2, bias=False)
    with torch.no_grad():
        clf.weight.copy_(eye[[7, 6]])
    src = {"b": b_s, "e": e_s, "f": b_s + e_s}
    tgt = {"b": b_t, "e": e_t, "f": b_t + e_t}
    res = swap_test(src, tgt, pid_s, pid_t, clf, torch.Generator().manual_seed(0))
    assert res == {"r_t_is_target": 1.0, "r_s_is_source": 1.0, "id_follows_b": 1.0}
    # the opposite split (domain in b, identity in e): after the swap the domain follows b
    flipped = swap_test({"b": e_s, "e": b_s, "f": b_s + e_s}, {"b": e_t, "e": b_t, "f": b_t + e_t},
                        pid_s, pid_t, clf, torch.Generator().manual_seed(0))
    assert flipped["r_t_is_target"] == 0.0 and flipped["r_s_is_source"] == 0.0


def test_attention_stats_worked_values():
    st = attention_stats(_t([0.2, 0.8], [0.4, 0.6]), _t([0.5, 0.5]))
    assert np.allclose(st["per_channel_source"], [0.3, 0.7]) and np.allclose(st["per_channel_target"], [0.5, 0.5])
    assert st["mean_source"] == pytest.approx(0.5) and st["channel_gap"] == pytest.approx(0.2)


def test_dcdfa_losses_train_the_backbone_and_dann_reverses_its_gradient():
    for name, terms in (("dcdfa_cid", ("cid",)), ("dcdfa_cid_domain", ("domain",))):
        ctx, _ = _ctx(get_method(name))
        t = get_method(name).extra_terms(ctx)
        sum(t[k] for k in terms).backward()
        grads = [p.grad for p in ctx.model.backbone.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    # DANN: the gradient that reaches f is minus lambda times the classifier's
    ctx, extra = _ctx(get_method("sbase_dann"), **{"dann.grl_lambda": 0.5})
    extra.eval()                                      # no dropout: the two passes below must be the same
    f = torch.cat([ctx.out_s["f"], ctx.out_t["f"]]).detach().requires_grad_(True)
    n = len(ctx.out_s["f"])
    ctx.out_s, ctx.out_t = {"f": f[:n]}, {"f": f[n:]}
    get_method("sbase_dann").extra_terms(ctx)["adv"].backward()
    g_reversed = f.grad.clone()
    f2 = f.detach().clone().requires_grad_(True)
    domain_ce(*extra["domain"](f2).split(n)).backward()
    assert torch.allclose(g_reversed, -0.5 * f2.grad, atol=1e-6)


def test_dcdfa_and_dann_settings_are_validated():
    from reid_uda_lib.config import ConfigError
    from reid_uda_lib.methods.validate import validate_config
    for key, value in (("dcdfa.reduction", 0), ("dcdfa.tau_init", 0.0), ("dcdfa.w_domain", -1.0),
                       ("dcdfa.dropout", 1.0), ("dann.grl_lambda", -1.0)):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):      # the methods' own rules
            validate_config(get_preset("tiny", **{key: value}))


def test_probes_skip_the_domain_half_without_a_trained_classifier_and_without_test_images():

    from reid_uda_lib.analysis import run_probes
    from reid_uda_lib.data import ReidDataset

    eye = torch.eye(4)
    res = swap_test({"b": eye[:2], "e": eye[2:], "f": eye[:2] + eye[2:]},
                    {"b": eye[2:], "e": eye[:2], "f": eye[2:] + eye[:2]}, torch.tensor([1, 2]),
                    torch.tensor([1, 2]), None, torch.Generator())
    assert res["r_t_is_target"] is None and res["r_s_is_source"] is None and 0 <= res["id_follows_b"] <= 1
    empty = ReidDataset(name="x", root="x", train=[("a.jpg", 1, 0)], query=[], gallery=[])
    with pytest.warns(UserWarning, match="probes skipped: .* the source has 0"):
        assert run_probes(nn.Identity(), nn.Identity(), None, empty, empty, None, torch.device("cpu")) == {}

