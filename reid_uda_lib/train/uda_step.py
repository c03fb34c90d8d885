"""One training step of the UDA loop on a mixed batch (N source + N pseudo-labelled target images), or on a
target-only batch for methods with ``source_batches=False`` (``x_s``/``y_s`` None).

Split from the loop so that ``benchmarks/bench_step.py`` times exactly the step the loop runs.

BatchNorm groups (``model.bn_samples``, :mod:`reid_uda_lib.models.bn_groups`): a mixed batch goes through the
network in the layout of :func:`~reid_uda_lib.models.bn_groups.domain_layout` (each group the same source /
target mix) and its outputs are put back in [source; target] order. Under torchrun each process runs its
share and the outputs of the global batch are gathered (:mod:`reid_uda_lib.runtime.distributed`) before any
loss is computed, so the terms are those of the global batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..losses import MemoryBank
from ..models import MeanTeacher
from ..models.bn_groups import apply_layout, domain_layout, invert_layout, layout_groups
from ..runtime import distributed as ddp
from ..runtime.amp import Precision
from ..core.training import supervised_terms
from ..methods.activity import gradient_norms
from ..methods.base import StepContext, UDAMethod

TARGET_HEAD = "target"
FLOAT32 = Precision("off", "cpu")         # no autocast, plain backward and step


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
    labels: Optional[torch.Tensor] = None   # (L, N_target) labels of every level, set by the loop each epoch
    bn_samples: int = 0                     # images per BatchNorm group of this process's forward (0: all)
    precision: Optional[Precision] = None   # mixed precision (runtime/amp.py); None: float32
    grad_norms: Optional[dict] = None       # each term's gradient norm at the probed module, last probed step


def split_outputs(out: dict, n: int) -> tuple[dict, dict]:
    """Split the outputs of a concatenated [source; target] forward into two dicts."""
    def part(v, sl):
        return {k: part(x, sl) for k, x in v.items()} if isinstance(v, dict) else v[sl]
    return part(out, slice(0, n)), part(out, slice(n, None))


def forward_batch(p: UDAParts, x_s: Optional[torch.Tensor], x_t: torch.Tensor) -> tuple[Optional[dict], dict]:
    """``(out_s, out_t)`` of one forward of this process's images, in the BatchNorm-group layout, gathered over
    the processes under torchrun (outputs of the global batch, in [source; target] order)."""
    net = p.model
    if x_s is None:
        return None, ddp.gather_outputs(net(x_t))
    n_s, n_t = len(x_s), len(x_t)
    groups = layout_groups(n_s, n_t, p.bn_samples)
    if groups == 1 and not ddp.is_distributed():            # today's plain concatenation
        return split_outputs(net(torch.cat([x_s, x_t])), n_s)
    out = ddp.gather_outputs(net(torch.cat([x_s, x_t])[domain_layout(n_s, n_t, groups).to(x_s.device)]))
    # process r's share holds source chunk r and target chunk r of the global batch: the gathered rows are
    # the global batch in the layout of groups x processes
    w = ddp.world_size()
    back = invert_layout(domain_layout(n_s * w, n_t * w, groups * w))
    return split_outputs(apply_layout(out, back), n_s * w)


def compute_terms(p: UDAParts, x_s: Optional[torch.Tensor], y_s: Optional[torch.Tensor], x_t: torch.Tensor,
                  y_t: torch.Tensor, step: int = 0, epoch: int = 0, idx_t: Optional[torch.Tensor] = None
                  ) -> tuple[dict[str, torch.Tensor], Optional[dict], dict]:
    """One forward of a mixed batch and every weighted loss term: ``(terms, out_s, out_t)``.

    The shared terms come first (L_BReID on both domains: CE-LS + triplet; the memory-bank loss when the
    method has one; none when ``method.shared_terms`` is False), then the method's ``extra_terms``. Both
    domains go through one concatenated forward; a target-only batch (``x_s`` None) through one forward too
    (:func:`forward_batch`). Under torchrun the outputs, labels and images are those of the global batch.
    """
    cfg = p.cfg
    out_s, out_t = forward_batch(p, x_s, x_t)
    y_s, y_t, idx_t, x_t = (ddp.gather_tensor(v) for v in (y_s, y_t, idx_t, x_t))
    terms: dict[str, torch.Tensor] = {}
    if p.method.shared_terms:
        terms.update(supervised_terms(out_s, y_s, "source", cfg.loss, prefix="s_"))
        terms.update(supervised_terms(out_t, y_t, TARGET_HEAD, cfg.loss, prefix="t_"))
    if p.memory is not None:
        terms["s_mem"] = cfg.loss.w_memory * p.memory.loss(out_s["bn"], y_s, "source")
        terms["t_mem"] = cfg.loss.w_memory * p.memory.loss(out_t["bn"], y_t, "target")
    y_levels = p.labels[:, idx_t] if p.labels is not None and idx_t is not None else None
    terms.update(p.method.extra_terms(StepContext(
        out_s, out_t, y_s, y_t, p.extra, p.model, cfg, step, epoch, TARGET_HEAD, x_t=x_t,
        teacher=p.mean_net.module if p.mean_net is not None else None,
        teacher_modules=p.mean_extra.module if p.mean_extra is not None else None, y_levels=y_levels)))
    return terms, out_s, out_t


def train_step(p: UDAParts, x_s: torch.Tensor, y_s: torch.Tensor, x_t: torch.Tensor, y_t: torch.Tensor,
               idx_t: torch.Tensor, step: int = 0, epoch: int = 0,
               check: Optional[Callable[[dict], None]] = None,
               grad_probe: Optional[nn.Module] = None) -> dict[str, torch.Tensor]:
    """Forward, loss terms, ``check(terms)`` (the NaN guard), backward, optimiser step, then the Mean-Net
    (EMA of the backbone and of the method's modules) and memory-bank updates. Returns the terms.
    With ``p.precision`` (config ``amp``) the forward and the terms run under autocast and the backward /
    step go through its gradient scaler (fp16). ``grad_probe``: a module (the backbone's last block) at which
    each term's gradient norm is measured before the backward, into ``p.grad_norms``
    (:func:`~reid_uda_lib.methods.activity.gradient_norms`; the step itself is unchanged)."""
    prec = p.precision or FLOAT32
    with prec.autocast():
        terms, out_s, out_t = compute_terms(p, x_s, y_s, x_t, y_t, step, epoch, idx_t)
    if check is not None:
        check(terms)
    if grad_probe is not None:
        p.grad_norms = gradient_norms(terms, grad_probe)
    p.optimizer.zero_grad(set_to_none=True)
    loss = sum(terms.values())
    prec.backward(loss)
    ddp.average_gradients([*p.model.parameters(), *p.extra.parameters()])     # under torchrun
    prec.step(p.optimizer)
    ddp.average_bn_statistics(p.model, p.extra)
    y_s, idx_t = ddp.gather_tensor(y_s), ddp.gather_tensor(idx_t)
    if p.mean_net is not None:
        p.mean_net.update(p.model)
    if p.mean_extra is not None:
        p.mean_extra.update(p.extra)
    if p.memory is not None:
        with torch.no_grad():
            # .float(): under autocast the features may be bf16/fp16; the bank stays float32 (a no-op otherwise)
            p.memory.update_source(out_s["bn"].detach().float(), y_s)
            p.memory.update_target(out_t["bn"].detach().float(), idx_t)
    return terms
