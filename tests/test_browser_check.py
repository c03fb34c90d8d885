"""tools/browser_check.py's verdict on a measured page (no browser needed): widget fallbacks, blank gaps,
stderr boxes, text under the floor in outputs and in figures as drawn, cells and images missing."""
from __future__ import annotations

import base64

import pytest

from reid_uda_lib import viz
from tools.browser_check import MIN_TEXT_PX, cell_failures, notebook_images, page_failures, png_text_px


def _cell(index=0, **kw):
    cell = {"index": index, "kind": "code", "first_line": "x = 1", "outputs": 1, "min_text_px": 13.0,
            "min_text_sample": "x", "images": [], "widgets": 0, "widget_outputs": 0, "widget_fallbacks": 0,
            "widget_errors": 0,
            "stderr_boxes": 0, "blank_outputs": 0}
    return {**cell, **kw}


def _figure_png(width_in: float) -> str:
    fig = viz.new_figure(figsize=(width_in, 2))
    fig.subplots().plot([0, 1])
    fig.tight_layout()
    return base64.b64encode(fig._repr_png_()).decode()


def _notebook(png: str | None = None):
    outputs = [{"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}] if png else []
    return {"cells": [{"cell_type": "markdown", "source": "# 02 · A title\n", "metadata": {}},
                      {"cell_type": "code", "source": "plot()", "metadata": {}, "outputs": outputs}]}


def test_a_clean_cell_passes_and_is_described():
    fails, line = cell_failures(_cell(widgets=2, widget_outputs=2), [], expected_widgets=2)
    assert fails == [] and line.startswith("cell  0 code") and "2 progress bar(s)" in line and "FAIL" not in line


def test_widget_outputs_drawn_as_text_fail():
    """An untrusted notebook, or one without widget state, draws a bar's text/plain fallback instead."""
    fails, _ = cell_failures(_cell(widget_outputs=0), [], expected_widgets=3)
    assert fails == ["0 of 3 widget output(s) drawn as widgets"]


@pytest.mark.parametrize("defect, expected", [
    ({"widget_fallbacks": 3}, "3 progress bar(s) shown as frozen text"),
    ({"widget_errors": 1}, "1 widget(s) that did not render"),
    ({"blank_outputs": 2}, "2 blank output box(es)"),
    ({"stderr_boxes": 1}, "1 stderr box(es)"),
    ({"min_text_px": 8.0, "min_text_sample": "tiny"}, "output text at 8 px"),
])
def test_each_defect_fails_the_cell(defect, expected):
    fails, line = cell_failures(_cell(**defect), [])
    assert len(fails) == 1 and expected in fails[0] and line.endswith("FAIL"), fails


def test_figure_text_is_judged_at_the_width_it_is_drawn():
    png = _figure_png(6)
    rec = notebook_images(_notebook(png))[1]
    natural = rec[0]["width"]
    assert png_text_px(png) == pytest.approx(rec[0]["text_px"]) and rec[0]["text_px"] >= MIN_TEXT_PX
    ok, _ = cell_failures(_cell(1, images=[{"natural": natural, "shown": natural}]), rec)
    assert ok == []
    shrunk, _ = cell_failures(_cell(1, images=[{"natural": natural, "shown": natural * 0.5}]), rec)
    assert len(shrunk) == 1 and "figure text at" in shrunk[0]       # a page that shows it at half its size
    missing, _ = cell_failures(_cell(1, images=[]), rec)
    assert "0 image(s) drawn, the notebook has 1" in missing[0]
    unrecorded, _ = cell_failures(_cell(1, images=[{"natural": natural, "shown": natural}]),
                                  [{"width": natural, "text_px": None}])     # a figure drawn outside the library
    assert len(unrecorded) == 1 and "without its text-size record" in unrecorded[0]


def test_page_failures_title_and_cells():
    nb = _notebook()
    report = {"text": "02 · A title\nplot()", "cells": [_cell(0, kind="markdown"), _cell(1)]}
    assert page_failures(report, nb, "02 · A title")[0] == []
    fails, lines = page_failures({**report, "cells": report["cells"][:1]}, nb, "03 · Other")
    assert any("title '03 · Other' not found" in f for f in fails)
    assert any("shows 1 cells, the notebook has 2" in f for f in fails) and len(lines) == 1
    assert page_failures(None, nb, "x")[0] == ["the page shows no notebook"]
