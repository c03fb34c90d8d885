"""Mixed precision (config ``amp``, runtime/amp.py): off is the plain loop, bf16/fp16 really autocast, the fp16
scaler skips overflowing steps and resumes exactly, bad values and slow choices are named."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

import reid_uda_lib.runtime.amp as amp
from reid_uda_lib.config import get_preset
from reid_uda_lib.config import ConfigError
from reid_uda_lib.methods.validate import validate_config
from reid_uda_lib.train import adapt, load_checkpoint, pretrain
from reid_uda_lib.runtime.amp import Precision
from reid_uda_lib.runtime.checkpoint import save_checkpoint

from uda_helpers import Interrupt, stop_after_first_epoch, tiny_cfg


def _train(prec: Precision, steps: int = 3):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for _ in range(steps):
        with prec.autocast():
            loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        prec.backward(loss)
        prec.step(opt)
    return net


def test_off_is_the_plain_loop_bit_for_bit():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(ref.parameters(), lr=0.1)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for _ in range(3):
        loss = nn.functional.cross_entropy(ref(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    off = _train(Precision("off", torch.device("cpu")))
    for a, b in zip(ref.parameters(), off.parameters()):
        assert torch.equal(a, b)
    assert Precision("off", "cpu").state_dict() == {} and Precision("off", "cpu").checkpointed() is None
    assert Precision("off", "cpu").save_into({"epoch": 0}) == {"epoch": 0}       # float32 checkpoints unchanged


def test_bf16_and_fp16_autocast_the_forward_and_keep_float32_weights():
    for mode, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        prec = Precision(mode, torch.device("cpu"), warn=False)
        lin = nn.Linear(4, 2)
        with prec.autocast():
            out = lin(torch.randn(3, 4))
        assert out.dtype == dtype and lin.weight.dtype == torch.float32
        net = _train(prec)
        assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in net.parameters())
    off, bf16 = _train(Precision("off", "cpu")), _train(Precision("bf16", "cpu", warn=False))
    assert not torch.equal(off[0].weight, bf16[0].weight)      # bf16 rounding really happened


def test_fp16_scaler_skips_an_overflowing_step_and_round_trips():
    prec = Precision("fp16", torch.device("cpu"), warn=False)
    w = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    scale0 = prec.scaler.get_scale()
    opt.zero_grad()
    prec.backward((w * float("inf")).sum())                    # inf gradient
    prec.step(opt)
    assert torch.equal(w.detach(), torch.ones(3))              # step skipped
    assert prec.scaler.get_scale() == scale0 * 0.5              # scale backed off
    opt.zero_grad()
    prec.backward((w * 2.0).sum())                              # a finite step: w -= 0.1 * 2
    prec.step(opt)
    assert torch.allclose(w.detach(), torch.full((3,), 0.8))
    other = Precision("fp16", torch.device("cpu"), warn=False)
    other.load_state_dict(prec.state_dict())
    assert other.scaler.get_scale() == prec.scaler.get_scale() and prec.checkpointed() is prec


def test_bad_values_and_slow_choices_are_named(monkeypatch):
    with pytest.raises(ConfigError, match=r"amp: expected one of off, bf16, fp16, got 'fp8'"):
        validate_config(get_preset("tiny").override(amp="fp8"))
    with pytest.raises(ValueError, match="amp must be one of off, bf16, fp16"):
        Precision("half", "cpu")
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="20x slower"):
        Precision("bf16", "cpu")
    with pytest.warns(UserWarning, match="amp=fp16 on a CPU is slow"):
        Precision("fp16", "cpu")
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Precision("bf16", "cpu")                                # a CPU with bf16 units: no warning


@pytest.mark.parametrize("method", ["sbase", "dcdfa", "lf2"])
def test_bf16_pretraining_and_methods_run_and_differ_from_float32(tiny_pretrained, tmp_path, method):
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg(method, amp="bf16", **{"uda.epochs": 1})
    res = adapt(cfg, src, tgt, ckpt, tmp_path / "bf16", progress=False)
    ref = adapt(tiny_cfg(method, **{"uda.epochs": 1}), src, tgt, ckpt, tmp_path / "fp32", progress=False)
    rec = [json.loads(x) for x in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()][-1]
    fp32 = [json.loads(x) for x in (tmp_path / "fp32" / "metrics.jsonl").read_text().splitlines()][-1]
    losses = {k: v for k, v in rec.items() if isinstance(v, float) and k not in ("lr",)}
    assert losses and all(v == v and abs(v) < 1e6 for v in losses.values())          # finite
    assert any(rec[k] != fp32[k] for k in losses)                # autocast changed the arithmetic
    assert 0.0 < res["target"]["mAP"] <= 1.0 and 0.0 < ref["target"]["mAP"] <= 1.0
    if method == "sbase":
        pre = pretrain(tiny_cfg("sbase", amp="bf16"), src, tgt, tmp_path / "pre", progress=False)
        assert 0.0 < pre["target"]["mAP"] <= 1.0
        assert load_checkpoint(tmp_path / "pre" / "checkpoint.pt")["identity"]["config"]["amp"] == "bf16"


@pytest.mark.filterwarnings("ignore:amp=fp16 on a CPU")
def test_fp16_resume_is_exact_and_keeps_the_scaler(tiny_pretrained, tmp_path):
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("sbase", amp="fp16")
    adapt(cfg, src, tgt, ckpt, tmp_path / "full", progress=False)
    with pytest.raises(Interrupt):
        adapt(cfg, src, tgt, ckpt, tmp_path / "cut", progress=False, on_epoch_end=stop_after_first_epoch)
    assert "scale" in load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["precision"]
    adapt(cfg, src, tgt, ckpt, tmp_path / "cut", resume="auto", progress=False)
    full, cut = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("full", "cut"))
    assert full["precision"] == cut["precision"]
    assert all(torch.equal(full["model"][k], cut["model"][k]) for k in full["model"])


def test_runs_from_before_the_field_read_as_off(tiny_pretrained, tmp_path, capsys):
    src, tgt, ckpt = tiny_pretrained
    old = tmp_path / "old"
    shutil.copytree(ckpt.parent, old)
    state = load_checkpoint(old / "checkpoint.pt")
    del state["identity"]["config"]["amp"]                        # written before ``amp`` existed
    save_checkpoint(old / "checkpoint.pt", state)
    capsys.readouterr()
    pretrain(tiny_cfg("sbase"), src, tgt, old, resume="auto", progress=False)
    assert capsys.readouterr().out.startswith("reused ")
