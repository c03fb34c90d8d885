"""Training curves of one run: loss terms and target mAP / Rank-1 per epoch."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

_SKIP = {"epoch", "step", "lr"}


def plot_curves(records: Sequence[dict], path: str | Path | None = None, title: str = ""):
    """Plot the per-epoch records of a ``metrics.jsonl`` log; save to ``path`` when given.

    Returns the matplotlib Figure (left: mean loss terms, right: target mAP/Rank-1 and, for UDA runs,
    the pseudo-label NMI).
    """
    if not records:
        raise ValueError("plot_curves needs at least one metrics record (is metrics.jsonl empty?)")
    epochs = [r["epoch"] + 1 for r in records]
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(10, 3.6))
    terms = sorted({k for r in records for k, v in r.items() if isinstance(v, (int, float)) and k not in _SKIP})
    for k in terms:
        ax_l.plot(epochs, [r.get(k) for r in records], marker=".", label=k)
    ax_l.set(xlabel="epoch", ylabel="mean loss", title="loss terms")
    ax_l.legend(fontsize=7)
    for key, style in (("mAP", "-o"), ("rank1", "--s")):
        pts = [(e, r["target"][key]) for e, r in zip(epochs, records) if isinstance(r.get("target"), dict)]
        if pts:
            ax_m.plot(*zip(*pts), style, label=f"target {key}")
    nmi = [(e, r["cluster"]["nmi"]) for e, r in zip(epochs, records) if isinstance(r.get("cluster"), dict)]
    if nmi:
        ax_m.plot(*zip(*nmi), ":^", label="pseudo-label NMI")
    ax_m.set(xlabel="epoch", ylim=(0, 1), title="target test / label quality")
    ax_m.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
