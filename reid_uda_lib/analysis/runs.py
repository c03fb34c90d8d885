"""Load a finished stage (pretraining or a UDA method) back into memory for the diagnostics and figures.

The notebooks train with :func:`~reid_uda_lib.train.pretrain` / :func:`~reid_uda_lib.train.adapt` and
then look inside the result: :func:`load_run` rebuilds the student, the Mean-Net (the model the papers
report and the one used for clustering) and the method's extra modules (DCDFA's attention, LF²'s Fusion
Module, ...) from ``checkpoint.pt`` and its stored config, exactly as
:func:`~reid_uda_lib.train.evaluate_checkpoint.evaluate_checkpoint` does for the test metrics.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from ..config import Config
from ..runtime.checkpoint import load_checkpoint
from ..core.features import extract_features
from ..methods.base import ClusterContext, EvalContext, LabelSets, UDAMethod
from ..methods.registry import METHODS
from ..models import build_model
from ..utils import resolve_device


@dataclass
class LoadedRun:
    """One stage's trained networks, all in eval mode on ``device``.

    ``net`` / ``modules``: the inference model and its extra modules (the Mean-Net and its average when the
    method has one, else the student); ``student`` / ``student_modules``: the trained student side (LF²'s
    Fusion Module is used with the student's stripes). ``method`` is None for a pretraining checkpoint.
    """
    path: Path
    cfg: Config
    stage: str
    method: Optional[UDAMethod]
    net: nn.Module
    modules: nn.ModuleDict
    student: nn.Module
    student_modules: nn.ModuleDict
    device: torch.device

    @property
    def name(self) -> str:
        """The method's name, or ``"pretrain"``."""
        return self.method.name if self.method is not None else self.stage

    def test_net(self) -> tuple[nn.Module, str]:
        """``(net, key)``: the method's inference feature is ``net(x)[key]`` (BNNeck ``"bn"`` by default)."""
        if self.method is None:
            return self.net, "bn"
        return self.method.test_net(EvalContext(self.net, self.modules, self.cfg))

    def features(self, items: Sequence[tuple], progress: bool = False) -> torch.Tensor:
        """L2-normalised inference features (N, D) of ``items`` on the CPU, as the run's evaluation uses them."""
        net, key = self.test_net()
        return extract_features(net, items, self.cfg.data, self.device, key=key, desc=self.name,
                                progress=progress).cpu()

    def with_target_bn(self, items: Sequence[tuple], progress: bool = False) -> "LoadedRun":
        """Re-estimate the BatchNorm statistics of ``net`` on ``items`` (the target train split) when the run
        used them (``uda.target_bn``, a UDA stage): the statistics its loop clustered and evaluated with
        (:mod:`reid_uda_lib.core.bn_stats`: the same ``uda.target_bn_images``). The checkpoint keeps the
        Mean-Net's training statistics (a mix of source and target batches), so without this call ``net``
        normalises target images with partly source statistics and its features, labels and mAP differ from
        the run's. A pretraining run (its direct-transfer evaluation has no target statistics) and a run
        without ``uda.target_bn`` are left unchanged. Returns ``self``."""
        if self.stage == "uda" and self.cfg.uda.target_bn:
            from ..core.bn_stats import bn_subset, refresh_bn_stats
            refresh_bn_stats(self.net, bn_subset(list(items), self.cfg.uda.target_bn_images), self.cfg.data,
                             self.device, progress=progress)
        return self

    def pseudo_labels(self, items: Sequence[tuple], progress: bool = False) -> LabelSets:
        """The pseudo labels this model gives ``items`` (the target train split), by the method's own
        clustering (``pseudo_labels`` hook; a pretraining run uses the default: DBSCAN on the Jaccard
        distance with the ``uda`` settings, i.e. the labels of an adaptation's first round).

        For a finished UDA run these are the labels of the round that would follow its last epoch.
        """
        method = self.method if self.method is not None else UDAMethod("pretrain")
        ctx = ClusterContext(self.net, self.modules, self.student, self.student_modules, list(items), self.cfg,
                             self.device, self.cfg.uda.epochs, progress)
        return method.pseudo_labels(ctx)


def load_run(path: str | Path, device: str | torch.device = "cpu",
             target_bn: Optional[Sequence[tuple]] = None) -> LoadedRun:
    """Rebuild the networks of a run folder (or its ``checkpoint.pt``) written by ``pretrain`` or ``adapt``.

    ``target_bn``: the target train items; when the run re-estimated its BatchNorm statistics on them
    (``uda.target_bn``), ``net`` gets them again (:meth:`LoadedRun.with_target_bn`), so its features,
    pseudo labels and mAP are the run's own."""
    path = Path(path)
    state = load_checkpoint(path, kind=("pretrain", "uda"))
    cfg = Config.from_dict(state["config"])
    dev = resolve_device(device)
    method = METHODS.get(state.get("method")) if state["kind"] == "uda" else None
    if state["kind"] == "uda" and method is None:
        raise ValueError(f"{path}: the checkpoint was written by method {state.get('method')!r}, which this "
                         f"version of the library does not know (methods: {', '.join(METHODS)})")

    def build(weights: dict) -> nn.Module:
        n_src = weights["classifiers.source.weight"].shape[0] if "classifiers.source.weight" in weights else 0
        net = build_model(cfg.model, num_classes=n_src, read_weights=False).to(dev)
        net.load_state_dict(weights)
        return net.eval()

    def extra(weights: Optional[dict], net: nn.Module) -> nn.ModuleDict:
        mods = method.extra_modules(net, cfg).to(dev) if method is not None else nn.ModuleDict()
        if weights is not None and len(mods.state_dict()):
            mods.load_state_dict(weights)
        return mods.eval()

    student = build(state["model"])
    student_mods = extra(state.get("extra"), student)
    if "mean_net" in state:
        net = build(state["mean_net"]["module"])
        mods = extra(state["mean_extra"]["module"] if "mean_extra" in state else state.get("extra"), net)
    else:
        net, mods = student, student_mods
    run = LoadedRun(path if path.is_dir() else path.parent, cfg, state["kind"], method, net, mods, student,
                    student_mods, dev)
    return run.with_target_bn(target_bn) if target_bn is not None else run
