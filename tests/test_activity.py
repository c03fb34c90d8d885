"""Is a term active? Chance values with worked numbers, gradient shares, the stuck-term warning
(methods/activity.py), and the loop's probe leaving training unchanged."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from reid_uda_lib.losses.dcdfa import cid_loss, domain_loss
from reid_uda_lib.methods.activity import (LN2, LN3, at_chance, gradient_norms, stuck_terms, term_activity)
from reid_uda_lib.methods.registry import get_method

from uda_helpers import tiny_cfg


def test_the_chance_values_are_the_losses_of_an_undecided_network():
    f = torch.ones(5, 8)                                        # every feature the same: all cosines equal
    assert cid_loss(f, f, f, f, tau=1.0).item() == pytest.approx(LN3, abs=1e-6)     # ℓ = log(1 + 2)
    zero = torch.zeros(5, 2)                                    # the classifier says 1/2 everywhere
    assert domain_loss(zero, zero, zero, zero).item() == pytest.approx(LN2, abs=1e-6)
    # a separated batch: each positive pair shares a direction the negatives do not
    e = torch.eye(8)
    sep = cid_loss(e[:5], e[1:6], e[1:6], e[:5], tau=0.1).item()   # rows: f_i^s=r_i^t, f_j^t=r_j^s
    assert sep < 0.5 * LN3 and not at_chance(sep, LN3)


def test_at_chance_tolerance_and_the_weighted_chance_of_each_method():
    assert at_chance(1.094, LN3) and at_chance(1.099, LN3) and not at_chance(1.050, LN3)
    cfg = tiny_cfg("dcdfa", **{"dcdfa.w_cid": 0.5})
    assert get_method("dcdfa").chance_values(cfg) == pytest.approx({"cid": 0.5 * LN3, "domain": LN2})
    assert get_method("dcdfa_cid").chance_values(cfg) == pytest.approx({"cid": 0.5 * LN3})   # no L_Domain row
    assert get_method("sbase").chance_values(cfg) == {}
    lf2 = tiny_cfg("lf2", **{"lf2.w_fm": 0.5})
    assert get_method("lf2_fmloss").chance_values(lf2) == pytest.approx({"fm": 0.5 * 2 * LN2})   # K = 2 parts
    assert get_method("lf2").chance_values(lf2) == {}           # Eq. 10 as printed: no FM term
    assert get_method("lf2_nofm").chance_values(lf2) == {}


def test_term_activity_and_the_stuck_terms():
    act = term_activity({"cid": 1.095, "domain": 0.2, "t_ce": 3.0}, {"cid": LN3, "domain": LN2},
                        {"cid": 1.0, "domain": 3.0, "t_ce": 6.0})
    assert act["cid"]["at_chance"] and not act["domain"]["at_chance"] and "t_ce" not in act
    assert act["cid"]["grad_share"] == pytest.approx(0.1) and act["domain"]["grad_share"] == pytest.approx(0.3)
    records = [{"activity": {"cid": {"at_chance": True}, "domain": {"at_chance": True}}},
               {"activity": {"cid": {"at_chance": True}, "domain": {"at_chance": False}}},
               {"epoch": 2}]
    assert stuck_terms(records) == ["cid"]
    assert stuck_terms([{"epoch": 0}]) == []


def test_gradient_norms_are_each_terms_own_and_leave_the_backward_alone():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    y = lin(x)
    terms = {"a": y[:, 0].sum(), "b": 2 * y[:, 1].sum(), "c": torch.tensor(1.0)}
    norms = gradient_norms(terms, lin)
    # ∂a/∂W row 0 = Σx, ∂a/∂b0 = 4; ∂b/∂W row 1 = 2Σx, ∂b/∂b1 = 8
    s = x.sum(0)
    assert norms["a"] == pytest.approx(math.sqrt(float(s.pow(2).sum()) + 16), rel=1e-6)
    assert norms["b"] == pytest.approx(2 * norms["a"], rel=1e-6) and "c" not in norms
    sum(terms.values()).backward()
    probed = lin.weight.grad.clone()
    lin.zero_grad()
    y2 = lin(x)
    (y2[:, 0].sum() + 2 * y2[:, 1].sum()).backward()
    assert torch.equal(probed, lin.weight.grad) and norms.keys() == {"a", "b"}


@pytest.mark.slow
def test_the_loop_reports_activity_without_changing_the_run(tiny_pretrained, tmp_path, monkeypatch, capsys):
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("dcdfa", **{"dcdfa.probe_images": 0})
    res = adapt(cfg, src, tgt, ckpt, tmp_path / "probed", progress=False)
    recs = [json.loads(l) for l in (tmp_path / "probed" / "metrics.jsonl").read_text().splitlines()]
    act = [r["activity"] for r in recs if "activity" in r]
    assert len(act) == cfg.uda.epochs and all(set(a) == {"cid", "domain"} for a in act)
    assert all(0 < a["cid"]["grad_share"] < 1 and a["cid"]["chance"] == pytest.approx(LN3) for a in act)
    from reid_uda_lib.runtime.runlog import format_record         # the epoch's log line shows it
    last = [r for r in recs if "activity" in r][-1]
    assert f"cid {last['activity']['cid']['value']:.3f} vs chance 1.099" in format_record(last)
    # the same run with no probe (no chance values): the same numbers, bit for bit
    from reid_uda_lib.methods.dcdfa import DCDFAMethod
    monkeypatch.setattr(DCDFAMethod, "chance_values", lambda self, cfg: {})
    plain = adapt(cfg, src, tgt, ckpt, tmp_path / "plain", progress=False)
    assert plain["target"] == res["target"]


def test_a_stage_stuck_at_chance_is_named_once(tiny_pretrained, tmp_path, monkeypatch, capsys):
    """Mutation: pretend every epoch's L_CID is exactly its chance value; the stage's end names it once."""
    from reid_uda_lib.train import uda as uda_mod
    real = uda_mod.term_activity
    monkeypatch.setattr(uda_mod, "term_activity", lambda m, c, g=None: real({**m, "cid": c["cid"]}, c, g))
    src, tgt, ckpt = tiny_pretrained
    adapt(tiny_cfg("dcdfa_cid", **{"dcdfa.probe_images": 0}), src, tgt, ckpt, tmp_path / "r", progress=False)
    out = capsys.readouterr().out
    assert out.count("the term 'cid' stayed at its chance value") == 1 and "domain" not in out.split("warning")[-1]


from reid_uda_lib.train import adapt  # noqa: E402  (after the helpers, as the other engine tests)


def test_centred_cosines_move_l_cid_off_chance_where_raw_cosines_cannot():
    """Worked batch: post-ReLU-like features = a large common offset + a small identity direction. Raw cosines
    are all ≈ 1 (L_CID ≈ ln 3); centred on the batch mean, the identity directions decide."""
    e = torch.eye(6)
    common = 10.0 * torch.ones(6)
    f_s, r_t = common + e[0:3], common + e[0:3]          # pair i: f_i^s and r_i^t share identity i
    f_t, r_s = common + e[3:6], common + e[3:6]          # f_j^t and r_j^s share identity j
    raw = cid_loss(f_s, f_t, r_s, r_t, tau=1.0).item()
    centred = cid_loss(f_s, f_t, r_s, r_t, tau=1.0, centre=True).item()
    assert at_chance(raw, LN3) and not at_chance(centred, LN3) and centred < raw
