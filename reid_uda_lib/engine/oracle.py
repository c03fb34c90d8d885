"""The oracle: supervised fine-tuning on the target's own labels, the upper reference of every UDA row.

A fair upper bound starts where the UDA rows start and trains as long as they do. The oracle therefore

* is initialised from the **same source-pretrained checkpoint** the UDA rows adapt (``pretrain(...,
  init=checkpoint)``): backbone and BNNeck are loaded, the source classifier is dropped and a classifier
  over the target's true identities is built from their centroids under the initial model (mean BNNeck
  feature per identity, L2-normalised), as the UDA loop builds its per-epoch head from the cluster
  centroids (engine/uda.py, step 3);
* runs the **same number of optimisation steps** as the UDA stage, :func:`oracle_steps_per_epoch` ×
  ``uda.epochs``: ``uda.iters_per_epoch`` steps per epoch when it is set, else one pass over the target's
  training images, ``len(target.train) // data.batch_size``. (With ``iters_per_epoch = 0`` a UDA epoch is
  one pass over the *pseudo-labelled* images, i.e. without DBSCAN's outliers, so it has a few steps fewer
  than the oracle's epoch: the oracle is never short of steps.)
* with the UDA stage's optimiser settings: the same Adam, ``optim.lr`` held constant (no milestones, no
  warm-up: the UDA loop has no schedule), and the fine-tuning augmentation (``data.random_erasing_p``).

:func:`oracle_config` turns a config into the oracle's: these choices become ordinary config fields of the
``pretrain`` stage, so they are part of its run identity; the init checkpoint is part of it too
(:func:`~reid_uda_lib.engine.identity.checkpoint_fingerprint`).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import Config
from .checkpoint import CheckpointError, check_model_config, load_checkpoint
from .features import extract_features


def oracle_steps_per_epoch(cfg: Config, n_target_train: int) -> int:
    """Steps per oracle epoch: ``uda.iters_per_epoch`` when > 0, else ``n_target_train // data.batch_size``
    (at least 1): one pass over the target's training images, as a UDA epoch is one pass over its
    pseudo-labelled ones."""
    if cfg.uda.iters_per_epoch > 0:
        return int(cfg.uda.iters_per_epoch)
    return max(1, int(n_target_train) // cfg.data.batch_size)


def oracle_config(cfg: Config, n_target_train: int) -> Config:
    """The config of the oracle stage: ``uda.epochs`` epochs of :func:`oracle_steps_per_epoch` steps at the
    constant learning rate of the UDA rows (``uda.lr``, else ``optim.lr``), with the fine-tuning augmentation;
    evaluated as often as the UDA stage."""
    return cfg.override(**{
        "optim.lr": cfg.uda.lr if cfg.uda.lr > 0 else cfg.optim.lr,
        "pretrain.epochs": cfg.uda.epochs,
        "pretrain.iters_per_epoch": oracle_steps_per_epoch(cfg, n_target_train),
        "pretrain.eval_every": cfg.uda.eval_every,
        "optim.milestones": (),
        "optim.warmup_epochs": 0,
        "data.pretrain_random_erasing_p": cfg.data.random_erasing_p,
    })


def oracle_steps(cfg: Config, n_target_train: int) -> int:
    """Total optimisation steps of the oracle: ``uda.epochs`` × :func:`oracle_steps_per_epoch`."""
    return cfg.uda.epochs * oracle_steps_per_epoch(cfg, n_target_train)


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
    feats = extract_features(model, items, cfg.data, device, desc="oracle head", progress=progress)
    pids = torch.as_tensor([p for _, p, _ in items], device=feats.device)
    n = head.weight.shape[0]
    sums = torch.zeros(n, feats.shape[1], device=feats.device).index_add_(0, pids, feats)
    counts = torch.bincount(pids, minlength=n).clamp_min(1).unsqueeze(1).to(feats.dtype)
    with torch.no_grad():
        head.weight.copy_(F.normalize(sums / counts, dim=1).to(head.weight.device, head.weight.dtype))
