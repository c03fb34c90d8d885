"""Figures: training curves (more diagnostics — embeddings, Grad-CAM, attention — come with the notebooks).

Every figure is a backend-free :class:`NotebookFigure` (see :mod:`.figure`): saved headless by scripts and
the CLI, shown inline when a notebook cell ends with it. Importing this package never selects a backend.
"""
from .curves import plot_curves
from .figure import NotebookFigure, new_figure

__all__ = ["plot_curves", "NotebookFigure", "new_figure"]
