"""DCDFA and the adversarial baseline in the one UDA loop (tiny preset, tiny synthetic pair)."""
from __future__ import annotations

import json

import pytest
import torch

from reid_uda_lib.train import CheckpointError, NonFiniteLossError, adapt, load_checkpoint
from reid_uda_lib.methods import dcdfa as method_dcdfa

from uda_helpers import Interrupt, stop_after_first_epoch, tiny_cfg

pytestmark = pytest.mark.slow


def _cfg(**over):
    return tiny_cfg("dcdfa", **{"dcdfa.probe_images": 24, **over})


@pytest.fixture
def setup(tiny_pretrained):
    return tiny_pretrained


def test_dcdfa_run_logs_probes_b_only_and_resumes_exactly(setup, tmp_path):
    src, tgt, init = setup
    cfg = _cfg()
    full = adapt(cfg, src, tgt, init, tmp_path / "full", progress=False)
    with pytest.raises(Interrupt):
        adapt(cfg, src, tgt, init, tmp_path / "cut", progress=False, on_epoch_end=stop_after_first_epoch)
    resumed = adapt(cfg, src, tgt, init, tmp_path / "cut", resume=True, progress=False)
    assert resumed["target"] == full["target"] and resumed["extra_eval"] == full["extra_eval"]
    assert resumed["probe"] == full["probe"]
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("cut", "full"))
    for part in ("model", "extra"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in b[part])
    # the Mean-Net averages the DCDFA modules too, and the checkpoint holds them
    assert {"attention.mlp.0.weight", "domain.net.0.weight", "tau.log_tau", "b_neck.weight"} <= set(b["extra"])
    assert set(b["mean_extra"]["module"]) == set(b["extra"])
    assert all(torch.equal(a["mean_extra"]["module"][k], b["mean_extra"]["module"][k])
               for k in b["extra"])
    assert not torch.equal(b["mean_extra"]["module"]["attention.mlp.0.weight"],
                           b["extra"]["attention.mlp.0.weight"])
    rec = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert {"cid", "domain", "b_ce", "b_tri", "s_mem", "t_ce"} <= set(rec[0])
    for r in rec:     # probes every epoch, next to the pseudo-label quality
        assert {"domain_acc_f", "domain_acc_b", "domain_acc_e", "r_t_is_target", "id_follows_b",
                "m_channel_gap"} <= set(r["probe"])
        assert 0.0 <= r["probe"]["domain_acc_b"] <= 1.0
    assert "target_b" in rec[-1] and "target_b" not in rec[0]       # "b only": last epoch
    # Table 2's pair, both before the neck (tests/test_dcdfa_wiring.py checks the features themselves)
    assert set(full["extra_eval"]) == {"b", "f"} and "target_f" in rec[-1]
    assert 0.0 <= full["extra_eval"]["b"]["mAP"] <= 1.0


def test_dann_baseline_and_table3_row_run(setup, tmp_path):
    src, tgt, init = setup
    res = adapt(_cfg(**{"uda.method": "sbase_dann", "uda.epochs": 1}), src, tgt, init, tmp_path / "dann",
                progress=False)
    rec = json.loads((tmp_path / "dann" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "adv" in rec and "probe" not in rec and res["extra_eval"] == {}
    res = adapt(_cfg(**{"uda.method": "dcdfa_cid", "uda.epochs": 1, "dcdfa.probe_images": 0}), src, tgt, init,
                tmp_path / "cid", progress=False)
    rec = json.loads((tmp_path / "cid" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "cid" in rec and "domain" not in rec and "b_ce" not in rec and "probe" not in rec


def test_nan_in_a_dcdfa_term_is_named_and_the_checkpoint_kept(setup, tmp_path, monkeypatch):
    src, tgt, init = setup
    real = method_dcdfa.cid_loss
    calls = {"n": 0}

    def poisoned(*args, **options):
        calls["n"] += 1
        loss = real(*args, **options)
        return loss * float("nan") if calls["n"] > 3 else loss       # epoch 0 (3 steps) is fine

    monkeypatch.setattr(method_dcdfa, "cid_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"loss term 'cid' is nan at epoch 1, iteration 0"):
        adapt(_cfg(**{"dcdfa.probe_images": 0}), src, tgt, init, tmp_path, progress=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 0


def test_cli_train_dcdfa_then_seeds_table(setup, synthetic_pair, tmp_path, capsys):
    from reid_uda_lib.cli import main

    _, _, init = setup
    sets = ["--set", "uda.epochs=1", "--set", "uda.iters_per_epoch=2", "--set", "data.batch_size=16",
            "--set", "uda.k1=8", "--set", "uda.k2=3", "--set", "uda.eps=0.7", "--set", "uda.min_samples=3",
            "--set", "dcdfa.probe_images=12"]
    for seed in ("0", "1"):
        assert main(["train", "--method", "dcdfa", "--preset", "tiny", "--source", str(synthetic_pair["A"]),
                     "--target", str(synthetic_pair["B"]), "--init", str(init), "--quiet",
                     "--out", str(tmp_path / f"s{seed}"), "--set", f"seed={seed}", *sets]) == 0
    capsys.readouterr()
    assert main(["table", str(tmp_path / "s0"), str(tmp_path / "s1")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| dcdfa (b only) |"))
    assert row.split("|")[2].strip() == "2" and "±" in row          # two seeds, mean ± std
    assert "| dcdfa | 2 |" in out and "identity follows b" in out


def test_resume_with_another_method_is_refused_before_any_write(setup, tmp_path):
    import hashlib

    from reid_uda_lib.runtime.provenance import RunIdentityError

    src, tgt, init = setup
    adapt(_cfg(**{"uda.method": "sbase", "uda.epochs": 1}), src, tgt, init, tmp_path, progress=False)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.rglob("*") if p.is_file()}
    for override in (False, True):      # modules and losses differ: not even --override-identity continues it
        with pytest.raises(CheckpointError, match="written by method 'sbase', not 'dcdfa'"):
            adapt(_cfg(**{"uda.epochs": 1}), src, tgt, init, tmp_path, resume=True, progress=False,
                  override_identity=override)
    with pytest.raises(RunIdentityError, match="seed: 0 in the checkpoint, 4 asked"):
        adapt(_cfg(**{"uda.epochs": 1, "uda.method": "sbase", "seed": 4}), src, tgt, init, tmp_path,
              resume=True, progress=False)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
