"""The whole pipeline in one call (the README's demo):

generate synthetic data → pretrain on domain A → adapt to domain B with each method → evaluate →
results table. An "oracle" row (SBase's loop with B's true identities in place of pseudo labels, from the same
pretrained model) bounds what adaptation can reach. The demo is the ablation ladder's headline subset
(:mod:`reid_uda_lib.ladder`) for one seed.

Every stage writes its own run directory under ``out_dir`` and is resumed when run again, so a demo
that was interrupted continues where it stopped.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional

from .config import Config, get_preset
from .data import load_dataset
from .engine.checkpoint import atomic_write_text

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

    One seed (``cfg.seed``) in ``out_dir`` itself (``out_dir/pretrain``, ``out_dir/<method>``,
    ``out_dir/oracle``): :func:`reid_uda_lib.ladder.run_seed`, so the oracle starts from the pretrained
    model and runs SBase's loop with the true target identities (engine/oracle.py). Writes ``<out_dir>/results.md`` and
    ``results.json``. Every stage folder is checked before the first stage starts (reuse, run identity, lock,
    memory); ``verify`` is passed to :func:`~reid_uda_lib.data.load_dataset`.
    """
    from .engine.oracle import oracle_steps
    from .ladder import parse_rows, run_seed
    from .ladder.rows import oracle_label

    out = Path(out_dir)
    methods = list(methods)
    rows_asked = parse_rows(["direct", *(["direct_bn"] if cfg.uda.target_bn else []), *methods]
                            + (["oracle"] if oracle else []))
    source, target = load_dataset(source_dir, verify=verify), load_dataset(target_dir, verify=verify)
    if progress:
        print(source.summary())
        print(target.summary())
    res = run_seed(cfg, source, target, out, rows_asked, progress=progress, override_identity=override_identity)
    pre = res["direct"]
    rows = [{"row": "direct transfer (source only)", **_metrics(pre["target"])}]
    if "direct_bn" in res:
        rows.append({"row": "direct transfer + target BN statistics", **_metrics(res["direct_bn"]["target"])})
    for name in methods:
        r = res[name]
        rows.append({"row": name, **_metrics(r["target"]), "cluster": r["cluster"]})
        for key, m in (r.get("extra_eval") or {}).items():      # e.g. DCDFA Table 2's "using b only"
            rows.append({"row": f"{name} ({key} only)", **_metrics(m)})
    if oracle:
        rows.append({"row": oracle_label(oracle_steps(cfg, len(target.train))), **_metrics(res["oracle"]["target"])})
    timings = json.loads((out / "timings.json").read_text()) if (out / "timings.json").is_file() else {}
    table = results_table(rows)
    summary = {"source": str(source_dir), "target": str(target_dir), "preset": cfg.preset, "rows": rows,
               "source_in_domain": pre.get("source"),
               "seconds": {k: v.get("seconds") for k, v in timings.items()}}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.md", table)
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2))
    summary["table"] = table
    return summary


#: The methods of ``make demo`` (with direct transfer and the oracle): the ladder's headline rows.
DEMO_METHODS = ("sbase", "dcdfa", "lf2")


def run_demo(preset: str = "cpu", data_dir: str | Path = "data/synthetic", out_dir: str | Path = "runs/demo",
             methods: Iterable[str] = DEMO_METHODS, oracle: bool = True, overrides: Optional[dict] = None,
             progress: bool = True, verify: str = "none", override_identity: bool = False,
             command: Optional[str] = None, jobs: Optional[int] = None) -> dict:
    """Generate (or reuse) the synthetic A/B pair, then the ladder's rows (direct transfer, ``methods``,
    the oracle) for one seed (``seed``, default 0) in ``<out_dir>/seed<S>``; ``<out_dir>/results.md``
    and ``results.csv`` hold the table (:func:`reid_uda_lib.ladder.run_ladder`).

    ``jobs``: processes at once (:mod:`reid_uda_lib.ladder.parallel`): the pretraining with every thread, then
    the rows side by side, one thread each. Default: 2 where the machine has 2 or more CPUs, else 1 (every
    row in this process, with progress bars)."""
    from .data.synthetic import generate_synthetic_pair
    from .ladder import run_ladder

    cfg = get_preset(preset, **(overrides or {}))
    # with uda.target_bn the pretrained model with target BN statistics alone is shown too (seconds)
    rows = ["direct", *(["direct_bn"] if cfg.uda.target_bn else []), *methods] + (["oracle"] if oracle else [])
    if jobs is None:
        jobs = 2 if (os.cpu_count() or 1) >= 2 else 1
    domains = generate_synthetic_pair(data_dir, seed=0, progress=progress, jobs=min(2, jobs))
    return run_ladder(cfg, domains["A"], domains["B"], out_dir, seeds=(cfg.seed,), rows=rows, progress=progress,
                      verify=verify, override_identity=override_identity, command=command, jobs=jobs)


def _metrics(m: Optional[dict]) -> dict:
    if not m:
        raise RuntimeError("a stage finished without a final target evaluation")
    return {c: m[c] for c in COLUMNS}
