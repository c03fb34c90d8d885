"""The GPU path, measured in one prepared command: what a Colab student's single GPU needs to know.

    make gpu-check        # = .venv/bin/python benchmarks/gpu_check.py --device cuda --out outputs/gpu_check
    .venv/bin/python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu_check   # CPU smoke run (tests)

Writes ``<out>/gpu_check.json`` and ``<out>/gpu_check.md`` (atomically, after every section, so a run stopped
from outside keeps what it measured) and prints the markdown. Sections:

1. the environment: device model and memory, torch / CUDA / cuDNN versions, the CPU, the commit;
2. training steps of the ``paper`` preset (ResNet-50 at 256x128, random weights) for sbase, dcdfa, lf2:
   median step time and peak memory at 32 + 32 and 64 + 64 images, amp off / bf16 / fp16, BatchNorm groups of
   32 against whole-batch BatchNorm (gpu_check_steps.py);
3. the same steps for the ``cpu`` preset's backbone, read from the preset at run time (gpu_check_steps.py);
4. clustering and evaluation at Market-1501 size on the device against the CPU (gpu_check_cluster.py);
5. exact resume: two steps, a checkpoint, a resumed step, compared bit for bit (gpu_check_resume.py);
6. from 2: the largest batch that fits 16 GB and 40 GB, and the papers' 80 x 400 steps (gpu_check_capacity.py).

Budget (``--budget-s``, counted from the process start): before each row or task the script estimates its
cost (from the rows measured so far, else a prior per mode) and starts it only if it fits in what is left
after the later sections' share; otherwise it records "skipped: not enough time left" in both outputs and goes
on. A row that runs out of GPU memory is a measurement ("does not fit"); any other error is one line in the
table. cuDNN runs as the training loop sets it (``cfg.deterministic``: deterministic kernels, no autotuning).
Exit status 0, or 1 when a row or section failed (the outputs are written either way).
"""
from __future__ import annotations

import time

_T0 = time.perf_counter()           # the budget counts from here, imports included

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

# the benchmarks' modules, then the checkout's package (a lent GPU machine runs the copied tree uninstalled)
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import torch  # noqa: E402

from gpu_check_capacity import capacity  # noqa: E402
from gpu_check_cluster import clustering  # noqa: E402
from gpu_check_report import render  # noqa: E402
from gpu_check_resume import resume  # noqa: E402
from gpu_check_steps import lab_steps, paper_steps  # noqa: E402

from reid_uda_lib.config import get_preset  # noqa: E402
from reid_uda_lib.experiments.report import git_commit, machine_info  # noqa: E402
from reid_uda_lib.runtime.checkpoint import atomic_write_text  # noqa: E402
from reid_uda_lib.utils import resolve_device  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """What each section measures; ``prior``: seconds assumed for a unit before anything was measured, and each
    section's share kept free for it while the earlier sections run."""
    quick: bool
    methods: tuple = ("sbase", "dcdfa", "lf2")
    batches: tuple = (32, 64)               # images per domain, section 2
    bn_groups: int = 0                      # images per BatchNorm group (0: the paper preset's, 32)
    lab_batch: int = 0                      # section 3's batch (0: the cpu preset's)
    warmup: int = 3
    steps: int = 5
    n_feat: int = 12936                     # Market-1501 train
    dim: int = 2048
    k: int = 700                            # LF²'s M on D->M
    queries: int = 3368                     # Market-1501 test
    gallery: int = 15913
    resume_batch: int = 32
    prior: dict = field(default_factory=lambda: {
        "paper_row": 20.0, "lab_row": 8.0, "resume_row": 15.0, "cluster_jaccard": 30.0, "cluster_dbscan": 40.0,
        "cluster_kmeans": 20.0, "cluster_evaluate": 10.0,
        "share_lab_steps": 40.0, "share_clustering": 100.0, "share_resume": 90.0})


FULL = Sizes(quick=False)
QUICK = Sizes(quick=True, batches=(8, 16), bn_groups=8, lab_batch=4, warmup=1, steps=2, n_feat=500, k=20,
              queries=100, gallery=400, resume_batch=8,
              prior={"paper_row": 2.0, "lab_row": 3.0, "resume_row": 2.0, "cluster_jaccard": 2.0,
                     "cluster_dbscan": 2.0, "cluster_kmeans": 2.0, "cluster_evaluate": 2.0,
                     "share_lab_steps": 10.0, "share_clustering": 8.0, "share_resume": 6.0})


class Budget:
    """Seconds left of the run's budget, counted from ``start`` (``time.perf_counter`` values)."""

    def __init__(self, seconds: float, start: float | None = None, clock: Callable[[], float] = time.perf_counter):
        self.seconds, self.clock = float(seconds), clock
        self.start = clock() if start is None else start

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def fits(self, estimate: float, reserve: float = 0.0) -> bool:
        """True when ``estimate`` seconds fit before the last ``reserve`` seconds (the later sections' share)."""
        return self.left() - reserve >= estimate

    def skip_reason(self, estimate: float, reserve: float = 0.0) -> str:
        return (f"skipped: not enough time left (needs ~{estimate:.0f} s, {max(0.0, self.left() - reserve):.0f} s "
                "left for it)")


@dataclass
class Context:
    device: torch.device
    sizes: Sizes
    budget: Budget
    log: Callable[[str], None]
    commit: str = ""
    results: dict = field(default_factory=dict)


def environment(ctx: Context, reserve: float) -> dict:
    """Section 1: the machine, the software and the commit."""
    dev, info = ctx.device, machine_info("cpu")
    f = {"device": str(dev)}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        f.update({"device name": props.name, "device memory GiB": f"{props.total_memory / 2**30:.2f}",
                  "compute capability": f"{props.major}.{props.minor}",
                  "bf16 supported": torch.cuda.is_bf16_supported(),
                  "TF32 (matmul / cuDNN)": f"{torch.backends.cuda.matmul.allow_tf32} / "
                                           f"{torch.backends.cudnn.allow_tf32}"})
    else:
        f["device name"] = f"CPU: {info['cpu']}"
    f.update({"CPU": f"{info['cpu']}, cpu family {info['cpu_family']}, {info['logical_cpus']} logical CPUs, "
                     f"{info['torch_threads']} torch threads, kernels {info['cpu_capability']}",
              "torch": torch.__version__, "CUDA (torch build)": torch.version.cuda,
              "cuDNN": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
              "cuDNN settings": f"deterministic {torch.backends.cudnn.deterministic}, benchmark "
                                f"{torch.backends.cudnn.benchmark} (the training loop's, cfg.deterministic)",
              "python": platform.python_version(), "commit": ctx.commit,
              "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")})
    return {"fields": f}


def capacity_section(ctx: Context, reserve: float) -> dict:
    """Section 6, from sections 2 and 4 (no measurement)."""
    steps = ctx.results["sections"].get("paper_steps", {})
    if steps.get("status") not in ("measured", "partial"):
        return {"status": "skipped", "reason": "no step of section 2 was measured"}
    return capacity(steps, ctx.results["sections"].get("clustering"))


SECTIONS = (("environment", "1. Environment", environment),
            ("paper_steps", "2. Training steps, `paper` preset", paper_steps),
            ("lab_steps", "3. Training steps, the `cpu` preset's backbone", lab_steps),
            ("clustering", "4. Clustering and evaluation, device against CPU", clustering),
            ("resume", "5. Exact resume", resume),
            ("capacity", "6. Largest batch per card, and the papers' schedule", capacity_section))


def section_status(sec: dict) -> tuple[str, str]:
    """``(status, reason)`` of a section from its rows: measured (every row ran), partial (some were skipped or
    failed: the first reason), skipped (none ran)."""
    rows = sec.get("rows")
    if rows is None:
        return sec.get("status", "measured"), sec.get("reason", "")
    ran = [r for r in rows if r.get("status") == "measured" or r.get("status") == "out of memory"
           or str(r.get("status", "")).startswith("out of memory")]
    not_ran = [r["status"] for r in rows if r not in ran]
    budget = [s for s in not_ran if "not enough time" in s]
    if not ran:
        return "skipped", (budget or not_ran or ["nothing to measure"])[0].removeprefix("skipped: ")
    if budget or any(s.startswith("failed") for s in not_ran):
        first = (budget or [s for s in not_ran if s.startswith("failed")])[0]
        return "partial", f"{len(not_ran)} of {len(rows)} rows not measured; first: {first}"
    return "measured", ""


def run(ctx: Context, out: Path, command: str) -> dict:
    """Every section in order, the outputs rewritten after each; returns the JSON record."""
    res = ctx.results
    res.update({"script": "benchmarks/gpu_check.py", "command": command, "mode": ("quick" if ctx.sizes.quick
                else "full") + f", {ctx.device.type}", "budget_s": ctx.budget.seconds, "elapsed_s": 0.0,
                "sizes": asdict(ctx.sizes), "skipped": [], "sections": {}})
    for i, (name, title, fn) in enumerate(SECTIONS):
        reserve = sum(ctx.sizes.prior.get(f"share_{n}", 0.0) for n, _, _ in SECTIONS[i + 1:])
        ctx.log(f"[{ctx.budget.elapsed():6.1f} s] {title}")
        t0 = time.perf_counter()
        try:
            sec = fn(ctx, reserve)
        except Exception as err:        # a bug or a broken environment: one line, then the next section
            sec = {"status": "failed", "reason": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
        status, reason = section_status(sec)
        sec.update(title=title, status=status, reason=reason, seconds=time.perf_counter() - t0)
        res["sections"][name] = sec
        if status != "measured":
            res["skipped"].append(f"{title} ({status})")
        res["elapsed_s"] = ctx.budget.elapsed()
        write(out, res)
    return res


def write(out: Path, res: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "gpu_check.json", json.dumps(res, indent=1, default=str) + "\n")
    atomic_write_text(out / "gpu_check.md", render(res))


def failed(res: dict) -> bool:
    """True when a section or a row failed (not: skipped, out of memory)."""
    for sec in res["sections"].values():
        if sec["status"] == "failed" or any(str(r.get("status", "")).startswith("failed")
                                            for r in sec.get("rows", [])):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu (with --quick: the smoke run)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (tiny arch at 64x32, 8 + 8 images, N = 500 "
                                                         "features, ...): the same sections in seconds")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="seconds for the whole run, counted from the start (default: 450 on cuda, 120 with "
                         "--quick, 3600 otherwise)")
    ap.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--commit", default=None,
                    help="the commit to record (default: git rev-parse of this checkout, 'unknown' without git)")
    args = ap.parse_args(argv)
    if args.budget_s is not None and args.budget_s <= 0:
        ap.error(f"--budget-s: expected a positive number of seconds; got {args.budget_s}")
    try:
        device = resolve_device(args.device)
    except RuntimeError as err:
        ap.error(f"--device: {err}")
    budget_s = args.budget_s or (450.0 if device.type == "cuda" else 120.0 if args.quick else 3600.0)
    # as the training loop runs: seed_everything(cfg.seed, cfg.deterministic)
    torch.backends.cudnn.deterministic = bool(get_preset("paper").deterministic)
    torch.backends.cudnn.benchmark = False
    # the budget counts from the process start when run as a script, from this call when called in-process
    ctx = Context(device=device, sizes=QUICK if args.quick else FULL,
                  budget=Budget(budget_s, start=_T0 if argv is None else None),
                  log=lambda s: print(s, flush=True), commit=args.commit or git_commit())
    command = "python benchmarks/gpu_check.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                    else sys.argv[1:]))
    res = run(ctx, Path(args.out), command)
    print(render(res), flush=True)
    return 1 if failed(res) else 0


if __name__ == "__main__":
    raise SystemExit(main())
