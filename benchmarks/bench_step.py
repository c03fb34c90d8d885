"""Training-step time of each UDA method at the same shapes, in one process, as ratios to SBase.

Builds the model, memory bank, per-epoch target head, Mean-Net and each method's modules exactly as the
UDA loop does, then times :func:`reid_uda_lib.engine.uda_step.train_step` (forward, loss terms, backward,
optimiser step, Mean-Net and memory updates) on random images. Methods are timed in interleaved rounds
(sbase, dcdfa, sbase, dcdfa, ...) so machine load hits them alike; the median of each is reported.

    .venv/bin/python benchmarks/bench_step.py                      # CPU: resnet50 at 256x128, 8+8 images
    .venv/bin/python benchmarks/bench_step.py --device cuda --batch 64   # the paper's 64+64 on a GPU
    .venv/bin/python benchmarks/bench_step.py --arch resnet18 --height 128 --width 64 --batch 32  # cpu preset

DCDFA's claim (sec. 3.3): < 5 % extra training time; the target here is an overhead ratio ≤ 1.05.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from reid_uda_lib.config import get_preset
from reid_uda_lib.engine.common import build_optimizer
from reid_uda_lib.engine.methods import get_method
from reid_uda_lib.engine.uda_step import TARGET_HEAD, UDAParts, train_step
from reid_uda_lib.losses import MemoryBank
from reid_uda_lib.models import MeanTeacher, build_model
from reid_uda_lib.utils import resolve_device

GOAL = 1.05


def build_parts(method_name: str, cfg, device, n_src_ids: int, n_target: int, n_clusters: int) -> UDAParts:
    """The state the loop holds during an epoch, for one method (same seed for every method)."""
    torch.manual_seed(0)
    method = get_method(method_name)
    model = build_model(cfg.model, num_classes=n_src_ids).to(device)
    model.set_classifier(TARGET_HEAD, n_clusters)
    extra = method.extra_modules(model, cfg).to(device)
    memory = None
    if method.memory_bank:
        memory = MemoryBank(n_src_ids, n_target, model.feat_dim).to(device)
        memory.init_source(torch.nn.functional.normalize(torch.randn(n_src_ids, model.feat_dim), dim=1).to(device))
        memory.init_target(torch.nn.functional.normalize(torch.randn(n_target, model.feat_dim), dim=1).to(device),
                           torch.randint(0, n_clusters, (n_target,)).to(device))
    optimizer = build_optimizer(list(model.parameters()) + list(extra.parameters()), cfg.optim)
    mean_net = MeanTeacher(model, 0.999) if method.mean_net else None
    mean_extra = MeanTeacher(extra, 0.999) if method.mean_net else None
    model.train()
    extra.train()
    return UDAParts(model, method, extra, memory, optimizer, mean_net, mean_extra, cfg)


def make_batch(n: int, k: int, cfg, device, n_ids: int, n_target: int, seed: int):
    """A PK-like batch: n images of n // k identities, k each (labels matter for the triplet terms)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, cfg.data.height, cfg.data.width, generator=g).to(device)
    ids = torch.randperm(n_ids, generator=g)[: n // k].repeat_interleave(k).to(device)
    idx = torch.randint(0, n_target, (n,), generator=g).to(device)
    return x, ids, idx


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="sbase,dcdfa", help="first one is the reference")
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8, help="images per domain (the paper: 64)")
    ap.add_argument("--instances", type=int, default=4, help="K images per identity")
    ap.add_argument("--rounds", type=int, default=5, help="timed steps per method (after 2 warm-up steps)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    cfg = get_preset("paper", **{"model.arch": args.arch, "model.weights": None, "data.height": args.height,
                                 "data.width": args.width, "data.batch_size": args.batch})
    n_src_ids, n_target, n_clusters = 751, 12936, 500        # Market-1501-sized source and target
    methods = args.methods.split(",")
    parts = {m: build_parts(m, cfg, device, n_src_ids, n_target, n_clusters) for m in methods}
    xs, ys, _ = make_batch(args.batch, args.instances, cfg, device, n_src_ids, n_target, 1)
    xt, yt, idx = make_batch(args.batch, args.instances, cfg, device, n_clusters, n_target, 2)

    def one(m: str, step: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        train_step(parts[m], xs, ys, xt, yt, idx, step=step)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {m: [] for m in methods}
    for step in range(2 + args.rounds):
        for m in methods:
            t = one(m, step)
            if step >= 2:
                times[m].append(t)
    print(f"device {device}, {args.arch} at {args.height}x{args.width}, {args.batch}+{args.batch} images per "
          f"step, {torch.get_num_threads()} threads, median of {args.rounds} interleaved steps")
    ref = statistics.median(times[methods[0]])
    for m in methods:
        med = statistics.median(times[m])
        extra = sum(p.numel() for p in parts[m].extra.parameters())
        print(f"  {m:18s} {med * 1000:9.1f} ms/step   ratio {med / ref:5.3f}   extra parameters {extra:,}")
    for m in methods[1:]:
        ratio = statistics.median(times[m]) / ref
        print(f"{m} / {methods[0]}: {ratio:.3f} (target <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
