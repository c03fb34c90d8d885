"""Render an executed notebook in JupyterLab with headless Chromium, as a student would see it.

    python tools/browser_check.py                                   # notebook 01, ci preset
    python tools/browser_check.py --notebook notebooks/00_data_and_evaluation.ipynb
    python tools/browser_check.py --series                          # every notebook of the series
    python tools/browser_check.py --notebook notebooks/01_*.ipynb notebooks/05_*.ipynb
    python tools/browser_check.py --executed outputs/x/out.ipynb    # an already executed notebook

Steps: execute the notebook(s) with papermill (``ci`` preset, in ``notebooks/`` so its relative paths hold;
a fresh ``out_dir`` under ``outputs/browser_check/runs`` when it has one, so it trains as on a first run;
the notebooks of one invocation share that folder, as the series does, so a later chapter reuses the
stages of an earlier one)
into ``outputs/browser_check/notebook/``, check its outputs (:mod:`tools.nbcheck`), start JupyterLab on 127.0.0.1
(a free port, a random token, ``--no-browser``, no kernel, no news or update checks), load the notebook in
headless Chromium (all host names but 127.0.0.1 unresolvable), save a screenshot
(``outputs/browser_check/<name>.png``) and the DOM, and check that the page shows the notebook (its title),
one rendered ``<img>`` per ``image/png`` output and no stderr box; with several notebooks, also that
JupyterLab's file listing (contents API) shows every one of them. Exit status 0 when all holds, 1 when
not; without Chromium (``chromium``, ``chromium-browser``, ``google-chrome`` or ``$CHROMIUM``) it says so
and exits 0 (Debian: ``apt-get install chromium``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
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
from tools.nbcheck import IMAGE_MIME, notebook_problems  # noqa: E402

OUT = REPO / "outputs" / "browser_check"
_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_LAB_SETTINGS = {  # render every cell (JupyterLab 4 only renders the visible ones), fetch nothing
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    # draw the progress-bar widgets from the state saved in the executed notebook, as they were at the end
    "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
}


def find_chromium() -> str | None:
    """The Chromium executable: ``$CHROMIUM`` or the first of the usual names on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    return next((shutil.which(n) for n in _CHROMIUMS if shutil.which(n)), None)


def execute(notebook: Path, out: Path, preset: str, runs: Path | None) -> Path:
    """Run ``notebook`` top to bottom with papermill in its own folder; write the executed copy to ``out``.

    ``runs``: a fresh ``out_dir`` for a notebook that trains (so the page shows a first run, progress bars
    and all), or None to keep the notebook's own (reusing the stages found there).
    """
    import papermill

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


def start_lab(root: Path, work: Path) -> tuple[subprocess.Popen, str, str]:
    """Start JupyterLab serving ``root`` on 127.0.0.1; return (process, base URL, token) once it answers."""
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
           "--LabApp.extension_manager=readonly", "--LabApp.notebook_starts_kernel=False"]
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


def chromium(exe: str, url: str, work: Path, *args: str, budget_ms: int = 40000, timeout: int = 240) -> str:
    """Load ``url`` in headless Chromium (only 127.0.0.1 resolvable) with ``args``; return its stdout."""
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
           "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           f"--user-data-dir={work / 'chromium-profile'}", "--window-size=1280,3000",
           f"--virtual-time-budget={budget_ms}", *args, url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"chromium exited with status {res.returncode}: {res.stderr[-2000:]}")
    return res.stdout


def dom_report(dom: str, title: str) -> dict:
    """What the rendered page shows: the notebook title, rendered output images, stderr boxes, widgets."""
    return {"title_shown": title in dom,
            "cells": len(re.findall(r'class="[^"]*\bjp-Cell[\s"]', dom)),
            "output_images": len(re.findall(r'<img[^>]*src="data:image/png', dom)),
            "stderr_boxes": len(re.findall(r'data-mime-type="application/vnd\.jupyter\.stderr"', dom)),
            "progress_widgets": len(re.findall(r'class="[^"]*\bwidget-(h|v)?progress\b', dom)),
            "widget_text_fallbacks": len(re.findall(r'\d+%\|[^<]*\|\s*\d+/\d+', dom))}


def check_page(exe: str, base: str, token: str, work: Path, executed: Path, out: Path) -> list[str]:
    """Render one executed notebook (served by the running JupyterLab) and return its failures."""
    nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    problems = notebook_problems(nb)
    expected = sum(IMAGE_MIME in (o.get("data") or {}) for c in nb["cells"] for o in c.get("outputs", []))
    title = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    title = "".join(title["source"]).splitlines()[0].lstrip("# ").strip()
    url = f"{base}/lab/tree/{Path(executed).name}?token={token}&reset"
    png = out / (Path(executed).stem + ".png")
    chromium(exe, url, work, f"--screenshot={png}")
    dom = chromium(exe, url, work, "--dump-dom")
    (out / (Path(executed).stem + ".dom.html")).write_text(dom)
    seen = dom_report(dom, title)
    print(json.dumps({"executed": str(executed), "screenshot": str(png), "expected_images": expected,
                      "output_problems": problems, **seen}, indent=2, ensure_ascii=False))
    failures = [f"output check: {p}" for p in problems]
    if not seen["title_shown"]:
        failures.append(f"the page does not show the notebook (title {title!r} not in the DOM)")
    if seen["output_images"] < max(expected, 1):
        failures.append(f"{seen['output_images']} rendered output image(s), expected {max(expected, 1)}")
    if seen["stderr_boxes"]:
        failures.append(f"{seen['stderr_boxes']} stderr output box(es) on the page")
    return [f"{Path(executed).name}: {f}" for f in failures]


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
    args.out.mkdir(parents=True, exist_ok=True)
    if args.executed is None:
        notebooks = sorted((REPO / "notebooks").glob("*.ipynb")) if args.series else args.notebook
        shutil.rmtree(args.out / "runs", ignore_errors=True)        # a first run: the series trains its stages
        executed = []
        for notebook in notebooks:
            runs = args.out / "runs" if "out_dir" in nbformat_params(notebook) else None
            executed.append(execute(notebook.resolve(), args.out / "notebook" / notebook.name, args.preset, runs))
    else:
        executed = args.executed
    roots = {Path(e).resolve().parent for e in executed}
    if len(roots) != 1:
        print(f"the executed notebooks must be in one folder (JupyterLab serves one root); got {sorted(roots)}")
        return 2

    work = args.out / "lab"  # settings, JupyterLab's log, the throw-away browser profile
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    proc, base, token = start_lab(roots.pop(), work)
    failures = []
    try:
        missing = listed(base, token, [Path(e).name for e in executed])
        failures += [f"JupyterLab does not list {n}" for n in missing]
        for e in executed:
            failures += check_page(exe, base, token, work, Path(e), args.out)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work / "chromium-profile", ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    print(f"OK: {len(executed)} notebook(s) and their figures render in JupyterLab" if not failures
          else "browser check failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
