"""The whole pipeline in one call (the README's demo):

generate synthetic data → pretrain on domain A → adapt to domain B with each method → evaluate →
results table. An "oracle" row (SBase's loop with B's true identities in place of pseudo labels, from the same
pretrained model) bounds what adaptation can reach. The demo is the ablation ladder's headline subset
(:mod:`reid_uda_lib.experiments`) for one seed.

Every stage writes its own run directory under ``out_dir`` and is resumed when run again, so a demo
that was interrupted continues where it stopped.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

from ..config import get_preset

#: The methods of ``make demo`` (with direct transfer and the oracle): the ladder's headline rows.
DEMO_METHODS = ("sbase", "dcdfa", "lf2")


def run_demo(preset: str = "cpu", data_dir: str | Path = "data/synthetic", out_dir: str | Path = "runs/demo",
             methods: Iterable[str] = DEMO_METHODS, oracle: bool = True, overrides: Optional[dict] = None,
             progress: bool = True, verify: str = "none", override_identity: bool = False,
             command: Optional[str] = None, jobs: Optional[int] = None) -> dict:
    """Generate (or reuse) the synthetic A/B pair, then the ladder's rows (direct transfer, ``methods``,
    the oracle) for one seed (``seed``, default 0) in ``<out_dir>/seed<S>``; ``<out_dir>/results.md``
    and ``results.csv`` hold the table (:func:`reid_uda_lib.experiments.run_ladder`).

    ``jobs``: processes at once (:mod:`reid_uda_lib.experiments.parallel`): the pretraining with every thread, then
    the rows side by side, one thread each. Default: 2 where the machine has 2 or more CPUs, else 1 (every
    row in this process, with progress bars)."""
    from ..data.synthetic import generate_synthetic_pair
    from . import run_ladder

    cfg = get_preset(preset, **(overrides or {}))
    # with uda.target_bn the pretrained model with target BN statistics alone is shown too (seconds)
    rows = ["direct", *(["direct_bn"] if cfg.uda.target_bn else []), *methods] + (["oracle"] if oracle else [])
    if jobs is None:
        jobs = 2 if (os.cpu_count() or 1) >= 2 else 1
    domains = generate_synthetic_pair(data_dir, seed=0, progress=progress, jobs=min(2, jobs))
    return run_ladder(cfg, domains["A"], domains["B"], out_dir, seeds=(cfg.seed,), rows=rows, progress=progress,
                      verify=verify, override_identity=override_identity, command=command, jobs=jobs)
