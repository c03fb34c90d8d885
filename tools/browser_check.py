"""Render executed notebooks in JupyterLab with headless Chromium, whole, as a student would see them.

    python tools/browser_check.py                                   # notebook 01, ci preset
    python tools/browser_check.py --notebook notebooks/00_data_and_evaluation.ipynb
    python tools/browser_check.py --series                          # every notebook of the series
    python tools/browser_check.py --notebook notebooks/01_*.ipynb notebooks/05_*.ipynb
    python tools/browser_check.py --executed outputs/x/out.ipynb    # an already executed notebook

Steps: execute the notebook(s) with papermill (``ci`` preset, in ``notebooks/`` so its relative paths hold,
the solutions switch off as in a student's kernel; a fresh ``out_dir`` under ``outputs/browser_check/runs``
when it has one, so it trains as on a first run; the notebooks of one invocation share that folder, as the
series does, so a later chapter reuses the stages of an earlier one) into ``outputs/browser_check/notebook/``,
check its outputs (:mod:`tools.nbcheck`), start JupyterLab on 127.0.0.1 (a free port, a random token,
``--no-browser``, no news or update checks, every cell rendered, the executed notebooks trusted as a
student's own outputs are, widget state restored from the notebook once the kernel that opening a notebook
starts is there; nothing is executed), open each notebook in headless Chromium (all host names but 127.0.0.1 unresolvable, driven over
the DevTools protocol: :mod:`tools.cdp`), wait until every cell, image and widget has rendered, then:

* measure the page in the DOM, cell by cell (printed, one line per cell): the computed font size of every
  text in the outputs, each output image's drawn and natural width (with the smallest text size the library
  records in its figures' PNG metadata, ``reid_uda_lib.viz.figure.PNG_TEXT_KEY``, this gives the figures'
  smallest text as shown), progress-bar widgets, widget text fallbacks (a frozen ``0%|  | 0/8`` where a widget
  could not be restored), blank output boxes, stderr boxes;
* save the whole notebook as one screenshot (``outputs/browser_check/<name>.png``: the notebook scrolled
  one view at a time and stitched) and the DOM (``<name>.dom.html``);
* fail on: the title missing, fewer cells or images than the notebook has, text below
  ``MIN_TEXT_PX`` (10 px) in an output or a figure, any widget text fallback or widget error, a blank output
  box taller than 30 px, a stderr box, an output problem of :mod:`tools.nbcheck`; with several notebooks,
  also when JupyterLab's file listing (contents API) misses one.

Exit status 0 when all holds, 1 when not; without Chromium (``chromium``, ``chromium-browser``,
``google-chrome`` or ``$CHROMIUM``) it says so and exits 0 (Debian: ``apt-get install chromium``).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from reid_uda_lib.viz.figure import MIN_TEXT_PX, PNG_TEXT_KEY  # noqa: E402  (the floor the figures keep)
from tools.nbcheck import IMAGE_MIME, notebook_problems  # noqa: E402

OUT = REPO / "outputs" / "browser_check"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
BLANK_OUTPUT_PX = 30          # an output box this tall with nothing in it is a gap on the page
_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_LAB_SETTINGS = {  # render every cell (JupyterLab 4 only renders the visible ones), fetch nothing
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    # draw the progress-bar widgets from the state saved in the executed notebook, as they were at the end
    "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
}

#: Whether the open notebook has rendered: cells, images still loading, widgets still loading.
READY_JS = r"""
(() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return {cells: 0, pending: 1, loading: 0, widgets: 0};
  const imgs = [...nb.querySelectorAll('.jp-OutputArea-output img')];
  return {cells: nb.querySelectorAll('.jp-Cell').length,
          pending: imgs.filter(i => !i.complete || i.naturalWidth === 0).length,
          loading: (nb.innerText.match(/Loading widget/g) || []).length,
          widgets: nb.querySelectorAll('.widget-hprogress, .widget-vprogress').length};
})()
"""

#: Cell by cell, what the page shows: see the module docstring.
MEASURE_JS = r"""
(() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return null;
  const TQDM = /\d+%\|[^\n]*\|\s*\d+\/\d+/;
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const cells = [...nb.querySelectorAll('.jp-Cell')].map((cell, index) => {
    const kind = cell.classList.contains('jp-CodeCell') ? 'code' :
                 cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw';
    let minPx = null, sample = '';
    for (const out of cell.querySelectorAll('.jp-OutputArea-output')) {
      const walk = document.createTreeWalker(out, NodeFilter.SHOW_TEXT);
      for (let node = walk.nextNode(); node; node = walk.nextNode()) {
        const text = node.textContent.trim();
        if (!text || !node.parentElement || !shown(node.parentElement)) continue;
        const px = parseFloat(getComputedStyle(node.parentElement).fontSize);
        if (minPx === null || px < minPx) { minPx = px; sample = text.slice(0, 60); }
      }
    }
    const images = [...cell.querySelectorAll('.jp-OutputArea-output img')].map(
      img => ({natural: img.naturalWidth, shown: img.getBoundingClientRect().width}));
    const texts = [...cell.querySelectorAll('.jp-OutputArea-output')].map(t => t.innerText);
    const blank = [...cell.querySelectorAll('.jp-OutputArea-child')].filter(child => {
      const h = child.getBoundingClientRect().height;
      const content = child.querySelector('.jp-OutputArea-output');
      return h > %BLANK% && content && !content.innerText.trim() &&
             !content.querySelector('img, svg, canvas, .jupyter-widgets, table');
    }).length;
    return {index, kind,
            first_line: (cell.querySelector('.jp-InputArea-editor, .jp-MarkdownOutput') || cell)
                          .innerText.trim().split('\n')[0].slice(0, 70),
            outputs: cell.querySelectorAll('.jp-OutputArea-child').length,
            min_text_px: minPx, min_text_sample: sample, images,
            widgets: cell.querySelectorAll('.widget-hprogress, .widget-vprogress').length,
            widget_outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].filter(
              out => out.querySelector(':scope > .jupyter-widgets')).length,
            widget_fallbacks: texts.filter(t => TQDM.test(t)).length,
            widget_errors: texts.filter(t => /Error displaying widget|model not found|Loading widget/.test(t)).length,
            stderr_boxes: cell.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').length,
            blank_outputs: blank};
  });
  return {cells, text: nb.innerText.slice(0, 2000)};
})()
""".replace("%BLANK%", str(BLANK_OUTPUT_PX))


def find_chromium() -> str | None:
    """The Chromium executable: ``$CHROMIUM`` or the first of the usual names on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    return next((shutil.which(n) for n in _CHROMIUMS if shutil.which(n)), None)


def execute(notebook: Path, out: Path, preset: str, runs: Path | None) -> Path:
    """Run ``notebook`` top to bottom with papermill in its own folder; write the executed copy to ``out``.

    ``runs``: a fresh ``out_dir`` for a notebook that trains (so the page shows a first run, progress bars
    and all), or None to keep the notebook's own (reusing the stages found there). The kernel runs without
    the solutions switch, as a student's does (the exercises say "no answer yet").
    """
    import papermill

    os.environ.pop("REID_UDA_SOLUTIONS", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"preset": preset}
    if runs is not None:
        params["out_dir"] = str(runs.resolve())
    papermill.execute_notebook(str(notebook), str(out), parameters=params, cwd=str(notebook.parent),
                               kernel_name="python3", progress_bar=False)
    return out


def nbformat_params(notebook: Path) -> str:
    """The source of the notebook's ``parameters`` cell ("" when it has none)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    return next(("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notary_files(work: Path) -> dict:
    return {"db_file": str(work / "nbsignatures.db"), "secret_file": str(work / "notebook_secret")}


def trust(executed: list[Path], work: Path) -> None:
    """Sign the executed notebooks in a notary of this check's own (not the user's), as JupyterLab signs the
    outputs a student produced: the widget renderer is not "safe", so an untrusted notebook shows every
    progress bar as its text fallback."""
    import nbformat
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary(**_notary_files(work))
    for path in executed:
        notary.sign(nbformat.read(path, as_version=4))


def start_lab(root: Path, work: Path) -> tuple[subprocess.Popen, str, str]:
    """Start JupyterLab serving ``root`` on 127.0.0.1 (trusting what :func:`trust` signed); return (process,
    base URL, token) once it answers."""
    settings = work / "lab-settings"
    for name, values in _LAB_SETTINGS.items():
        (settings / Path(name).parent).mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(work / "ws"),
           "JUPYTER_RUNTIME_DIR": str(work / "runtime")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly",
           *(f"--NotebookNotary.{k}={v}" for k, v in _notary_files(work).items())]
    # opening a notebook starts its kernel, as for a student: the widget manager restores the progress bars
    # from the notebook's saved widget state only once a kernel is there (ipywidgets 8's restoreWidgets gives
    # up without one, and every bar then shows its text fallback)
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines often run as root
        cmd.append("--allow-root")
    log = open(work / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {proc.returncode}; see {work / 'jupyterlab.log'}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                if r.status == 200:
                    return proc, base, token
        except OSError:
            time.sleep(1)
    proc.terminate()
    raise RuntimeError(f"JupyterLab did not answer on {base} within 120 s; see {work / 'jupyterlab.log'}")


def png_text_px(b64: str) -> float | None:
    """The smallest text size (px at the PNG's own size) a library figure records in its PNG; None if absent."""
    from PIL import Image

    value = Image.open(io.BytesIO(base64.b64decode(b64))).text.get(PNG_TEXT_KEY)
    return float(value) if value else None


def notebook_widgets(nb: dict) -> dict[int, int]:
    """Per cell index, how many widget outputs (tqdm's progress bars here) it holds."""
    return {i: n for i, cell in enumerate(nb["cells"])
            if (n := sum(WIDGET_MIME in (o.get("data") or {}) for o in cell.get("outputs", [])))}


def notebook_images(nb: dict) -> dict[int, list[dict]]:
    """Per cell index, its ``image/png`` outputs: natural width and recorded smallest text size."""
    from PIL import Image

    found: dict[int, list[dict]] = {}
    for i, cell in enumerate(nb["cells"]):
        for o in cell.get("outputs", []):
            b64 = (o.get("data") or {}).get(IMAGE_MIME)
            if b64:
                b64 = "".join(b64) if isinstance(b64, list) else b64
                width = Image.open(io.BytesIO(base64.b64decode(b64))).size[0]
                found.setdefault(i, []).append({"width": width, "text_px": png_text_px(b64)})
    return found


def cell_failures(cell: dict, expected_images: list[dict], expected_widgets: int = 0) -> tuple[list[str], str]:
    """The failures of one measured cell (:data:`MEASURE_JS`) and its printed summary line."""
    fails = []
    if cell.get("widget_outputs", 0) < expected_widgets:
        fails.append(f"{cell.get('widget_outputs', 0)} of {expected_widgets} widget output(s) drawn as widgets")
    if cell["min_text_px"] is not None and cell["min_text_px"] < MIN_TEXT_PX - 0.05:
        fails.append(f"output text at {cell['min_text_px']:g} px (< {MIN_TEXT_PX:g}): {cell['min_text_sample']!r}")
    if len(cell["images"]) < len(expected_images):
        fails.append(f"{len(cell['images'])} image(s) drawn, the notebook has {len(expected_images)}")
    figure_px = []
    for img, rec in zip(cell["images"], expected_images):
        if rec["text_px"] is None:
            fails.append("an image without its text-size record (PNG tEXt "
                         f"{PNG_TEXT_KEY!r}): draw figures with reid_uda_lib.viz")
            continue
        if not img["natural"]:
            continue
        px = rec["text_px"] * img["shown"] / img["natural"]
        figure_px.append(px)
        if px < MIN_TEXT_PX - 0.05:
            fails.append(f"figure text at {px:.1f} px (< {MIN_TEXT_PX:g}): smallest text {rec['text_px']:g} px "
                         f"in a {img['natural']} px PNG drawn {img['shown']:.0f} px wide")
    for key, what in (("widget_fallbacks", "progress bar(s) shown as frozen text (no widget state)"),
                      ("widget_errors", "widget(s) that did not render"),
                      ("blank_outputs", f"blank output box(es) taller than {BLANK_OUTPUT_PX} px"),
                      ("stderr_boxes", "stderr box(es)")):
        if cell[key]:
            fails.append(f"{cell[key]} {what}")
    parts = [f"cell {cell['index']:2d} {cell['kind']:8s} {cell['first_line'][:48]!r:52s}"]
    if cell["outputs"]:
        parts.append(f"{cell['outputs']} output(s)")
    if cell["min_text_px"] is not None:
        parts.append(f"text >= {cell['min_text_px']:g} px")
    if cell["images"]:
        sizes = ", ".join(f"{i['natural']}->{i['shown']:.0f} px" for i in cell["images"])
        parts.append(f"{len(cell['images'])} image(s) ({sizes})"
                     + (f", figure text >= {min(figure_px):.1f} px" if figure_px else ""))
    if cell["widgets"]:
        parts.append(f"{cell['widgets']} progress bar(s)")
    line = "  ".join(parts) + ("  FAIL" if fails else "")
    return fails, line


def page_failures(report: dict | None, nb: dict, title: str) -> tuple[list[str], list[str]]:
    """All failures of one measured page against its executed notebook, and the per-cell lines to print."""
    if report is None:
        return ["the page shows no notebook"], []
    fails = []
    if title not in report["text"]:
        fails.append(f"the page does not show the notebook (title {title!r} not found)")
    if len(report["cells"]) != len(nb["cells"]):
        fails.append(f"the page shows {len(report['cells'])} cells, the notebook has {len(nb['cells'])}")
    images, widgets = notebook_images(nb), notebook_widgets(nb)
    lines = []
    for cell in report["cells"]:
        cell_fails, line = cell_failures(cell, images.get(cell["index"], []), widgets.get(cell["index"], 0))
        fails += [f"cell {cell['index']}: {f}" for f in cell_fails]
        lines.append(line)
    return fails, lines


def _wait_rendered(browser, n_cells: int, timeout: float = 240) -> dict:
    """Poll until every cell, image and widget has rendered and the counts hold still for 3 s."""
    deadline, last, stable = time.time() + timeout, None, 0
    state = {}
    while time.time() < deadline:
        state = browser.evaluate(READY_JS) or {}
        done = state.get("cells", 0) >= n_cells and not state.get("pending") and not state.get("loading")
        stable = stable + 1 if done and state == last else 0
        if stable >= 3:
            break
        last = state
        time.sleep(1)
    return state


def check_page(browser, base: str, token: str, executed: Path, out: Path) -> list[str]:
    """Render one executed notebook (served by the running JupyterLab), capture it whole, return its failures."""
    nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    problems = notebook_problems(nb)
    title = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    title = "".join(title["source"]).splitlines()[0].lstrip("# ").strip()
    browser.navigate(f"{base}/lab/tree/{Path(executed).name}?token={token}&reset")
    time.sleep(2)
    state = _wait_rendered(browser, len(nb["cells"]))
    report = browser.evaluate(MEASURE_JS)
    png = out / (Path(executed).stem + ".png")
    geo = browser.capture_scroller(png)
    (out / (Path(executed).stem + ".dom.html")).write_text(browser.evaluate("document.documentElement.outerHTML"))
    fails, lines = page_failures(report, nb, title)
    print(f"\n{Path(executed).name}: {len(nb['cells'])} cells, whole page {geo['width']}x{geo['contentHeight']} px in "
          f"{geo['tiles']} view(s) -> {png}; {state.get('widgets', 0)} progress bar(s)")
    for line in lines:
        print("  " + line)
    fails = [f"output check: {p}" for p in problems] + fails
    return [f"{Path(executed).name}: {f}" for f in fails]


def listed(base: str, token: str, names: list[str]) -> list[str]:
    """The names JupyterLab's contents API does not list in its root folder."""
    with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=30) as r:
        shown = {item["name"] for item in json.load(r)["content"]}
    return [n for n in names if n not in shown]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notebook", type=Path, nargs="+",
                    default=[REPO / "notebooks" / "01_pretrain_and_sbase.ipynb"])
    ap.add_argument("--series", action="store_true", help="every notebook in notebooks/, in order")
    ap.add_argument("--executed", type=Path, nargs="+", help="already executed notebooks (skips the execution)")
    ap.add_argument("--preset", default="ci")
    ap.add_argument("--out", type=Path, default=OUT, help="artefact folder (default: outputs/browser_check)")
    args = ap.parse_args(argv)

    exe = find_chromium()
    if exe is None:
        print("SKIP: Chromium not found (looked for $CHROMIUM, " + ", ".join(_CHROMIUMS) + "); "
              "install it (Debian: apt-get install chromium) to run the browser check.")
        return 0
    try:
        from tools.cdp import Browser
    except ImportError as exc:          # websocket-client comes with jupyter_server (make setup-dev)
        print(f"SKIP: {exc}; install the dev extras (make setup-dev) to run the browser check.")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.executed is None:
        notebooks = sorted((REPO / "notebooks").glob("*.ipynb")) if args.series else args.notebook
        shutil.rmtree(args.out / "runs", ignore_errors=True)        # a first run: the series trains its stages
        executed = []
        for notebook in notebooks:
            runs = args.out / "runs" if "out_dir" in nbformat_params(notebook) else None
            t0 = time.time()
            executed.append(execute(notebook.resolve(), args.out / "notebook" / notebook.name, args.preset, runs))
            print(f"executed {notebook.name} ({args.preset} preset) in {time.time() - t0:.0f} s", flush=True)
    else:
        executed = args.executed
    roots = {Path(e).resolve().parent for e in executed}
    if len(roots) != 1:
        print(f"the executed notebooks must be in one folder (JupyterLab serves one root); got {sorted(roots)}")
        return 2

    work = args.out / "lab"  # settings, JupyterLab's and Chromium's logs, the throw-away browser profile
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    trust([Path(e) for e in executed], work)
    proc, base, token = start_lab(roots.pop(), work)
    failures = []
    try:
        missing = listed(base, token, [Path(e).name for e in executed])
        failures += [f"JupyterLab does not list {n}" for n in missing]
        with Browser(exe, work) as browser:
            for e in executed:
                failures += check_page(browser, base, token, Path(e), args.out)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print()
    for f in failures:
        print("FAIL:", f)
    print(f"OK: {len(executed)} notebook(s) render whole in JupyterLab: every figure, no text under "
          f"{MIN_TEXT_PX:g} px, no widget fallback, no blank gap, no stderr box" if not failures
          else f"browser check failed: {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
