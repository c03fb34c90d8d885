"""The multi-process harness of the DDP tests: G gloo processes on CPU (``torch.multiprocessing``, spawn), a free
port, one thread each, a generous deadline; and a few UDA steps that one process or G processes run alike."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from reid_uda_lib.runtime import distributed as ddp
from reid_uda_lib.core.features import extract_features
from reid_uda_lib.methods.lf2 import level_features
from reid_uda_lib.methods.registry import get_method
from reid_uda_lib.train.uda_step import TARGET_HEAD, UDAParts, train_step
from reid_uda_lib.losses import MemoryBank
from reid_uda_lib.models import MeanTeacher, build_model
from uda_helpers import tiny_cfg

N_SOURCE_IDS, N_TARGET, N_CLUSTERS = 6, 40, 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, world: int, port: int, fn, args) -> None:
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()


def run_processes(fn, world: int, *args, timeout: float = 600.0) -> None:
    """Run ``fn(rank, *args)`` in ``world`` gloo processes; raise when one fails or the deadline passes."""
    ctx = mp.start_processes(_entry, args=(world, free_port(), fn, args), nprocs=world, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            raise TimeoutError(f"the {world} processes did not finish within {timeout} s")


def _global_batch(g: torch.Generator, n: int):
    """One global mixed batch: n source images (n/4 identities x 4) and n target images (n/4 pseudo ids x 4)."""
    ids_s = torch.randperm(N_SOURCE_IDS, generator=g)[:n // 4].repeat_interleave(4)
    clusters = torch.randperm(N_CLUSTERS, generator=g)[:n // 4]
    idx_t = (clusters.repeat_interleave(4) * 4 + torch.arange(4).repeat(n // 4))
    return (torch.randn(n, 3, 64, 32, generator=g), ids_s, torch.randn(n, 3, 64, 32, generator=g),
            idx_t // 4, idx_t)


def run_steps(method_name: str, bn_samples: int, steps: int = 3, n: int = 16) -> dict:
    """``steps`` UDA steps of ``method_name`` on fixed global batches of n + n images (this process's share
    under a process group); returns every state a step changes (student, modules, Mean-Net, memory bank).

    Runs on one thread, like each worker process: a 3-step DCDFA run on 1 vs 2 threads differs by ~1e-2 in
    the weights already in one process (float sums in another order, amplified by its terms), which would
    hide the comparison this harness makes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_steps(method_name, bn_samples, steps, n)
    finally:
        torch.set_num_threads(threads)


def _run_steps(method_name: str, bn_samples: int, steps: int, n: int) -> dict:
    torch.manual_seed(0)
    cfg = tiny_cfg(method_name, **{"model.bn_samples": bn_samples, "data.batch_size": n})
    method = get_method(method_name)
    model = build_model(cfg.model, num_classes=N_SOURCE_IDS)
    extra = method.extra_modules(model, cfg)
    eff = ddp.setup_bn_groups(bn_samples, 2 * n if method.source_batches else n, model, extra,
                              n_source=n if method.source_batches else 0)
    model.set_classifier(TARGET_HEAD, N_CLUSTERS)
    mean_net = MeanTeacher(model, 0.9) if method.mean_net else None
    mean_extra = MeanTeacher(extra, 0.9) if method.mean_net and len(extra.state_dict()) else None
    memory = None
    if method.memory_bank:
        memory = MemoryBank(N_SOURCE_IDS, N_TARGET, model.feat_dim)
        memory.init_source(torch.nn.functional.normalize(torch.randn(N_SOURCE_IDS, model.feat_dim), dim=1))
        labels0 = torch.arange(N_TARGET) // 4
        memory.init_target(torch.nn.functional.normalize(torch.randn(N_TARGET, model.feat_dim), dim=1), labels0)
    # SGD, not the runs' Adam: Adam divides by the gradient's own scale, so parameters whose exact gradient is 0
    # (an FC bias before a BatchNorm, a BatchNorm shift under LF²'s translation-invariant softmax triplet) move by
    # ±lr following float noise, in one process as in two; SGD moves them by noise x lr. The data-parallel code
    # (gather, gradient average) does not depend on the optimiser.
    optimizer = torch.optim.SGD(list(model.parameters()) + list(extra.parameters()), lr=0.05, momentum=0.9)
    parts = UDAParts(model, method, extra, memory, optimizer, mean_net, mean_extra, cfg, bn_samples=eff)
    y0 = torch.arange(N_TARGET) // 4
    parts.labels = torch.stack([y0, y0, y0])
    model.train()
    extra.train()
    g = torch.Generator().manual_seed(1)
    lo, hi = ddp.shard_bounds(n)
    for step in range(steps):
        x_s, y_s, x_t, y_t, idx_t = _global_batch(g, n)
        if method.source_batches:
            train_step(parts, x_s[lo:hi], y_s[lo:hi], x_t[lo:hi], y_t[lo:hi], idx_t[lo:hi], step=step)
        else:
            train_step(parts, None, None, x_t[lo:hi], y_t[lo:hi], idx_t[lo:hi], step=step)
    state = {"model": model.state_dict(), "extra": extra.state_dict()}
    if mean_net is not None:
        state["mean_net"] = mean_net.module.state_dict()
    if memory is not None:
        state["memory"] = memory.state_dict()
    return {k: {n: t.clone() for n, t in v.items()} for k, v in state.items()}


def extract_all(items: list) -> dict:
    """The sharded extractions of the loop (BNNeck features; LF²'s features of every level) on ``items``."""
    torch.manual_seed(0)
    cfg = tiny_cfg("lf2")
    model = build_model(cfg.model, num_classes=N_SOURCE_IDS)
    fm = get_method("lf2").extra_modules(model, cfg)["fm"]
    teacher = MeanTeacher(model, 0.9).module
    levels, bn = level_features(teacher, model, fm, items, cfg, torch.device("cpu"), "fm", progress=False)
    return {"bn": extract_features(model, items, cfg.data, torch.device("cpu"), progress=False),
            "levels": torch.stack(levels), "level_bn": bn}


def steps_worker(rank: int, out_dir: str, methods: list, items: list) -> None:
    """Each process writes the states it holds after the steps of each method, and its extracted features."""
    for m in methods:
        torch.save(run_steps(m, bn_samples=0), Path(out_dir) / f"{m}.rank{rank}.pt")
    if items:
        torch.save(extract_all(items), Path(out_dir) / f"features.rank{rank}.pt")
