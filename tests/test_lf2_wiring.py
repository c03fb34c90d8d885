"""LF²'s wiring, on hand-set feature maps: which network each level's feature comes from (``level_features``,
``pseudo_labels``), which tensor and which level's labels each term of a step sees (Eq. 6-10 and the
``lf2_fmloss`` term), and which feature each row is tested on.

The teacher and the student are stubs whose 2-channel, 2-row maps are written out below, and the Fusion
Module is a stub with a hand-checkable rule, φ^Pj = φ^P0 ⊙ F^Pj (the teacher's global feature gated by the
student's stripe j), so every expected value is a product of two small vectors. Each mistake named in a
``MISTAKES`` table is put into the code (``mutation.mutated``) and the same check must then fail.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import reid_uda_lib.methods.lf2 as method_lf2
from reid_uda_lib.config import get_preset
from reid_uda_lib.methods.base import ClusterContext, EvalContext, StepContext
from reid_uda_lib.methods.lf2 import LF2Method, level_features
from reid_uda_lib.methods.registry import get_method

from mutation import mutated


def _maps(*images):
    """(N, C=2, H=2, W=1) maps from per-image (top stripe, bottom stripe) rows of 2 channels."""
    return torch.tensor([[[top[c], bottom[c]] for c in range(2)] for top, bottom in images],
                        dtype=torch.float32)[..., None]


# -- the maps, by hand: image i -> (top stripe, bottom stripe) ------------------------------------------------
TEACHER = _maps(([3, 1], [1, 3]), ([0, 4], [2, 0]), ([5, 1], [1, 1]), ([2, 6], [0, 2]))
STUDENT = _maps(([1, 0], [0, 2]), ([2, 1], [1, 0]), ([0, 3], [4, 1]), ([1, 1], [2, 2]))
PHI0 = torch.tensor([[2.0, 2.0], [1.0, 2.0], [3.0, 1.0], [1.0, 4.0]])       # GAP of the teacher's maps
F_STUDENT = torch.tensor([[0.5, 1.0], [1.5, 0.5], [2.0, 2.0], [1.5, 1.5]])  # GAP of the student's maps
S_TOP, S_BOTTOM = STUDENT[:, :, 0, 0], STUDENT[:, :, 1, 0]                  # F^P1, F^P2 of the student
T_TOP, T_BOTTOM = TEACHER[:, :, 0, 0], TEACHER[:, :, 1, 0]                  # the teacher's own stripes
# φ^Pj = φ^P0 ⊙ F^Pj (the stub FM), written out
PHI1 = torch.tensor([[2.0, 0.0], [2.0, 2.0], [0.0, 3.0], [1.0, 4.0]])
PHI2 = torch.tensor([[0.0, 4.0], [1.0, 0.0], [12.0, 1.0], [2.0, 8.0]])
BN_T, BN_S = torch.eye(2)[[0, 1, 0, 1]] * 5, torch.eye(2)[[1, 0, 1, 0]] * 7  # BNNeck outputs, distinct
# pseudo labels of the three levels: three different groupings of the four images
Y = torch.tensor([[0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 0]])


class _MapNet(nn.Module):
    """A network whose outputs for image i (the input holds i) are the hand-set map of image i."""

    def __init__(self, maps, bn):
        super().__init__()
        self.maps, self.bn = maps, bn

    def forward(self, x):
        i = x.view(-1).long()
        return {"fmap": self.maps[i], "f": self.maps[i].mean(dim=(2, 3)), "bn": self.bn[i]}


class _GateByStripe(nn.Module):
    """Fusion Module stub: φ^Pj = GAP(Φ^P0) ⊙ F^Pj, (B, K, C)."""

    def forward(self, phi0_map, f_parts):
        return phi0_map.mean(dim=(2, 3))[:, None, :] * f_parts


IMAGES = torch.arange(4, dtype=torch.float32)[:, None]
ITEMS = [(f"img{i}.jpg", i, 0) for i in range(4)]


def _nets():
    return _MapNet(TEACHER, BN_T).eval(), _MapNet(STUDENT, BN_S).train()


@pytest.fixture
def one_batch_loader(monkeypatch):
    """``level_features`` reads the four images as one batch of their indices."""
    monkeypatch.setattr(method_lf2, "test_loader", lambda items, data: [(IMAGES[:len(items)],)])


# -- level_features: φ^P0 and the BNNeck features from the teacher, the stripes the FM gates from the student --

def check_levels(fusion, levels, bn) -> None:
    want = {"fm": [PHI0, PHI1, PHI2], "split": [PHI0, T_TOP, T_BOTTOM], "none": [PHI0]}[fusion]
    assert len(levels) == len(want)
    for got, w in zip(levels, want):
        assert_close(got, F.normalize(w, dim=1))
    assert_close(bn, F.normalize(BN_T, dim=1))


@pytest.mark.parametrize("fusion", ["fm", "split", "none"])
def test_level_features_take_each_level_from_the_right_network(fusion, one_batch_loader):
    teacher, student = _nets()
    levels, bn = level_features(teacher, student, _GateByStripe() if fusion == "fm" else None, ITEMS,
                                get_preset("tiny"), torch.device("cpu"), fusion, progress=False)
    check_levels(fusion, levels, bn)
    assert student.training and not teacher.training            # the student's mode is restored


_LEVELS = method_lf2.level_features
LEVEL_MISTAKES = {
    # the teacher's and the student's roles swapped: φ^P0 (and the head's BNNeck features) from the student,
    # the stripes from the teacher
    "roles_swapped": ("fm", (("t = teacher(img)", "t = student(img)"),
                             ('part_features(student(img)["fmap"], k)', 'part_features(teacher(img)["fmap"], k)'))),
    # the FM fed the teacher's own stripes instead of the student's
    "fm_fed_teacher_stripes": ("fm", (('part_features(student(img)["fmap"], k)', 'part_features(t["fmap"], k)'),)),
    # "w/o FM" clustered on the student's stripes instead of the teacher's (Fig. 2's dotted lines)
    "split_from_student": ("split", (('phi = part_features(t["fmap"], k)', 'phi = part_features(student(img)["fmap"], k)'),)),
}


@pytest.mark.parametrize("mistake", LEVEL_MISTAKES)
def test_the_level_check_fails_on_each_named_mistake(mistake, one_batch_loader):
    fusion, edits = LEVEL_MISTAKES[mistake]
    wrong = mutated(_LEVELS, *edits)
    teacher, student = _nets()
    levels, bn = wrong(teacher, student, _GateByStripe() if fusion == "fm" else None, ITEMS, get_preset("tiny"),
                       torch.device("cpu"), fusion, progress=False)
    with pytest.raises(AssertionError):
        check_levels(fusion, levels, bn)


def _cluster_context(fusion_module):
    teacher, student = _nets()
    return ClusterContext(eval_net=teacher, eval_modules=nn.ModuleDict(), model=student,
                          modules=nn.ModuleDict({"fm": fusion_module}), items=ITEMS, cfg=get_preset("tiny"),
                          device=torch.device("cpu"), epoch=0, progress=False)


def _clustered_features(method, ctx, monkeypatch) -> list:
    seen = []

    def fake_cluster_levels(feats, **kw):
        seen.extend(feats)
        return [np.zeros(len(f), dtype=np.int64) for f in feats]
    monkeypatch.setattr(method_lf2, "cluster_levels", fake_cluster_levels)
    method.pseudo_labels(ctx)
    return seen


def test_pseudo_labels_pass_the_mean_net_as_teacher_and_the_student_as_student(one_batch_loader, monkeypatch):
    ctx = _cluster_context(_GateByStripe())
    feats = _clustered_features(get_method("lf2"), ctx, monkeypatch)
    check_levels("fm", feats, F.normalize(BN_T, dim=1))
    # the call site with the two networks swapped
    monkeypatch.setattr(LF2Method, "pseudo_labels", mutated(
        LF2Method.pseudo_labels, ("level_features(ctx.eval_net, ctx.model,", "level_features(ctx.model, ctx.eval_net,")))
    feats = _clustered_features(get_method("lf2"), _cluster_context(_GateByStripe()), monkeypatch)
    with pytest.raises(AssertionError):
        check_levels("fm", feats, F.normalize(BN_T, dim=1))


# -- one step: each term's tensor and labels ----------------------------------------------------------------

_REAL_LOSSES = {k: getattr(method_lf2, k) for k in ("lf2_cls_loss", "batch_hard_triplet", "softmax_triplet",
                                                    "fusion_loss")}


def run_step(name, monkeypatch) -> dict:
    """``extra_terms`` of row ``name`` on the four images, every loss input recorded."""
    calls: dict = {"parts": [], "fm": []}
    real = _REAL_LOSSES

    def cls_spy(logits, labels, epsilon=0.0):
        calls["cls"] = (logits, labels, epsilon)
        return real["lf2_cls_loss"](logits, labels, epsilon)

    def tri_spy(features, labels, margin=0.3):
        calls["tri"] = (features, labels)
        return real["batch_hard_triplet"](features, labels, margin=margin)

    def part_spy(features, labels):
        calls["parts"].append((features.detach().clone(), labels.clone()))
        return real["softmax_triplet"](features, labels)

    def fm_spy(phi, labels):
        calls["fm"].append((phi.detach().clone(), labels.clone()))
        return real["fusion_loss"](phi, labels)
    for key, spy in (("lf2_cls_loss", cls_spy), ("batch_hard_triplet", tri_spy), ("softmax_triplet", part_spy),
                     ("fusion_loss", fm_spy)):
        monkeypatch.setattr(method_lf2, key, spy)
    # ε of Eq. 8 set apart from the shared CE's, so that reading the wrong field shows
    cfg = get_preset("tiny", **{"lf2.label_smoothing": 0.05, "loss.label_smoothing": 0.2})
    teacher, _ = _nets()
    logits = torch.randn(4, 3)
    out = {"fmap": STUDENT.clone(), "f": F_STUDENT.clone(), "logits": {"target": logits}}
    mods = nn.ModuleDict({"experts": nn.Identity(), "fm": _GateByStripe()})    # f^Pj = F^Pj: identity experts
    ctx = StepContext(None, out, None, Y[0], mods, nn.Module(), cfg, step=0, epoch=0, x_t=IMAGES, teacher=teacher,
                      y_levels=Y)
    calls["terms"] = get_method(name).extra_terms(ctx)
    calls["logits"] = logits
    return calls


def check_step(name, calls) -> None:
    fm_term = get_method(name).fm_loss
    assert set(calls["terms"]) == {"t_ce", "t_tri", "p1_tri", "p2_tri"} | ({"fm"} if fm_term else set())
    # Eq. 8: the student's target-head logits, level-0 labels, ε = lf2.label_smoothing
    logits, labels, eps = calls["cls"]
    assert logits is calls["logits"] and torch.equal(labels, Y[0]) and eps == pytest.approx(0.05)
    # Eq. 9: the student's global feature f^P0, level-0 labels
    feats, labels = calls["tri"]
    assert_close(feats, F_STUDENT) and torch.equal(labels, Y[0])
    # Eq. 6-7: part j on Expert-j of the student's stripe j, with level j's labels
    assert len(calls["parts"]) == 2
    for (feats, labels), stripe, j in zip(calls["parts"], (S_TOP, S_BOTTOM), (1, 2)):
        assert_close(feats, stripe)
        assert torch.equal(labels, Y[j]), f"part {j} trained with another level's labels"
    # the FM term (lf2_fmloss only): φ^Pj of the teacher's map gated by the student's stripe j, level j's labels
    assert len(calls["fm"]) == (2 if fm_term else 0)
    for (phi, labels), want, j in zip(calls["fm"], (PHI1, PHI2), (1, 2)):
        assert_close(phi, want)
        assert torch.equal(labels, Y[j]), f"FM term of part {j} with another level's labels"


@pytest.mark.parametrize("name", ["lf2", "lf2_fmloss", "lf2_nofm"])
def test_each_term_of_a_step_sees_its_tensor_and_its_level(name, monkeypatch):
    check_step(name, run_step(name, monkeypatch))


_TERMS = LF2Method.extra_terms
STEP_MISTAKES = {
    # the part losses with the level-0 labels instead of level j's
    "parts_with_level0_labels": ("lf2", (("softmax_triplet(f_parts[keep, j], y[j + 1][keep])",
                                          "softmax_triplet(f_parts[keep, j], y[0][keep])"),)),
    # the part losses on the teacher's stripes instead of the student's
    "parts_on_teacher_stripes": ("lf2", (('f_raw = part_features(out["fmap"], lf.num_parts)',
                                          'f_raw = part_features(ctx.teacher(ctx.x_t)["fmap"], lf.num_parts)'),)),
    # Eq. 8's ε read from the shared CE-LS setting
    "eq8_smoothing_from_loss_section": ("lf2", (("y0, lf.label_smoothing)", "y0, cfg.loss.label_smoothing)"),)),
    # the FM term with the level-0 labels
    "fm_term_with_level0_labels": ("lf2_fmloss", (("fusion_loss(phi[:, j], y[j + 1])", "fusion_loss(phi[:, j], y[0])"),)),
    # the FM fed the teacher's own stripes
    "fm_term_fed_teacher_stripes": ("lf2_fmloss", (('ctx.modules["fm"](phi0_map, f_raw.detach())',
                                                    'ctx.modules["fm"](phi0_map, part_features(phi0_map, lf.num_parts))'),)),
    # teacher and student swapped in the FM term: Φ^P0 from the student, the stripes from the teacher
    "fm_term_roles_swapped": ("lf2_fmloss", (('phi0_map = ctx.teacher(ctx.x_t)["fmap"]', 'phi0_map = out["fmap"].detach()'),
                                             ('ctx.modules["fm"](phi0_map, f_raw.detach())',
                                              'ctx.modules["fm"](phi0_map, part_features(ctx.teacher(ctx.x_t)["fmap"], lf.num_parts))'))),
}


@pytest.mark.parametrize("mistake", STEP_MISTAKES)
def test_the_step_check_fails_on_each_named_mistake(mistake, monkeypatch):
    name, edits = STEP_MISTAKES[mistake]
    check_step(name, run_step(name, monkeypatch))                      # the code as it is: passes
    monkeypatch.setattr(LF2Method, "extra_terms", mutated(_TERMS, *edits))
    calls = run_step(name, monkeypatch)
    with pytest.raises(AssertionError):
        check_step(name, calls)


def test_lf2_and_lf2_fmloss_differ_only_by_the_fm_term():
    import dataclasses
    a, b = get_method("lf2"), get_method("lf2_fmloss")
    same = {"name", "label", "cost", "description"}
    assert {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)} - same == {"fm_loss"}
    assert not a.fm_loss and b.fm_loss and not get_method("lf2_dcdfa").fm_loss
    with pytest.raises(ValueError, match="fm_loss trains the Fusion Module"):
        LF2Method("bad", fusion="split", fm_loss=True)


# -- the test feature of each row -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lf2_base", "lf2_nofm", "lf2", "lf2_dcdfa"])
def test_rows_are_tested_on_their_papers_feature(name):
    teacher, _ = _nets()
    method = get_method(name)
    ctx = EvalContext(teacher, nn.ModuleDict({"attention": nn.Identity()}), get_preset("tiny"))
    net, key = method.test_net(ctx)
    feat = net(IMAGES)[key]
    if name == "lf2_base":            # Table II's baseline has no parts: the teacher's global feature
        assert_close(feat, PHI0)
        assert method.extra_evaluations(ctx) == {}
    else:                             # sec. III-C: global and K stripes of the teacher, concatenated
        want = torch.cat([F.normalize(v, dim=1) for v in (PHI0, T_TOP, T_BOTTOM)], dim=1)
        assert_close(feat, want)
        extra = method.extra_evaluations(ctx)
        assert set(extra) == ({"global", "b"} if name == "lf2_dcdfa" else {"global"})
        assert_close(extra["global"](IMAGES)["feat"], PHI0)
