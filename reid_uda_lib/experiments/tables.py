"""Every markdown table of the project, in one place: one run's results (the notebooks), the ladder's
``results.md`` (mean ± std over seeds, gap share, label quality) and the seeds/probes tables of
``python -m reid_uda_lib table``.

A table is a :class:`MarkdownTable`: a ``str`` (``print`` it, write it to a file) that Jupyter renders as
a table when a cell ends with it.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..methods.registry import METHODS

#: The metrics of every results table (fractions in the summaries, shown in %).
COLUMNS = ("mAP", "rank1", "rank5", "rank10")
QUALITY = (("nmi", "NMI", 1.0, 2), ("ari", "ARI", 1.0, 2), ("n_clusters", "clusters", 1.0, 0),
           ("outlier_ratio", "outliers %", 100.0, 0))



class MarkdownTable(str):
    """A markdown table: a plain string that a notebook shows rendered (``_repr_markdown_``)."""

    def _repr_markdown_(self) -> str:
        return str(self)


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str | None = None) -> MarkdownTable:
    """``header`` and ``rows`` (cells as text) as a markdown table; ``align``: one character per column,
    ``l`` (left) or ``r`` (right; default: the first column left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"
    lines = ["| " + " | ".join(header) + " |", rule] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return MarkdownTable("\n".join(lines) + "\n")


def results_table(rows: list[dict]) -> MarkdownTable:
    """One run's table from ``{"row": name, "mAP": .., "rank1": .., ...}`` (fractions shown as %)."""
    return md_table(["method", "target mAP", "R1", "R5", "R10"],
                    ([r["row"]] + [f"{100 * r[c]:.1f}" for c in COLUMNS] for r in rows))


def mean_std(values: Sequence[float], digits: int = 1, std: bool = True) -> str:
    """``"35.0 ± 7.1"``: mean ± sample std (ddof = 1) of ``values``; the mean alone for one value or
    ``std=False``."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("mean_std needs at least one value")
    if std and v.size > 1:
        return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"
    return f"{v.mean():.{digits}f}"


def seeds_table(rows: dict[str, list[dict]]) -> MarkdownTable:
    """Markdown table: mean ± std (sample std, ddof=1) in % over the seeds, and the number of seeds."""
    out = "| method | seeds | target mAP | R1 | R5 | R10 |\n|---|---:|---:|---:|---:|---:|\n"
    for name, runs in rows.items():
        cells = [mean_std([100 * r[c] for r in runs]) for c in COLUMNS]
        out += f"| {name} | {len(runs)} | " + " | ".join(cells) + " |\n"
    return MarkdownTable(out)


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
    return MarkdownTable(head + "".join(lines))


def _without_domain_loss(row: str) -> bool:
    """True for the DCDFA rows whose domain classifier is never trained (no L_Domain): the swap test's
    domain columns mean nothing there (runs made before the probes said so themselves still hold numbers)."""
    return getattr(METHODS.get(row), "use_domain", True) is False


def _values(runs: list[dict], get) -> list[float]:
    out = []
    for r in runs:
        v = get(r)
        if v is not None and not (isinstance(v, float) and np.isnan(v)):
            out.append(float(v))
    return out


def _cluster(key: str):
    return lambda r: (r.get("cluster") or {}).get(key)


def paired_table(entries: list[dict], pairs: Sequence[tuple]) -> MarkdownTable:
    """The papers' claims as differences paired by seed: for each ``((row, extra), (row, extra), claim)`` in
    ``pairs`` whose two rows are in ``entries``, the per-seed target mAP difference (first − second, in
    points) as mean ± sample std, and on how many of the seeds both have it is positive. Empty when no pair
    is complete for any seed."""
    by_key = {(e["key"], e["extra"]): {r["seed"]: r["mAP"] for r in e["runs"]} for e in entries}
    lines = []
    for a, b, claim in pairs:
        if a not in by_key or b not in by_key:
            continue
        seeds = sorted(set(by_key[a]) & set(by_key[b]))
        if not seeds:
            continue
        diffs = [100 * (by_key[a][s] - by_key[b][s]) for s in seeds]
        name = lambda k: f"`{k[0]}`" + (f" ({k[1]} only)" if k[1] else "")   # noqa: E731
        lines.append([f"{name(a)} − {name(b)}", claim, str(len(seeds)), mean_std(diffs, 1),
                      f"{sum(d > 0 for d in diffs)} of {len(seeds)}",
                      " ".join(f"{d:+.1f}" for d in diffs)])
    if not lines:
        return MarkdownTable("")
    return md_table(["difference (mAP points)", "the paper's claim", "seeds", "mean ± std", "positive",
                     "per seed"], lines, "llrrrl")


def markdown_table(entries: list[dict]) -> MarkdownTable:
    """The results table (mAP/CMC and the gap share in %, mean ± std over seeds)."""
    head = ("| row | seeds | target mAP | R1 | R5 | R10 | DT→oracle gap closed | "
            + " | ".join(q[1] for q in QUALITY) + " | s/row |\n|---|---:|" + "---:|" * (6 + len(QUALITY)) + "\n")
    lines = []
    for e in entries:
        runs = e["runs"]
        cells = [mean_std([100 * r[c] for r in runs], 1) for c in COLUMNS]
        gaps = _values(runs, lambda r: r["gap"])
        part = f" ({len(gaps)} of {len(runs)} seeds)" if gaps and len(gaps) < len(runs) else ""
        cells.append(f"{mean_std([100 * g for g in gaps], 0)} %{part}" if gaps else "–")
        for key, _, scale, digits in QUALITY:
            vals = _values(runs, _cluster(key))
            cells.append(mean_std([scale * v for v in vals], digits, std=False) if vals else "–")
        secs = _values(runs, lambda r: r["seconds"])
        cells.append(f"{np.mean(secs):.0f}" if secs else "–")
        lines.append(f"| {e['label']} | {len(runs)} | " + " | ".join(cells) + " |\n")
    return MarkdownTable(head + "".join(lines))


