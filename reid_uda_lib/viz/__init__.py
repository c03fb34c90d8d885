"""Figures: training curves (more diagnostics — embeddings, Grad-CAM, attention — come with the notebooks)."""
from .curves import plot_curves

__all__ = ["plot_curves"]
