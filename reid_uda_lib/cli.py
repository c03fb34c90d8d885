"""Command line: ``python -m reid_uda_lib {demo,ladder,pretrain,train,evaluate,synthetic,summary,table,check}``.

Configuration is data: pick a preset and change any field with ``--set section.field=value`` (the same
dotted names papermill parameters and Python use), e.g. ``--set uda.epochs=3 --set model.arch=resnet50``.

Multi-GPU: ``torchrun --nproc_per_node=G -m reid_uda_lib pretrain|train ...`` (nccl on GPUs, gloo on CPU);
rank 0 writes and prints (README, "Multi-GPU").

Everything that can be checked is checked before the first step and the first write: the whole config, the
device, every image the run will read (``--verify``), what the run's batches and clustering need of each
dataset (the verdict ``check --preset`` prints), the checkpoint a stage starts from, every stage folder (reuse,
run identity, lock) and the memory a setting needs.
The library's own errors print one ``error: ...`` line and exit with code 2 (``--debug``: the traceback);
Ctrl-C prints one line saying where the run can be resumed from and exits with 130; warnings are one
``warning: ...`` line each.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from .config import PRESETS, get_preset
from .config import ConfigError
from .methods.validate import validate_config


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--set expects section.field=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS), help="configuration preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set uda.epochs=3 (repeatable)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verify", default="error", choices=("error", "skip", "none"),
                   help="decode every image before the first step: error (default) stops at a bad file, "
                        "skip drops bad files with a warning, none trusts the files")
    p.add_argument("--override-identity", action="store_true",
                   help="continue a run folder whose checkpoint was made with other settings or data")


def _method_names() -> list[str]:
    from .methods.registry import METHODS
    return list(METHODS)


def _row_names() -> list[str]:
    from .experiments.rows import all_rows
    return list(all_rows())


def _cfg_overrides(args) -> dict:
    over = _overrides(args.overrides)
    if args.device:
        over["device"] = args.device
    return over


def _cfg(args):
    """The command's config, validated once where the command starts (its device too)."""
    from .train.checks import check_device
    cfg = validate_config(get_preset(args.preset, **_cfg_overrides(args)))
    check_device(cfg.device)
    return cfg


def _dataset(spec: str, root: str | None, verify: str = "none"):
    from .data import load_dataset
    return load_dataset(spec, root=root, verify=verify)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m reid_uda_lib", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error (any position)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="synthetic data → pretrain on A → adapt to B → results table "
                                    "(the ladder's headline rows for one seed)")
    _common(p)
    p.add_argument("--data", default="data/synthetic", help="where the synthetic pair is generated/reused")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--methods", default="sbase,dcdfa,lf2",
                   help=f"comma-separated, from: {', '.join(_method_names())}")
    p.add_argument("--no-oracle", action="store_true", help="skip the oracle row (SBase with the target's true identities)")
    p.add_argument("--jobs", type=int, default=None,
                   help="processes at once after the pretraining, one per row (default: 2 where the machine "
                        "has 2 or more CPUs; 1: every row in this process, with progress bars)")

    p = sub.add_parser("ladder", help="every ablation row for several seeds → results.md / results.csv")
    _common(p)
    p.add_argument("--source", default=None, help="source dataset folder or name (default: synthetic A)")
    p.add_argument("--target", default=None, help="target dataset folder or name (default: synthetic B)")
    p.add_argument("--data-root", default=None, help="root folder for dataset names (market1501, ...)")
    p.add_argument("--synthetic", default="data/synthetic", metavar="DIR",
                   help="without --source/--target: generate (or reuse) the default synthetic pair here")
    p.add_argument("--gap", type=float, default=1.0,
                   help="without --source/--target: the synthetic pair's style gap (1: the default pair; 2: the "
                        "harder pair, docs/results.md); give each gap its own --synthetic folder")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--rows", default=None, help="comma-separated rows (default: all but lf2_base), from: "
                                                + ", ".join(_row_names()))
    p.add_argument("--jobs", type=int, default=1,
                   help="processes at once: each seed's pretraining, then one per row, one thread each "
                        "(OMP_NUM_THREADS=1)")
    p.add_argument("--out", required=True, help="ladder folder: seed<S>/<row>/, results.md, results.csv")
    p.add_argument("--no-report", action="store_true", help="train only; write no results.md/csv")

    for name, hlp in (("pretrain", "supervised pretraining on the source domain"),
                      ("train", "UDA fine-tuning on the target domain (pretrains first unless --init)")):
        p = sub.add_parser(name, help=hlp)
        _common(p)
        p.add_argument("--source", required=True, help="dataset folder (Market layout) or name")
        p.add_argument("--target", required=(name == "train"), default=None, help="dataset folder or name")
        p.add_argument("--data-root", default=None, help="root folder for dataset names (market1501, ...)")
        p.add_argument("--out", required=True, help="run directory")
        p.add_argument("--resume", nargs="?", const=True, default=False, choices=["auto"], metavar="auto",
                       help="continue the run in --out from its checkpoint (an error when there is none: a typo in "
                            "--out); '--resume auto': continue it if there is one, else start fresh")
        if name == "train":
            p.add_argument("--method", default="sbase", help=" | ".join(_method_names()))
            p.add_argument("--init", default=None, help="pretrained checkpoint (default: pretrain into OUT/pretrain)")

    p = sub.add_parser("evaluate", help="mAP/CMC of a checkpoint on a dataset's query/gallery")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", required=True, help="dataset folder or name")
    p.add_argument("--data-root", default=None)
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--verify", default="error", choices=("error", "skip", "none"),
                   help="decode the query/gallery images first (default: error at a bad file)")

    p = sub.add_parser("synthetic", add_help=False,
                       help="generate the synthetic two-domain dataset (options: synthetic --help)")

    p = sub.add_parser("table", help="mean ± std over seeds from the run folders of several seeds")
    p.add_argument("runs", nargs="+", help="run folders (the --out of demo/train), one per seed")
    p.add_argument("--methods", default=None, help="comma-separated rows to show, in order (default: all)")

    p = sub.add_parser("summary", help="print the statistics of a dataset folder")
    p.add_argument("dataset")
    p.add_argument("--data-root", default=None)

    p = sub.add_parser("check", help="check a dataset folder: layout, counts, problems, the roles it can serve "
                                     "in a run of --preset; exit code 0 = usable in one of the roles asked")
    p.add_argument("dataset", help="dataset folder (any layout) or name")
    p.add_argument("--data-root", default=None)
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS),
                   help="judge the roles for this preset's batches, clustering and evaluation (default: cpu, the "
                        "default of the other commands)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field as in train, e.g. --set data.batch_size=16 (repeatable)")
    p.add_argument("--method", default=None, help="judge the target for this method's clustering (default: the "
                                                  "preset's uda.method)")
    p.add_argument("--role", action="append", choices=("source", "target", "evaluation"), default=None,
                   help="the role the folder is meant for (repeatable; default: source and target); exit code 1 "
                        "when it can serve in none of them")
    p.add_argument("--cam-pattern", default=None,
                   help=r"folder-per-person layout: regex with a named group 'cam', e.g. 'cam(?P<cam>\d+)'")
    p.add_argument("--no-images", action="store_true", help="do not open the images (faster)")
    p.add_argument("--min-side", type=int, default=16, help="report images smaller than this (pixels)")
    return ap


def _command(argv: list[str]) -> str:
    import shlex
    return "python -m reid_uda_lib " + shlex.join(argv)


def _ladder(args, argv: list[str]) -> int:
    """The ``ladder`` subcommand: the rows × seeds, then the table (also in OUT/results.md)."""
    from .experiments import LadderError, parse_rows, parse_seeds, run_ladder
    from .experiments.rows import methods_of
    cfg = _cfg(args)                                  # config, rows and seeds checked before any data work
    rows, seeds = parse_rows(args.rows), parse_seeds(args.seeds)
    for r in methods_of(rows):
        validate_config(cfg.override(**{"uda.method": r}))
    if (args.source is None) != (args.target is None):
        raise ValueError("give both --source and --target, or neither (then the default synthetic pair is used)")
    if args.source is not None and args.gap != 1.0:
        raise ValueError("--gap sets the generated synthetic pair's style gap: it cannot go with --source/--target")
    if args.source is None:
        from .data.synthetic import generate_synthetic_pair
        domains = generate_synthetic_pair(args.synthetic, seed=0, gap=args.gap, progress=not args.quiet,
                                          jobs=2 if (os.cpu_count() or 1) >= 2 else 1)
        source, target = domains["A"], domains["B"]
    else:
        # a name (market1501, ...) is looked up under --data-root once; the seeds then read its folder
        source = _dataset(args.source, args.data_root).root
        target = _dataset(args.target, args.data_root).root
    try:
        res = run_ladder(cfg, source, target, args.out, seeds=seeds, rows=rows, jobs=args.jobs,
                         progress=not args.quiet, verify=args.verify, override_identity=args.override_identity,
                         command=_command(argv), report=not args.no_report)
    except LadderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if res:
        print(f"\n{res['markdown']}\nAlso in {Path(args.out) / 'results.md'} and results.csv")
    return 0


def _uda_resume(out: Path, args) -> bool | str:
    """``--resume`` of ``train``: the UDA stage's. Plain ``--resume`` needs a checkpoint to continue; when only
    the pretraining has one (cut before the first UDA epoch), the UDA stage starts fresh from it. An ``--init``
    that does not exist is refused here unless the UDA stage resumes from its own checkpoint."""
    has_uda = (out / args.method / "checkpoint.pt").is_file()
    if args.init is not None and not Path(args.init).exists() and not (args.resume and has_uda):
        raise FileNotFoundError(f"--init {args.init}: checkpoint file not found")
    if args.resume is True and not has_uda and args.init is None and (out / "pretrain" / "checkpoint.pt").is_file():
        return "auto"
    return args.resume


def _library_errors() -> tuple[type[BaseException], ...]:
    """The errors the library raises for bad input or state; anything else is a bug and keeps its traceback."""
    from .runtime.lock import RunLockedError
    from .ram import MemoryGuardError
    return (ValueError, KeyError, OSError, FloatingPointError, RunLockedError, MemoryGuardError)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the library's own errors become one ``error: ...`` line and exit code 2, Ctrl-C one
    line saying where the run can be resumed from and exit code 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    formatwarning = warnings.formatwarning
    if not debug:
        warnings.formatwarning = _one_line_warning
    try:
        return _main(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print(_interrupted(argv), file=sys.stderr, flush=True)
        return 130
    except _library_errors() as err:
        if debug:
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning


def _one_line(err: BaseException) -> str:
    """The error's message on one line. A layout error's expected tree (a diagram of several lines) is left to
    ``check``, which prints it in full; any other message's further lines to ``--debug``."""
    from .data.layouts import DatasetLayoutError
    msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    lines = [ln for ln in str(msg).strip().splitlines() if ln.strip()] or [type(err).__name__]
    if len(lines) == 1:
        return lines[0]
    where = ("python -m reid_uda_lib check on the folder prints it" if isinstance(err, DatasetLayoutError)
             else "--debug shows the rest")
    return f"{lines[0].rstrip().rstrip(':')} ({where})"


def _interrupted(argv: list[str]) -> str:
    """The one line said on Ctrl-C: which checkpoint the run can be resumed from, and with what command."""
    try:
        args = build_parser().parse_args(argv)
    except (SystemExit, Exception):
        return "interrupted"
    if args.command in ("ladder", "demo"):
        return (f"interrupted: run the same command again to continue; finished stages in {args.out} are reused and "
                "the interrupted ones continue from their last checkpoint")
    if args.command not in ("pretrain", "train"):
        return "interrupted"
    from .runtime.rundir import interrupted_line
    out = Path(args.out)
    if args.command == "pretrain":
        return interrupted_line(out)
    return interrupted_line(out / args.method, out / "pretrain" if args.init is None else None)


def _main(argv: list[str]) -> int:
    if argv[:1] == ["synthetic"]:  # the generator has its own command line: hand it every option
        from .data.synthetic import main as synthetic_main
        return synthetic_main(argv[1:])
    args = build_parser().parse_args(argv)
    cmd = args.command
    if cmd == "demo":
        from .experiments.demo import run_demo
        methods = [m for m in args.methods.split(",") if m]
        cfg = _cfg(args)
        for m in methods:                             # every row's config checked before the data is generated
            validate_config(cfg.override(**{"uda.method": m}))
        res = run_demo(args.preset, args.data, args.out, methods=methods, oracle=not args.no_oracle,
                       overrides=_cfg_overrides(args), progress=not args.quiet, verify=args.verify,
                       override_identity=args.override_identity, command=_command(argv), jobs=args.jobs)
        print(f"\nResults ({args.preset} preset, synthetic A → B), also in {Path(args.out) / 'results.md'}:\n")
        print(res["table"])
        from .experiments.report import kernels_note
        print(kernels_note(cfg.device))
        return 0
    if cmd == "ladder":
        return _ladder(args, argv)
    if cmd in ("pretrain", "train"):
        from .train import adapt, pretrain
        from .train.checks import preflight as check_stage
        from .runtime.distributed import init_distributed, on_rank0

        def preflight(*a, **k):      # under torchrun rank 0 checks (the others' check would race its lock)
            on_rank0(lambda: check_stage(*a, **k))
        cfg = _cfg(args)
        init_distributed(cfg.device)                  # torchrun --nproc_per_node=G -m reid_uda_lib ...
        uda_cfg = validate_config(cfg.override(**{"uda.method": args.method})) if cmd == "train" else cfg
        out, resume = Path(args.out), args.resume
        if cmd == "train":
            resume = _uda_resume(out, args)
        source = _dataset(args.source, args.data_root, args.verify)
        target = _dataset(args.target, args.data_root, args.verify) if args.target else None
        data = {"source": source, "target": target}
        ident = args.override_identity
        # every stage folder is checked before the first one starts
        if cmd == "pretrain":
            preflight(out, "pretrain", cfg, resume, data, ident)
            res = pretrain(cfg, source, target, out, resume=resume, progress=not args.quiet,
                           override_identity=ident)
        else:
            init = args.init
            # the UDA stage first: what its data must hold (the target's size, the init checkpoint) is refused
            # before a reused pretraining's identity is compared
            preflight(out / args.method, "uda", uda_cfg, resume, data, ident,
                      init=init if init is not None else out / "pretrain" / "checkpoint.pt")
            if init is None:
                preflight(out / "pretrain", "pretrain", cfg, "auto", data, ident)
            if init is None:
                init = pretrain(cfg, source, target, out / "pretrain", resume="auto", progress=not args.quiet,
                                override_identity=ident)["checkpoint"]
            res = adapt(uda_cfg, source, target, init, out / args.method, resume=resume,
                        progress=not args.quiet, override_identity=ident)
        from .runtime.distributed import is_main
        if is_main():                                 # under torchrun: rank 0 reports
            print(json.dumps(res, indent=2))
        return 0
    if cmd == "evaluate":
        from .train.checks import check_device
        from .train.evaluate_checkpoint import evaluate_checkpoint
        check_device(args.device)
        res = evaluate_checkpoint(args.checkpoint, _dataset(args.dataset, args.data_root, args.verify),
                                  rerank=args.rerank, device=args.device, progress=not args.quiet)
        print(json.dumps(res, indent=2))
        return 0
    if cmd == "table":
        from .experiments.seeds import collect_rows
        from .experiments.tables import probes_table, seeds_table
        rows = collect_rows(args.runs, args.methods.split(",") if args.methods else None)
        print(seeds_table(rows))
        probes = probes_table(rows)
        if probes:
            print("Disentanglement probes at the last epoch (%, held-out test images of both domains):\n")
            print(probes)
        return 0
    if cmd == "summary":
        print(_dataset(args.dataset, args.data_root).summary())
        return 0
    if cmd == "check":
        from .data import check_dataset
        from .data.check import DEFAULT_ROLES
        from .train.checks import role_needs
        over = _overrides(args.overrides)
        if args.method:
            over["uda.method"] = args.method
        cfg = validate_config(get_preset(args.preset, **over))       # the run the folder is judged for
        report = check_dataset(args.dataset, root=args.data_root, cam_pattern=args.cam_pattern,
                               images=not args.no_images, min_side=args.min_side, needs=role_needs(cfg),
                               roles=tuple(dict.fromkeys(args.role or DEFAULT_ROLES)))
        print(report.text())
        return 0 if report.usable else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
