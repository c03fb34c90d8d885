"""Ranked retrieval lists: a query and its top-k gallery images, true matches framed green, false red; and
the "what changed" figure that puts the lists of several models side by side for the same queries.

Rankings follow the evaluation protocol (:func:`reid_uda_lib.evaluation.evaluate`): gallery images of the
query's person seen by the query's camera are left out (``cross_camera_only``), as they are for mAP.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..data.image_dataset import read_image
from ..evaluation import evaluate
from .figure import NotebookFigure, new_figure, save_figure
from .images import BAD, GOOD, NEUTRAL, show_image


def _np(d) -> np.ndarray:
    return d.detach().float().cpu().numpy() if torch.is_tensor(d) else np.asarray(d, dtype=np.float64)


def ranked(distmat, query: Sequence[tuple], gallery: Sequence[tuple], q: int, k: int = 5,
           cross_camera_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The top-``k`` gallery indices of query ``q`` and whether each is a true match (same person)."""
    d = _np(distmat)
    if d.shape != (len(query), len(gallery)):
        raise ValueError(f"ranked: distmat has shape {d.shape}, expected (queries, gallery) = "
                         f"({len(query)}, {len(gallery)})")
    _, qpid, qcam = query[q][:3]
    order = np.argsort(d[q], kind="stable")
    keep = np.array([not (cross_camera_only and gallery[g][1] == qpid and gallery[g][2] == qcam) for g in order])
    top = order[keep][:k]
    return top, np.array([gallery[g][1] == qpid for g in top])


def average_precisions(distmat, query: Sequence[tuple], gallery: Sequence[tuple],
                       cross_camera_only: bool = True) -> np.ndarray:
    """AP of every query (NaN for queries without a valid match), with the library's evaluation."""
    d = _np(distmat)
    aps = np.full(len(query), np.nan)
    gp, gc = np.array([g[1] for g in gallery]), np.array([g[2] for g in gallery])
    for i, (_, p, c) in enumerate(q[:3] for q in query):
        r = evaluate(d[i:i + 1], [p], gp, [c], gc, topk=(1,), cross_camera_only=cross_camera_only,
                     query_paths=[query[i][0]], gallery_paths=[g[0] for g in gallery])
        if r["num_skipped_queries"] == 0:
            aps[i] = r["mAP"]
    return aps


def _draw_row(axes, distmat, query, gallery, q, k, cross_camera_only, label):
    top, good = ranked(distmat, query, gallery, q, k, cross_camera_only)
    show_image(axes[0], np.asarray(read_image(query[q][0])), frame=NEUTRAL, title=label, width=2.0)
    for j, (g, ok) in enumerate(zip(top, good)):
        show_image(axes[j + 1], np.asarray(read_image(gallery[g][0])), frame=GOOD if ok else BAD,
                   title=f"{j + 1}", width=3.0)
    return good


def plot_ranked_lists(distmat, query: Sequence[tuple], gallery: Sequence[tuple], queries: Sequence[int],
                      k: int = 8, cross_camera_only: bool = True, title: str = "",
                      path: str | Path | None = None) -> NotebookFigure:
    """One row per query index in ``queries``: the query (grey frame) then its top ``k`` gallery images,
    true matches framed green, false red; each row is labelled with the query's AP."""
    if len(queries) == 0:
        raise ValueError("plot_ranked_lists: no query index given")
    aps = average_precisions(_np(distmat)[list(queries)], [query[q] for q in queries], gallery, cross_camera_only)
    fig = new_figure(figsize=(0.85 * (k + 1) + 0.3, 1.65 * len(queries) + 0.5))
    axes = np.atleast_2d(fig.subplots(len(queries), k + 1, squeeze=False))
    for r, q in enumerate(queries):
        _draw_row(axes[r], distmat, query, gallery, q, k, cross_camera_only, f"query {q}\nAP {100 * aps[r]:.0f}%")
    fig.suptitle(title or "ranked lists (green: same person, red: another person)")
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def most_changed(distmats: Mapping[str, object], query: Sequence[tuple], gallery: Sequence[tuple], n: int = 4,
                 cross_camera_only: bool = True) -> list[int]:
    """The ``n`` queries whose AP rose most from the first model of ``distmats`` to the last (ties: lower index)."""
    names = list(distmats)
    if len(names) < 2:
        raise ValueError("most_changed needs the distance matrices of at least two models")
    first = average_precisions(distmats[names[0]], query, gallery, cross_camera_only)
    last = average_precisions(distmats[names[-1]], query, gallery, cross_camera_only)
    gain = np.nan_to_num(last - first, nan=-np.inf)
    return [int(i) for i in np.argsort(-gain, kind="stable")[:n]]


def plot_what_changed(distmats: Mapping[str, object], query: Sequence[tuple], gallery: Sequence[tuple],
                      queries: Sequence[int], k: int = 6, cross_camera_only: bool = True, title: str = "",
                      path: str | Path | None = None) -> NotebookFigure:
    """For the same queries, each model's top-``k`` list: one row per (query, model), the models of a query
    one under the other (``distmats`` = ``{name: (Q, G) distances}``), each row labelled on its left with the
    model, its AP and its true matches in the top k. Stacked rather than side by side, so that the figure
    stays narrow enough to be read at the page's width."""
    names = list(distmats)
    if not names or len(queries) == 0:
        raise ValueError("plot_what_changed needs at least one model and one query")
    aps = {m: average_precisions(_np(distmats[m])[list(queries)], [query[q] for q in queries], gallery,
                                 cross_camera_only) for m in names}
    rows = len(queries) * len(names)
    fig = new_figure(figsize=(0.8 * (k + 1) + 1.8, 1.5 * rows + 0.6))
    axes = np.atleast_2d(fig.subplots(rows, k + 1, squeeze=False))
    for r, q in enumerate(queries):
        for b, m in enumerate(names):
            row = r * len(names) + b
            hits = int(ranked(distmats[m], query, gallery, q, k, cross_camera_only)[1].sum())
            _draw_row(axes[row], distmats[m], query, gallery, q, k, cross_camera_only,
                      f"query {q}" if b == 0 else None)
            axes[row, 0].set_ylabel(f"{m}\nAP {100 * aps[m][r]:.0f}%, {hits}/{k}", rotation=0, ha="right",
                                    va="center")
    fig.suptitle(title or "what changed: the same queries ranked by each model (green: same person)")
    fig.tight_layout()
    save_figure(fig, path)
    return fig
