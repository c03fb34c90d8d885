"""Figures that need no backend: scripts save them headless, notebooks show them inline.

The library never chooses a matplotlib backend (``matplotlib.use`` at import would replace Jupyter's inline
backend for the whole kernel). Its figures are plain :class:`matplotlib.figure.Figure` objects, not
registered with ``pyplot``: ``savefig`` works without a display, nothing accumulates in pyplot's figure
list, and a notebook cell that ends with the figure displays it exactly once, as a PNG, whatever backend the
kernel uses (JupyterLab, Colab, VS Code, nbclient/papermill, nbval).
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


class NotebookFigure(Figure):
    """A backend-free Figure that renders itself as PNG in Jupyter (IPython's ``_repr_png_`` protocol)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def new_figure(**kwargs: Any) -> NotebookFigure:
    """A new :class:`NotebookFigure` (``kwargs`` as for :class:`matplotlib.figure.Figure`, e.g. ``figsize``)."""
    return NotebookFigure(**kwargs)


def save_figure(fig: Figure, path: str | os.PathLike | None, dpi: int = 100) -> Figure:
    """Write ``fig`` to ``path`` (format from the suffix, ``.png`` by default) atomically and return it.

    The file is drawn into a temporary file in the same folder and renamed over ``path``, so a reader (or a
    run killed mid-write) never sees half a PNG. ``path=None`` saves nothing: every plotting function of
    :mod:`reid_uda_lib.viz` takes ``path`` and passes it here.
    """
    if path is None:
        return fig
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=path.suffix[1:], dpi=dpi, bbox_inches="tight")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return fig
