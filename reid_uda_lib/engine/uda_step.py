"""One training step of the UDA loop on a mixed batch (N source + N pseudo-labelled target images).

Split from the loop so that ``benchmarks/bench_step.py`` times exactly the step the loop runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..losses import MemoryBank
from ..models import MeanTeacher
from .common import supervised_terms
from .method_base import StepContext, UDAMethod

TARGET_HEAD = "target"


@dataclass
class UDAParts:
    """Everything a step updates."""
    model: nn.Module
    method: UDAMethod
    extra: nn.ModuleDict
    memory: Optional[MemoryBank]
    optimizer: torch.optim.Optimizer
    mean_net: Optional[MeanTeacher]
    mean_extra: Optional[MeanTeacher]
    cfg: Any


def split_outputs(out: dict, n: int) -> tuple[dict, dict]:
    """Split the outputs of a concatenated [source; target] forward into two dicts."""
    def part(v, sl):
        return {k: part(x, sl) for k, x in v.items()} if isinstance(v, dict) else v[sl]
    return part(out, slice(0, n)), part(out, slice(n, None))


def compute_terms(p: UDAParts, x_s: torch.Tensor, y_s: torch.Tensor, x_t: torch.Tensor, y_t: torch.Tensor,
                  step: int = 0, epoch: int = 0) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """One forward of a mixed batch and every weighted loss term: ``(terms, out_s, out_t)``.

    The shared terms come first (L_BReID on both domains: CE-LS + triplet; the memory-bank loss when the
    method has one), then the method's ``extra_terms``. Both domains go through one concatenated forward.
    """
    cfg = p.cfg
    out_s, out_t = split_outputs(p.model(torch.cat([x_s, x_t])), len(x_s))
    terms = supervised_terms(out_s, y_s, "source", cfg.loss, prefix="s_")
    terms.update(supervised_terms(out_t, y_t, TARGET_HEAD, cfg.loss, prefix="t_"))
    if p.memory is not None:
        terms["s_mem"] = cfg.loss.w_memory * p.memory.loss(out_s["bn"], y_s, "source")
        terms["t_mem"] = cfg.loss.w_memory * p.memory.loss(out_t["bn"], y_t, "target")
    terms.update(p.method.extra_terms(StepContext(out_s, out_t, y_s, y_t, p.extra, p.model, cfg, step, epoch,
                                                  TARGET_HEAD)))
    return terms, out_s, out_t


def train_step(p: UDAParts, x_s: torch.Tensor, y_s: torch.Tensor, x_t: torch.Tensor, y_t: torch.Tensor,
               idx_t: torch.Tensor, step: int = 0, epoch: int = 0,
               check: Optional[Callable[[dict], None]] = None) -> dict[str, torch.Tensor]:
    """Forward, loss terms, ``check(terms)`` (the NaN guard), backward, optimiser step, then the Mean-Net
    (EMA of the backbone and of the method's modules) and memory-bank updates. Returns the terms."""
    terms, out_s, out_t = compute_terms(p, x_s, y_s, x_t, y_t, step, epoch)
    if check is not None:
        check(terms)
    p.optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    p.optimizer.step()
    if p.mean_net is not None:
        p.mean_net.update(p.model)
    if p.mean_extra is not None:
        p.mean_extra.update(p.extra)
    if p.memory is not None:
        with torch.no_grad():
            p.memory.update_source(out_s["bn"].detach(), y_s)
            p.memory.update_target(out_t["bn"].detach(), idx_t)
    return terms
