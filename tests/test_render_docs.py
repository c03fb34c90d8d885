"""tools/render_docs.py: the rendered copy's figures re-encoded smaller without changing their size, its math, and
the commit each page names."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from tools.render_docs import math_to_mathml, shrink_png


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


def test_shrink_png_keeps_the_figures_text_size_record():
    """The browser check reads the smallest text size from the PNG's tEXt chunk: re-encoding must keep it."""
    from PIL import PngImagePlugin

    from reid_uda_lib.viz.figure import PNG_TEXT_KEY
    x = np.full((60, 90, 3), 255, np.uint8)
    x[10:50, 20:25] = (31, 119, 180)
    x += np.random.default_rng(0).integers(0, 3, x.shape, dtype=np.uint8) * (x < 250)
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_TEXT_KEY, "12.50")
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="PNG", pnginfo=info)
    before = base64.b64encode(buf.getvalue()).decode("ascii")
    after = shrink_png(before)
    assert after != before                                  # re-encoded, and still carries the record
    assert Image.open(io.BytesIO(base64.b64decode(after))).text.get(PNG_TEXT_KEY) == "12.50"


def test_shrink_png_leaves_an_image_it_cannot_shrink():
    tiny = _b64(Image.new("RGB", (1, 1), (0, 0, 0)))
    assert base64.b64decode(shrink_png(tiny))[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_pages_math_is_mathml_that_draws_offline_and_code_is_left_alone():
    text = "Eq. 1: $$b = m(F) \\odot f$$ and inline $\\tau$, but `cost $5 and $6` and ```\n$x$\n``` stay."
    out = math_to_mathml(text)
    assert out.count("<math") == 2 and 'display="block"' in out and 'display="inline"' in out
    assert "<mo>&#x02299;</mo>" in out or "\u2299" in out or "odot" not in out      # \odot became a symbol
    assert "`cost $5 and $6`" in out and "```\n$x$\n```" in out
    assert "$$" not in out and "$\\tau$" not in out


def test_the_commit_a_page_names_says_when_the_notebooks_or_the_library_were_changed(tmp_path):
    import subprocess

    from tools.render_docs import _commit

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    for rel in ("notebooks/a.ipynb", "reid_uda_lib/m.py", "docs/a.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("0\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert _commit(tmp_path) == head
    (tmp_path / "docs/a.html").write_text("1\n")            # a rendering rewrites docs/: still the commit's code
    assert _commit(tmp_path) == head
    for rel in ("notebooks/a.ipynb", "reid_uda_lib/m.py"):
        (tmp_path / rel).write_text("1\n")
        assert _commit(tmp_path) == f"{head} + uncommitted changes", rel
        (tmp_path / rel).write_text("0\n")
    assert _commit(tmp_path / "nowhere") == "unknown"
