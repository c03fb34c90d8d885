"""tools/render_docs.py: the rendered copy's figures are re-encoded smaller without changing their size."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from tools.render_docs import shrink_png


def _b64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def test_shrink_png_keeps_the_size_and_the_colours_of_a_plot():
    x = np.full((60, 90, 3), 255, np.uint8)
    x[10:50, 20:25] = (31, 119, 180)              # a bar in matplotlib's blue
    x[30:50, 40:45] = (255, 127, 14)              # and one in its orange
    x += np.random.default_rng(0).integers(0, 3, x.shape, dtype=np.uint8) * (x < 250)   # antialiasing noise
    before = _b64(Image.fromarray(x))
    after = shrink_png(before)
    img = Image.open(io.BytesIO(base64.b64decode(after))).convert("RGB")
    assert img.size == (90, 60) and len(after) <= len(before)
    assert np.abs(np.asarray(img, dtype=int) - x.astype(int)).max() <= 8        # a palette, not a blur


def test_shrink_png_leaves_an_image_it_cannot_shrink():
    tiny = _b64(Image.new("RGB", (1, 1), (0, 0, 0)))
    assert base64.b64decode(shrink_png(tiny))[:8] == b"\x89PNG\r\n\x1a\n"
