"""2-D maps of feature sets: t-SNE (scikit-learn) and UMAP (umap-learn), seeded, coloured by labels.

:func:`embed_2d` computes one map; :func:`plot_embeddings` draws a grid (one row per feature set and
method, one column per colouring: identity, domain, cluster, ...). Settings are made safe for small sets
(a few hundred points, or a dozen in a unit test): t-SNE's perplexity and UMAP's ``n_neighbors`` stay below the
number of points, and UMAP starts from a random layout on tiny sets (its spectral start can fail there).

UMAP compiles with numba on its first call (tens of seconds once per cache): the cache goes to
``$NUMBA_CACHE_DIR``, set here to ``~/.cache/reid_uda_lib/numba`` unless it is already set, before umap is
imported, so later kernels and runs reuse it. A fixed ``random_state`` makes UMAP single-threaded; we pass
``n_jobs=1`` so it does not warn about it. t-SNE runs on one OpenMP thread for the same reason (and speed:
on a busy machine spinning OpenMP threads made a 12-point t-SNE take 35 s instead of 0.03 s).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .figure import NotebookFigure, legend_below, new_figure, save_figure

METHODS = ("tsne", "umap")


def _as_numpy(x) -> np.ndarray:
    x = x.detach().float().cpu().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embed_2d expects features of shape (N, D); got {x.shape}")
    return x


def _umap_module():
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "reid_uda_lib" / "numba"))
    Path(os.environ["NUMBA_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    import warnings
    with warnings.catch_warnings():     # "Tensorflow not installed; ParametricUMAP will be unavailable"
        warnings.simplefilter("ignore", ImportWarning)
        import umap  # noqa: PLC0415  (imported late: the cache folder must be set first)
    return umap


def embed_2d(features, method: str = "tsne", seed: int = 0, perplexity: float = 30.0,
             n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine") -> np.ndarray:
    """Map features (N, D) to 2-D points (N, 2) with t-SNE or UMAP, deterministically for a ``seed``.

    ``perplexity`` (t-SNE) and ``n_neighbors`` (UMAP) are capped below N; ``metric`` is the feature
    distance (cosine: the ReID test distance on L2-normalised features).
    """
    x = _as_numpy(features)
    n = len(x)
    if n < 5:
        raise ValueError(f"embed_2d needs at least 5 points for a 2-D map; got {n}")
    if not np.isfinite(x).all():
        raise ValueError("embed_2d: the features contain NaN or inf")
    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits
        perp = float(min(perplexity, max(2.0, (n - 1) / 3.0)))
        tsne = TSNE(n_components=2, perplexity=perp, metric=metric, init="pca" if metric == "euclidean" else
                    "random", random_state=seed, max_iter=500)
        # one OpenMP thread: the same map on every machine, and no spinning threads on a busy one (12 points
        # took 35 s with 2 threads on the loaded 2-core CI VM, 0.03 s with one)
        with threadpool_limits(1):
            return tsne.fit_transform(x).astype(np.float32)
    if method == "umap":
        umap = _umap_module()
        k = int(min(n_neighbors, n - 1))
        reducer = umap.UMAP(n_components=2, n_neighbors=k, min_dist=min_dist, metric=metric, random_state=seed,
                            n_jobs=1, init="spectral" if n >= 100 else "random")
        return reducer.fit_transform(x).astype(np.float32)
    raise ValueError(f"embed_2d: method must be one of {METHODS}; got {method!r}")


def _colours(labels: np.ndarray):
    """Per-point colours: a categorical colour per label value (grey for -1 = outlier), and the palette size."""
    from matplotlib import colormaps
    values = [v for v in np.unique(labels) if v != -1]
    cmap = colormaps["tab10" if len(values) <= 10 else "tab20" if len(values) <= 20 else "turbo"]
    pos = {v: i for i, v in enumerate(values)}
    denom = max(len(values) - 1, 1)
    col = np.array([(0.75, 0.75, 0.75, 0.6) if v == -1 else
                    cmap(pos[v] % cmap.N) if cmap.N < 256 else cmap(pos[v] / denom) for v in labels])
    return col, len(values)


#: Characters of a panel title that fit one line of a 2.7-inch panel at the medium font size; a longer title
#: puts the feature set's name on a line of its own (else the titles of neighbouring panels run into each other).
TITLE_CHARS = 30


def _panel_title(name: str, method: str, key: str, n_values: int, wrap: bool) -> str:
    """``"f · t-SNE · by domain (2)"``, or with the name on a line of its own (``wrap``)."""
    how = f"{'t-SNE' if method == 'tsne' else 'UMAP'} · by {key} ({n_values})"
    return f"{name}\n{how}" if wrap else f"{name} · {how}"


def plot_embeddings(features: Mapping[str, object], colour_by: Mapping[str, Sequence],
                    methods: Sequence[str] = METHODS, seed: int = 0, title: str = "",
                    path: str | Path | None = None, point_size: float = 9.0,
                    legends: Mapping[str, Mapping] | None = None) -> NotebookFigure:
    """A grid of 2-D maps: one row per feature set, one column per (method, colouring).

    ``features``: ``{name: (N, D)}`` (e.g. ``{"f": f, "b": b, "e": e}``, all with the same N rows);
    ``colour_by``: ``{name: (N,) labels}`` (identity, domain, cluster; -1 is drawn grey as "outlier");
    ``legends``: optional ``{colouring: {label value: text}}`` drawn as a legend (e.g. the domain names).
    Returns the figure (saved to ``path`` when given); the 2-D points are in ``fig.points[(name, method)]``.
    """
    if not features or not colour_by:
        raise ValueError("plot_embeddings needs at least one feature set and one colouring")
    n = {k: len(v) for k, v in features.items()}
    for k, v in colour_by.items():
        if any(len(v) != m for m in n.values()):
            raise ValueError(f"plot_embeddings: colouring {k!r} has {len(v)} labels but the feature sets have "
                             f"{n} rows")
    names, cols = list(features), [(m, key) for m in methods for key in colour_by]
    labels_of = {key: np.asarray(v) for key, v in colour_by.items()}
    palettes = {key: _colours(v) for key, v in labels_of.items()}          # (colours, n values), once per colouring
    # one layout for every panel: two-line titles everywhere when the longest would not fit on one line
    wrap = max(len(_panel_title(nm, m, key, palettes[key][1], False)) for nm in names for m, key in cols) \
        > TITLE_CHARS
    fig = new_figure(figsize=(2.7 * len(cols), 2.6 * len(names) + (0.4 if title else 0)))
    axes = np.atleast_2d(fig.subplots(len(names), len(cols), squeeze=False))
    fig.points = {}
    for r, name in enumerate(names):
        for c, (m, key) in enumerate(cols):
            if (name, m) not in fig.points:
                fig.points[(name, m)] = embed_2d(features[name], method=m, seed=seed)
            xy = fig.points[(name, m)]
            labels = labels_of[key]
            col, n_values = palettes[key]
            ax = axes[r, c]
            ax.scatter(xy[:, 0], xy[:, 1], c=col, s=point_size, linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(_panel_title(name, m, key, n_values, wrap), fontsize="medium")
            if legends and key in legends:
                from matplotlib.lines import Line2D
                handles = [Line2D([], [], marker="o", ls="", color=col[labels == v][0], label=str(text))
                           for v, text in legends[key].items() if (labels == v).any()]
                legend_below(ax, ncol=len(handles), handles=handles, handletextpad=0.1, columnspacing=0.8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()) if title else None)
    save_figure(fig, path)
    return fig
