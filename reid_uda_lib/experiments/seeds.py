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


def _summary(stage_dir: Path) -> Optional[dict]:
    p = stage_dir / "summary.json"
    return json.loads(p.read_text()) if p.is_file() else None
