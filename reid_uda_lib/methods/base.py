"""The plug-in interface of the one UDA loop (:mod:`reid_uda_lib.train.uda`).

A method says which shared components it switches on (Mean-Net, memory bank, source batches, SBase's
shared loss terms) and adds behaviour through six hooks, each called by the loop at one place. The first
builds the method's modules; the other five receive one context object each (what the loop knows there):

==========================  ===============  ==========================================================
hook                        receives         called
==========================  ===============  ==========================================================
``extra_modules``           model, cfg       once: modules trained with the backbone (optimised,
                                             checkpointed, moved to the device, and averaged by the
                                             Mean-Net like the backbone when there is one)
``pseudo_labels``           ClusterContext   every epoch, before training: one or several label sets of
                                             the target train images (LF²: K + 1 levels); level 0 drives
                                             the sampler, the target head and the memory bank, every
                                             level is logged and reaches ``extra_terms``
``extra_terms``             StepContext      every step, after the shared SBase terms: extra loss terms
``epoch_diagnostics``       EpochContext     every epoch, after training: numbers logged under
                                             ``"probe"`` in metrics.jsonl
``test_net``                EvalContext      at every evaluation: the inference network and its output
                                             key (LF²: the teacher's global + part features concatenated)
``extra_evaluations``       EvalContext      at the last epoch: extra inference features, evaluated like
                                             the main one (DCDFA's "b only")
==========================  ===============  ==========================================================

A method's registry entry (:data:`reid_uda_lib.methods.registry.METHODS`) is its only record: besides the
hooks it carries its table ``label``, its ladder ``cost`` (run time relative to SBase), the config
``sections`` it reads (so a pretraining is not invalidated by a change there), its ``rules`` (ranges of those
sections) and :meth:`UDAMethod.validate` (cross-field checks). The ladder's rows, the provenance of a
pretraining and the config validation are derived from the registry.

Switches (fields): ``mean_net``, ``memory_bank``, ``source_batches`` (False: target-only batches,
``out_s``/``y_s`` are None) and ``shared_terms`` (False: the loop adds no SBase term, the method's
``extra_terms`` are the whole loss). The defaults are SBase's behaviour.

The loop never tests a method's name: everything a method changes goes through these hooks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn


@dataclass
class StepContext:
    """What ``extra_terms`` sees of one training step of a mixed batch (N source + N target images)."""
    out_s: Optional[dict]           # model outputs of the source images ("fmap", "f", "bn", "logits");
                                    # None for target-only methods (source_batches=False)
    out_t: dict                     # model outputs of the target images
    y_s: torch.Tensor               # source identities (N,)
    y_t: torch.Tensor               # target pseudo labels (N,)
    modules: nn.ModuleDict          # the method's extra modules (student side)
    model: nn.Module                # the student ReidNet (its heads: model.classifiers[target_head])
    cfg: Any                        # the run's Config
    step: int                       # global step (0-based) of this batch
    epoch: int
    target_head: str = "target"     # name of the per-epoch pseudo-label classifier head
    x_t: Optional[torch.Tensor] = None        # the target images (for a teacher forward)
    teacher: Optional[nn.Module] = None       # the Mean-Net (eval mode, no grad), None without one
    teacher_modules: Optional[nn.ModuleDict] = None   # the Mean-Net average of ``modules``
    y_levels: Optional[torch.Tensor] = None   # (L, N) labels of the target images at every level (row 0 = y_t)

    def generator(self) -> torch.Generator:
        """A CPU generator seeded from (seed, step): random choices that a resumed run repeats exactly."""
        return torch.Generator().manual_seed(int(self.cfg.seed) * 1_000_003 + int(self.step))


@dataclass
class EpochContext:
    """What ``epoch_diagnostics`` sees after an epoch's training."""
    eval_net: nn.Module             # the inference model (Mean-Net, or the student without one)
    eval_modules: nn.ModuleDict     # the extra modules that go with it (their Mean-Net average when there is one)
    source: Any                     # ReidDataset
    target: Any                     # ReidDataset
    cfg: Any
    device: torch.device
    epoch: int
    progress: bool = True


@dataclass
class EvalContext:
    """What ``test_net`` and ``extra_evaluations`` see: the network that is evaluated and its modules."""
    eval_net: nn.Module             # the inference model (Mean-Net, or the student without one)
    eval_modules: nn.ModuleDict     # the method's modules that go with it
    cfg: Any


@dataclass
class ClusterContext:
    """What ``pseudo_labels`` sees at the start of an epoch."""
    eval_net: nn.Module             # the Mean-Net (or the student without one): the clustering model
    eval_modules: nn.ModuleDict     # the Mean-Net average of the method's modules
    model: nn.Module                # the student
    modules: nn.ModuleDict          # the method's modules (student side, trained)
    items: Sequence[tuple]          # target train items (path, hidden pid, camid)
    cfg: Any
    device: torch.device
    epoch: int
    progress: bool = True
    # the feature pass (core.features.extract_features' signature); at the first epoch of a fresh run the loop
    # gives one that reads the pass from the seed's cache (core/pass_cache.py) when another row made it
    extract: Optional[Callable[..., Any]] = None

    def features(self, net: nn.Module, desc: str = "target features") -> Any:
        """``net``'s L2-normalised BNNeck features of the target train items, in item order."""
        from ..core.features import extract_features
        return (self.extract or extract_features)(net, self.items, self.cfg.data, self.device, desc=desc,
                                                  progress=self.progress)


def clustering_features(feats, ctx: ClusterContext):
    """What the clustering sees of ``feats`` (N, d): each camera's mean removed when ``uda.camera_norm``
    (:func:`~reid_uda_lib.cluster.camera_centred`), else ``feats`` itself. Every method's label path calls it."""
    if not ctx.cfg.uda.camera_norm:
        return feats
    from ..cluster import camera_centred
    return camera_centred(feats, [cam for _, _, cam in ctx.items])


@dataclass
class LabelSets:
    """The pseudo labels of one epoch: ``labels[0]`` drives the PK sampler, the target head (centroids of
    ``features``) and the memory bank; every level is logged (quality, agreement with level 0) and reaches
    the step as ``StepContext.y_levels``."""
    labels: list                    # L arrays (N,) int64, -1 = outlier
    features: torch.Tensor          # (N, C) L2-normalised features of level 0 in the classifier's space
    names: list = field(default_factory=lambda: ["global"])
    info: dict = field(default_factory=dict)    # logged with level 0's quality (e.g. the derived DBSCAN eps)


@dataclass(frozen=True)
class UDAMethod:
    name: str
    mean_net: bool = True
    memory_bank: bool = True
    description: str = ""
    source_batches: bool = True     # False: target-only batches (LF² fine-tunes on the target only)
    shared_terms: bool = True       # False: no SBase terms; extra_terms is the whole loss
    label: str = ""                 # its row in the results tables ("" -> the name in backticks)
    cost: float = 1.0               # run time relative to SBase's (the ladder starts the costliest first)
    sections: tuple = ()            # config sections only this kind of method reads (e.g. ("dcdfa",))
    reference: bool = False         # a reference row (the oracle), listed before direct transfer

    def __post_init__(self):
        if not self.source_batches and (self.shared_terms or self.memory_bank):
            raise ValueError(f"UDA method '{self.name}': source_batches=False (target-only batches) needs "
                             "shared_terms=False and memory_bank=False (both use source images)")

    def table_label(self) -> str:
        """The method's row name in the results tables."""
        return self.label or f"`{self.name}`"

    def rules(self) -> dict:
        """``{dotted field: (check(value) -> bool, what is expected)}`` for the fields of :attr:`sections`
        (:data:`reid_uda_lib.methods.validate.RULES` has the shared ones). Checked for every config."""
        return {}

    def validate(self, cfg: Any) -> list[str]:
        """Problems of ``cfg`` when this method runs (one string each, naming the dotted field)."""
        return []

    def chance_values(self, cfg: Any) -> dict[str, float]:
        """``{logged term: its value at chance}`` for the terms whose activity is reported every epoch
        (:mod:`reid_uda_lib.methods.activity`; weighted like the logged term). Default: none."""
        return {}

    def clusterings(self, cfg: Any) -> list[tuple[str, str, int]]:
        """``[(config section, "dbscan" | "kmeans", n_clusters)]``: the clusterings of one round, for the
        memory check where a run starts. Default: the ``uda`` clustering."""
        return [("uda", cfg.uda.cluster, cfg.uda.n_clusters)]

    def extra_modules(self, model: nn.Module, cfg: Any) -> nn.ModuleDict:
        """Modules trained with the backbone (optimised, checkpointed, moved to the device)."""
        return nn.ModuleDict()

    def extra_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Extra weighted loss terms for one mixed batch; each key is a term name shown in the logs."""
        return {}

    def epoch_diagnostics(self, ctx: EpochContext) -> dict[str, Any]:
        """Numbers logged once per epoch under ``"probe"`` (e.g. DCDFA's disentanglement probes)."""
        return {}

    def extra_evaluations(self, ctx: EvalContext) -> dict[str, nn.Module]:
        """``{name: net}`` evaluated on the target test split at the last epoch; ``net(x)["feat"]`` is the
        feature (logged as ``"target_<name>"``), e.g. DCDFA Table 2's "using b only"."""
        return {}

    def pseudo_labels(self, ctx: ClusterContext) -> LabelSets:
        """The epoch's label sets. Default: one level, the Mean-Net's BNNeck features clustered with the
        ``uda`` settings (DBSCAN on the Jaccard distance, or k-means; each camera's mean removed first when
        ``uda.camera_norm``)."""
        from ..cluster import pseudo_labels
        from ..runtime.distributed import on_rank0
        cfg, u = ctx.cfg, ctx.cfg.uda
        feats = ctx.features(ctx.eval_net)
        # under torchrun: rank 0 clusters, every process gets its labels
        clus = clustering_features(feats, ctx)
        info: dict = {}
        labels = on_rank0(lambda: pseudo_labels(clus, method=u.cluster, eps=u.eps, min_samples=u.min_samples,
                                                k1=u.k1, k2=u.k2, n_clusters=u.n_clusters, seed=cfg.seed,
                                                noise=u.auto_eps_noise, info=info))
        # only a derived radius is logged (rank 0 clustered: only it has one)
        return LabelSets([np.asarray(labels)], feats, info=info if u.auto_eps_noise else {})

    def test_net(self, ctx: EvalContext) -> tuple[nn.Module, str]:
        """``(net, key)``: the target test split is evaluated on ``net(x)[key]``. Default: the BNNeck feature."""
        return ctx.eval_net, "bn"
