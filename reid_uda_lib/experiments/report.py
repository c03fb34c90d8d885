"""The ladder's report: ``results.md`` and ``results.csv`` from the seed folders, with what made them.

Per row, over the seeds that have it: target mAP and rank-1/5/10 as mean ± sample std (ddof = 1), the
share of the direct-transfer → oracle mAP gap the row closes, ``(row − DT) / (oracle − DT)``, computed per
seed and then averaged (a seed whose oracle does not beat its direct transfer gives no share), the last
round's pseudo-label quality against the hidden target ids (NMI, ARI, clusters, outliers, as logged in the
stage's ``metrics.jsonl``) and the wall seconds spent training the row (mean over seeds; ``timings.json``).
The header names the preset, the command, the git commit, the machine (CPU model and ``cpu family``,
threads, GPU) and the torch version.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..config import Config
from ..runtime.checkpoint import atomic_write_text
from ..runtime.machine import kernel_change, kernel_signature, kernels_text
from ..methods.oracle import oracle_steps
from .tables import COLUMNS, QUALITY, _cluster, _values, markdown_table, paired_table
from .rows import PAIRED, label, methods_of, oracle_label
from .folders import seed_dir



def collect(out_dir: str | Path, seeds: Sequence[int], rows: Sequence[str]) -> list[dict]:
    """``[{"key", "extra", "label", "runs": [per-seed dict]}]`` in table order.

    A per-seed dict holds ``seed``, the metrics (fractions), ``gap`` (share of the DT → oracle gap, or None),
    ``cluster`` (last round's label quality, methods only) and ``seconds`` (None when not timed).
    """
    entries: dict[tuple, dict] = {}

    def add(key: str, extra: Optional[str], run: dict) -> None:
        e = entries.setdefault((key, extra), {"key": key, "extra": extra, "label": label(key, extra), "runs": []})
        e["runs"].append(run)

    for s in seeds:
        folder = seed_dir(out_dir, s)
        times = _json(folder / "timings.json") or {}
        summaries = {"direct": _json(folder / "pretrain" / "summary.json")}
        if "direct_bn" in rows:
            summaries["direct_bn"] = _json(folder / "direct_bn" / "summary.json")
        for m in methods_of(rows):
            summaries[m] = _json(folder / m / "summary.json")
        dt = _map(summaries["direct"])
        orc = _map(summaries.get("oracle"))
        for key in rows:
            summ = summaries.get(key)
            if not summ or not summ.get("target"):
                continue
            seconds = (times.get(key) or {}).get("seconds")
            evals = [(None, summ["target"])] + list((summ.get("extra_eval") or {}).items())
            for extra, metrics in evals:
                add(key, extra, {"seed": s, **{c: float(metrics[c]) for c in COLUMNS},
                                 "gap": _gap(float(metrics["mAP"]), dt, orc) if key not in ("direct", "oracle")
                                 else None,
                                 # the oracle's labels are the true ones: no label quality to show
                                 "cluster": summ.get("cluster") if extra is None and key != "oracle" else None,
                                 "seconds": seconds if extra is None else None,
                                 "kernels": summ.get("kernels")})
    order = {k: i for i, k in enumerate(rows)}
    return sorted(entries.values(), key=lambda e: (order[e["key"]], e["extra"] is not None, e["extra"] or ""))


def _gap(m: float, dt: Optional[float], orc: Optional[float]) -> Optional[float]:
    """(row − DT) / (oracle − DT); None when either reference is missing or the oracle is not above DT."""
    if dt is None or orc is None or orc <= dt:
        return None
    return (m - dt) / (orc - dt)


def _map(summary: Optional[dict]) -> Optional[float]:
    return float(summary["target"]["mAP"]) if summary and summary.get("target") else None


def _json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text()) if path.is_file() else None


def csv_text(entries: list[dict]) -> str:
    """One line per row: metrics and gap share in %, mean and sample std; quality and seconds as means."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [f"{c}_{s}" for c in COLUMNS for s in ("mean", "std")]
    w.writerow(["row", "method", "evaluation", "seeds", *cols, "gap_closed_pct_mean", "gap_closed_pct_std",
                "gap_closed_seeds", *[f"{q[0]}_mean" for q in QUALITY], "seconds_mean"])
    for e in entries:
        runs = e["runs"]
        vals = []
        for c in COLUMNS:
            v = np.asarray([100 * r[c] for r in runs])
            vals += [f"{v.mean():.3f}", f"{v.std(ddof=1):.3f}" if len(v) > 1 else ""]
        gaps = 100 * np.asarray(_values(runs, lambda r: r["gap"]))
        vals += [f"{gaps.mean():.2f}" if gaps.size else "", f"{gaps.std(ddof=1):.2f}" if gaps.size > 1 else "",
                 str(gaps.size)]
        for key, *_ in QUALITY:
            q = _values(runs, _cluster(key))
            vals.append(f"{np.mean(q):.4f}" if q else "")
        secs = _values(runs, lambda r: r["seconds"])
        vals.append(f"{np.mean(secs):.1f}" if secs else "")
        w.writerow([e["label"], e["key"], e["extra"] or "main", len(runs), *vals])
    return buf.getvalue()


def machine_info(device: str = "auto") -> dict:
    """CPU model and ``cpu family`` (/proc/cpuinfo), logical CPUs, torch threads and version, GPU name, the
    instruction set of torch's own CPU kernels (``cpu_capability``) and the variables that capped it
    (``isa_limits``, ``runtime.machine.ISA_LIMIT_VARS``): the kernels decide the numbers as much as the seed does."""
    import torch
    own = kernel_signature("cpu")
    info = {"cpu": platform.processor() or platform.machine(), "cpu_family": None,
            "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "torch": torch.__version__, "gpu": None,
            "cpu_capability": own["cpu_capability"], "isa_limits": own["isa_limits"]}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                info["cpu"] = value.strip()
            elif key.strip() == "cpu family" and info["cpu_family"] is None:
                info["cpu_family"] = value.strip()
    except OSError:
        pass
    if device != "cpu" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def kernels_note(device: str = "auto") -> str:
    """The line ``make demo`` prints under its table: which CPU kernels made these figures."""
    return (f"CPU kernels: {kernels_text(kernel_signature('cpu'))}. The same seed gives other figures with other "
            "kernels (another CPU type; `make demo CPU_ISA=avx2` runs an AVX2-only CPU's): README, "
            "\"Numbers across CPU types\".")


def git_commit() -> str:
    """The commit of the checkout the package runs from (``+ uncommitted changes`` when dirty), or "unknown"."""
    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def foreign_kernels(entries: Sequence[dict], device: str = "auto") -> list[str]:
    """``["seed0/sbase (CPU kernels AVX512 -> AVX2)", ...]``: the stages of the table whose ``summary.json``
    says they were trained with other kernels than this process has (``runtime.machine.kernel_change``, thread
    counts aside), e.g. folders made on another machine and reused. Stages older than the record are not listed."""
    from ..utils import resolve_device
    now = kernel_signature(resolve_device(device))
    out = []
    for e in entries:
        if e["extra"] is not None:
            continue
        for r in e["runs"]:
            change = kernel_change(r.get("kernels"), now, threads=False)
            if change:
                out.append(f"seed{r['seed']}/{'pretrain' if e['key'] == 'direct' else e['key']} ({change})")
    return out


def header(cfg: Config, seeds: Sequence[int], command: Optional[str], jobs: int, wall_seconds: Optional[float],
           datasets=None, n_target_train: int = 0, commit: Optional[str] = None,
           foreign: Sequence[str] = ()) -> str:
    m = machine_info(cfg.device)
    cpu = f"{m['cpu']}" + (f" (`cpu family` {m['cpu_family']})" if m["cpu_family"] else "")
    threads = ("1 thread per process (a pretraining alone: {jobs})".format(jobs=jobs) if jobs > 1
               else f"{m['torch_threads']} torch threads")
    pair = f"{datasets[0].name} → {datasets[1].name}" if datasets else "source → target"
    lines = [f"# Ablation ladder: {pair}, `{cfg.preset}` preset", "",
             f"- command: `{command or '(Python API: reid_uda_lib.experiments.run_ladder)'}`",
             f"- preset: `{cfg.preset}` (each stage's full config: `seed<S>/<row>/config.json`); seeds: "
             f"{', '.join(map(str, seeds))}; "
             + (f"up to {jobs} processes at once (each seed's pretraining, then one per row)" if jobs > 1
                else "one process"),
             f"- commit: {commit or git_commit()}" + (" (when the call started)" if commit else ""),
             f"- machine: {cpu}, {m['logical_cpus']} logical CPUs, {threads}; GPU: {m['gpu'] or 'none'}; "
             f"torch {m['torch']}; CPU kernels: {kernels_text(m)}",
             *([f"- **trained with other kernels than these** (reused folders): {', '.join(foreign)}"]
               if foreign else []),
             f"- written {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
             + (f", this call took {wall_seconds:.0f} s wall" if wall_seconds is not None else ""), "",
             f"Oracle: SBase's loop (same losses, Mean-Net, memory bank, learning rate and epochs) with the target's "
             f"true identities in place of pseudo labels, from the same source-pretrained checkpoint as every UDA "
             f"row, {oracle_steps(cfg, n_target_train) if n_target_train else '?'} steps (`uda.epochs` × one pass "
             "over the target's training images, or × `uda.iters_per_epoch` when set; methods/oracle.py). "
             "Metrics in % on the target's test split at the last epoch, mean ± sample std "
             "over the seeds. Gap closed: (row − DT) / (oracle − DT) per seed, then mean ± std. Pseudo-label "
             "quality: the last round's clusters against the hidden ids (mean over seeds). A seed whose oracle "
             "does not beat its direct transfer gives no gap share (\"k of n seeds\"). s/row: wall seconds "
             "spent training the row (mean over seeds; direct transfer = the pretraining).", ""]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, cfg: Config, seeds: Sequence[int], rows: Sequence[str],
                 n_target_train: int = 0, command: Optional[str] = None, jobs: int = 1,
                 wall_seconds: Optional[float] = None, datasets=None, commit: Optional[str] = None) -> dict:
    """Write ``<out>/results.md`` and ``<out>/results.csv``; return ``{"rows", "table", "markdown", "out"}``.
    ``commit``: the code's commit as read when the training started (default: read now)."""
    out = Path(out_dir)
    entries = collect(out, seeds, rows)
    steps = oracle_steps(cfg, n_target_train) if n_target_train else None
    for e in entries:
        if e["key"] == "oracle" and e["extra"] is None:
            e["label"] = oracle_label(steps)
    table = markdown_table(entries)
    md = header(cfg, seeds, command, jobs, wall_seconds, datasets, n_target_train, commit,
                foreign=foreign_kernels(entries, cfg.device)) + "\n" + table
    paired = paired_table(entries, PAIRED)
    if paired:
        md += ("\nThe papers' claims, paired by seed (each difference from the same seed's pretrained model; "
               "`per seed` in the order of the seeds above):\n\n" + paired)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.md", md)
    atomic_write_text(out / "results.csv", csv_text(entries))
    return {"rows": entries, "table": table, "markdown": md, "out": str(out)}
