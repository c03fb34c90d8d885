"""The whole pipeline in one call (the README's demo):

generate synthetic data → pretrain on domain A → adapt to domain B with each method → evaluate →
results table. An "oracle" row (supervised training on B's labels) bounds what adaptation can reach.

Every stage writes its own run directory under ``out_dir`` and is resumed when run again, so a demo
that was interrupted continues where it stopped.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Optional

from .config import Config, get_preset
from .data import load_dataset
from .engine import adapt, pretrain
from .engine.checkpoint import atomic_write_text
from .engine.rundir import preflight
from .memory_guard import check_run_memory

COLUMNS = ("mAP", "rank1", "rank5", "rank10")


def results_table(rows: list[dict]) -> str:
    """Markdown table of ``{"row": name, "mAP": .., "rank1": .., ...}`` (fractions shown as %)."""
    head = "| method | target mAP | R1 | R5 | R10 |\n|---|---:|---:|---:|---:|\n"
    body = "".join(f"| {r['row']} | " + " | ".join(f"{100 * r[c]:.1f}" for c in COLUMNS) + " |\n"
                   for r in rows)
    return head + body


def run_pipeline(cfg: Config, source_dir: str | Path, target_dir: str | Path, out_dir: str | Path,
                 methods: Iterable[str] = ("sbase",), oracle: bool = True, progress: bool = True,
                 verify: str = "none", override_identity: bool = False) -> dict:
    """Pretrain on ``source_dir``, adapt to ``target_dir`` with each method, return and write the table.

    Writes ``<out_dir>/results.md`` and ``results.json``. Every stage folder is checked before the first
    stage starts (reuse, run identity, lock, memory); ``verify`` is passed to
    :func:`~reid_uda_lib.data.load_dataset`.
    """
    out = Path(out_dir)
    methods = list(methods)
    source, target = load_dataset(source_dir, verify=verify), load_dataset(target_dir, verify=verify)
    stages = [(out / "pretrain", "pretrain", cfg, {"source": source, "target": target})]
    stages += [(out / m, "uda", cfg.override(**{"uda.method": m}), {"source": source, "target": target})
               for m in methods]
    if oracle:
        stages.append((out / "oracle", "pretrain", cfg, {"source": target, "target": target}))
    for folder, stage, stage_cfg, datasets in stages:
        preflight(folder, stage, stage_cfg, "auto", datasets, override_identity)
    check_run_memory(cfg, target)
    if progress:
        print(source.summary())
        print(target.summary())
    t0 = time.time()
    rows, timings = [], {}

    pre = pretrain(cfg, source, target, out / "pretrain", resume="auto", progress=progress,
                   override_identity=override_identity)
    timings["pretrain"] = time.time() - t0
    rows.append({"row": "direct transfer (source only)", **_metrics(pre["target"])})
    for name in methods:
        t = time.time()
        res = adapt(cfg.override(**{"uda.method": name}), source, target, pre["checkpoint"], out / name,
                    resume="auto", progress=progress, override_identity=override_identity)
        timings[name] = time.time() - t
        rows.append({"row": name, **_metrics(res["target"]), "cluster": res["cluster"]})
        for key, m in (res.get("extra_eval") or {}).items():      # e.g. DCDFA Table 2's "using b only"
            rows.append({"row": f"{name} ({key} only)", **_metrics(m)})
    if oracle:
        t = time.time()
        orc = pretrain(cfg, target, target, out / "oracle", resume="auto", progress=progress,
                       override_identity=override_identity)
        timings["oracle"] = time.time() - t
        rows.append({"row": "oracle (supervised on target)", **_metrics(orc["target"])})

    table = results_table(rows)
    summary = {"source": str(source_dir), "target": str(target_dir), "preset": cfg.preset, "rows": rows,
               "source_in_domain": pre.get("source"), "seconds": timings}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.md", table)
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2))
    summary["table"] = table
    return summary


def run_demo(preset: str = "cpu", data_dir: str | Path = "data/synthetic", out_dir: str | Path = "runs/demo",
             methods: Iterable[str] = ("sbase",), oracle: bool = True, overrides: Optional[dict] = None,
             progress: bool = True, verify: str = "none", override_identity: bool = False) -> dict:
    """Generate (or reuse) the synthetic A/B pair, then :func:`run_pipeline` A → B."""
    from .data.synthetic import generate_synthetic_pair

    cfg = get_preset(preset, **(overrides or {}))
    domains = generate_synthetic_pair(data_dir, seed=0, progress=progress)
    return run_pipeline(cfg, domains["A"], domains["B"], out_dir, methods=methods, oracle=oracle,
                        progress=progress, verify=verify, override_identity=override_identity)


def _metrics(m: Optional[dict]) -> dict:
    if not m:
        raise RuntimeError("a stage finished without a final target evaluation")
    return {c: m[c] for c in COLUMNS}
