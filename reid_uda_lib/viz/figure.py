"""Figures that need no backend: scripts save them headless, notebooks show them inline.

The library never chooses a matplotlib backend (``matplotlib.use`` at import would replace Jupyter's inline
backend for the whole kernel). Its figures are plain :class:`matplotlib.figure.Figure` objects, not
registered with ``pyplot``: ``savefig`` works without a display, nothing accumulates in pyplot's figure
list, and a notebook cell that ends with the figure displays it exactly once, as a PNG, whatever backend the
kernel uses (JupyterLab, Colab, VS Code, nbclient/papermill, nbval).
"""
from __future__ import annotations

import io
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
