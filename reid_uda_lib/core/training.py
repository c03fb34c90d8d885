"""Pieces shared by the pretraining and UDA loops: optimiser, schedule, loss terms, NaN guard."""
from __future__ import annotations

import math
import os
from typing import Iterable

import torch

from ..config import LossConfig, OptimConfig
from ..losses import batch_hard_triplet, cross_entropy_ls


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the run stops and the last good checkpoint (if any) is kept."""


def build_optimizer(params: Iterable, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam with weight decay (DCDFA / LF²: lr 3.5e-4, wd 5e-4)."""
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def uda_optim(cfg) -> OptimConfig:
    """The optimiser settings of the fine-tuning stages (UDA and the oracle): ``optim`` with ``uda.lr`` as the
    learning rate when it is set (> 0), else ``optim`` as it is."""
    import dataclasses
    return dataclasses.replace(cfg.optim, lr=cfg.uda.lr) if cfg.uda.lr > 0 else cfg.optim


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-epoch schedule: linear warm-up for ``warmup_epochs``, then ×gamma at each milestone epoch."""
    milestones = sorted(cfg.milestones)

    def factor(epoch: int) -> float:
        warm = (epoch + 1) / cfg.warmup_epochs if epoch < cfg.warmup_epochs else 1.0
        return warm * cfg.gamma ** sum(epoch >= m for m in milestones)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def supervised_terms(out: dict, labels: torch.Tensor, head: str, cfg: LossConfig,
                     prefix: str) -> dict[str, torch.Tensor]:
    """CE with label smoothing on the BNNeck logits + batch-hard triplet on the pooled feature f.

    Returns ``{f"{prefix}ce": ..., f"{prefix}tri": ...}`` already weighted by ``w_ce`` / ``w_triplet``.
    """
    return {
        f"{prefix}ce": cfg.w_ce * cross_entropy_ls(out["logits"][head], labels, epsilon=cfg.label_smoothing),
        f"{prefix}tri": cfg.w_triplet * batch_hard_triplet(out["f"], labels, margin=cfg.triplet_margin),
    }


def check_finite(terms: dict[str, torch.Tensor], stage: str, epoch: int, it: int, step: int,
                 last_checkpoint: str) -> None:
    """Raise :class:`NonFiniteLossError` naming the step and the first non-finite term."""
    for name, value in terms.items():
        v = float(value.detach())
        if not math.isfinite(v):
            if os.path.isfile(last_checkpoint):
                kept = (f"The last good checkpoint is kept: {last_checkpoint}; resume from it with --resume "
                        "after the fix.")
            else:
                kept = "No checkpoint was written yet (the first epoch did not finish)."
            raise NonFiniteLossError(
                f"{stage}: loss term '{name}' is {v} at epoch {epoch}, iteration {it} (global step {step}); "
                f"stopping. {kept} Lower optim.lr or check the data.")


class RunningMean:
    """Mean of each loss term over an epoch, for the log and the progress bar."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.n = 0

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.detach())
        self.n += 1

    def means(self) -> dict[str, float]:
        return {k: s / max(self.n, 1) for k, s in self.sums.items()}
