"""Multi-process training (torchrun / DDP, gloo on CPU): the distributed PK sampler, all ranks holding the same
weights, 2 processes with local BatchNorm = 1 process with bn_samples = B/2 (issue 12, test 4), and the
``torchrun`` command line matching a one-process run and resuming with another number of processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddp_harness import extract_all, free_port, run_processes, run_steps, steps_worker
from reid_uda_lib.data import PKSampler, load_dataset
from reid_uda_lib.data.samplers import DistributedPKSampler
from reid_uda_lib.train import adapt, load_checkpoint, pretrain
from uda_helpers import Interrupt, stop_after_first_epoch, tiny_cfg

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def test_distributed_sampler_splits_the_single_process_batches():
    pids = [i // 5 for i in range(60)]                       # 12 identities x 5 images
    single = list(PKSampler(pids, num_instances=4, batch_size=16, num_batches=5, seed=3))
    shards = [list(DistributedPKSampler(PKSampler(pids, num_instances=4, batch_size=16, num_batches=5, seed=3),
                                        16, 4, world_size=2, rank=r)) for r in range(2)]
    assert all(len(s) == 40 for s in shards)
    for b in range(5):
        rebuilt = shards[0][8 * b:8 * b + 8] + shards[1][8 * b:8 * b + 8]
        assert rebuilt == single[16 * b:16 * b + 16]            # the same global batch, rank 0's half first
        halves = [{pids[i] for i in s[8 * b:8 * b + 8]} for s in shards]
        assert not halves[0] & halves[1]                        # every identity's images in one process
    sampler = DistributedPKSampler(PKSampler(pids, 4, 16, 5, seed=3), 16, 4, world_size=2, rank=1)
    sampler.set_epoch(2)
    assert sampler.sampler.epoch == 2
    with pytest.raises(ValueError, match=r"data.batch_size \(16\) must be a multiple of .*processes 4.* = 16|"
                                         r"multiple of \(number of processes 8\)"):
        DistributedPKSampler(PKSampler(pids, 4, 16, 5), 16, 4, world_size=8, rank=0)


def _states_close(a: dict, b: dict, what: str, rtol=1e-4, atol=1e-5) -> None:
    assert a.keys() == b.keys(), what
    for part in a:
        assert a[part].keys() == b[part].keys(), f"{what}: {part}"
        for name in a[part]:
            x, y = a[part][name], b[part][name]
            if x.is_floating_point():
                torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=f"{what}: {part}.{name}")
            else:
                assert torch.equal(x, y), f"{what}: {part}.{name}"


def test_two_gloo_processes_hold_identical_weights_and_match_one_process_with_bn_groups(synthetic_pair, tmp_path):
    """Three steps of SBase, DCDFA and LF² on 2 processes (local BatchNorm over each process's share): both ranks
    hold bit-identical student, modules, Mean-Net and memory bank, and these equal one process with
    ``bn_samples`` = the per-process batch (16 images mixed, 8 target-only) within float tolerance. The sharded
    extractions (BNNeck features, LF²'s level features) of 2 processes equal one process's, in item order."""
    methods = {"sbase": 16, "dcdfa": 16, "lf2": 8}
    items = load_dataset(synthetic_pair["B"]).train[:21]        # an odd count: shards of 10 and 11
    run_processes(steps_worker, 2, str(tmp_path), list(methods), items, timeout=900)
    feats = [torch.load(tmp_path / f"features.rank{r}.pt") for r in range(2)]
    single = extract_all(items)
    for key in single:
        assert torch.equal(feats[0][key], feats[1][key]), key
        torch.testing.assert_close(feats[0][key], single[key], rtol=1e-5, atol=1e-6, msg=key)
    for m, local in methods.items():
        r0, r1 = (torch.load(tmp_path / f"{m}.rank{r}.pt") for r in range(2))
        for part in r0:
            for name in r0[part]:
                assert torch.equal(r0[part][name], r1[part][name]), f"{m}: ranks differ in {part}.{name}"
        single = run_steps(m, bn_samples=local)
        _states_close(r0, single, m)
        if m == "sbase":                              # whole-batch BatchNorm: measurably different
            whole, key = run_steps(m, bn_samples=0), "backbone.conv1.weight"
            assert (whole["model"][key] - single["model"][key]).abs().max() \
                > 100 * (r0["model"][key] - single["model"][key]).abs().max()


def _torchrun(args: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [str(TORCHRUN), "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "reid_uda_lib", *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _model_close(a: Path, b: Path, keys=("model", "mean_net"), lr: float = 1e-3, steps: int = 6) -> None:
    """Float tolerance for Adam runs: Adam divides each update by the gradient's own scale, so an element whose
    gradient is ~0 (a class no batch drew, a BatchNorm shift that starts at 0) moves by up to ±lr following float
    noise (1e-6 differences in the sums of 2 processes vs 1). Every element must stay within lr x steps and every
    tensor within 5 % in norm; the losses (below) are the tight check."""
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    for k in keys:
        ta = sa[k]["module"] if k == "mean_net" else sa[k]
        tb = sb[k]["module"] if k == "mean_net" else sb[k]
        assert ta.keys() == tb.keys()
        for name in ta:
            if ta[name].is_floating_point():
                d = (ta[name] - tb[name]).abs()
                assert float(d.max()) <= lr * steps, f"{a}: {k}.{name} differs by {float(d.max())}"
                rel = float(d.norm() / tb[name].norm().clamp_min(1e-12))
                assert rel <= 0.05, f"{a}: {k}.{name} differs by {rel:.3f} of its norm"


def _records_close(run: Path, ref: Path) -> None:
    """Every epoch's loss terms within 1e-3 (relative; the batch-hard triplet picks its hardest pairs from
    features that differ by float noise) and the same pseudo-label clusters as the reference."""
    a, b = ([json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (run, ref))
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b):
        for term in ("s_ce", "s_tri", "t_ce", "t_tri", "s_mem", "t_mem"):
            assert ra[term] == pytest.approx(rb[term], rel=1e-3), f"{run}: epoch {ra['epoch']} {term}"
        assert ra["cluster"] == pytest.approx(rb["cluster"], abs=1e-9)


def test_torchrun_two_processes_match_one_process_and_resume_with_another_count(synthetic_pair, tmp_path):
    """``torchrun --nproc_per_node=2 -m reid_uda_lib train`` (gloo, tiny preset): pretraining and SBase match one
    process with the same global batch and the same BatchNorm groups; a one-process run cut after its first
    epoch resumes on 2 processes to the same result; only rank 0 writes and prints."""
    over = {"model.bn_samples": 8}                          # 8 = each process's share of the 16-image batches
    cfg = tiny_cfg("sbase", **over)
    src, tgt = load_dataset(synthetic_pair["A"]), load_dataset(synthetic_pair["B"])
    ref = tmp_path / "ref"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                # as each torchrun process (OMP_NUM_THREADS=1)
    try:
        pretrain(cfg, src, tgt, ref / "pretrain", progress=False)
        ref_res = adapt(cfg, src, tgt, ref / "pretrain" / "checkpoint.pt", ref / "sbase", progress=False)
        with pytest.raises(Interrupt):
            adapt(cfg, src, tgt, ref / "pretrain" / "checkpoint.pt", tmp_path / "cut" / "sbase", progress=False,
                  on_epoch_end=stop_after_first_epoch)
    finally:
        torch.set_num_threads(threads)

    sets = [x for k, v in {"pretrain.epochs": 1, "pretrain.iters_per_epoch": 3, "uda.epochs": 2,
                           "uda.iters_per_epoch": 3, "data.batch_size": 16, "uda.k1": 8, "uda.k2": 3,
                           "uda.eps": 0.7, "uda.min_samples": 3, **over}.items() for x in ("--set", f"{k}={v}")]
    common = ["--preset", "tiny", "--source", str(synthetic_pair["A"]), "--target", str(synthetic_pair["B"]),
              "--quiet", "--device", "cpu", *sets]
    res = _torchrun(["train", "--method", "sbase", "--out", str(tmp_path / "ddp"), *common])
    assert res.stdout.count('"stage": "uda"') == 1          # one report: rank 0's
    _model_close(tmp_path / "ddp" / "pretrain" / "checkpoint.pt", ref / "pretrain" / "checkpoint.pt", ("model",),
                 steps=3)
    pre_d, pre_r = (json.loads((d / "pretrain" / "metrics.jsonl").read_text()) for d in (tmp_path / "ddp", ref))
    assert pre_d["ce"] == pytest.approx(pre_r["ce"], rel=1e-5) and pre_d["tri"] == pytest.approx(pre_r["tri"], rel=1e-5)
    assert pre_d["target"]["mAP"] == pytest.approx(pre_r["target"]["mAP"], abs=1e-6)
    _model_close(tmp_path / "ddp" / "sbase" / "checkpoint.pt", ref / "sbase" / "checkpoint.pt")
    _records_close(tmp_path / "ddp" / "sbase", ref / "sbase")
    summary = json.loads((tmp_path / "ddp" / "sbase" / "summary.json").read_text())
    assert summary["target"]["mAP"] == pytest.approx(ref_res["target"]["mAP"], abs=2e-3)
    records = [json.loads(x) for x in (tmp_path / "ddp" / "sbase" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]          # one writer: no duplicated records

    _torchrun(["train", "--method", "sbase", "--resume", "--init", str(ref / "pretrain" / "checkpoint.pt"),
               "--out", str(tmp_path / "cut"), *common])
    _model_close(tmp_path / "cut" / "sbase" / "checkpoint.pt", ref / "sbase" / "checkpoint.pt")
    _records_close(tmp_path / "cut" / "sbase", ref / "sbase")
    resumed = json.loads((tmp_path / "cut" / "sbase" / "summary.json").read_text())
    assert resumed["target"]["mAP"] == pytest.approx(ref_res["target"]["mAP"], abs=2e-3)
