"""One validation of the whole configuration, run when a config is built and before any work.

:func:`validate_config` checks the structure (every section is still a section, every field has its
type, numbers are finite) against the defaults of :class:`~reid_uda_lib.config.Config` -- so a section
added later is checked for types at once -- and the ranges in :data:`RULES`. Method names come from the
registry :data:`reid_uda_lib.engine.methods.METHODS`, so a new method is valid as soon as it is
registered. All problems are reported together in one :class:`ConfigError`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

CLUSTER_METHODS = ("dbscan", "kmeans")
AMP_MODES = ("off", "bf16", "fp16")             # the config field ``amp`` (engine/amp.py)


class ConfigError(ValueError):
    """The configuration holds a value that cannot work (wrong type, out of range, unknown name)."""


def _methods() -> tuple[str, ...]:
    from .engine.methods import METHODS
    return tuple(METHODS)


def _archs() -> tuple[str, ...]:
    from .models.backbone import ARCHS
    return tuple(ARCHS)


def _ge(lo):
    return lambda v: v >= lo, f">= {lo}"


def _prob():
    return lambda v: 0.0 <= v <= 1.0, "in [0, 1]"


def _one_of(names: Callable[[], tuple[str, ...]]):
    return lambda v: v in names(), None  # the message lists the names when it fails


#: dotted field -> (check(value) -> bool, what is expected). Extend it for a new section's ranges.
RULES: dict[str, tuple[Callable[[Any], bool], Any]] = {
    "seed": (lambda v: 0 <= v < 2 ** 32, "in [0, 2**32)"),
    "amp": (lambda v: v in AMP_MODES, AMP_MODES),
    "data.height": _ge(1), "data.width": _ge(1), "data.num_instances": _ge(1), "data.batch_size": _ge(1),
    "data.num_workers": _ge(0), "data.pad": _ge(0), "data.test_batch_size": _ge(1),
    "data.flip_p": _prob(), "data.random_erasing_p": _prob(), "data.pretrain_random_erasing_p": _prob(),
    "model.arch": (lambda v: v in _archs(), _archs),
    "model.last_stride": (lambda v: v in (1, 2), "1 or 2"),
    "model.bn_samples": _ge(0),
    "loss.label_smoothing": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "loss.triplet_margin": _ge(0), "loss.memory_momentum": _prob(), "loss.memory_scale": (lambda v: v > 0, "> 0"),
    "loss.memory_margin": _ge(0), "loss.w_ce": _ge(0), "loss.w_triplet": _ge(0), "loss.w_memory": _ge(0),
    "optim.lr": (lambda v: v > 0, "> 0"), "optim.weight_decay": _ge(0), "optim.gamma": (lambda v: v > 0, "> 0"),
    "optim.warmup_epochs": _ge(0),
    "optim.milestones": (lambda v: all(isinstance(m, int) and m >= 1 for m in v), "epochs >= 1"),
    "pretrain.epochs": _ge(1), "pretrain.iters_per_epoch": _ge(0), "pretrain.eval_every": _ge(1),
    "uda.method": (lambda v: v in _methods(), _methods),
    "uda.epochs": _ge(1), "uda.iters_per_epoch": _ge(0), "uda.ema_momentum": _prob(),
    "uda.cluster": (lambda v: v in CLUSTER_METHODS, lambda: CLUSTER_METHODS),
    "uda.eps": (lambda v: 0.0 < v < 1.0, "in (0, 1) (a Jaccard distance; at 1 everything is one cluster)"),
    "uda.min_samples": _ge(1), "uda.target_bn_images": _ge(0), "uda.lr": _ge(0), "uda.k1": _ge(1), "uda.k2": _ge(1), "uda.n_clusters": _ge(2),
    "uda.eval_every": _ge(1),
    "dcdfa.reduction": _ge(1), "dcdfa.dropout": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "dcdfa.tau_init": (lambda v: v > 0, "> 0"), "dcdfa.w_cid": _ge(0), "dcdfa.w_domain": _ge(0),
    "dcdfa.w_rreid": _ge(0), "dcdfa.probe_images": _ge(0),
    "dann.weight": _ge(0), "dann.grl_lambda": _ge(0),
}


def _type_problem(key: str, value: Any, default: Any) -> str | None:
    """Why ``value`` cannot stand where the default is ``default`` (None when it can)."""
    if dataclasses.is_dataclass(default):
        if not dataclasses.is_dataclass(value):
            return f"{key}: is a section ({', '.join(f.name for f in dataclasses.fields(default))}), got {value!r}"
        return None
    if default is None:
        ok, want = value is None or isinstance(value, str), "None or a string"
    elif isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        want = "a finite number"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "a string"
    elif isinstance(default, (tuple, list)):
        ok, want = isinstance(value, (tuple, list)), "a list"
    else:
        return None
    return None if ok else f"{key}: expected {want}, got {value!r}"


def _walk(obj: Any, default: Any, prefix: str, problems: list[str], values: dict[str, Any]) -> None:
    for f in dataclasses.fields(default):
        key, value, dflt = prefix + f.name, getattr(obj, f.name, None), getattr(default, f.name)
        problem = _type_problem(key, value, dflt)
        if problem:
            problems.append(problem)
        elif dataclasses.is_dataclass(dflt):
            _walk(value, dflt, key + ".", problems, values)
        else:
            values[key] = value


def validate_config(cfg: Any) -> Any:
    """Check every field of ``cfg``; raise :class:`ConfigError` listing all problems, else return ``cfg``."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    _walk(cfg, type(cfg)(), "", problems, values)
    for key, (check, want) in RULES.items():
        if key not in values:
            continue
        v = values[key]
        try:
            ok = bool(check(v))
        except TypeError:
            ok = False
        if not ok:
            expect = want() if callable(want) else want
            expect = f"one of {', '.join(expect)}" if isinstance(expect, tuple) else expect
            problems.append(f"{key}: expected {expect}, got {v!r}")
    if not problems:
        bs, k = values.get("data.batch_size"), values.get("data.num_instances")
        if bs and k and bs % k:
            problems.append(f"data.batch_size ({bs}) must be a multiple of data.num_instances ({k})")
        elif values.get("model.bn_samples") and bs % values["model.bn_samples"] \
                and (2 * bs) % values["model.bn_samples"]:
            problems.append(f"model.bn_samples ({values['model.bn_samples']}) must divide the images of one "
                            f"forward: data.batch_size ({bs}; pretraining, target-only methods) or the mixed "
                            f"batch 2 x {bs} (source + target)")
        elif values.get("uda.cluster") == "kmeans" and values["uda.n_clusters"] < bs // k:
            problems.append(f"uda.n_clusters ({values['uda.n_clusters']}) must be at least the identities per "
                            f"batch P = data.batch_size // data.num_instances = {bs // k}: a PK batch draws P "
                            "different pseudo identities")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return cfg
