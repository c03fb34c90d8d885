"""What is checked where a run starts, before anything is written: the config (once, with every registered
method's rules), the memory of the run's clustering and evaluation, and the run folder.

:func:`check_start` is called by :func:`~reid_uda_lib.train.pretrain` and :func:`~reid_uda_lib.train.adapt`;
:func:`preflight` by commands that run several stages (the CLI's ``train``, the ladder, the demo), for every
stage folder before the first stage starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from ..config import Config
from ..methods.registry import get_method, stage_ignores
from ..methods.validate import validate_config
from ..ram import check_run_memory
from ..runtime import rundir


def check_start(cfg: Config, stage: str, target: Any = None) -> None:
    """Validate ``cfg`` and, for a UDA stage, check that its clustering and evaluation fit in memory."""
    validate_config(cfg)
    if stage == "uda":
        check_run_memory(cfg, target, clusterings=get_method(cfg.uda.method).clusterings(cfg))
    elif target is not None:
        check_run_memory(cfg, target, clusterings=[])


def preflight(out_dir: str | Path, stage: str, cfg: Config, resume: bool | str,
              datasets: Optional[Mapping[str, Any]] = None, override_identity: bool = False,
              init: Optional[str | Path] = None) -> None:
    """Everything the stage would refuse, checked without writing: the config, the memory and the folder
    (reuse, identity, lock; :func:`reid_uda_lib.runtime.rundir.preflight`)."""
    check_start(cfg, stage, (datasets or {}).get("target"))
    rundir.preflight(out_dir, stage, cfg, resume, datasets, override_identity, init=init,
                     ignore=stage_ignores(stage))
