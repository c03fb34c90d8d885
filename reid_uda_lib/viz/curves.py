"""Training curves of one run: loss terms and target mAP / Rank-1 per epoch."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from matplotlib.ticker import MaxNLocator

from .figure import NotebookFigure, new_figure, save_figure

_SKIP = {"epoch", "step", "lr"}


def plot_curves(records: Sequence[dict], path: str | Path | None = None, title: str = "") -> NotebookFigure:
    """Plot the per-epoch records of a ``metrics.jsonl`` log; save to ``path`` when given.

    Returns the Figure (left: mean loss terms, right: target mAP/Rank-1 and, for UDA runs, the pseudo-label
    NMI). It is not a pyplot figure and needs no display: in a notebook, end the cell with the call (no
    trailing ``;``) and it shows inline; in a script, pass ``path``.
    """
    if not records:
        raise ValueError("plot_curves needs at least one metrics record (is metrics.jsonl empty?)")
    epochs = [r["epoch"] + 1 for r in records]
    fig = new_figure(figsize=(10, 3.6))
    ax_l, ax_m = fig.subplots(1, 2)
    terms = sorted({k for r in records for k, v in r.items() if isinstance(v, (int, float)) and k not in _SKIP})
    for k in terms:
        ax_l.plot(epochs, [r.get(k) for r in records], marker=".", label=k)
    ax_l.set(xlabel="epoch", ylabel="mean loss", title="loss terms")
    for key, style in (("mAP", "-o"), ("rank1", "--s")):
        pts = [(e, r["target"][key]) for e, r in zip(epochs, records) if isinstance(r.get("target"), dict)]
        if pts:
            ax_m.plot(*zip(*pts), style, label=f"target {key}")
    nmi = [(e, r["cluster"]["nmi"]) for e, r in zip(epochs, records) if isinstance(r.get("cluster"), dict)]
    if nmi:
        ax_m.plot(*zip(*nmi), ":^", label="pseudo-label NMI")
    ax_m.set(xlabel="epoch", ylim=(0, 1), title="target test / label quality")
    for ax in (ax_l, ax_m):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        if ax.get_legend_handles_labels()[0]:  # a run without target evaluation has no curves here
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return fig
