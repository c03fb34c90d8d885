"""The configuration's schema: nested dataclasses (one section each), the type check every config passes when it is
built, and the conversion of dotted overrides (``--set uda.epochs=3``). Ranges, arch and method names are
checked where a run starts (:func:`reid_uda_lib.methods.validate.validate_config`). Imports nothing from the
package (the lowest layer above models and losses)."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class DataConfig:
    height: int = 128
    width: int = 64
    num_instances: int = 4          # K in a PK batch: images per identity
    batch_size: int = 32            # images per domain per step (P = batch_size // num_instances)
    num_workers: int = 0
    pad: int = 10                   # zero padding before the random crop
    flip_p: float = 0.5
    random_erasing_p: float = 0.5   # used in UDA fine-tuning (LF2: "only during target fine-tuning")
    pretrain_random_erasing_p: float = 0.0  # in source pretraining (DCDFA: "in all experiments", LF²: none)
    test_batch_size: int = 128


@dataclass
class EvaluationConfig:
    # True: Market-1501 protocol (gallery images of the query's pid seen by the query's camera are ignored).
    # False: for data without camera ids (folder-per-person without a camera pattern): only the query
    # image itself (same file path) is ignored. Printed with every result and stored in metrics.jsonl.
    cross_camera_only: bool = True


@dataclass
class ModelConfig:
    arch: str = "resnet18"          # tiny | resnet18 | resnet50
    weights: Optional[str] = None   # None | "imagenet" | path to a local torchvision state_dict file
    last_stride: int = 1
    # images per BatchNorm group in training ("ghost batch norm", models/bn_groups.py): each run of bn_samples
    # consecutive images of a forward is normalised with its own statistics, as one GPU's share was in the
    # papers' DataParallel runs. 0 = the whole local batch (one process: today's BatchNorm).
    bn_samples: int = 0
    # the convolutions' memory layout: True keeps weights, activations and inputs in channels-last (NHWC), whose
    # CPU kernels are faster for MobileNetV2's depthwise convolutions (benchmarks/bench_throughput.py); the
    # same network and equations, results equal up to float rounding. A speed switch, not a method.
    channels_last: bool = False


@dataclass
class LossConfig:
    label_smoothing: float = 0.1    # epsilon of CE-LS
    triplet_margin: float = 0.3     # batch-hard triplet margin m
    memory_momentum: float = 0.2    # momentum of memory-bank slot updates
    memory_scale: float = 16.0      # gamma of the circle-loss re-weighting
    memory_margin: float = 0.25     # m of the circle-loss re-weighting
    w_ce: float = 1.0
    w_triplet: float = 1.0
    w_memory: float = 1.0


@dataclass
class OptimConfig:
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    milestones: tuple = ()          # epochs at which lr is multiplied by gamma (pretraining)
    gamma: float = 0.1
    warmup_epochs: int = 0


@dataclass
class PretrainConfig:
    epochs: int = 20
    iters_per_epoch: int = 0        # 0: one pass over the source train set's identities
    eval_every: int = 5             # evaluate on the target test split every n epochs (and at the end)


@dataclass
class UDAConfig:
    method: str = "sbase"           # a name in methods/registry.py: base | base_mb | base_meannet | sbase |
                                    # dcdfa (+ its Table 3 rows dcdfa_cid, ...) | sbase_dann |
                                    # lf2 | lf2_nofm | lf2_base | lf2_dcdfa
    epochs: int = 10
    iters_per_epoch: int = 0        # 0: one pass over the pseudo-labelled target set
    ema_momentum: float = 0.999
    cluster: str = "dbscan"         # dbscan | kmeans
    eps: float = 0.6
    auto_eps_noise: float = 0.0     # > 0: DBSCAN's eps derived each round so that about this share of the target
                                    # images are noise (cluster/auto_eps.py, Eq. A2); 0: the fixed eps
    min_samples: int = 4
    k1: int = 30
    k2: int = 6
    n_clusters: int = 500           # k-means only
    eval_every: int = 1
    target_bn: bool = False         # re-estimate the evaluated net's BatchNorm statistics on the target train
                                    # images before clustering and evaluation (AdaBN; core/bn_stats.py)
    target_bn_images: int = 0       # ... on this many of them, evenly spaced (0: all; bn_stats.bn_subset)
    lr: float = 0.0                 # learning rate of the fine-tuning (and of the oracle); 0: optim.lr
    camera_norm: bool = False       # cluster features with each camera's mean removed (cluster/camera_norm.py;
                                    # every level of LF² too); only the clustering sees the centred features


@dataclass
class DCDFAConfig:
    """DCDFA (Zhang et al.) on top of SBase: used by the ``dcdfa*`` methods (methods/dcdfa.py).

    The total loss is SBase's terms + w_cid·L_CID (Eq. 6) + w_domain·L_Domain (Eq. 7) + w_rreid·L^b_RReID;
    all weights are 1 in the paper (sec. 4.1). The Table 3 rows are the methods ``dcdfa_cid``,
    ``dcdfa_cid_rreid``, ``dcdfa_cid_domain`` and ``dcdfa``: each multiplies these weights by 0 or 1.
    """
    reduction: int = 8              # r of the channel attention (Eq. 3) and of the domain classifier
    dropout: float = 0.1            # dropout of the domain classifier's "FC + ReLU + Dropout" blocks
    tau_init: float = 1.0           # initial value of the learnable temperature tau of L_CID (Eq. 6)
    w_cid: float = 1.0
    w_domain: float = 1.0
    w_rreid: float = 1.0
    probe_images: int = 200         # held-out test images per domain for the per-epoch probes (0: off)
    cid_centre: bool = False        # ours, off in the paper: L_CID's cosines on batch-centred features (losses/dcdfa.py)


@dataclass
class DANNConfig:
    """The adversarial baseline ``sbase_dann``: gradient reversal + domain classifier on f (DANN, [10])."""
    weight: float = 1.0             # weight of the domain-classification loss
    grl_lambda: float = 1.0         # gradient reversal factor: the backbone receives -lambda x the gradient


@dataclass
class LF2Config:
    """LF² (Ding & Zhou): used by the ``lf2*`` methods (methods/lf2.py).

    L_total = alpha·(L_cls + lam·L_tri) + gamma·Σ_j L^Pj_tri (Eq. 10; the paper: 1, 0.5, 0.5), L_cls the CE of
    Eq. 8 with ``label_smoothing`` (the paper: plain CE, 0). The rows that train the Fusion Module
    (``lf2_fmloss``; this project's addition, not in Eq. 10: methods/lf2.py) add w_fm·Σ_j L_FM^j; the ``lf2`` row
    is Eq. 10 as printed, whatever w_fm is. Each level (global + num_parts parts) is clustered every epoch
    with ``cluster`` (kmeans | dbscan, DBSCAN with the uda.eps/min_samples/k1/k2 settings) into
    ``n_clusters`` clusters: one value for every level or one per level (M_{t,j}; the paper: 500 / 700 / 900
    on Market/Duke-sized data; presets scale it to their data). The cluster-number sweep of Table II is
    ``--set lf2.n_clusters=500`` etc.
    """
    num_parts: int = 2              # K, horizontal stripes
    reduction: int = 4              # r of the Fusion Module's MLP (C -> C/r -> C)
    fm_mode: str = "add"            # Eq. 5's readings: add (Z = MLP(F) + F: the text's residual, Fig. 3) | mul
                                    # (σ(MLP(F)·F)·Φ^P0, line 2) | mul_outside (σ(MLP(F))·F·Φ^P0, line 3)
    alpha: float = 1.0
    lam: float = 0.5                # lambda of Eq. 10
    gamma: float = 0.5
    w_fm: float = 0.5               # weight of the FM term in the rows that have it (lf2_fmloss; ours, not Eq. 10)
    label_smoothing: float = 0.1    # epsilon of Eq. 8's CE (ours; the paper's plain CE is 0: the paper presets)
    cluster: str = "kmeans"         # kmeans | dbscan, per level
    n_clusters: tuple = (700,)      # M_{t,j}: one value (all levels) or num_parts + 1 values


@dataclass
class Config:
    preset: str = "cpu"
    seed: int = 0
    device: str = "auto"            # auto | cpu | cuda | cuda:1 | mps
    deterministic: bool = True
    # mixed precision of the training steps (runtime/amp.py): off | bf16 (GPUs with bf16; CPUs with avx512_bf16)
    # | fp16 (GPUs without bf16: T4, V100). Off on CPUs: bf16 is ~20x slower there without bf16 units.
    amp: str = "off"
    data: DataConfig = field(default_factory=DataConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    uda: UDAConfig = field(default_factory=UDAConfig)
    dcdfa: DCDFAConfig = field(default_factory=DCDFAConfig)
    dann: DANNConfig = field(default_factory=DANNConfig)
    lf2: LF2Config = field(default_factory=LF2Config)

    # -- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=list)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        cfg = cls()
        for key, value in _flatten(d).items():
            _set_field(cfg, key, value)
        return _validate(cfg)

    def override(self, **dotted: Any) -> "Config":
        """Return a copy with dotted fields replaced: ``cfg.override(**{"uda.epochs": 2})``.

        Values given as strings (from the CLI) are converted to the field's type and every field's type is
        checked; ranges, method and arch names are checked once, where a run starts
        (:func:`reid_uda_lib.methods.validate.validate_config`).
        """
        new = copy.deepcopy(self)
        for key, value in dotted.items():
            _set_field(new, key, value)
        return _validate(new)


CLUSTER_METHODS = ("dbscan", "kmeans")
AMP_MODES = ("off", "bf16", "fp16")             # the config field ``amp`` (runtime/amp.py)


class ConfigError(ValueError):
    """The configuration holds a value that cannot work (wrong type, out of range, unknown name)."""


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


def type_problems(cfg: "Config") -> tuple[list[str], dict[str, Any]]:
    """Every field of ``cfg`` checked against the type of its default: ``(problems, {dotted field: value})``.
    A section added later is checked at once. The ranges and names are checked where a run starts
    (:func:`reid_uda_lib.methods.validate.validate_config`), which knows the registered methods and archs."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    _walk(cfg, type(cfg)(), "", problems, values)
    return problems, values


def _validate(cfg: "Config") -> "Config":
    problems, _ = type_problems(cfg)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return cfg


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _convert(value: Any, current: Any, key: str) -> Any:
    if not isinstance(value, str) or isinstance(current, str):
        if isinstance(current, tuple) and isinstance(value, list):
            return tuple(value)
        return value
    text = value.strip()
    if current is None:
        return None if text.lower() in ("none", "null", "") else text
    if isinstance(current, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"config field '{key}' expects true/false, got {value!r}")
    try:
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):
            return tuple(int(x) for x in text.replace(",", " ").split())
    except ValueError:
        raise ValueError(
            f"config field '{key}' expects {type(current).__name__}, got {value!r}") from None
    return value


def _set_field(cfg: Config, key: str, value: Any) -> None:
    parts = key.split(".")
    obj = cfg
    for i, name in enumerate(parts):
        if not dataclasses.is_dataclass(obj) or name not in {f.name for f in dataclasses.fields(obj)}:
            valid = sorted(f.name for f in dataclasses.fields(obj)) if dataclasses.is_dataclass(obj) else []
            where = ".".join(parts[:i]) or "the config"
            raise KeyError(f"unknown config field '{key}': '{name}' is not a field of {where} "
                           f"(valid: {', '.join(valid)})")
        if i == len(parts) - 1:
            setattr(obj, name, _convert(value, getattr(obj, name), key))
        else:
            obj = getattr(obj, name)
