"""Step-time cost of BatchNorm groups (``model.bn_samples``), in one process, as a ratio to whole-batch BatchNorm.

Two copies of the loop's state (same seed, :func:`bench_step.build_parts`), one with every BatchNorm layer of
the backbone, the BNNeck and the method's modules normalising groups of ``--bn-samples`` images (default: a
quarter of the mixed batch, the papers' 4-GPU share) and the mixed batch in the source/target group layout,
one with plain BatchNorm. Both run :func:`reid_uda_lib.train.uda_step.train_step` on the same batches in
interleaved rounds (whole, groups, whole, groups, ...), so machine load hits them alike; the medians and
their ratio are printed, and on CUDA the peak memory of a step of each. Target: a few percent (ratio <= 1.05).

    .venv/bin/python benchmarks/bench_bn_groups.py                         # cpu preset shapes: resnet18 128x64, 32+32
    .venv/bin/python benchmarks/bench_bn_groups.py --methods sbase,lf2      # several methods
    .venv/bin/python benchmarks/bench_bn_groups.py --device cuda --arch resnet50 --height 256 --width 128 --batch 64
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import build_parts, make_batch  # noqa: E402

from reid_uda_lib.config import get_preset  # noqa: E402
from reid_uda_lib.runtime.distributed import setup_bn_groups  # noqa: E402
from reid_uda_lib.methods.registry import get_method  # noqa: E402
from reid_uda_lib.train.uda_step import train_step  # noqa: E402
from reid_uda_lib.models.bn_groups import GhostBatchNorm1d, GhostBatchNorm2d  # noqa: E402
from reid_uda_lib.utils import resolve_device  # noqa: E402

GOAL = 1.05


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="sbase")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32, help="images per domain")
    ap.add_argument("--bn-samples", type=int, default=0,
                    help="images per BatchNorm group (default: a quarter of one forward's images)")
    ap.add_argument("--rounds", type=int, default=7, help="timed steps per variant (after 2 warm-up steps)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    cfg = get_preset("paper", **{"model.arch": args.arch, "model.weights": None, "data.height": args.height,
                                 "data.width": args.width, "data.batch_size": args.batch, "model.bn_samples": 0})
    n_src_ids, n_target, n_clusters = 751, 12936, 500
    xs, ys, _ = make_batch(args.batch, 4, cfg, device, n_src_ids, n_target, 1)
    xt, _, _ = make_batch(args.batch, 4, cfg, device, n_clusters, n_target, 2)
    idx = torch.arange(args.batch, device=device)
    print(f"device {device}, {args.arch} at {args.height}x{args.width}, {args.batch} images per domain, "
          f"{torch.get_num_threads()} threads, median of {args.rounds} interleaved steps")
    for name in args.methods.split(","):
        mixed = get_method(name).source_batches
        images = 2 * args.batch if mixed else args.batch
        samples = args.bn_samples or images // 4
        whole = build_parts(name, cfg, device, n_src_ids, n_target, n_clusters)
        groups = build_parts(name, cfg, device, n_src_ids, n_target, n_clusters)
        groups.bn_samples = setup_bn_groups(samples, images, groups.model, groups.extra,
                                            n_source=args.batch if mixed else 0)
        n_ghost = sum(isinstance(m, (GhostBatchNorm1d, GhostBatchNorm2d))
                      for part in (groups.model, groups.extra) for m in part.modules())
        times: dict[str, list[float]] = {"whole": [], "groups": []}
        peak: dict[str, int] = {"whole": 0, "groups": 0}
        for step in range(2 + args.rounds):
            for label, p in (("whole", whole), ("groups", groups)):
                y0 = p.labels[0, idx]
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                    torch.cuda.reset_peak_memory_stats(device)
                t0 = time.perf_counter()
                if mixed:
                    train_step(p, xs, ys, xt, y0, idx, step=step)
                else:
                    train_step(p, None, None, xt, y0, idx, step=step)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                    peak[label] = max(peak[label], torch.cuda.max_memory_allocated(device))
                if step >= 2:
                    times[label].append(time.perf_counter() - t0)
        w, g = statistics.median(times["whole"]), statistics.median(times["groups"])
        mem = (f", peak memory {peak['whole'] / 2**30:.2f} vs {peak['groups'] / 2**30:.2f} GiB"
               if device.type == "cuda" else "")
        print(f"  {name}: {images} images per forward, bn_samples {samples} ({images // samples} groups, "
              f"{n_ghost} BatchNorm layers): whole batch {w * 1000:.1f} ms, groups {g * 1000:.1f} ms, "
              f"ratio {g / w:.3f} (target <= {GOAL}: {'met' if g / w <= GOAL else 'NOT met'}){mem}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
