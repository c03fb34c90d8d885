"""DCDFA's wiring, on a hand-computed batch: which tensor each term sees (Eq. 4-7, L^b_RReID, Table 2's pair).

Two source and two target images with 2-D features f and attentions m chosen by hand, paired (source 0,
target 1), (source 1, target 0). Every value the terms should receive is written out below, computed by hand
from Eq. 2 (b = m ⊙ f, e = f − b) and Eq. 4-5 (r_i^t = b_i + e_j^t, r_j^s = b_j + e_i^s). The check records
what ``DCDFAMethod.extra_terms`` hands to L_CID, to the domain classifier and to L^b_RReID and compares.
Each mistake named in ``MISTAKES`` is then put into the code (``mutation.mutated``) and the same check must
fail: the check cannot pass with that wiring.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import reid_uda_lib.methods.dcdfa as method_dcdfa
from reid_uda_lib.config import get_preset
from reid_uda_lib.methods.base import EvalContext, StepContext
from reid_uda_lib.methods.registry import get_method
from reid_uda_lib.models import dcdfa as models_dcdfa
from reid_uda_lib.models.dcdfa import Temperature

from mutation import mutated


def _t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# -- the batch, by hand ------------------------------------------------------------------------------------
F_S, M_S = _t([1, 2], [3, 4]), _t([0.5, 0.5], [0.25, 0.75])            # source images 0, 1
F_T, M_T = _t([10, 20], [30, 40]), _t([0.1, 0.9], [0.2, 0.6])          # target images 0, 1
Y_S, Y_T = torch.tensor([0, 1]), torch.tensor([3, 2])                  # identities / pseudo labels
PERM = torch.tensor([1, 0])                                            # pair k = (source k, target PERM[k])
# Eq. 2: b = m ⊙ f, e = f − b
B_S, E_S = _t([0.5, 1], [0.75, 3]), _t([0.5, 1], [2.25, 1])
B_T, E_T = _t([1, 18], [6, 24]), _t([9, 2], [24, 16])
# the pairs' target side: f_j, b_j, e_j = target PERM[k]
F_J = _t([30, 40], [10, 20])
# Eq. 5: r_i^t = b_i + e_j^t = [0.5 + 24, 1 + 16], [0.75 + 9, 3 + 2]; r_j^s = b_j + e_i^s = [6 + 0.5, 24 + 1], ...
R_T = _t([24.5, 17], [9.75, 5])
R_S = _t([6.5, 25], [3.25, 19])


class _ReadAttention(nn.Module):
    """m(F) read off the map's first pixel: the test sets each image's attention by hand."""

    def forward(self, fmap):
        return fmap[:, :, 0, 0]


class _Recorder(nn.Module):
    """Identity (or constant logits) that records its input."""

    def __init__(self, out_width: int | None = None):
        super().__init__()
        self.out_width, self.seen = out_width, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x if self.out_width is None else torch.zeros(len(x), self.out_width) + 0 * x[:, :1]


class _Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.classifiers = nn.ModuleDict({"target": nn.Linear(2, 4), "source": nn.Linear(2, 2)})


def _outputs(f, m):
    return {"f": f.clone().requires_grad_(True), "fmap": m[:, :, None, None], "bn": 100 * f}


_REAL_CID, _REAL_SUPERVISED = method_dcdfa.cid_loss, method_dcdfa.supervised_terms


def run_and_record(method, monkeypatch, **over) -> dict:
    """``method.extra_terms`` on the batch above, with every input of the three terms recorded."""
    calls: dict = {}

    def cid_spy(f_s, f_t, r_s, r_t, tau, **options):
        calls["cid"] = (f_s, f_t, r_s, r_t)
        return real_cid(f_s, f_t, r_s, r_t, tau, **options)

    def rreid_spy(out, labels, head, cfg, prefix):
        calls["rreid"] = (out["f"], labels, head)
        return real_supervised(out, labels, head, cfg, prefix)

    real_cid, real_supervised = _REAL_CID, _REAL_SUPERVISED
    monkeypatch.setattr(method_dcdfa, "cid_loss", cid_spy)
    monkeypatch.setattr(method_dcdfa, "supervised_terms", rreid_spy)
    monkeypatch.setattr(method_dcdfa, "pair_indices", lambda n_s, n_t, generator: PERM.clone())
    mods = nn.ModuleDict({"attention": _ReadAttention(), "domain": _Recorder(out_width=2), "tau": Temperature(1.0),
                          "b_neck": _Recorder()})
    cfg = get_preset("tiny", **over)
    ctx = StepContext(_outputs(F_S, M_S), _outputs(F_T, M_T), Y_S, Y_T, mods, _Student(), cfg, step=0, epoch=0)
    calls["terms"] = method.extra_terms(ctx)
    calls["domain_input"] = mods["domain"].seen
    calls["b_neck_input"] = mods["b_neck"].seen
    return calls


def check_wiring(method, calls) -> None:
    """Each present term got the hand-computed tensors; each absent term is absent (the row's weights)."""
    w = method.weights(get_preset("tiny"))
    assert ("cid" in calls["terms"]) == bool(w["cid"]) and ("domain" in calls["terms"]) == bool(w["domain"])
    assert ("b_ce" in calls["terms"]) == bool(w["rreid"]) == ("b_tri" in calls["terms"])
    if w["cid"]:
        # Eq. 6 over {f_i^s, f_j^t, r_j^s, r_i^t} of each pair, in cid_loss's order (f_s, f_t, r_s, r_t)
        for got, want in zip(calls["cid"], (F_S, F_J, R_S, R_T)):
            assert_close(got.detach(), want)
    if w["domain"]:
        # Eq. 7: the classifier sees f_i^s, r_j^s (labelled source) and f_j^t, r_i^t (labelled target)
        (seen,) = calls["domain_input"]
        assert_close(seen, torch.cat([F_S, R_S, F_J, R_T]))
    if w["rreid"]:
        # L^b_RReID: the target images' b with their pseudo labels, through b's own neck into the target head
        feats, labels, head = calls["rreid"]
        assert_close(feats.detach(), B_T)
        assert torch.equal(labels, Y_T) and head == "target"
        (neck_in,) = calls["b_neck_input"]
        assert_close(neck_in, B_T)


@pytest.mark.parametrize("row", ["dcdfa_cid", "dcdfa_cid_rreid", "dcdfa_cid_domain", "dcdfa"])
def test_each_table3_row_feeds_its_terms_the_hand_computed_tensors(row, monkeypatch):
    method = get_method(row)
    check_wiring(method, run_and_record(method, monkeypatch))


_TERMS = method_dcdfa.DCDFAMethod.extra_terms

#: mistake -> (object, attribute, its mutated replacement)
MISTAKES = {
    # Eq. 5 as printed, "r_i^t = b_i + e_i^t": index i read as the pair's row, i.e. the target enhancement of
    # the unpaired target image in row i instead of the paired j's
    "eq5_printed_index": (method_dcdfa.DCDFAMethod, "extra_terms",
                          lambda: mutated(_TERMS, ("recompose(b_s, e_s, b_j, e_j)", "recompose(b_s, e_s, b_j, e_t)"))),
    # Eq. 5 read as recomposing each image with its own enhancement (r = f)
    "eq5_own_enhancement": (method_dcdfa, "recompose",
                            lambda: mutated(models_dcdfa.recompose, ("return b_i + e_j_t, b_j + e_i_s",
                                                                     "return b_i + e_i_s, b_j + e_j_t"))),
    # the target side permuted for b and e but not for f
    "f_j_unpermuted": (method_dcdfa.DCDFAMethod, "extra_terms",
                       lambda: mutated(_TERMS, ("f_j, b_j, e_j = f_t[perm], b_t[perm], e_t[perm]",
                                                "f_j, b_j, e_j = f_t, b_t[perm], e_t[perm]"))),
    # L_Domain with the recomposed features' domains taken from b instead of e
    "domain_labels_follow_b": (method_dcdfa.DCDFAMethod, "extra_terms",
                               lambda: mutated(_TERMS, ("torch.cat([f_s, r_s, f_j, r_t])",
                                                        "torch.cat([f_s, r_t, f_j, r_s])"))),
    # L^b_RReID on f instead of b
    "rreid_on_f": (method_dcdfa.DCDFAMethod, "extra_terms",
                   lambda: mutated(_TERMS, ('{"f": b_t, ', '{"f": f_t, '),
                                   ('mods["b_neck"](b_t)', 'mods["b_neck"](f_t)'))),
    # L^b_RReID on the source images' b (with their labels and head) instead of the target's
    "rreid_on_source_b": (method_dcdfa.DCDFAMethod, "extra_terms",
                          lambda: mutated(_TERMS, ('{"f": b_t, ', '{"f": b_s, '),
                                          ('classifiers[head](mods["b_neck"](b_t))',
                                           'classifiers["source"](mods["b_neck"](b_s))'),
                                          ("supervised_terms(out_b, ctx.y_t,", "supervised_terms(out_b, ctx.y_s,"))),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_wiring_check_fails_on_each_named_mistake(mistake, monkeypatch):
    method = get_method("dcdfa")
    check_wiring(method, run_and_record(method, monkeypatch))          # the code as it is: passes
    owner, attr, make = MISTAKES[mistake]
    monkeypatch.setattr(owner, attr, make())
    calls = run_and_record(method, monkeypatch)
    with pytest.raises(AssertionError):
        check_wiring(method, calls)


# -- Table 2: "using b_j" against "using f_j^t", like with like ----------------------------------------------

class _MeanNet(nn.Module):
    """The evaluated Mean-Net: the target images' f, attention map and (different) BNNeck output."""

    def forward(self, x):
        return {"f": F_T, "fmap": M_T[:, :, None, None], "bn": 100 * F_T + 1}


def check_table2_pair(nets) -> None:
    x = torch.zeros(2, 1)
    assert set(nets) == {"b", "f"}
    assert_close(nets["b"](x)["feat"], B_T)          # b′ = m′(F′) ⊙ f′, no neck
    assert_close(nets["f"](x)["feat"], F_T)          # f′, no neck (DCDFA tests on f′: Fig. 3's caption)


def test_table2_b_only_and_f_only_are_both_before_the_neck(monkeypatch):
    ctx = EvalContext(_MeanNet(), nn.ModuleDict({"attention": _ReadAttention()}), get_preset("tiny"))
    check_table2_pair(get_method("dcdfa").extra_evaluations(ctx))
    assert get_method("dcdfa_cid").extra_evaluations(ctx) == {}
    # the mistake of the former "b only" row: b′ against the BNNeck output, i.e. f′ after its neck
    monkeypatch.setattr(method_dcdfa.PooledFeatureNet, "forward",
                        mutated(method_dcdfa.PooledFeatureNet.forward, ('self.net(x)["f"]', 'self.net(x)["bn"]')))
    with pytest.raises(AssertionError):
        check_table2_pair(get_method("dcdfa").extra_evaluations(ctx))
