"""Self-check cells for the notebooks' exercises: compare an answer with the expected value and explain.

A student's wrong answer should get a hint, not a bare ``AssertionError``; in CI the same cell runs with
the reference answer and must pass. :func:`check_answer` returns True/False, prints one line either way,
and raises only when ``strict`` is set (the notebooks set it for their reference answers).
"""
from __future__ import annotations

import math
from typing import Any


def check_answer(name: str, answer: Any, expected: Any, tol: float = 1e-6, hint: str = "",
                 strict: bool = False) -> bool:
    """Is ``answer`` equal to ``expected`` (numbers: within ``tol``, absolute; other values: ``==``)?

    Prints ``✓ name: answer`` or ``✗ name: answer, expected ... — hint``; with ``strict`` a wrong answer
    raises ``AssertionError`` carrying the same text.
    """
    if answer is None or answer is Ellipsis:
        ok, shown = False, "no answer yet (replace the ... with yours)"
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            ok = math.isfinite(float(answer)) and abs(float(answer) - float(expected)) <= tol
        except (TypeError, ValueError):
            ok = False
        shown = f"{answer!r}"
    else:
        ok, shown = answer == expected, f"{answer!r}"
    if ok:
        print(f"✓ {name}: {shown}")
        return True
    msg = f"✗ {name}: {shown}; expected {expected!r}" + (f" (± {tol:g})" if isinstance(expected, float) else "")
    msg += f" — hint: {hint}" if hint else ""
    print(msg)
    if strict:
        raise AssertionError(msg)
    return False
