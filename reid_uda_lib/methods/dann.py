"""The adversarial baseline of DCDFA sec. 4.2.2: SBase + a domain classifier on f behind a gradient
reversal layer (DANN, Ganin & Lempitsky [10]).

The classifier learns to tell source from target features; the reversed gradient drives the backbone to
make f domain-invariant. DCDFA reports this as "close to SBase" (+0.1 / +0.5 mAP). The classifier is
DCDFA's ``DomainClassifier`` (width reduced by ``dcdfa.reduction`` twice, dropout ``dcdfa.dropout``), so the
two methods differ only in how the domain label is used.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..losses.dcdfa import domain_ce
from ..models.dcdfa import DomainClassifier, grad_reverse
from .base import StepContext, UDAMethod
from .rules import ge


@dataclass(frozen=True)
class DANNMethod(UDAMethod):
    sections: tuple = ("dann", "dcdfa")          # its classifier is DCDFA's (dcdfa.reduction, dcdfa.dropout)

    def rules(self) -> dict:
        return {"dann.weight": ge(0), "dann.grl_lambda": ge(0)}

    def extra_modules(self, model: nn.Module, cfg) -> nn.ModuleDict:
        return nn.ModuleDict({"domain": DomainClassifier(model.feat_dim, cfg.dcdfa.reduction, cfg.dcdfa.dropout)})

    def extra_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        f = torch.cat([ctx.out_s["f"], ctx.out_t["f"]])
        logits = ctx.modules["domain"](grad_reverse(f, ctx.cfg.dann.grl_lambda))
        n = len(ctx.out_s["f"])
        return {"adv": ctx.cfg.dann.weight * domain_ce(logits[:n], logits[n:])}
