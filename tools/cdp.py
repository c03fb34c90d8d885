"""A minimal Chrome DevTools Protocol client for ``tools/browser_check.py``: headless Chromium driven over its
debugging websocket (``websocket-client``, a dependency of jupyter_server), only 127.0.0.1 reachable.

:class:`Browser` starts Chromium, loads a page, evaluates JavaScript in it, and captures a scrolling element
*whole*: it scrolls the element one viewport at a time and stitches the captures, so a notebook taller than
any window is still captured top to bottom (:meth:`Browser.capture_scroller`).
"""
from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

#: Finds the element that scrolls the open notebook (the descendant of the notebook panel with the tallest
#: scrollable content) and keeps it as ``window.__scroller``; returns its geometry, with ``contentHeight`` up
#: to the last cell's bottom (JupyterLab adds a screen of blank space after it, to scroll past the end).
FIND_SCROLLER_JS = r"""
(() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)') || document.body;
  let best = null;
  for (const el of panel.querySelectorAll('*')) {
    const oy = getComputedStyle(el).overflowY;
    if ((oy === 'auto' || oy === 'scroll') && el.scrollHeight > el.clientHeight + 1 &&
        (!best || el.scrollHeight > best.scrollHeight)) best = el;
  }
  best = best || document.scrollingElement;
  window.__scroller = best;
  const r = best.getBoundingClientRect();
  let bottom = 0;
  for (const cell of panel.querySelectorAll('.jp-Cell'))
    bottom = Math.max(bottom, cell.getBoundingClientRect().bottom - r.top + best.scrollTop);
  return {x: r.left, y: r.top, width: best.clientWidth, height: best.clientHeight,
          scrollHeight: best.scrollHeight,
          contentHeight: Math.min(best.scrollHeight, bottom > 0 ? Math.ceil(bottom) + 24 : best.scrollHeight)};
})()
"""


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, exe: str, work: Path, width: int = 1280, height: int = 2000, timeout: float = 60):
        import websocket          # websocket-client (installed with jupyter_server)

        self.profile = Path(work) / "chromium-profile"
        shutil.rmtree(self.profile, ignore_errors=True)
        self.profile.mkdir(parents=True)
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-default-apps", "--disable-extensions",
               "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--remote-debugging-port=0",
               f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"]
        self.log = open(Path(work) / "chromium.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.time() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.time() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not open its debugging port; see {Path(work) / 'chromium.log'}")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._id = 0
        self.width, self.height = width, height
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def send(self, method: str, **params: Any) -> dict:
        """Call one protocol method and return its result (events received meanwhile are dropped)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, js: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable; promises awaited)."""
        res = self.send("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript error: {res['exceptionDetails'].get('text')} "
                               f"{res['exceptionDetails'].get('exception', {}).get('description', '')}")
        return res.get("result", {}).get("value")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def screenshot(self):
        """The viewport as a PIL image."""
        from PIL import Image

        data = self.send("Page.captureScreenshot", format="png")["data"]
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")

    def capture_scroller(self, path: Path, settle_s: float = 0.4) -> dict:
        """Capture the whole content of the page's scrolling notebook element into one PNG at ``path``: scroll
        it one visible height at a time, capture each view, paste it at its scroll offset, down to the last
        cell. Returns the geometry (``contentHeight``, number of ``tiles``)."""
        from PIL import Image

        geo = self.evaluate(FIND_SCROLLER_JS)
        x, y = int(round(geo["x"])), int(round(geo["y"]))
        w, h, total = int(geo["width"]), int(geo["height"]), int(geo["contentHeight"])
        sheet = Image.new("RGB", (w, total), "white")
        overlap = 16                 # each later view drops its top rows (a scrolled panel draws a shadow there)
        offset, tiles = 0, 0
        while True:
            top = int(self.evaluate(f"(() => {{ window.__scroller.scrollTop = {offset}; "
                                    f"return window.__scroller.scrollTop; }})()"))
            time.sleep(settle_s)
            view = self.screenshot().crop((x, y, x + w, y + h))
            skip = overlap if tiles else 0
            sheet.paste(view.crop((0, skip, w, h)), (0, top + skip))
            tiles += 1
            if top + h >= total or top < offset:       # the last view (scrollTop clamps at the end)
                break
            offset = top + h - overlap
        self.evaluate("window.__scroller.scrollTop = 0")
        path.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(path)
        return {**geo, "tiles": tiles}

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
