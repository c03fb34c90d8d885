"""Checks on a notebook's *executed* outputs, as a student sees them in JupyterLab.

Used by the repository's ``conftest.py`` on the outputs nbval collects while it runs ``notebooks/`` (so the
notebooks are executed once per test run, not twice), by ``tools/browser_check.py`` on a notebook executed
with papermill, and directly::

    python -m tools.nbcheck executed.ipynb        # exit status 1 and one line per problem

The rules, per code cell:

* a cell tagged ``figure`` has an ``image/png`` output (the figure really displays);
* no stderr stream contains ``Warning``, ``Error`` or ``Traceback`` (red boxes on the normal path), tqdm
  progress-bar text aside;
* no output is a bare ``<Figure size ...>`` text repr (a figure that did not render).
"""
from __future__ import annotations

import re
import sys
from typing import Any, Iterable, Mapping, Sequence

FIGURE_TAG = "figure"
IMAGE_MIME = "image/png"
_BAD_STDERR = re.compile(r"Warning|Error|Traceback")
_FIGURE_REPR = re.compile(r"<Figure size [^>]*>")
# a tqdm text bar: "desc:  50%|█████     | 4/8 [00:01<00:01, 3.2it/s, loss=1.2]" (also without the percentage)
_TQDM_BAR = re.compile(r"(\d+%\|.*\|)|(\|\s*\d+/\d+\s*\[)|(\d+(\.\d+)?(it/s|s/it)\b)")


def _text(value: Any) -> str:
    """Output text as one string (nbformat stores it as a string or, on disk, as a list of lines)."""
    return "".join(value) if isinstance(value, (list, tuple)) else str(value or "")


def _without_progress_bars(text: str) -> str:
    """Drop the tqdm bar segments (split on carriage returns and newlines) from a stderr text."""
    return "\n".join(seg for seg in re.split(r"[\r\n]+", text) if seg.strip() and not _TQDM_BAR.search(seg))


def output_problems(outputs: Sequence[Mapping[str, Any]], tags: Iterable[str] = ()) -> list[str]:
    """The problems in one code cell's executed ``outputs`` (nbformat output dicts); ``[]`` when clean."""
    problems = []
    has_image = False
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text = _text(out.get("text"))
            if out.get("name") == "stderr":
                bad = _without_progress_bars(text)
                if _BAD_STDERR.search(bad):
                    problems.append(f"stderr shows a warning or error: {bad.strip()[:300]!r}")
            if _FIGURE_REPR.search(text):
                problems.append(f"a figure was printed as text instead of drawn: {text.strip()[:120]!r}")
        elif kind in ("display_data", "execute_result"):
            data = out.get("data") or {}
            if IMAGE_MIME in data:
                has_image = True
            elif _FIGURE_REPR.search(_text(data.get("text/plain"))):
                problems.append(f"a figure shows only as its text repr {_text(data['text/plain'])!r} "
                                f"(no {IMAGE_MIME}: is a backend forced, or the cell ended with ';'?)")
        elif kind == "error":
            problems.append(f"the cell raised {out.get('ename')}: {out.get('evalue')}")
    if FIGURE_TAG in tags and not has_image:
        problems.append(f"the cell is tagged '{FIGURE_TAG}' but has no {IMAGE_MIME} output "
                        f"(output types: {[o.get('output_type') for o in outputs]})")
    return problems


def notebook_problems(nb: Mapping[str, Any]) -> list[str]:
    """Every problem of an executed notebook (an nbformat node or its JSON dict), each naming its cell."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags", [])
        found += [f"cell {i} ({_text(cell.get('source')).strip()[:50]!r}): {p}"
                  for p in output_problems(cell.get("outputs", []), tags)]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Check executed notebook files; print one line per problem; exit status 1 if there is any."""
    import json

    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m tools.nbcheck EXECUTED.ipynb [...]", file=sys.stderr)
        return 2
    bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            problems = notebook_problems(json.load(fh))
        print(f"{path}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for p in problems:
            print(f"  {p}")
        bad += len(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
