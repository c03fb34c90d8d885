"""Mutation helper for the wiring tests: a function recompiled from its own source with one edit.

A wiring test checks which tensor each loss term sees, with which labels, from which network. To show that the
check would catch a given mistake, the test recompiles the function under test with that mistake (``mutated``),
puts it in place with ``monkeypatch`` and asserts that the same check now fails. The edit must match the source
exactly once: when the code is rewritten so that a mutation site no longer exists, the test says so instead of
passing silently.
"""
from __future__ import annotations

import __future__
import inspect
import textwrap
from typing import Callable


def mutated(fn: Callable, *edits: tuple[str, str]) -> Callable:
    """``fn`` compiled from its source with each ``(old, new)`` of ``edits`` applied; ``old`` must occur exactly
    once. The new function runs in ``fn``'s module globals (so monkeypatched names there apply to it too);
    a decorated function is recompiled with its decorators."""
    fn = inspect.unwrap(fn)                     # the defining function (its source and its module's globals)
    src = textwrap.dedent(inspect.getsource(fn))
    for old, new in edits:
        n = src.count(old)
        if n != 1:      # not an AssertionError: a test expecting the mutated check to fail must not pass on it
            raise LookupError(f"mutation site {old!r} occurs {n} times in {fn.__qualname__} (expected once): "
                              "the code changed, update the wiring test's mutation")
        src = src.replace(old, new)
    code = compile(src, f"<{fn.__qualname__}, mutated>", "exec",
                   flags=__future__.annotations.compiler_flag, dont_inherit=True)
    namespace: dict = {}
    exec(code, fn.__globals__, namespace)       # noqa: S102 -- the repository's own source, one edit applied
    return namespace[fn.__name__]

