"""What is checked where a run starts, before anything is written: the config (once, with every registered
method's rules), the device, the roles of the datasets (what the run's batches and clusterings need), the
checkpoint the stage starts from, the memory of the run's clustering and evaluation, and the run folder.

:func:`check_start` is called by :func:`~reid_uda_lib.train.pretrain` and :func:`~reid_uda_lib.train.adapt`;
:func:`preflight` by commands that run several stages (the CLI's ``train``, the ladder, the demo), for every
stage folder before the first stage starts. :func:`role_needs` is the one place where a config's needs of its
data are derived: training refuses with it and ``python -m reid_uda_lib check --preset`` judges with it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

from ..config import Config, ConfigError
from ..data.problems import RoleNeeds, require_role
from ..methods.registry import get_method, stage_ignores
from ..methods.validate import validate_config
from ..ram import check_run_memory
from ..runtime import rundir
from ..runtime.checkpoint import check_model_config, load_checkpoint

DEVICES = "auto, cpu, cuda, cuda:N or mps"


def role_needs(cfg: Config) -> RoleNeeds:
    """What a run of ``cfg`` asks of its data: P identities per batch, the target images its method's
    clusterings need (:meth:`UDAMethod.clusterings <reid_uda_lib.methods.base.UDAMethod.clusterings>`), the
    evaluation protocol (:class:`~reid_uda_lib.data.problems.RoleNeeds`)."""
    return RoleNeeds.from_config(cfg, get_method(cfg.uda.method).clusterings(cfg))


def check_device(device: Any) -> None:
    """Raise :class:`~reid_uda_lib.config.ConfigError` naming ``device`` when torch does not know it or this
    machine does not have it (``cuda`` without a GPU, ``cuda:3`` on a machine with two)."""
    import torch
    if isinstance(device, torch.device) or device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device: {device!r} is not a device name; expected {DEVICES}") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"device: {device!r} was asked for but this machine has no CUDA GPU that torch can "
                              "use; use --device cpu or auto")
        if dev.index is not None and dev.index >= n:
            raise ConfigError(f"device: {device!r} was asked for but this machine has {n} CUDA GPU(s) "
                              f"(cuda:0..cuda:{n - 1})")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device: {device!r} was asked for but Apple's MPS is not available on this machine; "
                              "use --device cpu or auto")
    elif dev.type != "cpu":
        raise ConfigError(f"device: {device!r} is not supported; expected {DEVICES}")


_INIT_CHECKED: dict[tuple, None] = {}


def check_init(cfg: Config, stage: str, init: Optional[str | Path]) -> None:
    """The checkpoint a stage starts from, when it exists: written by the right stage (a UDA stage starts from a
    pretraining or UDA checkpoint, a warm-started pretraining from a pretraining one) for the config's model.
    A path that does not exist yet is left to the stage (an earlier stage of the same pipeline writes it)."""
    if init is None or not Path(init).exists():
        return
    st = os.stat(init)
    key = (os.path.abspath(os.fspath(init)), st.st_mtime_ns, st.st_size, stage, cfg.model.arch)
    if key in _INIT_CHECKED:
        return
    state = load_checkpoint(init, kind="pretrain" if stage == "pretrain" else ("pretrain", "uda"))
    check_model_config(state, cfg.to_dict()["model"], init)
    _INIT_CHECKED.clear()
    _INIT_CHECKED[key] = None


def check_start(cfg: Config, stage: str, target: Any = None, source: Any = None,
                init: Optional[str | Path] = None) -> None:
    """Validate ``cfg`` and its device; check that ``source`` and ``target`` can serve the stage with the run's
    :func:`role_needs` (a pretraining evaluates on the target, a UDA stage adapts to it), that ``init`` is a
    checkpoint the stage can start from, and that the clustering and evaluation fit in memory."""
    validate_config(cfg)
    check_device(cfg.device)
    clusterings = get_method(cfg.uda.method).clusterings(cfg)
    needs = RoleNeeds.from_config(cfg, clusterings)
    if source is not None:
        require_role(source, "source", needs=needs)
    if target is not None:
        require_role(target, "target" if stage == "uda" else "evaluation", needs=needs)
    check_init(cfg, stage, init)
    if stage == "uda":
        check_run_memory(cfg, target, clusterings=clusterings)
    elif target is not None:
        check_run_memory(cfg, target, clusterings=[])


def preflight(out_dir: str | Path, stage: str, cfg: Config, resume: bool | str,
              datasets: Optional[Mapping[str, Any]] = None, override_identity: bool = False,
              init: Optional[str | Path] = None) -> bool:
    """Everything the stage would refuse, checked without writing: the config, the device, the data's roles, the
    init checkpoint, the memory and the folder (reuse, identity, lock;
    :func:`reid_uda_lib.runtime.rundir.preflight`). Returns True when the stage is complete and would be reused
    read-only."""
    data = datasets or {}
    check_start(cfg, stage, data.get("target"), data.get("source"), init=init)
    return rundir.preflight(out_dir, stage, cfg, resume, datasets, override_identity, init=init,
                            ignore=stage_ignores(stage))
