"""Building blocks of the config rules: ``{dotted field: (check(value) -> bool, what is expected)}``.

Used by the shared rules (:mod:`.validate`) and by each method's :meth:`~.base.UDAMethod.rules`.
"""
from __future__ import annotations


def ge(lo):
    """The value is at least ``lo``."""
    return lambda v: v >= lo, f">= {lo}"


def gt(lo):
    """The value is larger than ``lo``."""
    return lambda v: v > lo, f"> {lo}"


def prob():
    """A probability, in [0, 1]."""
    return lambda v: 0.0 <= v <= 1.0, "in [0, 1]"


def below_one():
    """A rate in [0, 1) (dropout, label smoothing)."""
    return lambda v: 0.0 <= v < 1.0, "in [0, 1)"
