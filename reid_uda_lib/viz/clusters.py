"""Pseudo-label diagnostics: quality per round for several methods, cluster sizes, one cluster's images with
its impostors marked, and LF²'s obscure-learning agreement per round.

The per-round numbers are read from the ``metrics.jsonl`` records the UDA loop writes (``"cluster"``: NMI,
ARI, purity, #clusters, outlier ratio; ``"levels"``: LF²'s per-level quality and agreement).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..data.image_dataset import read_image
from .figure import NotebookFigure, legend_below, new_figure, save_figure
from .images import BAD, GOOD, show_image

QUALITY_KEYS = ("nmi", "ari", "purity", "n_clusters", "outlier_ratio")
_FRACTIONS = ("nmi", "ari", "purity", "outlier_ratio")
_NAMES = {"nmi": "NMI", "ari": "ARI", "purity": "purity", "n_clusters": "# clusters", "outlier_ratio": "outliers"}


def plot_label_quality(runs: Mapping[str, Sequence[dict]], keys: Sequence[str] = QUALITY_KEYS,
                       n_true_ids: int | None = None, title: str = "", path: str | Path | None = None
                       ) -> NotebookFigure:
    """Pseudo-label quality per round, one line per method: ``runs`` = ``{method: metrics.jsonl records}``.

    One panel per key of ``record["cluster"]`` (NMI, ARI, purity, number of clusters, outlier ratio), at most
    three per row, and the legend in a slot of its own (never over a curve). Fractions are drawn on [0, 1] and
    counts from 0, so that a change of 0.01 does not look like a trend. ``n_true_ids`` draws the true number
    of identities on the # clusters panel.
    """
    usable = {m: [r for r in recs if isinstance(r.get("cluster"), dict)] for m, recs in runs.items()}
    usable = {m: r for m, r in usable.items() if r}
    if not usable:
        raise ValueError("plot_label_quality: no record has a 'cluster' entry (pass the metrics.jsonl records "
                         "of UDA runs)")
    ncols = min(3, len(keys) + 1) if len(keys) + 1 != 4 else 2      # the panels and one slot for the legend
    nrows = -(-(len(keys) + 1) // ncols)
    fig = new_figure(figsize=(3.0 * ncols, 2.6 * nrows + (0.4 if title else 0)))
    axes = list(np.atleast_1d(fig.subplots(nrows, ncols)).ravel())
    for ax, key in zip(axes, keys):
        values = []
        for m, recs in usable.items():
            values += [r["cluster"][key] for r in recs]
            ax.plot([r["epoch"] + 1 for r in recs], [r["cluster"][key] for r in recs], marker="o", ms=3, label=m)
        if key == "n_clusters" and n_true_ids:
            ax.axhline(n_true_ids, color="k", ls=":", lw=1, label="true ids")
        # whole scales, so that run-to-run noise does not look like a trend: fractions on [0, 1] (ARI can
        # be negative), counts from 0
        if key in _FRACTIONS:
            ax.set_ylim(min(0.0, min(values) - 0.05), 1.0)
        else:
            ax.set_ylim(0, max(max(values), n_true_ids or 0) * 1.1 or 1)
        ax.set(xlabel="round (epoch)", title=_NAMES.get(key, key))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_ax = axes[len(keys)]
    legend_ax.axis("off")
    entries = {}                                    # every run once, and the true-ids line when drawn
    for ax in axes[:len(keys)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    legend_ax.legend(list(entries.values()), list(entries), loc="center", frameon=False)
    for ax in axes[len(keys) + 1:]:
        ax.remove()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_cluster_sizes(labels: Mapping[str, Sequence[int]], true_ids: Sequence[int] | None = None,
                       title: str = "", path: str | Path | None = None) -> NotebookFigure:
    """Histogram of cluster sizes (images per pseudo identity) for each label set, outliers counted apart;
    ``true_ids`` adds the true identities' sizes for reference."""
    sets = {k: np.asarray(v) for k, v in labels.items()}
    if true_ids is not None:
        sets = {"true identities": np.asarray(true_ids), **sets}
    if not sets:
        raise ValueError("plot_cluster_sizes needs at least one label set")
    sizes = {k: np.bincount(v[v >= 0]) for k, v in sets.items()}
    sizes = {k: s[s > 0] for k, s in sizes.items()}
    top = max(int(s.max()) for s in sizes.values() if len(s)) if any(len(s) for s in sizes.values()) else 1
    bins = np.arange(1, top + 2) - 0.5 if top <= 40 else 30
    fig = new_figure(figsize=(9, 3.2))
    ax = fig.subplots()
    for k, s in sizes.items():
        out = int((sets[k] < 0).sum())
        ax.hist(s, bins=bins, histtype="step", lw=1.5,
                label=f"{k}: {len(s)} clusters" + (f", {out} outliers" if k != "true identities" else ""))
    ax.set(xlabel="images per cluster", ylabel="clusters", title=title or "cluster sizes")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)      # beside the curves, not on them
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def cluster_impostors(labels: Sequence[int], true_ids: Sequence[int], cluster: int) -> dict:
    """One cluster's members, its majority identity and the members of other identities (the impostors)."""
    lab, true = np.asarray(labels), np.asarray(true_ids)
    members = np.flatnonzero(lab == cluster)
    if len(members) == 0:
        raise ValueError(f"cluster {cluster} has no member (labels run from {lab.min()} to {lab.max()})")
    ids, counts = np.unique(true[members], return_counts=True)
    major = int(ids[np.argmax(counts)])
    return {"members": members, "majority_id": major, "impostors": members[true[members] != major],
            "purity": float(counts.max() / len(members))}


def pick_cluster(labels: Sequence[int], true_ids: Sequence[int], min_size: int = 4) -> int:
    """A cluster worth looking at: among those with at least ``min_size`` images, the one with the most
    impostors (ties: the larger one); the largest cluster when every cluster is pure."""
    lab = np.asarray(labels)
    best, key = None, None
    for c in np.unique(lab[lab >= 0]):
        info = cluster_impostors(lab, true_ids, int(c))
        k = (len(info["impostors"]), len(info["members"]))
        if len(info["members"]) >= min_size and (key is None or k > key):
            best, key = int(c), k
    if best is None:
        raise ValueError(f"no cluster has at least {min_size} images")
    return best


def plot_cluster_gallery(items: Sequence[tuple], labels: Sequence[int], cluster: int, max_images: int = 24,
                         per_row: int = 8, title: str = "", path: str | Path | None = None) -> NotebookFigure:
    """The images of one pseudo identity: framed green when they show the cluster's majority (true) identity,
    red — with their true id — when they are impostors. ``items`` are the ``(path, true pid, camid)`` the
    ``labels`` were computed for (the hidden ids are used only to mark the frames)."""
    true = np.asarray([it[1] for it in items])
    info = cluster_impostors(labels, true, cluster)
    major = info["members"][true[info["members"]] == info["majority_id"]]
    n_imp = min(len(info["impostors"]), max(max_images // 2, max_images - len(major)))  # room for both kinds
    shown = np.concatenate([major[:max_images - n_imp], info["impostors"][:n_imp]])
    rows = int(np.ceil(len(shown) / per_row))
    fig = new_figure(figsize=(per_row * 0.9, rows * 1.75 + 0.5))
    axes = np.atleast_2d(fig.subplots(rows, per_row, squeeze=False))
    for ax in axes.ravel():
        ax.axis("off")
    for k, i in enumerate(shown):
        ax = axes.ravel()[k]
        ax.axis("on")
        imp = true[i] != info["majority_id"]
        show_image(ax, np.asarray(read_image(items[i][0])), frame=BAD if imp else GOOD,
                   title=f"id {true[i]}" if imp else None)
    fig.suptitle(title or f"cluster {cluster}: {len(info['members'])} images, majority id {info['majority_id']}, "
                 f"{len(info['impostors'])} impostors (red), purity {info['purity']:.2f}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_agreement(records: Sequence[dict], title: str = "", path: str | Path | None = None) -> NotebookFigure:
    """LF²'s obscure-learning agreement per round: ARI (solid) and NMI (dashed) between the global labels and
    each part's labels (``record["levels"]["agreement"]``), beside each level's NMI against the true ids."""
    recs = [r for r in records if isinstance(r.get("levels"), dict)]
    if not recs:
        raise ValueError("plot_agreement: no record has a 'levels' entry (pass an LF² run's metrics.jsonl "
                         "records: lf2, lf2_nofm or lf2_dcdfa)")
    ep = [r["epoch"] + 1 for r in recs]
    parts = list(recs[0]["levels"]["agreement"])
    levels = [k for k in recs[0]["levels"] if k != "agreement"]
    fig = new_figure(figsize=(9, 3.6))
    ax_a, ax_q = fig.subplots(1, 2)
    for p in parts:
        line, = ax_a.plot(ep, [r["levels"]["agreement"][p]["ari"] for r in recs], marker="o", label=f"ARI P0–{p}")
        ax_a.plot(ep, [r["levels"]["agreement"][p]["nmi"] for r in recs], ls="--", color=line.get_color(),
                  label=f"NMI P0–{p}")
    for lv in levels:
        ax_q.plot(ep, [r["levels"][lv]["nmi"] for r in recs], marker="o", label=f"{lv} vs true ids")
    ax_a.set(xlabel="round (epoch)", ylabel="agreement", ylim=(0, 1), title="global vs part labels")
    ax_q.set(xlabel="round (epoch)", ylabel="NMI", ylim=(0, 1), title="each level vs the hidden ids")
    for ax in (ax_a, ax_q):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend_below(ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
