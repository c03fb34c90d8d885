"""Figures that need no backend: scripts save them headless, notebooks show them inline.

The library never chooses a matplotlib backend (``matplotlib.use`` at import would replace Jupyter's inline
backend for the whole kernel). Its figures are plain :class:`matplotlib.figure.Figure` objects, not
registered with ``pyplot``: ``savefig`` works without a display, nothing accumulates in pyplot's figure
list, and a notebook cell that ends with the figure displays it exactly once, as a PNG, whatever backend the
kernel uses (JupyterLab, Colab, VS Code, nbclient/papermill, nbval).

**A floor for text size, in one place.** A PNG wider than the page is shown scaled down to it, and its text
with it: a 7 pt legend in a 13-inch figure reads as 6 px. Text in a figure shows at

    px = size_pt · dpi / 72 · min(1, RENDER_WIDTH_PX / png_width_px)

on a page whose output column is :data:`RENDER_WIDTH_PX` wide (JupyterLab on a laptop, GitHub, nbviewer,
the rendered docs). Every :class:`NotebookFigure` raises any text below :data:`MIN_TEXT_PX` there before it
lays itself out (:meth:`NotebookFigure.tight_layout`) and again, from the real PNG width, when it renders
(:func:`render_png`); the PNG carries its smallest text size in a ``tEXt`` chunk (:data:`PNG_TEXT_KEY`) that
``tools/browser_check.py`` reads back at the width the browser shows the image.
"""
from __future__ import annotations

import io
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.text import Text

#: The width (CSS px) of the column a notebook's figures are read in; a wider PNG is scaled down to it.
RENDER_WIDTH_PX = 900
#: The smallest text height (px at the rendered width) that any figure of the library shows.
MIN_TEXT_PX = 10.0
#: The resolution of every figure (PNG pixels per inch), whatever the kernel's rcParams say.
DPI = 100
#: The PNG ``tEXt`` key holding the smallest text size in px at the PNG's own resolution.
PNG_TEXT_KEY = "reid_uda_lib:min-text-px"


def rendered_scale(png_width_px: float, render_width_px: float = RENDER_WIDTH_PX) -> float:
    """The factor a page applies to a PNG ``png_width_px`` wide: 1, or less when it is wider than the column."""
    if png_width_px <= 0:
        raise ValueError(f"rendered_scale: the PNG width must be positive; got {png_width_px}")
    return min(1.0, render_width_px / png_width_px)


def text_px(size_pt: float, png_width_px: float, dpi: float = DPI,
            render_width_px: float = RENDER_WIDTH_PX) -> float:
    """The height in px on the page of ``size_pt`` text in a PNG drawn at ``dpi`` and ``png_width_px`` wide."""
    return size_pt * dpi / 72.0 * rendered_scale(png_width_px, render_width_px)


def min_font_pt(png_width_px: float, dpi: float = DPI, render_width_px: float = RENDER_WIDTH_PX) -> float:
    """The smallest font size (pt) that still shows :data:`MIN_TEXT_PX` high in a PNG ``png_width_px`` wide."""
    return MIN_TEXT_PX / text_px(1.0, png_width_px, dpi, render_width_px)


def figure_texts(fig: Figure) -> list[Text]:
    """Every text the figure draws: titles, axis and tick labels, legends, annotations (visible, not blank).

    Tick labels count only on axes that are drawn with their axis (``ax.axison``).
    """
    ticks = set()
    texts = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = axis.get_ticklabels(which="both")
            ticks.update(map(id, labels))
            if ax.axison and axis.get_visible():
                texts += [t for t in labels if t.get_visible() and t.get_text().strip()]
    for t in fig.findobj(Text):
        if id(t) in ticks or not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.axison and t in (t.axes.xaxis.label, t.axes.yaxis.label):
            continue                                   # an axis label of an axes drawn without its axis
        texts.append(t)
    return texts


def smallest_text_pt(fig: Figure) -> float | None:
    """The smallest font size (pt) among :func:`figure_texts`; None for a figure without text."""
    sizes = [t.get_fontsize() for t in figure_texts(fig)]
    return min(sizes) if sizes else None


def apply_text_floor(fig: Figure, min_pt: float) -> int:
    """Raise every text of ``fig`` smaller than ``min_pt`` to it (tick labels through ``tick_params``, so ticks
    drawn later follow); returns how many texts grew. Lay the figure out again afterwards."""
    grown = 0
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            small = [t for t in axis.get_ticklabels(which="both") if t.get_fontsize() < min_pt]
            if small:
                ax.tick_params(axis=name, which="both", labelsize=min_pt)
                grown += len(small)
    for t in fig.findobj(Text):
        if t.get_fontsize() < min_pt:
            t.set_fontsize(min_pt)
            grown += 1
    for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if leg is not None and leg.prop.get_size_in_points() < min_pt:
            leg.prop.set_size(min_pt)
    return grown


def legend_below(ax, ncol: int = 2, **kwargs: Any):
    """The legend of ``ax`` under it, centred, clear of its tick labels and x label (never over the data);
    ``kwargs`` go to ``ax.legend`` (e.g. ``handles``). The layout leaves room for it."""
    axis_text = ax.axison and (ax.get_xlabel() or any(t.get_text() for t in ax.get_xticklabels()))
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False,
                     borderaxespad=3.6 if axis_text else 0.3, **kwargs)


class NotebookFigure(Figure):
    """A backend-free Figure that renders itself as PNG in Jupyter (IPython's ``_repr_png_`` protocol), with
    no text smaller than :data:`MIN_TEXT_PX` at the rendered width (see the module docstring)."""

    _layout_kwargs: dict | None = None

    def tight_layout(self, **kwargs: Any) -> None:
        """Raise small text to the floor for this figure's width, then ``Figure.tight_layout(**kwargs)``; the
        arguments are kept so that :func:`render_png` can lay the figure out again."""
        self._layout_kwargs = kwargs
        apply_text_floor(self, min_font_pt(self.get_figwidth() * self.dpi, self.dpi))
        super().tight_layout(**kwargs)

    def _repr_png_(self) -> bytes:
        return render_png(self)


def _png_width(png: bytes) -> int:
    return struct.unpack(">I", png[16:20])[0]         # the IHDR chunk's width field


def render_png(fig: Figure, dpi: int = DPI, attempts: int = 3) -> bytes:
    """``fig`` as PNG bytes (tight bounding box) whose smallest text shows at least :data:`MIN_TEXT_PX` high
    at :data:`RENDER_WIDTH_PX`: when the drawn PNG turns out wider than the figure (a legend outside the
    axes), the floor is raised for the real width and the figure laid out and drawn again. The PNG's
    ``tEXt`` chunk :data:`PNG_TEXT_KEY` holds its smallest text height in px at the PNG's own size."""
    png = b""
    for _ in range(attempts):
        smallest = smallest_text_pt(fig)
        meta = {} if smallest is None else {PNG_TEXT_KEY: f"{smallest * dpi / 72.0:.2f}"}
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata=meta)
        png = buf.getvalue()
        floor = min_font_pt(_png_width(png), dpi)
        if smallest is None or smallest >= floor - 1e-6:
            break
        apply_text_floor(fig, floor)
        layout = getattr(fig, "_layout_kwargs", None)
        if layout is not None:
            Figure.tight_layout(fig, **layout)
    return png


def new_figure(**kwargs: Any) -> NotebookFigure:
    """A new :class:`NotebookFigure` (``kwargs`` as for :class:`matplotlib.figure.Figure`, e.g. ``figsize``)
    at :data:`DPI` unless ``dpi`` is given."""
    kwargs.setdefault("dpi", DPI)
    return NotebookFigure(**kwargs)


def save_figure(fig: Figure, path: str | os.PathLike | None, dpi: int = DPI) -> Figure:
    """Write ``fig`` to ``path`` (format from the suffix, ``.png`` by default) atomically and return it.

    PNGs go through :func:`render_png` (the text floor, the smallest text size in the metadata). The file is
    drawn into a temporary file in the same folder and renamed over ``path``, so a reader (or a run killed
    mid-write) never sees half a PNG. ``path=None`` saves nothing: every plotting function of
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
            if path.suffix.lower() == ".png":
                fh.write(render_png(fig, dpi))
            else:
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
