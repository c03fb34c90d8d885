"""The notebooks' exercise checks (reid_uda_lib.analysis.selfcheck): a student gets one line — ✓, a hint, or
"no answer yet" — and never a traceback; with the solutions switch (the test run) the reference answer is
checked instead and a wrong or missing one fails."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid_uda_lib.analysis import check_answer
from reid_uda_lib.analysis.selfcheck import SOLUTIONS_ENV, solutions_on


@pytest.fixture
def student(monkeypatch):
    """A student's kernel: the switch off (make test sets it for the whole run)."""
    monkeypatch.delenv(SOLUTIONS_ENV, raising=False)


@pytest.fixture
def ci(monkeypatch):
    monkeypatch.setenv(SOLUTIONS_ENV, "1")


def _line(capsys):
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"one check prints exactly one line: {out!r}"
    return out.strip()


def test_right_answer_is_ticked_and_returns_nothing(student, capsys):
    assert check_answer("x", 0.5001, 0.5, tol=1e-3) is None          # no Out: True under the cell
    assert _line(capsys) == "✓ x: 0.5001"
    check_answer("t", torch.tensor([0.25]), 0.25)                      # one-element tensors count as numbers
    assert _line(capsys).startswith("✓ t")
    check_answer("s", "b", "b")
    assert _line(capsys) == "✓ s: 'b'"


def test_wrong_answer_gets_the_hint_not_a_traceback(student, capsys):
    assert check_answer("x", 0.6, 0.5, tol=1e-3, hint="look again") is None
    assert _line(capsys) == "✗ x: 0.6; expected 0.5 (± 0.001) — hint: look again"
    check_answer("x", float("nan"), 0.5, hint="h")
    assert _line(capsys).startswith("✗ x: nan; expected 0.5")


@pytest.mark.parametrize("answer, why", [
    (torch.ones(3), "not one number (Tensor of shape (3,))"),
    (np.ones((2, 2)), "not one number (ndarray of shape (2, 2))"),
    ("0.5 or so", "not one number (str)"),
    ({"a": 1}, "not one number (dict)"),
])
def test_an_answer_of_the_wrong_kind_is_explained(student, capsys, answer, why):
    check_answer("x", answer, 0.5, hint="one float")
    line = _line(capsys)
    assert line.startswith("✗ x: ") and why in line and line.endswith("— hint: one float"), line


def test_arrays_that_cannot_be_compared_do_not_raise(student, capsys):
    check_answer("labels", np.array([1, 2]), [1, 2, 3])
    assert "cannot be compared" in _line(capsys)


def test_unanswered_exercise_says_so(student, capsys):
    check_answer("x", ..., 0.5, hint="h", solution=lambda: 0.5)      # the reference is not used for a student
    assert _line(capsys) == "… x: no answer yet (replace the ... with yours)"


def test_two_checks_in_one_cell_both_report(student, capsys):
    check_answer("first", 1.0, 0.0, hint="a")
    check_answer("second", 2.0, 2.0)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✗ first") and out[1] == "✓ second: 2"


def test_switch_on_checks_the_reference_answer(ci, capsys):
    calls = []
    check_answer("x", ..., 0.5, tol=1e-9, solution=lambda: calls.append(1) or 0.5)
    assert calls == [1] and _line(capsys) == f"✓ x: 0.5 (reference answer, {SOLUTIONS_ENV}=1)"
    check_answer("v", ..., 3, solution=3)                              # a plain value works too
    assert _line(capsys).startswith("✓ v: 3")


def test_switch_on_a_wrong_reference_fails(ci):
    with pytest.raises(AssertionError, match=r"the reference answer 0.4; expected 0.5"):
        check_answer("x", ..., 0.5, solution=lambda: 0.4)
    with pytest.raises(AssertionError, match="not one number"):
        check_answer("x", ..., 0.5, solution=lambda: torch.ones(2))


def test_switch_on_without_a_reference_fails(ci):
    """An exercise without solution= would pass CI unanswered: the switch makes that an error."""
    with pytest.raises(AssertionError, match="gives no reference answer"):
        check_answer("x", 0.5, 0.5)


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_switch_values(monkeypatch, value, on):
    monkeypatch.setenv(SOLUTIONS_ENV, value)
    assert solutions_on() is on
