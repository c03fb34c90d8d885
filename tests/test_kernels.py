"""Which kernels computed a run: recorded in checkpoints and summaries, named when a run continues with others."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from reid_uda_lib.config import get_preset
from reid_uda_lib.runtime import machine as K
from reid_uda_lib.runtime.checkpoint import load_checkpoint
from reid_uda_lib.runtime.rundir import RunDir


def test_signature_of_the_cpu_names_its_kernels_threads_and_caps(monkeypatch):
    for var in K.ISA_LIMIT_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    sig = K.kernel_signature("cpu")
    assert sig == {"device": "cpu", "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                   "isa_limits": {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "threads": torch.get_num_threads()}
    assert json.loads(json.dumps(sig)) == sig            # plain JSON: checkpoints load with weights_only
    assert K.kernels_text(sig) == f"{sig['cpu_capability']} (capped: ONEDNN_MAX_CPU_ISA=AVX2)"


def test_kernel_change_worked_values():
    a = {"device": "cpu", "torch": "2.14.1", "cpu_capability": "AVX512", "isa_limits": {}, "threads": 2}
    assert K.kernel_change(a, dict(a)) is None
    assert K.kernel_change(None, a) is None                              # a checkpoint older than the record
    b = {**a, "cpu_capability": "AVX2", "isa_limits": {"ATEN_CPU_CAPABILITY": "avx2"}, "threads": 1}
    assert K.kernel_change(a, b) == "CPU kernels AVX512 -> AVX2 (capped: ATEN_CPU_CAPABILITY=avx2), threads 2 -> 1"
    assert K.kernel_change(a, {**a, "threads": 1}) == "threads 2 -> 1"
    assert K.kernel_change(a, {**a, "threads": 1}, threads=False) is None
    g1 = {"device": "cuda", "torch": "2.14.1", "gpu": "Tesla T4"}
    assert K.kernel_change(g1, {**g1, "gpu": "NVIDIA L4", "torch": "2.15.0"}) == \
        "GPU Tesla T4 -> NVIDIA L4, torch 2.14.1 -> 2.15.0"
    assert K.kernel_change(a, g1) == "device cpu -> cuda"


def _one_epoch(run: RunDir, epoch: int) -> None:
    run.log.write({"stage": run.stage, "epoch": epoch, "step": epoch + 1, "lr": 0.1, "ce": 1.0})
    run.save({"epoch": epoch, "step": epoch + 1})


def test_checkpoints_record_the_kernels_and_a_run_continued_with_others_says_so(tmp_path, monkeypatch, capsys):
    cfg = get_preset("tiny", device="cpu")
    for var in K.ISA_LIMIT_VARS:
        monkeypatch.delenv(var, raising=False)
    run = RunDir(tmp_path, "pretrain", cfg, resume="auto")
    _one_epoch(run, 0)                                   # killed after epoch 1 of 2
    assert load_checkpoint(tmp_path / "checkpoint.pt", kind="pretrain")["kernels"] == K.kernel_signature("cpu")
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # the same kernels continue quietly
        same = RunDir(tmp_path, "pretrain", cfg, resume="auto")
    assert "other kernels" not in capsys.readouterr().out
    same.lock.release()

    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")  # as if another process (or machine) continued it
    with pytest.warns(UserWarning, match=r"continuing .* with other kernels than the ones that trained it \(CPU "
                                         r"kernels \w+ -> \w+ \(capped: MKL_ENABLE_INSTRUCTIONS=AVX2\)\): the result "
                                         r"will differ from an uninterrupted run's"):
        other = RunDir(tmp_path, "pretrain", cfg, resume="auto")
    assert "trained with other kernels: CPU kernels" in capsys.readouterr().out
    _one_epoch(other, 1)
    other.finish({"stage": "pretrain"})
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["kernels"]["isa_limits"] == {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    capsys.readouterr()
    # a finished stage reused with fewer threads (a ladder row reading its seed's pretraining) is only read
    monkeypatch.setattr(torch, "get_num_threads", lambda: 99)
    RunDir(tmp_path, "pretrain", cfg, resume="auto")
    assert capsys.readouterr().out == f"reused {tmp_path}, made by preset tiny, seed 0\n"
