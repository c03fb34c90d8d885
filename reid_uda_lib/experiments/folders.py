"""Where a ladder keeps each seed (``<out>/seed<S>``), the seeds asked, and the error of a failed seed."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


class LadderError(RuntimeError):
    """A seed of a parallel ladder failed (its log is named)."""


def seed_dir(out_dir: str | Path, seed: int) -> Path:
    return Path(out_dir) / f"seed{int(seed)}"


def parse_seeds(seeds: str | Iterable[int]) -> list[int]:
    """``"0,1,2"`` or ``[0, 1, 2]`` -> ``[0, 1, 2]`` (distinct non-negative integers, order kept)."""
    items = [s for s in seeds.split(",") if s.strip()] if isinstance(seeds, str) else list(seeds)
    try:
        out = [int(s) for s in items]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be comma-separated integers such as 0,1,2; got {seeds!r}") from None
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct non-negative integers (at least one); got {seeds!r}")
    return out
