"""Results over seeds: one table of mean ± std from the run folders of several seeds.

Each seed's folder is what ``python -m reid_uda_lib demo --set seed=S --out DIR`` (or ``train``) writes:
``DIR/pretrain/summary.json`` (direct transfer) and ``DIR/<method>/summary.json`` (one per UDA method,
with the extra evaluations such as DCDFA's "b only" and the last epoch's probes). Synthetic-data figures
move by several mAP points between seeds and between CPU types, so a row is only meaningful with its
spread; the table says how many seeds each row has.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

COLUMNS = ("mAP", "rank1", "rank5", "rank10")


def collect_rows(run_dirs: Sequence[str | Path], methods: Optional[Iterable[str]] = None) -> dict[str, list[dict]]:
    """``{row name: [metrics of seed 1, seed 2, ...]}`` from the stage summaries of every run folder.

    Rows: "direct transfer", each method found (or listed in ``methods``, in that order), "<method> (b only)"
    for each extra evaluation, and "oracle" when present. Missing stages are skipped.
    """
    rows: dict[str, list[dict]] = {}

    def add(name: str, metrics: Optional[dict]) -> None:
        if metrics:
            rows.setdefault(name, []).append(metrics)

    for d in map(Path, run_dirs):
        if not d.is_dir():
            raise FileNotFoundError(f"run folder {d} does not exist (expected the --out of a demo/train run)")
        pre = _summary(d / "pretrain")
        add("direct transfer (source only)", pre and pre.get("target"))
        # the direct-transfer and oracle rows have their own places (first and last), whether listed or not
        names = ([m for m in methods if m not in ("pretrain", "direct", "oracle")] if methods else
                 sorted(p.parent.name for p in d.glob("*/summary.json") if p.parent.name not in ("pretrain", "oracle")))
        for name in names:
            s = _summary(d / name)
            if s is None or not s.get("target"):
                continue
            add(name, {**s["target"], "cluster": s.get("cluster"), "probe": s.get("probe")})
            for key, m in (s.get("extra_eval") or {}).items():
                add(f"{name} ({key} only)", m)
        orc = _summary(d / "oracle")
        add("oracle (SBase with the true target identities)", orc and orc.get("target"))
    return rows


def mean_std(values: Sequence[float], digits: int = 1, std: bool = True) -> str:
    """``"35.0 ± 7.1"``: mean ± sample std (ddof = 1) of ``values``; the mean alone for one value or
    ``std=False``."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("mean_std needs at least one value")
    if std and v.size > 1:
        return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"
    return f"{v.mean():.{digits}f}"


def seeds_table(rows: dict[str, list[dict]]) -> str:
    """Markdown table: mean ± std (sample std, ddof=1) in % over the seeds, and the number of seeds."""
    out = "| method | seeds | target mAP | R1 | R5 | R10 |\n|---|---:|---:|---:|---:|---:|\n"
    for name, runs in rows.items():
        cells = [mean_std([100 * r[c] for r in runs]) for c in COLUMNS]
        out += f"| {name} | {len(runs)} | " + " | ".join(cells) + " |\n"
    return out


def probes_table(rows: dict[str, list[dict]]) -> str:
    """Markdown table of the last epoch's disentanglement probes (mean ± std over seeds) for rows that have them."""
    keys = ("domain_acc_f", "domain_acc_b", "domain_acc_e", "r_t_is_target", "r_s_is_source", "id_follows_b")
    lines = []
    for name, runs in rows.items():
        probes = [r["probe"] for r in runs if r.get("probe")]
        if not probes:
            continue
        cells = []
        untrained = _without_domain_loss(name)
        for k in keys:
            vals = [] if untrained and k in ("r_t_is_target", "r_s_is_source") else \
                [p.get(k) for p in probes if p.get(k) is not None]
            if not vals:                 # e.g. the swap test's domain columns without a trained classifier
                cells.append("–")
                continue
            v = 100 * np.asarray(vals, dtype=float)
            cells.append(f"{v.mean():.0f} ± {v.std(ddof=1):.0f}" if len(v) > 1 else f"{v.mean():.0f}")
        lines.append(f"| {name} | {len(probes)} | " + " | ".join(cells) + " |\n")
    if not lines:
        return ""
    head = ("| method | seeds | domain acc. f | domain acc. b | domain acc. e | r^t → target | r^s → source "
            "| identity follows b |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
    return head + "".join(lines)


def _without_domain_loss(row: str) -> bool:
    """True for the DCDFA rows whose domain classifier is never trained (no L_Domain): the swap test's
    domain columns mean nothing there (runs made before the probes said so themselves still hold numbers)."""
    from .engine.methods import METHODS
    return getattr(METHODS.get(row), "use_domain", True) is False


def _summary(stage_dir: Path) -> Optional[dict]:
    p = stage_dir / "summary.json"
    return json.loads(p.read_text()) if p.is_file() else None
