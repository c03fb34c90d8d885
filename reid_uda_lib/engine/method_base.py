"""The plug-in interface of the one UDA loop (:mod:`reid_uda_lib.engine.uda`).

A method says which shared components it switches on (Mean-Net, memory bank) and adds behaviour through
four hooks, each called by the loop at one place:

==========================  ==========================================================================
hook                        called
==========================  ==========================================================================
``extra_modules``           once: modules trained with the backbone (optimised, checkpointed, moved to the
                            device, and averaged by the Mean-Net like the backbone when there is one)
``extra_terms``             every step, after the shared SBase terms: extra loss terms of the mixed batch
``epoch_diagnostics``       every epoch, after training: numbers logged under ``"probe"`` in metrics.jsonl
``extra_evaluations``       at the last epoch: extra inference features, evaluated like the main one
==========================  ==========================================================================

The loop never tests a method's name: everything a method changes goes through these hooks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class StepContext:
    """What ``extra_terms`` sees of one training step of a mixed batch (N source + N target images)."""
    out_s: dict                     # model outputs of the source images ("fmap", "f", "bn", "logits")
    out_t: dict                     # model outputs of the target images
    y_s: torch.Tensor               # source identities (N,)
    y_t: torch.Tensor               # target pseudo labels (N,)
    modules: nn.ModuleDict          # the method's extra modules (student side)
    model: nn.Module                # the student ReidNet (its heads: model.classifiers[target_head])
    cfg: Any                        # the run's Config
    step: int                       # global step (0-based) of this batch
    epoch: int
    target_head: str = "target"     # name of the per-epoch pseudo-label classifier head

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


@dataclass(frozen=True)
class UDAMethod:
    name: str
    mean_net: bool = True
    memory_bank: bool = True
    description: str = ""

    def extra_modules(self, model: nn.Module, cfg: Any) -> nn.ModuleDict:
        """Modules trained with the backbone (optimised, checkpointed, moved to the device)."""
        return nn.ModuleDict()

    def extra_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Extra weighted loss terms for one mixed batch; each key is a term name shown in the logs."""
        return {}

    def epoch_diagnostics(self, ctx: EpochContext) -> dict[str, Any]:
        """Numbers logged once per epoch under ``"probe"`` (e.g. DCDFA's disentanglement probes)."""
        return {}

    def extra_evaluations(self, eval_net: nn.Module, eval_modules: nn.ModuleDict) -> dict[str, nn.Module]:
        """``{name: net}`` evaluated on the target test split at the last epoch; ``net(x)["feat"]`` is the
        feature (logged as ``"target_<name>"``), e.g. DCDFA Table 2's "using b only"."""
        return {}
