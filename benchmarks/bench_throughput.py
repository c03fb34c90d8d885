"""Loader throughput against model step time, in one process: where a training step's time goes.

Five figures in images/s, at a preset's shapes (default ``cpu``: MobileNetV2 at 128×64, batches of 2 × 32
images, the UDA loop's mixed source + target batch; the weights are random, which times the same):

1. the train loader alone (PK sampler, decode, augment, collate; the images of the synthetic pair),
2. the test loader alone (decode, resize, normalise),
3. the model's training step alone on a batch already in memory (forward, CE-LS + triplet, backward, Adam),
4. inference alone (eval-mode forward on a batch in memory, as feature extraction does),
5. the whole step: the train loader feeding the training step.

The ratios say which side to speed up: with loader ≫ model step, the model is the cost (smaller input, last
stride 2, ``channels_last``, a GPU), not the data pipeline (more workers).

    .venv/bin/python benchmarks/bench_throughput.py                        # cpu preset, data/synthetic
    .venv/bin/python benchmarks/bench_throughput.py --steps 3 --loader-batches 5   # quick (make bench)
    .venv/bin/python benchmarks/bench_throughput.py --device cuda --preset paper --workers 4
    .venv/bin/python benchmarks/bench_throughput.py --channels-last       # the memory-format lever
    .venv/bin/python benchmarks/bench_throughput.py --channels-last --threads 1,2   # what a second thread buys

``--threads 1,2``: afterwards, the pretraining's step (one batch of ``data.batch_size`` source images) and
inference, timed at each torch thread count in turn (``torch.set_num_threads``; interleaved rounds, best of
``--rounds``), with each count's speed-up over the first.
"""
from __future__ import annotations

import argparse
import itertools
import os
import time

import torch

from reid_uda_lib.config import get_preset
from reid_uda_lib.data import load_dataset
from reid_uda_lib.data.synthetic import generate_synthetic_pair
from reid_uda_lib.core.training import build_optimizer, supervised_terms
from reid_uda_lib.core.loaders import test_loader, train_loader
from reid_uda_lib.models import build_model
from reid_uda_lib.utils import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_rate(loader, batches: int) -> float:
    """Images per second of ``batches`` batches of ``loader`` (after one warm-up batch)."""
    it = iter(loader)
    next(it)
    n, t0 = 0, time.perf_counter()
    for img, *_ in itertools.islice(it, batches):
        n += img.shape[0]
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", help="shapes, batch size and model of this preset")
    ap.add_argument("--data", default="data/synthetic", help="synthetic pair (generated here when missing)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default: the preset's)")
    ap.add_argument("--steps", type=int, default=5, help="timed model steps (after one warm-up step)")
    ap.add_argument("--loader-batches", type=int, default=20, help="timed loader batches")
    ap.add_argument("--channels-last", action="store_true", help="model and inputs in channels_last")
    ap.add_argument("--threads", default="", help="comma-separated torch thread counts to compare (e.g. 1,2)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of --threads (best is kept)")
    args = ap.parse_args(argv)
    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads: expected comma-separated positive integers such as 1,2; got {args.threads!r}")
    if any(t < 1 for t in threads) or args.rounds < 1:
        ap.error(f"--threads and --rounds must be >= 1; got {args.threads!r}, {args.rounds}")

    device = resolve_device(args.device)
    over = {"model.weights": None, "device": str(device)}
    if args.workers is not None:
        over["data.num_workers"] = args.workers
    cfg = get_preset(args.preset, **over)
    d = cfg.data
    source = load_dataset(generate_synthetic_pair(args.data, progress=False)["A"])
    batch = 2 * d.batch_size                          # the UDA step: N source + N target images
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    print(f"preset {args.preset}: {cfg.model.arch} at {d.height}x{d.width}, last stride {cfg.model.last_stride}, "
          f"{batch} images per step, {d.num_workers} loader workers, device {device}, "
          f"{torch.get_num_threads()} torch threads, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"{'channels_last' if args.channels_last else 'contiguous'}, torch {torch.__version__}")

    big = d.__class__(**{**d.__dict__, "batch_size": batch})
    tr = train_loader(source.train, big, seed=0, random_erasing_p=d.random_erasing_p,
                      num_batches=args.loader_batches + 1)
    tr.sampler.set_epoch(0)
    r_train = loader_rate(tr, args.loader_batches)
    te = test_loader(source.query + source.gallery, d)
    r_test = loader_rate(te, max(1, min(args.loader_batches, len(te) - 1)))

    torch.manual_seed(0)
    model = build_model(cfg.model, num_classes=source.num_train_pids).to(device, memory_format=fmt)
    opt = build_optimizer(model.parameters(), cfg.optim)
    x = torch.randn(batch, 3, d.height, d.width, device=device).contiguous(memory_format=fmt)
    y = torch.arange(batch, device=device) // d.num_instances % source.num_train_pids

    def step(img, pid) -> None:
        terms = supervised_terms(model(img), pid, "source", cfg.loss, prefix="")
        opt.zero_grad(set_to_none=True)
        sum(terms.values()).backward()
        opt.step()

    def timed(fn, n: int) -> float:
        fn()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        _sync(device)
        return (time.perf_counter() - t0) / n

    model.train()
    t_step = timed(lambda: step(x, y), args.steps)
    model.eval()
    xt = torch.randn(d.test_batch_size, 3, d.height, d.width, device=device).contiguous(memory_format=fmt)
    with torch.no_grad():
        t_inf = timed(lambda: model(xt), args.steps)
    model.train()
    whole = train_loader(source.train, big, seed=1, random_erasing_p=d.random_erasing_p, num_batches=args.steps + 1)
    whole.sampler.set_epoch(0)
    batches = iter(whole)
    img, pid, *_ = next(batches)
    step(img.to(device).contiguous(memory_format=fmt), pid.to(device))      # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for img, pid, *_ in batches:
        step(img.to(device, non_blocking=True).contiguous(memory_format=fmt), pid.to(device))
    _sync(device)
    t_whole = (time.perf_counter() - t0) / args.steps

    r_step, r_inf, r_whole = batch / t_step, d.test_batch_size / t_inf, batch / t_whole
    print(f"train loader alone      {r_train:9.1f} images/s")
    print(f"test loader alone       {r_test:9.1f} images/s")
    print(f"model train step alone  {r_step:9.1f} images/s   ({t_step * 1000:.0f} ms per {batch}-image step)")
    print(f"inference alone         {r_inf:9.1f} images/s")
    print(f"whole step (loader+step){r_whole:9.1f} images/s")
    print(f"ratios: train loader / model step {r_train / r_step:.1f}x, test loader / inference "
          f"{r_test / r_inf:.1f}x, whole step / model step {r_whole / r_step:.2f} "
          f"({'the model is the cost' if r_train > 3 * r_step else 'the loader matters'})")
    if threads:
        xp, yp = x[:d.batch_size], y[:d.batch_size]
        best: dict[int, list[float]] = {t: [float("inf"), float("inf")] for t in threads}
        for _ in range(args.rounds):
            for t in threads:
                torch.set_num_threads(t)
                model.train()
                best[t][0] = min(best[t][0], timed(lambda: step(xp, yp), args.steps))
                model.eval()
                with torch.no_grad():
                    best[t][1] = min(best[t][1], timed(lambda: model(xt), args.steps))
        model.train()
        t0, i0 = best[threads[0]]
        for t in threads:
            ts, ti = best[t]
            print(f"{t} thread{'s' if t > 1 else ' '}: pretraining step ({d.batch_size} images) {ts * 1000:6.0f} ms "
                  f"({t0 / ts:.2f}x), inference ({d.test_batch_size} images) {ti * 1000:6.0f} ms ({i0 / ti:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
