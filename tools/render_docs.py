"""Render the notebook series into ``docs/``: executed notebooks and HTML pages a reviewer reads without
running anything (``make docs``; the README's rendered copy).

    python tools/render_docs.py                       # every notebook, cpu preset, into docs/
    python tools/render_docs.py --preset tiny --out /tmp/docs 02_disentanglement # a quick check

Each notebook is executed top to bottom with papermill in ``notebooks/`` (so its relative paths hold) with
``preset`` as its only parameter (it wins over the notebooks' ``REID_UDA_NOTEBOOK_PRESET`` default): the stages
are reused from, or trained into, the series' run folder ``runs/series-<preset>``, and every figure is also
saved there. The solutions switch is off, as in a student's kernel: the exercises show "no answer yet".
Progress bars are switched off (``TQDM_DISABLE=1``: the widgets' saved state would only add bytes). Each executed notebook is checked
with :mod:`tools.nbcheck` (figures drawn, no warning on stderr), then written as ``docs/<name>.ipynb`` and
``docs/<name>.html`` (figures embedded as PNG), and ``docs/README.md`` is rewritten after each notebook,
listing every executed notebook in the folder with its preset, run time and date (papermill's metadata). Files are written atomically; the command fails when a notebook fails its
checks or the folder passes ``--max-mb``.
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tools.nbcheck import notebook_problems  # noqa: E402


def _atomic_write(path: Path, data: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


#: the paths whose changes change a rendered page (a rendering rewrites docs/ itself, which must not count)
SOURCES = ("notebooks", "reid_uda_lib")


def _commit(repo: Path = REPO) -> str:
    """HEAD's short hash, with `` + uncommitted changes`` when the notebooks or the library differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--",
                                *SOURCES], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def render(notebook: Path, out: Path, preset: str) -> dict:
    """Execute ``notebook`` with ``preset``, check it, write ``out/<name>.ipynb`` and ``.html``; return a summary."""
    import nbformat
    import papermill

    os.environ["TQDM_DISABLE"] = "1"          # inherited by the kernel papermill starts
    os.environ.pop("REID_UDA_SOLUTIONS", None)  # a student's view: the exercises unanswered, no reference run
    # the kernel imports this checkout's library, whatever the environment's install points to
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / notebook.name
        papermill.execute_notebook(str(notebook), str(executed), parameters={"preset": preset},
                                   cwd=str(notebook.parent), kernel_name="python3", progress_bar=False)
        nb = nbformat.read(executed, as_version=4)
    seconds = time.time() - t0
    problems = notebook_problems(nb)
    if problems:
        raise RuntimeError(f"{notebook.name} fails the notebook checks:\n  " + "\n  ".join(problems))
    nb.metadata.pop("widgets", None)
    nb.metadata["reid_uda_lib"] = {"commit": _commit()}     # the code that produced these outputs
    return {"notebook": notebook.name, "seconds": round(seconds), "images": write_outputs(nb, out, notebook.name)}


def write_outputs(nb, out: Path, name: str) -> int:
    """Shrink the figures (:func:`shrink_png`), write ``out/<name>`` and its ``.html``; return the figure count."""
    import nbformat
    from nbconvert import HTMLExporter

    images = 0
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data") or {}
            if "image/png" in data:
                data["image/png"] = shrink_png(data["image/png"])
                images += 1
    page = copy.deepcopy(nb)            # the page's math as MathML; the .ipynb keeps its LaTeX (GitHub renders it)
    for cell in page.cells:
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(page)
    _atomic_write(out / name, nbformat.writes(nb))
    _atomic_write(out / (Path(name).stem + ".html"), body)
    return images


_CODE_OR_MATH = re.compile(r"(```.*?```|`[^`\n]*`)|\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$", re.S)


def math_to_mathml(markdown: str) -> str:
    """``$$...$$`` and ``$...$`` in a markdown text as MathML, which browsers draw without a script: the HTML pages
    show their equations offline (nbconvert's pages load MathJax from a CDN). Code spans and blocks are left as
    they are; a formula latex2mathml cannot read stays LaTeX."""
    from latex2mathml.converter import convert

    def one(m: re.Match) -> str:
        if m.group(1):
            return m.group(1)
        tex, display = (m.group(2), "block") if m.group(2) is not None else (m.group(3), "inline")
        try:
            return convert(tex.strip(), display=display)
        except Exception:               # latex2mathml raises its own several types; the LaTeX is still readable
            return m.group(0)
    return _CODE_OR_MATH.sub(one, markdown)


def shrink_png(b64: str) -> str:
    """A base64 PNG re-encoded with a 256-colour palette when that is smaller (same pixel size; plots have few
    colours, so the loss is invisible), else unchanged. Keeps the rendered copy small. The PNG's text chunks
    go with it (the smallest text size the library records in its figures, ``reid_uda_lib.viz.figure.PNG_TEXT_KEY``,
    which the browser check reads; same pixel size, so the value still holds)."""
    import base64
    import io
    from PIL import Image, PngImagePlugin

    raw = base64.b64decode(b64)
    original = Image.open(io.BytesIO(raw))
    info = PngImagePlugin.PngInfo()
    for key, value in getattr(original, "text", {}).items():
        info.add_text(key, value)
    img = original.convert("RGB")
    buf = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True, pnginfo=info)
    small = buf.getvalue()
    return base64.b64encode(small).decode("ascii") if len(small) < len(raw) else b64


def write_index(out: Path) -> str:
    """``out/README.md``: one row per executed notebook in ``out`` (preset, run time and date from papermill's
    metadata, figures counted), so the index always describes the files that are there."""
    import nbformat

    rows = ["# The notebook series, executed", "",
            "Rendered by `make docs` (`python tools/render_docs.py`). Open the `.html` "
            "pages in a browser (their equations are MathML: they show offline) or the `.ipynb` files in "
            "JupyterLab / on GitHub; nothing needs to run. The commit column names the code that produced the "
            "outputs; the run time is this rendering's, which reused the stages already trained (a first run "
            "trains them: with the `cpu` preset about 4–5 minutes per adaptation row on one core of the slower "
            "2-core CPU type). The preset is the one of the commit in each row (the `cpu` preset has adapted for 2 "
            "epochs since commit `437a543`; a page rendered before it shows the 4-epoch numbers). "
            "A notebook missing here has not been rendered yet: `make docs` renders every notebook, reusing "
            "the stages already trained in `runs/series-<preset>`.", "",
            "| notebook | page | preset | run time | figures | executed | commit |",
            "|---|---|---|---:|---:|---|---|"]
    for path in sorted(out.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        pm = nb.metadata.get("papermill", {})
        images = sum("image/png" in (o.get("data") or {}) for c in nb.cells for o in c.get("outputs", []))
        rows.append(f"| [{path.stem}]({path.name}) | [html]({path.stem}.html) | "
                    f"{pm.get('parameters', {}).get('preset', '?')} | {round(pm.get('duration') or 0)} s | "
                    f"{images} | {str(pm.get('end_time', '?'))[:16]} | "
                    f"`{nb.metadata.get('reid_uda_lib', {}).get('commit', '?')}` |")
    text = "\n".join(rows) + "\n"
    _atomic_write(out / "README.md", text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebook names (stems) to render; default: all of notebooks/")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    ap.add_argument("--max-mb", type=float, default=20.0, help="fail when the folder is larger (default 20)")
    ap.add_argument("--index-only", action="store_true", help="only rewrite out/README.md from the files there")
    ap.add_argument("--shrink-only", action="store_true",
                    help="no execution: shrink the figures of the executed notebooks in --out and rewrite their pages")
    args = ap.parse_args(argv)
    if args.shrink_only:
        import nbformat
        for path in sorted(args.out.glob("*.ipynb")):
            write_outputs(nbformat.read(path, as_version=4), args.out, path.name)
        args.index_only = True
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    if args.names:
        notebooks = [nb for nb in notebooks if nb.stem in args.names or nb.name in args.names]
        if not notebooks:
            print(f"no notebook named {args.names} in notebooks/", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.index_only:
        notebooks = []
    for nb in notebooks:
        print(f"rendering {nb.name} with preset {args.preset} ...", flush=True)
        done = render(nb, args.out, args.preset)
        print(f"  {done['seconds']} s, {done['images']} figures", flush=True)
        write_index(args.out)                 # after each notebook: a stopped run still leaves a usable index
    if not notebooks:
        write_index(args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2 ** 20
    print(f"{args.out}: {size:.1f} MB")
    if size > args.max_mb:
        print(f"the rendered copy is {size:.1f} MB, above --max-mb {args.max_mb}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
