"""Training-step time of each UDA method at the same shapes, in one process, as ratios to SBase.

Builds the model, memory bank, per-epoch target head, Mean-Net and each method's modules exactly as the
UDA loop does, then times :func:`reid_uda_lib.train.uda_step.train_step` (forward, loss terms, backward,
optimiser step, Mean-Net and memory updates) on random images. Methods are timed in interleaved rounds
(sbase, dcdfa, sbase, dcdfa, ...) so machine load hits them alike; the median of each is reported.

    .venv/bin/python benchmarks/bench_step.py                      # CPU: resnet50 at 256x128, 8+8 images
    .venv/bin/python benchmarks/bench_step.py --device cuda --batch 64   # the paper's 64+64 on a GPU
    .venv/bin/python benchmarks/bench_step.py --arch resnet18 --height 128 --width 64 --batch 32  # cpu preset

DCDFA's claim (sec. 3.3): < 5 % extra training time; the target here is an overhead ratio ≤ 1.05.

LF² methods (target-only batches) are timed on N target images with labels at every level; for each LF² method
with part levels the script also times ``<method>x3``, the official code's scheme: one batch and one student
forward per label set (K + 1 = 3 loaders, 3 forwards, 2 teacher forwards for the FM term), same loss terms,
one backward, and prints the speed-up of the one-forward step::

    .venv/bin/python benchmarks/bench_step.py --methods sbase,lf2 --arch resnet18 --height 128 --width 64 --batch 16

Default methods: ``sbase,dcdfa,lf2`` (SBase vs DCDFA vs LF² at the same shapes; each line also gives the images
per step and per second, since LF²'s batches hold target images only). ``--no-x3`` skips the three-forward
reference (``make bench``).

Mixed precision (config ``amp``, runtime/amp.py): ``--amp off,bf16`` also times every method with bf16
autocast (rows ``sbase@bf16`` ...) and prints its speed relative to the float32 step::

    .venv/bin/python benchmarks/bench_step.py --methods sbase --arch resnet18 --height 96 --width 48 --batch 32 \
        --last-stride 2 --amp off,bf16 --no-x3                       # the cpu preset's step, fp32 vs bf16
    .venv/bin/python benchmarks/bench_step.py --device cuda --batch 64 --amp off,fp16,bf16
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from reid_uda_lib.config import get_preset
from reid_uda_lib.core.training import build_optimizer
from reid_uda_lib.methods.lf2 import LF2Method
from reid_uda_lib.methods.registry import get_method
from reid_uda_lib.train.uda_step import TARGET_HEAD, UDAParts, train_step
from reid_uda_lib.losses import MemoryBank, batch_hard_triplet, softmax_triplet
from reid_uda_lib.losses.lf2 import fusion_loss, lf2_cls_loss, lf2_total
from reid_uda_lib.models import MeanTeacher, build_model
from reid_uda_lib.models.lf2 import part_features
from reid_uda_lib.utils import resolve_device
from reid_uda_lib.config import AMP_MODES
from reid_uda_lib.runtime.amp import Precision

GOAL = 1.05


def build_parts(method_name: str, cfg, device, n_src_ids: int, n_target: int, n_clusters: int,
                amp: str = "off") -> UDAParts:
    """The state the loop holds during an epoch, for one method (same seed for every method); ``amp``: the
    step's precision (runtime/amp.py)."""
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
    mean_extra = MeanTeacher(extra, 0.999) if method.mean_net and len(extra.state_dict()) else None
    model.train()
    extra.train()
    parts = UDAParts(model, method, extra, memory, optimizer, mean_net, mean_extra, cfg,
                     precision=Precision(amp, device))
    # labels of every level (LF²): each level groups the batch images (indices 0..n-1) in its own way
    n, k = cfg.data.batch_size, cfg.data.num_instances
    labels = torch.randint(0, n_clusters, (cfg.lf2.num_parts + 1, n_target))
    for level in range(labels.shape[0]):
        labels[level, :n] = (torch.arange(n) // k + level * 7) % n_clusters
        labels[level, :n] = labels[level, torch.randperm(n) if level else torch.arange(n)]
    parts.labels = labels.to(device)
    return parts


def three_forward_step(p: UDAParts, batches: list) -> None:
    """LF² the way the official code iterates: one batch and one forward per label set (level 0: L_ReID;
    level j: the part-j softmax triplet and the FM term on its own batch), one backward, optimiser and EMA."""
    lf, k = p.cfg.lf2, p.cfg.lf2.num_parts
    x0, idx0 = batches[0]
    out0, y0 = p.model(x0), p.labels[0, idx0]
    l_cls = lf2_cls_loss(out0["logits"][TARGET_HEAD], y0, p.cfg.loss.label_smoothing)
    l_tri = batch_hard_triplet(out0["f"], y0, margin=p.cfg.loss.triplet_margin)
    l_parts, l_fm = [], []
    for j in range(1, k + 1):
        x, idx = batches[j]
        y = p.labels[j, idx]
        f_raw = part_features(p.model(x)["fmap"], k)[:, j - 1]
        l_parts.append(softmax_triplet(p.extra["experts"].experts[j - 1](f_raw), y))
        if "fm" in p.extra and lf.w_fm:
            with torch.no_grad():
                phi0_map = p.mean_net.module(x)["fmap"]
            mlp_out = p.extra["fm"].mlps[j - 1](f_raw.detach())
            z = mlp_out + f_raw.detach() if lf.fm_mode == "add" else mlp_out * f_raw.detach()
            l_fm.append(fusion_loss((torch.sigmoid(z)[:, :, None, None] * phi0_map).mean(dim=(2, 3)), y))
    terms = lf2_total(l_cls, l_tri, l_parts, lf.alpha, lf.lam, lf.gamma)
    if l_fm:
        terms["fm"] = lf.w_fm * sum(l_fm)
    p.optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    p.optimizer.step()
    p.mean_net.update(p.model)
    p.mean_extra.update(p.extra)


def step_once(p: UDAParts, xs, ys, xt, idx, step: int) -> None:
    """One :func:`train_step` as the loop runs it: the mixed batch, or the target images alone for methods with
    ``source_batches=False``; the target labels are level 0 of ``p.labels`` at ``idx``."""
    y0 = p.labels[0, idx]
    if p.method.source_batches:
        train_step(p, xs, ys, xt, y0, idx, step=step)
    else:
        train_step(p, None, None, xt, y0, idx, step=step)


def time_call(fn, device) -> float:
    """Wall seconds of ``fn()``, the device synchronised before and after (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def make_batch(n: int, k: int, cfg, device, n_ids: int, n_target: int, seed: int):
    """A PK-like batch: n images of n // k identities, k each (labels matter for the triplet terms)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, cfg.data.height, cfg.data.width, generator=g).to(device)
    ids = torch.randperm(n_ids, generator=g)[: n // k].repeat_interleave(k).to(device)
    idx = torch.randint(0, n_target, (n,), generator=g).to(device)
    return x, ids, idx


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="sbase,dcdfa,lf2", help="first one is the reference")
    ap.add_argument("--no-x3", action="store_true", help="skip the LF² one-forward-per-label-set reference")
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--last-stride", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8, help="images per domain (the paper: 64)")
    ap.add_argument("--instances", type=int, default=4, help="K images per identity")
    ap.add_argument("--rounds", type=int, default=5, help="timed steps per method (after 2 warm-up steps)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", default="off", help="comma-separated precisions (off, bf16, fp16): every method "
                    "is timed in each, interleaved; `method@bf16` rows give their ratio to the float32 step")
    args = ap.parse_args(argv)
    amps = args.amp.split(",")
    for a in amps:
        if a not in AMP_MODES:
            ap.error(f"--amp: each of {', '.join(AMP_MODES)}; got {a!r}")

    device = resolve_device(args.device)
    cfg = get_preset("paper", **{"model.arch": args.arch, "model.weights": None, "model.last_stride": args.last_stride,
                                 "data.height": args.height,
                                 "data.width": args.width, "data.batch_size": args.batch,
                                 "data.num_instances": args.instances})
    n_src_ids, n_target, n_clusters = 751, 12936, 500        # Market-1501-sized source and target
    methods = args.methods.split(",")
    lf2_parts = [] if args.no_x3 else [m for m in methods if isinstance(get_method(m), LF2Method)
                                       and get_method(m).parts and not get_method(m).dcdfa]
    # (the x3 reference re-implements the LF² terms only)
    parts = {m: build_parts(m, cfg, device, n_src_ids, n_target, n_clusters) for m in methods}
    mixed = [f"{m}@{a}" for a in amps if a != "off" for m in methods]
    for name in mixed:
        m, a = name.split("@")
        parts[name] = build_parts(m, cfg, device, n_src_ids, n_target, n_clusters, amp=a)
    for m in lf2_parts:             # the three-forward reference gets its own, identical copy of the state
        parts[f"{m}x3"] = build_parts(m, cfg, device, n_src_ids, n_target, n_clusters)
    xs, ys, _ = make_batch(args.batch, args.instances, cfg, device, n_src_ids, n_target, 1)
    xt, _, _ = make_batch(args.batch, args.instances, cfg, device, n_clusters, n_target, 2)
    idx = torch.arange(args.batch, device=device)       # the batch images are 0..n-1: labels at every level
    extra_batches = [(make_batch(args.batch, args.instances, cfg, device, n_clusters, n_target, 3 + j)[0], idx)
                     for j in range(cfg.lf2.num_parts)]

    def one(m: str, step: int) -> float:
        if m.endswith("x3"):
            return time_call(lambda: three_forward_step(parts[m], [(xt, idx)] + extra_batches), device)
        return time_call(lambda: step_once(parts[m], xs, ys, xt, idx, step), device)

    timed = methods + [f"{m}x3" for m in lf2_parts] + mixed
    times: dict[str, list[float]] = {m: [] for m in timed}
    for step in range(2 + args.rounds):
        for m in timed:
            t = one(m, step)
            if step >= 2:
                times[m].append(t)
    print(f"device {device}, {args.arch} at {args.height}x{args.width}, {args.batch}+{args.batch} images per "
          f"step, {torch.get_num_threads()} threads, median of {args.rounds} interleaved steps")
    ref = statistics.median(times[methods[0]])
    for m in timed:
        med = statistics.median(times[m])
        extra = sum(p.numel() for p in parts[m].extra.parameters())
        n_img = args.batch * (2 if parts[m].method.source_batches else 1)
        print(f"  {m:18s} {med * 1000:9.1f} ms/step   ratio {med / ref:5.3f}   {n_img:4d} images/step "
              f"({n_img / med:6.1f} images/s)   extra parameters {extra:,}")
    for m in methods[1:]:
        if isinstance(get_method(m), LF2Method) and not get_method(m).source_batches:
            # target-only batches: the step sees half the images of SBase's mixed batch
            print(f"{m} / {methods[0]}: {statistics.median(times[m]) / ref:.3f} per step "
                  f"({args.batch} target images against {args.batch}+{args.batch} mixed)")
            continue
        ratio = statistics.median(times[m]) / ref
        print(f"{m} / {methods[0]}: {ratio:.3f} (target <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'})")
    for name in mixed:
        m = name.split("@")[0]
        speedup = statistics.median(times[m]) / statistics.median(times[name])
        print(f"{name}: {speedup:.2f}x the float32 step's speed")
    for m in lf2_parts:
        speedup = statistics.median(times[f"{m}x3"]) / statistics.median(times[m])
        print(f"{m}: one forward for all {cfg.lf2.num_parts + 1} label sets is {speedup:.2f}x faster than one "
              f"forward per label set ({m}x3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
