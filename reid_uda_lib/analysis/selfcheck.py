"""Self-check cells for the notebooks' exercises: compare an answer with the expected value and explain.

A student's copy has ``...`` where each answer goes; the check prints one line and never raises:

* ``✓ name: 0.5`` for a right answer,
* ``✗ name: 0.3; expected 0.5 (± 1e-06) — hint: ...`` for a wrong one (or one of the wrong kind),
* ``… name: no answer yet (replace the ... with yours)`` while it is ``...``.

The reference answers live beside the exercises (a collapsed cell of the notebook) and are passed as
``solution=``, a callable (or a value). The test run sets the solutions switch :data:`SOLUTIONS_ENV` (``make
test``): then :func:`check_answer` checks the reference answer instead of the student's, prints its line and
raises ``AssertionError`` when it is wrong or missing, so CI fails on a broken exercise while a student never
sees a traceback.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any, Callable

#: Set to 1 by the test run: exercise cells check their reference answers, and a wrong one raises.
SOLUTIONS_ENV = "REID_UDA_SOLUTIONS"


def solutions_on() -> bool:
    """Is the solutions switch on (``REID_UDA_SOLUTIONS`` = 1, true, yes or on)?"""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _short(x: Any) -> str:
    """``repr(x)`` on one line, at most 80 characters."""
    text = " ".join(repr(x).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _compare(answer: Any, expected: Any, tol: float) -> tuple[bool, str, str]:
    """(right?, the answer as shown, why it is wrong when it is not a value of the expected kind)."""
    if _is_number(expected):
        try:
            value = float(answer)                 # numbers, numpy scalars, one-element tensors and arrays
        except Exception:                          # noqa: BLE001 (any object a student may hand in)
            shape = getattr(answer, "shape", None)
            kind = type(answer).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")
            return False, _short(answer), f"not one number ({kind})"
        return math.isfinite(value) and abs(value - float(expected)) <= tol, f"{value:.6g}", ""
    try:
        return bool(answer == expected), _short(answer), ""
    except Exception as exc:                      # noqa: BLE001 (e.g. an array compared with a list)
        return False, _short(answer), f"cannot be compared with the expected value ({exc})"


def _expected_text(expected: Any, tol: float) -> str:
    if _is_number(expected):
        return f"{float(expected):.6g} (± {tol:g})"
    return repr(expected)


def check_answer(name: str, answer: Any, expected: Any, tol: float = 1e-6, hint: str = "",
                 solution: Callable[[], Any] | Any = None) -> None:
    """Check one exercise's ``answer`` against ``expected`` (numbers: within ``tol``, absolute; other values:
    ``==``) and print one line: ✓, ✗ with the expected value and the ``hint``, or "no answer yet" for ``...``.

    Never raises for a student's answer and returns None (a cell ending with the call shows no ``Out:``).
    With the solutions switch on (:data:`SOLUTIONS_ENV`), ``solution`` (called when callable) is checked
    instead of ``answer``, and a missing or wrong reference answer raises ``AssertionError``.
    """
    if solutions_on():
        if solution is None:
            raise AssertionError(f"{name}: {SOLUTIONS_ENV} is set but the exercise gives no reference answer "
                                 "(check_answer(..., solution=...))")
        reference = solution() if callable(solution) else solution
        ok, shown, why = _compare(reference, expected, tol)
        if not ok:
            raise AssertionError(f"✗ {name}: the reference answer {shown}"
                                 f"{f' is {why}' if why else ''}; expected {_expected_text(expected, tol)}")
        print(f"✓ {name}: {shown} (reference answer, {SOLUTIONS_ENV}=1)")
        return None
    if answer is Ellipsis or answer is None:
        print(f"… {name}: no answer yet (replace the ... with yours)")
        return None
    ok, shown, why = _compare(answer, expected, tol)
    if ok:
        print(f"✓ {name}: {shown}")
        return None
    print(f"✗ {name}: {shown}{f' is {why}' if why else ''}; expected {_expected_text(expected, tol)}"
          + (f" — hint: {hint}" if hint else ""))
    return None
