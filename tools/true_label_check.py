"""Train a UDA method with the target's **true** identities in place of its level-0 pseudo labels.

A diagnosis, not a method: when a method ends below its starting point, this tells a broken training path
(it also fails with perfect labels) from label noise (it learns with perfect labels). Everything but the
labels is the library's: the method's own clustering still runs (its other levels, e.g. LF²'s parts, keep
their pseudo labels, and the logged label quality then reads NMI 1.0 for level 0), the same loop, losses,
teacher and evaluation. The README's LF² section quotes it:

    python tools/true_label_check.py --method lf2_base --preset cpu --source data/val/A --target data/val/B \
           --init runs/val/seed0/pretrain/checkpoint.pt --set uda.eval_every=1 --out runs/true-labels

prints the target mAP after every evaluated epoch. The run folder is ``<out>/<method>_true``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reid_uda_lib.config import get_preset  # noqa: E402
from reid_uda_lib.data import load_dataset  # noqa: E402
from reid_uda_lib.train import adapt  # noqa: E402
from reid_uda_lib.methods import registry as method_registry  # noqa: E402
from reid_uda_lib.methods.oracle import true_identity_labels  # noqa: E402


def true_label_method(name: str):
    """``<name>_true``: method ``name`` with level 0 of its label sets replaced by the true identities
    (:func:`~reid_uda_lib.methods.oracle.true_identity_labels`); registered (:func:`~reid_uda_lib.methods.registry.register`) so that the config accepts it.
    ``sbase_true`` trains as the ``oracle`` method does (which skips the clustering it does not use)."""
    base = method_registry.get_method(name)

    class TrueLabels(type(base)):
        def pseudo_labels(self, ctx):
            sets = super().pseudo_labels(ctx)
            sets.labels[0] = true_identity_labels(ctx.items)
            return sets

    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
    return method_registry.register(TrueLabels(**{**fields, "name": f"{name}_true"}), replace=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", required=True, help="a UDA method name (sbase, lf2_base, lf2, ...)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--source", required=True, help="source dataset folder (Market layout)")
    ap.add_argument("--target", required=True, help="target dataset folder (its train pids are used as labels)")
    ap.add_argument("--init", required=True, help="the source-pretrained checkpoint to start from")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--out", required=True, help="parent folder of the run")
    args = ap.parse_args(argv)
    method = true_label_method(args.method)
    overrides = dict(s.split("=", 1) for s in args.set)
    cfg = get_preset(args.preset, **{**overrides, "uda.method": method.name})
    source, target = load_dataset(args.source), load_dataset(args.target)
    curve = []
    res = adapt(cfg, source, target, args.init, Path(args.out) / method.name, resume="auto", progress=False,
                on_epoch_end=lambda e, r: curve.append((e + 1, r["target"]["mAP"])) if r.get("target") else None)
    print(f"{method.name}: target mAP per evaluated epoch: "
          + ", ".join(f"{e}: {100 * m:.1f}" for e, m in curve)
          + f"; final {100 * res['target']['mAP']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
