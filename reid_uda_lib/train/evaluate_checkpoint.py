"""Evaluate a saved checkpoint (pretraining or UDA) on a dataset's query/gallery split."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..config import Config
from ..data import ReidDataset
from ..models import build_model
from ..utils import resolve_device
from ..core.bn_stats import refresh_bn_stats
from ..runtime.checkpoint import load_checkpoint, load_weights
from ..core.features import evaluate_model
from ..methods.base import EvalContext
from ..methods.registry import METHODS


def evaluate_checkpoint(path: str | Path, dataset: ReidDataset, rerank: bool = False, device: str = "auto",
                        progress: bool = True, cross_camera_only: bool | None = None,
                        target_bn: Optional[Sequence[tuple]] = None) -> dict:
    """Rebuild the model from the checkpoint's own config and evaluate it.

    A UDA checkpoint is evaluated with its Mean-Net when it has one (the model the papers report), on its
    method's inference feature (``UDAMethod.test_net``). ``cross_camera_only`` defaults to the checkpoint's
    ``evaluation.cross_camera_only``. ``target_bn``: images (``(path, pid, cam)`` items, e.g. the target's
    unlabelled train split) on which the BatchNorm statistics are re-estimated before evaluating (AdaBN,
    :mod:`reid_uda_lib.core.bn_stats`): the ladder's "direct transfer + target BN statistics" row.
    """
    state = load_checkpoint(path, kind=("pretrain", "uda"))
    cfg = Config.from_dict(state["config"])
    dev = resolve_device(device)
    weights = state["mean_net"]["module"] if "mean_net" in state else state["model"]
    n_classes = weights["classifiers.source.weight"].shape[0] if "classifiers.source.weight" in weights else 0
    model = build_model(cfg.model, num_classes=n_classes, read_weights=False).to(dev)
    load_weights(model, weights, path)
    if cross_camera_only is None:
        cross_camera_only = cfg.evaluation.cross_camera_only
    net, key = model, "bn"
    if state.get("method") in METHODS:       # the method's inference feature (LF²: global + parts concatenated)
        method = METHODS[state["method"]]
        extra = method.extra_modules(model, cfg).to(dev)
        if len(extra.state_dict()):
            load_weights(extra, state["mean_extra"]["module"] if "mean_extra" in state else state["extra"], path,
                         "method-module")
        net, key = method.test_net(EvalContext(model, extra.eval(), cfg))
    if target_bn is not None:
        refresh_bn_stats(net, target_bn, cfg.data, dev, progress=progress)
    res = evaluate_model(net, dataset.query, dataset.gallery, cfg.data, dev, rerank=rerank, progress=progress,
                         key=key, cross_camera_only=cross_camera_only)
    return {"checkpoint": str(path), "stage": state["kind"], "epoch": state["epoch"], "dataset": dataset.name,
            "rerank": rerank, "target_bn": target_bn is not None, **res}
