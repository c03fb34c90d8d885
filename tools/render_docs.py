"""Render the notebook series into ``docs/``: executed notebooks and HTML pages a reviewer reads without
running anything (``make docs``; the README's rendered copy).

    python tools/render_docs.py                       # every notebook, cpu preset, into docs/
    python tools/render_docs.py --preset ci --out /tmp/docs 02_disentanglement   # a quick check

Each notebook is executed top to bottom with papermill in ``notebooks/`` (so its relative paths hold) with
``preset`` as its only parameter: the stages are reused from, or trained into, the series' run folder
``runs/series-<preset>``, and every figure is also saved there. Progress bars are switched off
(``TQDM_DISABLE=1``: the widgets' saved state would only add bytes). Each executed notebook is checked
with :mod:`tools.nbcheck` (figures drawn, no warning on stderr), then written as ``docs/<name>.ipynb`` and
``docs/<name>.html`` (figures embedded as PNG), with ``docs/README.md`` listing them with the preset, the
commit and the time each took. Files are written atomically; the command fails when a notebook fails its
checks or the folder passes ``--max-mb``.
"""
from __future__ import annotations

import argparse
import json
import os
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


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(notebook: Path, out: Path, preset: str) -> dict:
    """Execute ``notebook`` with ``preset``, check it, write ``out/<name>.ipynb`` and ``.html``; return a summary."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    os.environ["TQDM_DISABLE"] = "1"          # inherited by the kernel papermill starts
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
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    _atomic_write(out / notebook.name, nbformat.writes(nb))
    _atomic_write(out / (notebook.stem + ".html"), body)
    images = sum("image/png" in (o.get("data") or {}) for c in nb.cells for o in c.get("outputs", []))
    return {"notebook": notebook.name, "seconds": round(seconds), "images": images}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebook names (stems) to render; default: all of notebooks/")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    ap.add_argument("--max-mb", type=float, default=20.0, help="fail when the folder is larger (default 20)")
    args = ap.parse_args(argv)
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    if args.names:
        notebooks = [nb for nb in notebooks if nb.stem in args.names or nb.name in args.names]
        if not notebooks:
            print(f"no notebook named {args.names} in notebooks/", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks:
        print(f"rendering {nb.name} with preset {args.preset} ...", flush=True)
        done.append(render(nb, args.out, args.preset))
        print(f"  {done[-1]['seconds']} s, {done[-1]['images']} figures", flush=True)
    index = ["# The notebook series, executed", "",
             f"Executed with the `{args.preset}` preset at commit `{_commit()}` by `make docs` "
             "(`python tools/render_docs.py`). Open the `.html` pages in a browser or the `.ipynb` files in "
             "JupyterLab / on GitHub; nothing needs to run.", "",
             "| notebook | page | run time | figures |", "|---|---|---:|---:|"]
    known = {d["notebook"]: d for d in done}
    old = args.out / "render.json"
    if old.is_file():                         # keep the rows of notebooks not rendered this time
        known = {**{d["notebook"]: d for d in json.loads(old.read_text())}, **known}
    for name in sorted(known):
        d = known[name]
        stem = Path(name).stem
        index.append(f"| [{stem}]({name}) | [html]({stem}.html) | {d['seconds']} s | {d['images']} |")
    _atomic_write(args.out / "README.md", "\n".join(index) + "\n")
    _atomic_write(old, json.dumps(list(known.values()), indent=1))
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2 ** 20
    print(f"{args.out}: {size:.1f} MB")
    if size > args.max_mb:
        print(f"the rendered copy is {size:.1f} MB, above --max-mb {args.max_mb}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
