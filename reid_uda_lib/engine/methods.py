"""UDA methods as small plug-ins to the one loop in :mod:`reid_uda_lib.engine.uda`.

A method says which shared components it switches on (Mean-Net, memory bank) and may add modules and loss
terms through two hooks. The four rows of DCDFA Table 1 are four switch settings of the same loop:

==============  =========  ===========  ===========================================
name            Mean-Net   memory bank  DCDFA Table 1 row
==============  =========  ===========  ===========================================
base            no         no           Baseline (Base): clustering + CE-LS + triplet
base_mb         no         yes          Base+MB
base_meannet    yes        no           Base+Mean-Net
sbase           yes        yes          Base+MB+Mean-Net (SBase)
==============  =========  ===========  ===========================================

Later methods (DCDFA, LF²) subclass :class:`UDAMethod`: ``extra_modules`` returns their heads (channel
attention, domain classifier, fusion module, experts), ``extra_terms`` their losses for a mixed batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class UDAMethod:
    name: str
    mean_net: bool = True
    memory_bank: bool = True
    description: str = ""

    def extra_modules(self, model: nn.Module) -> nn.ModuleDict:
        """Modules trained with the backbone (optimised, checkpointed, moved to the device)."""
        return nn.ModuleDict()

    def extra_terms(self, out_s: dict, out_t: dict, y_s: torch.Tensor, y_t: torch.Tensor,
                    modules: nn.ModuleDict) -> dict[str, torch.Tensor]:
        """Extra loss terms for one mixed batch (source outputs/labels, target outputs/pseudo labels)."""
        return {}


METHODS: dict[str, UDAMethod] = {
    m.name: m for m in (
        UDAMethod("base", mean_net=False, memory_bank=False,
                  description="clustering baseline: DBSCAN pseudo labels, CE-LS + triplet on both domains"),
        UDAMethod("base_mb", mean_net=False, memory_bank=True, description="Base + memory bank"),
        UDAMethod("base_meannet", mean_net=True, memory_bank=False, description="Base + Mean-Net"),
        UDAMethod("sbase", mean_net=True, memory_bank=True,
                  description="strong baseline: Base + memory bank + Mean-Net (DCDFA sec. 4.1)"),
    )
}


def get_method(name: str) -> UDAMethod:
    if name not in METHODS:
        raise KeyError(f"unknown UDA method '{name}'; available: {', '.join(METHODS)}")
    return METHODS[name]
