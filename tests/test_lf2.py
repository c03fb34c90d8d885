"""LF² pieces: part split, Fusion Module (Eq. 5, both readings), experts, inference feature, Eq. 8 / 10, the FM's
loss, multi-level label agreement, and the FM learning inside a real training step."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid_uda_lib.cluster import label_agreement, level_report
from reid_uda_lib.cluster.multilevel import cluster_levels, level_n_clusters
from reid_uda_lib.config import get_preset
from reid_uda_lib.core.training import build_optimizer
from reid_uda_lib.methods.lf2 import LF2Method, check_lf2_config
from reid_uda_lib.methods.registry import get_method
from reid_uda_lib.train.uda_step import TARGET_HEAD, UDAParts, compute_terms, train_step
from reid_uda_lib.losses import softmax_triplet
from reid_uda_lib.losses.lf2 import fusion_loss, lf2_cls_loss, lf2_total
from reid_uda_lib.models import MeanTeacher, build_model
from reid_uda_lib.models.lf2 import (ConcatFeatureNet, Experts, FusionModule, concat_feature, fusion_map,
                                     part_features)


# -- part split -------------------------------------------------------------------------------------------

def test_part_features_worked_values_and_pcb_convention():
    fmap = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1)
    assert part_features(fmap, 2).tolist() == [[[1.5], [3.5]]]
    # H = 3, K = 2: stripes are rows {0, 1} and {1, 2} (adaptive pooling, PCB)
    fmap3 = torch.tensor([1.0, 2.0, 4.0]).view(1, 1, 3, 1)
    assert part_features(fmap3, 2).tolist() == [[[1.5], [3.0]]]
    x = torch.randn(3, 5, 7, 2)
    for k in (1, 2, 3, 7):
        ref = F.adaptive_avg_pool2d(x, (k, 1)).squeeze(3).transpose(1, 2)
        assert part_features(x, k).shape == (3, k, 5)
        assert torch.allclose(part_features(x, k), ref)
    with pytest.raises(ValueError, match=r"num_parts must be an integer in \[1, H=7\]"):
        part_features(x, 8)
    with pytest.raises(ValueError, match=r"fmap must be \(B, C, H, W\)"):
        part_features(x[0], 2)


# -- Fusion Module (Eq. 5) ---------------------------------------------------------------------------------

PHI0 = torch.tensor([[[[2.0, 4.0]], [[1.0, 1.0]]]])          # (1, C=2, H=1, W=2)
F_PART = torch.tensor([[0.0, 1.0]])
MLP_OUT = torch.tensor([[0.0, -1.0]])


def test_fusion_map_eq5_add_reading_worked_values():
    # Z = MLP(F) + F = [0, 0] -> sigma = 0.5 on both channels
    out = fusion_map(PHI0, F_PART, MLP_OUT, mode="add")
    assert torch.allclose(out, torch.tensor([[[[1.0, 2.0]], [[0.5, 0.5]]]]))


def test_fusion_map_eq5_mul_reading_worked_values():
    # Z = MLP(F) * F = [0, -1] -> sigma = [0.5, 0.26894142]
    out = fusion_map(PHI0, F_PART, MLP_OUT, mode="mul")
    s = 1.0 / (1.0 + math.e)
    assert torch.allclose(out, torch.tensor([[[[1.0, 2.0]], [[s, s]]]]))
    with pytest.raises(ValueError, match="mode must be one of"):
        fusion_map(PHI0, F_PART, MLP_OUT, mode="concat")


def test_fusion_map_eq5_line3_reading_worked_values():
    # line 3, F outside the sigmoid: sigma(MLP(F)) * F = [0.5 * 0, sigma(-1) * 1] = [0, 0.26894142]
    out = fusion_map(PHI0, F_PART, MLP_OUT, mode="mul_outside")
    s = 1.0 / (1.0 + math.e)
    assert torch.allclose(out, torch.tensor([[[[0.0, 0.0]], [[s, s]]]]))


@pytest.mark.parametrize("mode", ["add", "mul", "mul_outside"])
def test_fusion_module_gates_the_teacher_global_feature(mode):
    torch.manual_seed(0)
    fm = FusionModule(8, num_parts=2, reduction=4, mode=mode)
    assert [tuple(m[0].weight.shape) for m in fm.mlps] == [(2, 8), (2, 8)]     # C -> C/r -> C per part
    phi0_map = torch.rand(3, 8, 4, 2)
    f_parts = torch.rand(3, 2, 8)
    phi = fm(phi0_map, f_parts)
    assert phi.shape == (3, 2, 8)
    for j in range(2):
        mlp_out = fm.mlps[j](f_parts[:, j])
        gate = {"add": torch.sigmoid(mlp_out + f_parts[:, j]), "mul": torch.sigmoid(mlp_out * f_parts[:, j]),
                "mul_outside": torch.sigmoid(mlp_out) * f_parts[:, j]}[mode]
        # GAP(gate (x) Phi^P0) = gate * phi^P0
        assert torch.allclose(phi[:, j], gate * phi0_map.mean(dim=(2, 3)), atol=1e-6)
        assert torch.allclose(fm.fusion_maps(phi0_map, f_parts)[j].mean(dim=(2, 3)), phi[:, j])
    with pytest.raises(ValueError, match=r"f_parts \(B, K=2, C\)"):
        fm(phi0_map, f_parts[:, :1])
    with pytest.raises(ValueError, match="mode must be one of"):
        FusionModule(8, mode="residual")


def test_experts_are_fc_bn_per_part():
    ex = Experts(6, num_parts=2)
    assert [type(m).__name__ for m in ex.experts[0]] == ["Linear", "BatchNorm1d"]
    f = torch.randn(5, 2, 6)
    out = ex(f)
    assert out.shape == (5, 2, 6)
    assert torch.allclose(out[:, 1], ex.experts[1](f[:, 1]))
    with pytest.raises(ValueError, match=r"f_parts must be \(B, K=2, C\)"):
        ex(f[:, :1])


def test_concat_inference_feature_worked_values():
    fmap = torch.tensor([[3.0, 1.0], [4.0, 1.0]]).view(1, 2, 2, 1)      # channel c, rows h
    g = torch.tensor([2.0, 2.5]) / math.hypot(2.0, 2.5)
    expected = torch.cat([g, torch.tensor([0.6, 0.8]), torch.tensor([1.0, 1.0]) / math.sqrt(2.0)])
    assert torch.allclose(concat_feature(fmap, 2)[0], expected)

    class Net(torch.nn.Module):
        def forward(self, x):
            return {"fmap": fmap, "f": fmap.mean(dim=(2, 3))}
    assert torch.allclose(ConcatFeatureNet(Net(), 2)(None)["feat"][0], expected)
    assert torch.allclose(ConcatFeatureNet(Net(), global_only=True)(None)["feat"][0], torch.tensor([2.0, 2.5]))


# -- losses (Eq. 8, Eq. 10, the FM's term) -----------------------------------------------------------------

def test_cls_loss_eq8_worked_values():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    # -log(3/4) and -log(1/2), averaged
    expected = (-math.log(0.75) + math.log(2.0)) / 2
    assert lf2_cls_loss(logits, torch.tensor([0, 1])).item() == pytest.approx(expected, abs=1e-6)


def test_total_eq10_worked_values():
    t = lf2_total(torch.tensor(2.0), torch.tensor(1.0), [torch.tensor(0.4), torch.tensor(0.6)],
                  alpha=1.0, lam=0.5, gamma=0.5)
    assert {k: round(float(v), 6) for k, v in t.items()} == {"t_ce": 2.0, "t_tri": 0.5, "p1_tri": 0.2,
                                                             "p2_tri": 0.3}
    assert float(sum(t.values())) == pytest.approx(3.0)
    t = lf2_total(torch.tensor(2.0), torch.tensor(1.0), [], alpha=2.0, lam=0.25, gamma=1.0)
    assert {k: float(v) for k, v in t.items()} == {"t_ce": 4.0, "t_tri": 0.5}


def test_fusion_loss_is_softmax_triplet_on_normalised_features_without_outliers():
    phi = torch.tensor([[3.0, 0.0], [2.0, 0.1], [0.0, 5.0], [0.1, 1.0], [7.0, 7.0]])
    y = torch.tensor([0, 0, 1, 1, -1])
    ref = softmax_triplet(F.normalize(phi[:4], dim=1), y[:4])
    assert fusion_loss(phi, y).item() == pytest.approx(ref.item())
    assert fusion_loss(phi * 10, y).item() == pytest.approx(ref.item(), abs=1e-6)   # scale-free


# -- multi-level labels ------------------------------------------------------------------------------------

def test_level_agreement_worked_values():
    a = np.array([0, 0, 1, 1])
    assert label_agreement(a, np.array([1, 1, 0, 0])) == {"ari": 1.0, "nmi": 1.0, "n_points": 4}
    crossed = label_agreement(a, np.array([0, 1, 0, 1]))      # 2x2 table of ones: ARI -0.5, NMI 0
    assert crossed["ari"] == pytest.approx(-0.5) and crossed["nmi"] == pytest.approx(0.0, abs=1e-12)
    with_outliers = label_agreement(np.array([0, 0, 1, 1, -1]), np.array([1, 1, 0, 0, 3]))
    assert with_outliers["n_points"] == 4 and with_outliers["ari"] == 1.0
    with pytest.raises(ValueError, match="same images"):
        label_agreement(a, a[:3])


def test_level_report_and_n_clusters_per_level():
    true = np.array([5, 5, 6, 6, 7, 7])
    rep = level_report([np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 1, 1, 1])], ["P0", "P1"], true)
    assert rep["P0"]["ari"] == 1.0 and rep["P0"]["n_clusters"] == 3 and rep["P1"]["n_clusters"] == 2
    assert set(rep["agreement"]) == {"P1"} and rep["agreement"]["P1"]["ari"] < 1.0
    assert level_n_clusters((20,), 3) == [20, 20, 20] and level_n_clusters((5, 6, 7), 3) == [5, 6, 7]
    with pytest.raises(ValueError, match=r"lf2.n_clusters needs 1 value \(all levels\) or 3 values"):
        level_n_clusters((5, 6), 3)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 4)) * 5
    x = np.repeat(centres, 5, axis=0) + rng.normal(scale=0.05, size=(15, 4))
    labels = cluster_levels([x, x[:, ::-1].copy()], method="kmeans", n_clusters=(3, 2), seed=0)
    assert [int(v.max()) + 1 for v in labels] == [3, 2]


def test_lf2_config_is_checked_early():
    for over, msg in (({"lf2.fm_mode": "cat"}, "lf2.fm_mode"), ({"lf2.cluster": "hdbscan"}, "lf2.cluster"),
                      ({"lf2.num_parts": 0}, "lf2.num_parts"), ({"lf2.n_clusters": (4, 5)}, "lf2.n_clusters")):
        with pytest.raises(ValueError, match=msg):
            check_lf2_config(get_preset("tiny", **over))
    with pytest.raises(ValueError, match="source batches serve only DCDFA"):
        LF2Method("bad", dcdfa=True)
    with pytest.raises(ValueError, match="target-only batches"):
        LF2Method("bad", shared_terms=True)


# -- a real training step ----------------------------------------------------------------------------------

def _lf2_parts(name: str, n_target: int = 16, n_clusters: int = 4):
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    method = get_method(name)
    model = build_model(cfg.model, num_classes=5)
    model.set_classifier(TARGET_HEAD, n_clusters)
    extra = method.extra_modules(model, cfg)
    optimizer = build_optimizer(list(model.parameters()) + list(extra.parameters()), cfg.optim)
    parts = UDAParts(model, method, extra, None, optimizer, MeanTeacher(model, 0.9), MeanTeacher(extra, 0.9), cfg)
    y0 = torch.arange(n_clusters).repeat_interleave(n_target // n_clusters)
    # part levels: other groupings of the same images (each group still has members in the batch)
    parts.labels = torch.stack([y0, y0.roll(1), (y0 + 1) % n_clusters])
    model.train()
    extra.train()
    return parts, torch.randn(n_target, 3, 64, 32), y0, torch.arange(n_target)


def test_every_fusion_module_parameter_gets_a_gradient_and_changes_in_a_step():
    parts, x, y0, idx = _lf2_parts("lf2_fmloss")                   # the row with this project's FM term
    fm = parts.extra["fm"]
    before = {n: p.detach().clone() for n, p in fm.named_parameters()}
    backbone_before = parts.model.backbone.conv1.weight.detach().clone()
    terms = train_step(parts, None, None, x, y0, idx)
    assert set(terms) == {"t_ce", "t_tri", "p1_tri", "p2_tri", "fm"}
    assert all(torch.isfinite(v.detach()) for v in terms.values()) and float(terms["fm"].detach()) > 0
    assert len(before) == 8                                         # 2 parts x (W1, b1, W2, b2)
    for n, p in fm.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, f"FM parameter {n} got no gradient"
        assert not torch.equal(p.detach(), before[n]), f"FM parameter {n} did not change"
    for n, p in parts.extra["experts"].named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, f"expert parameter {n} got no gradient"
    assert not torch.equal(parts.model.backbone.conv1.weight, backbone_before)
    # the teacher averages the FM too
    assert set(parts.mean_extra.module.state_dict()) == set(parts.extra.state_dict())


def test_fm_loss_moves_only_the_fusion_module():
    parts, x, y0, idx = _lf2_parts("lf2_fmloss")
    terms, _, _ = compute_terms(parts, None, None, x, y0, idx_t=idx)
    terms["fm"].backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in parts.model.parameters())
    assert all(p.grad is None for p in parts.extra["experts"].parameters())
    assert all(float(p.grad.abs().sum()) > 0 for p in parts.extra["fm"].parameters())


@pytest.mark.parametrize("name, expected", [
    ("lf2_base", {"t_ce", "t_tri"}),
    ("lf2_nofm", {"t_ce", "t_tri", "p1_tri", "p2_tri"}),
    ("lf2", {"t_ce", "t_tri", "p1_tri", "p2_tri"}),            # Eq. 10 as printed: no FM term
])
def test_table2_rows_terms_and_modules(name, expected):
    parts, x, y0, idx = _lf2_parts(name)
    fm_before = {n: p.detach().clone() for n, p in parts.extra["fm"].named_parameters()} if "fm" in parts.extra else {}
    assert set(train_step(parts, None, None, x, y0, idx)) == expected
    assert ("experts" in parts.extra) == (name != "lf2_base") and ("fm" in parts.extra) == (name == "lf2")
    # the paper's FM only feeds the clustering: no loss reaches it, so a step leaves it as it was
    for n, p in (parts.extra["fm"].named_parameters() if name == "lf2" else ()):
        assert p.grad is None and torch.equal(p.detach(), fm_before[n]), f"FM parameter {n} moved in the lf2 row"


def test_inference_wrapper_leaves_the_teacher_in_eval_mode():
    teacher = build_model(get_preset("tiny").model).eval()
    net = ConcatFeatureNet(teacher, 2)
    was = net.training                      # what extract_features does around its pass
    net.eval()
    net.train(was)
    assert not teacher.training
