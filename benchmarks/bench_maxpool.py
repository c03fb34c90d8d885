"""The stem max-pool: ``StemMaxPool2d`` (channels-last CPU path) against ``nn.MaxPool2d``, in one process.

At the ResNet stem's shapes for a preset (default ``cpu``: resnet18 at 96x48 → a 64 x 48 x 24 map after
``conv1``), on ReLU outputs (many ties), median milliseconds of: inference (no grad, the test batch) and a
training forward + backward (the 2 x 32-image UDA batch), for both modules, then their ratio. It also checks
that outputs and input gradients are bit-identical. Then the same for the whole resnet18 inference forward
(the test batch), which is what feature extraction, BatchNorm re-estimation and evaluation pay.

    .venv/bin/python benchmarks/bench_maxpool.py                    # cpu preset, 1 thread
    .venv/bin/python benchmarks/bench_maxpool.py --threads 2 --repeats 50

Target: the fast path at least 2x faster than nn.MaxPool2d for inference on CPU, results identical.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from reid_uda_lib.config import get_preset
from reid_uda_lib.models import build_model
from reid_uda_lib.models.maxpool import StemMaxPool2d


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = get_preset(args.preset)
    d = cfg.data
    net = build_model(cfg.model).eval()
    stem_c = net.backbone.conv1.out_channels
    h, w = (d.height + 1) // 2, (d.width + 1) // 2          # after conv1 (stride 2)
    g = torch.Generator().manual_seed(0)
    fast, ref = StemMaxPool2d(3, 2, 1), nn.MaxPool2d(3, 2, 1)
    rows, ok = [], True
    for name, batch, grad in (("inference", d.test_batch_size, False), ("train fwd+bwd", 2 * d.batch_size, True)):
        x = torch.randn(batch, stem_c, h, w, generator=g).relu()
        gy = torch.randn(batch, stem_c, (h + 1) // 2, (w + 1) // 2, generator=g)

        def run(pool):
            if not grad:
                with torch.no_grad():
                    return pool(x), None
            xi = x.clone().requires_grad_()
            y = pool(xi)
            y.backward(gy)
            return y, xi.grad

        (ya, ga), (yb, gb) = run(ref), run(fast)
        same = torch.equal(ya, yb) and (ga is None or torch.equal(ga, gb))
        ok &= same
        t_ref, t_fast = median_ms(lambda: run(ref), args.repeats), median_ms(lambda: run(fast), args.repeats)
        rows.append((f"max-pool {name}, {tuple(x.shape)}", t_ref, t_fast, same))

    img = torch.randn(d.test_batch_size, 3, d.height, d.width, generator=g)
    with torch.no_grad():
        y_fast = net(img)["bn"]
        net.backbone.maxpool = ref
        y_ref = net(img)["bn"]
        t_ref = median_ms(lambda: net(img), max(3, args.repeats // 4))
        net.backbone.maxpool = fast
        t_fast = median_ms(lambda: net(img), max(3, args.repeats // 4))
    same = torch.equal(y_fast, y_ref)
    ok &= same
    rows.append((f"{cfg.model.arch} inference forward, {tuple(img.shape)}", t_ref, t_fast, same))

    print(f"preset {args.preset}, {args.threads} thread(s), torch {torch.__version__}; median ms")
    print(f"{'':58s} {'nn.MaxPool2d':>12s} {'StemMaxPool2d':>13s} {'speed-up':>8s}  identical")
    for label, a, b, same in rows:
        print(f"{label:58s} {a:12.2f} {b:13.2f} {a / b:7.2f}x  {same}")
    speedup = rows[0][1] / rows[0][2]
    verdict = ok and speedup >= 2.0
    print(f"target: inference max-pool >= 2x faster, identical results -> {'met' if verdict else 'MISSED'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
