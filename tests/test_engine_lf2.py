"""LF² in the one UDA loop (tiny preset, tiny synthetic pair): target-only training, K + 1 label sets logged
with their agreement, the concat inference feature, checkpoints with every new module, exact resume."""
from __future__ import annotations

import json

import pytest
import torch

from reid_uda_lib.train import adapt, load_checkpoint
from reid_uda_lib.train.evaluate_checkpoint import evaluate_checkpoint

from uda_helpers import Interrupt, stop_after_first_epoch, tiny_cfg

pytestmark = pytest.mark.slow


def _cfg(**over):
    return tiny_cfg("lf2", **{"dcdfa.probe_images": 0, **over})


@pytest.fixture
def setup(tiny_pretrained):
    return tiny_pretrained


def test_lf2_logs_levels_and_agreement_and_resumes_exactly(setup, tmp_path):
    src, tgt, init = setup
    cfg = _cfg(**{"uda.method": "lf2_fmloss"})        # the row with every module trained, the FM term included
    full = adapt(cfg, src, tgt, init, tmp_path / "full", progress=False)
    with pytest.raises(Interrupt):
        adapt(cfg, src, tgt, init, tmp_path / "cut", progress=False, on_epoch_end=stop_after_first_epoch)
    resumed = adapt(cfg, src, tgt, init, tmp_path / "cut", resume=True, progress=False)
    assert resumed["target"] == full["target"] and resumed["extra_eval"] == full["extra_eval"]
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("cut", "full"))
    for part in ("model", "extra"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in b[part])
    assert all(torch.equal(a["mean_net"]["module"][k], b["mean_net"]["module"][k]) for k in b["mean_net"]["module"])
    # the checkpoint holds the Fusion Module and the experts, and their Mean-Net average; no memory bank
    assert {"fm.mlps.0.0.weight", "fm.mlps.1.2.bias", "experts.experts.0.0.weight",
            "experts.experts.1.1.running_mean"} <= set(b["extra"])
    assert set(b["mean_extra"]["module"]) == set(b["extra"]) and "memory" not in b
    rec = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert {"t_ce", "t_tri", "p1_tri", "p2_tri", "fm"} <= set(rec[0]) and "s_ce" not in rec[0]
    for r in rec:
        lv = r["levels"]
        assert {"P0", "P1", "P2", "agreement"} <= set(lv)
        assert lv["P0"]["n_clusters"] == 20 and lv["P0"]["nmi"] == r["cluster"]["nmi"]
        for j in ("P1", "P2"):
            assert -1.0 <= lv["agreement"][j]["ari"] <= 1.0 and 0.0 <= lv["agreement"][j]["nmi"] <= 1.0
    assert "target_global" in rec[-1] and "target_global" not in rec[0]
    # the CLI's evaluate uses the same inference feature (teacher global + parts concatenated)
    ev = evaluate_checkpoint(tmp_path / "full" / "checkpoint.pt", tgt, device="cpu", progress=False)
    assert ev["mAP"] == pytest.approx(full["target"]["mAP"], abs=1e-9)


@pytest.mark.parametrize("method, terms", [
    ("lf2_base", {"t_ce", "t_tri"}),
    ("lf2_nofm", {"t_ce", "t_tri", "p1_tri", "p2_tri"}),
    ("lf2", {"t_ce", "t_tri", "p1_tri", "p2_tri"}),                      # Eq. 10 as printed: no FM term
    ("lf2_dcdfa", {"t_ce", "t_tri", "p1_tri", "p2_tri", "cid", "domain", "b_ce", "b_tri"}),
])
def test_table2_rows_and_lf2_dcdfa_run(setup, tmp_path, method, terms):
    src, tgt, init = setup
    res = adapt(_cfg(**{"uda.method": method, "uda.epochs": 1, "lf2.n_clusters": (20, 16, 12)}), src, tgt, init,
                tmp_path, progress=False)
    rec = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert terms <= set(rec) and "s_ce" not in rec and "s_mem" not in rec and "fm" not in rec
    if method == "lf2_base":
        assert "levels" not in rec
    else:
        assert [rec["levels"][j]["n_clusters"] for j in ("P0", "P1", "P2")] == [20, 16, 12]
    # the baseline is tested on its global feature (no parts): nothing extra to report
    assert set(res["extra_eval"]) == {"lf2_base": set(), "lf2_dcdfa": {"global", "b"}}.get(method, {"global"})
