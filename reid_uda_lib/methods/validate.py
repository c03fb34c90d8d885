"""One validation of the whole configuration, where a run starts (``pretrain``, ``adapt``, the ladder, the CLI).

:func:`validate_config` checks the structure and types (:func:`reid_uda_lib.config.type_problems`: every
section is still a section, every field has its type, numbers are finite), the ranges in :data:`RULES`, the
arch and method names (from :data:`reid_uda_lib.models.ARCHS` and the registry, so a new method is valid as
soon as it is registered) and each registered method's own settings (:meth:`UDAMethod.validate
<reid_uda_lib.methods.base.UDAMethod.validate>`: LF²'s ``lf2.*``, DCDFA's ``dcdfa.*``). All problems are
reported together in one :class:`~reid_uda_lib.config.ConfigError`.
"""
from __future__ import annotations

from typing import Any, Callable

from ..config import AMP_MODES, CLUSTER_METHODS, ConfigError, type_problems
from ..models.backbone import ARCHS
from .registry import METHODS
from .rules import ge as _ge, prob as _prob


def _methods() -> tuple[str, ...]:
    return tuple(METHODS)


def _archs() -> tuple[str, ...]:
    return tuple(ARCHS)


#: dotted field -> (check(value) -> bool, what is expected): the shared sections. A method's own sections
#: come with its registry entry (:meth:`UDAMethod.rules <reid_uda_lib.methods.base.UDAMethod.rules>`).
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
    "uda.auto_eps_noise": (lambda v: 0.0 <= v < 1.0, "in [0, 1) (0: the fixed uda.eps; else the expected noise share)"),
    "uda.min_samples": _ge(1), "uda.target_bn_images": _ge(0), "uda.lr": _ge(0), "uda.k1": _ge(1), "uda.k2": _ge(1), "uda.n_clusters": _ge(2),
    "uda.eval_every": _ge(1),
}


def validate_config(cfg: Any) -> Any:
    """Check every field of ``cfg``; raise :class:`ConfigError` listing all problems, else return ``cfg``."""
    problems, values = type_problems(cfg)
    rules = dict(RULES)
    for method in METHODS.values():
        rules.update(method.rules())
    for key, (check, want) in rules.items():
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
    if not problems and values.get("uda.method") in METHODS:
        problems.extend(METHODS[values["uda.method"]].validate(cfg))
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return cfg
