"""Where one UDA row's time goes: wall seconds per part of ``adapt``, in one process, and the row's final mAP.

Times the loop's own functions by wrapping them (nothing else changes, so the mAP printed is the row's):
training steps (``train_step``), target BatchNorm statistics (``refresh_bn_stats``), the pseudo-label hook
(features + clustering), the source prototypes, the evaluations and the checkpoint writes; ``total`` is the
whole ``adapt`` call. The final mAP is printed in full precision, so two code versions can be compared for
identical numbers (run each from its own checkout with ``PYTHONPATH=<checkout>``; side by side, one thread
each, so the machine's speed of the hour hits both alike).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/profile_row.py --init runs/ladder-cpu6/seed0/pretrain/checkpoint.pt
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/profile_row.py --method dcdfa --init ... --set uda.epochs=2
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="sbase")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--init", required=True, help="the pretraining checkpoint the row starts from")
    ap.add_argument("--source", default="data/synthetic/A")
    ap.add_argument("--target", default="data/synthetic/B")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = ap.parse_args(argv)

    import reid_uda_lib.core.bn_stats as bn_stats
    import reid_uda_lib.runtime.rundir as rundir
    import reid_uda_lib.train.uda as uda
    from reid_uda_lib.config import get_preset
    from reid_uda_lib.data import load_dataset
    from reid_uda_lib.methods.registry import get_method

    seconds: dict[str, float] = collections.defaultdict(float)

    def timed(owner, name: str, key: str) -> None:
        f = getattr(owner, name)

        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                seconds[key] += time.perf_counter() - t0
        setattr(owner, name, wrapper)

    torch.set_num_threads(args.threads)
    over = dict(kv.split("=", 1) for kv in args.set)
    cfg = get_preset(args.preset, **{"uda.method": args.method, "seed": args.seed, **over})
    timed(bn_stats, "refresh_bn_stats", "BatchNorm statistics")
    timed(uda, "train_step", "training steps")
    timed(uda, "evaluate_model", "evaluation")
    timed(uda, "extract_features", "source prototypes")
    timed(rundir.RunDir, "save", "checkpoints")
    timed(type(get_method(args.method)), "pseudo_labels", "pseudo labels (features + clustering)")
    source, target = load_dataset(Path(args.source)), load_dataset(Path(args.target))
    out = Path(tempfile.mkdtemp(prefix="profile_row-"))
    try:
        t0 = time.perf_counter()
        res = uda.adapt(cfg, source, target, args.init, out / args.method, progress=False)
        seconds["total"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"{args.method}, preset {args.preset}, seed {args.seed}, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}")
    for key, value in seconds.items():
        print(f"  {key:40s} {value:7.1f} s")
    print(f"final target mAP {res['target']['mAP']!r}")
    print(json.dumps({k: round(v, 1) for k, v in seconds.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
