"""Supervised fine-tuning from a checkpoint: ``pretrain(..., init=checkpoint)``.

``pretrain`` normally trains from the model's own initial weights. With ``init`` it starts from another
pretraining checkpoint instead (e.g. a source-pretrained model fine-tuned on a labelled target): backbone and
BNNeck are loaded, the checkpoint's classifier is dropped, and the new classifier over the training set's
identities is built from their centroids under the loaded weights (mean BNNeck feature per identity,
L2-normalised), as the UDA loop builds its per-epoch head from cluster centroids (train/uda.py, step 3).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import Config
from ..runtime.checkpoint import CheckpointError, check_model_config, load_checkpoint
from ..core.features import extract_features


def load_init_weights(model, init: str | Path, cfg: Config, items, device: torch.device,
                      progress: bool = True) -> None:
    """Load backbone and BNNeck from the pretraining checkpoint ``init`` into ``model`` and set its
    ``"source"`` head (here: the training set's identities, ``items`` = ``(path, pid, camid)``) to the
    L2-normalised mean BNNeck feature of each identity under the loaded weights."""
    state = load_checkpoint(init, kind="pretrain")
    check_model_config(state, cfg.to_dict()["model"], init)
    weights = {k: v for k, v in state["model"].items() if not k.startswith("classifiers.")}
    head = model.classifiers["source"]
    del model.classifiers["source"]
    try:
        missing, unexpected = torch.nn.Module.load_state_dict(model, weights, strict=False)
    finally:
        model.classifiers["source"] = head
    if missing or unexpected:
        raise CheckpointError(f"the weights in {init} do not fit this model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    feats = extract_features(model, items, cfg.data, device, desc="initial head", progress=progress)
    pids = torch.as_tensor([p for _, p, _ in items], device=feats.device)
    n = head.weight.shape[0]
    sums = torch.zeros(n, feats.shape[1], device=feats.device).index_add_(0, pids, feats)
    counts = torch.bincount(pids, minlength=n).clamp_min(1).unsqueeze(1).to(feats.dtype)
    with torch.no_grad():
        head.weight.copy_(F.normalize(sums / counts, dim=1).to(head.weight.device, head.weight.dtype))
