"""BatchNorm groups ("ghost batch norm"): one GPU reproduces the batch statistics of the papers' multi-GPU runs.

The papers trained with ``nn.DataParallel`` on 2-4 GPUs, so every BatchNorm layer normalised over *one GPU's
share* of the batch (LF²: 2 GPUs, 64 images -> 32 per GPU; SpCL-style trainers: 4 GPUs, 16 source + 16 target
images per GPU). On one GPU the same batch is normalised over all its images at once and the results change.
With ``model.bn_samples = s`` every BatchNorm layer, in training mode, normalises each run of ``s`` consecutive
images of its input with that run's own mean and variance:

    y_i = γ · (x_i − μ_g) / sqrt(σ²_g + ε) + β,   μ_g, σ²_g the (biased) moments of group g ∋ i     (Eq. G1)

Running statistics (used in evaluation mode) follow one rule, the mean over the groups::

    running_mean ← (1 − m)·running_mean + m · mean_g(μ_g)
    running_var  ← (1 − m)·running_var  + m · mean_g(σ̂²_g)      σ̂²_g unbiased (n_g / (n_g − 1) · σ²_g)   (Eq. G2)

This is what ``torchrun`` with one group per process gives when the processes' running statistics are averaged
after each step (the engine does that), so a one-process run with ``s`` = the per-process batch and a
G-process run hold the same statistics. ``nn.DataParallel`` differs: it keeps only the first GPU's replica's
statistics (the first group's μ_1, σ̂²_1), a noisier estimate of the same quantity.

Evaluation mode is unchanged. An input with ``s`` or fewer images is normalised as one group (plain
BatchNorm: bit-identical to ``nn.BatchNorm*``); an input of more than ``s`` images that is not a multiple of
``s`` is refused, naming ``model.bn_samples``.

:func:`domain_layout` arranges a concatenated [source; target] batch so that each group holds the same share
of each domain, as one GPU did in the peers' trainers; :func:`invert_layout` restores the order.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["GhostBatchNorm1d", "GhostBatchNorm2d", "use_bn_groups", "domain_layout", "invert_layout",
           "apply_layout", "layout_groups"]


class _GhostMixin:
    """Forward of a BatchNorm layer whose training-mode statistics are per group of ``bn_samples`` images."""

    bn_samples: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, n = int(self.bn_samples), x.shape[0]
        if not self.training or s <= 0 or n <= s:
            return super().forward(x)
        if n % s:
            raise ValueError(f"model.bn_samples = {s}: a BatchNorm layer got a batch of {n} images, which is not "
                             f"a multiple of {s}; choose bn_samples dividing the local batch (or 0 = whole batch)")
        self._check_input_dim(x)
        # one fused kernel per group; it also returns the group's mean and 1/sqrt(biased var + eps)
        parts = [torch.native_batch_norm(c, self.weight, self.bias, None, None, True, 0.0, self.eps)
                 for c in x.split(s)]                                                      # Eq. G1
        if self.track_running_stats:
            self._update_running_stats([p[1] for p in parts], [p[2] for p in parts], x[:s].numel() // x.shape[1])
        return torch.cat([p[0] for p in parts])

    @torch.no_grad()
    def _update_running_stats(self, means: list, invstds: list, count: int) -> None:
        """Eq. G2: the mean over the groups of each group's mean and unbiased variance (``count`` values per
        channel and group)."""
        mean = torch.stack(means).float().mean(dim=0)
        biased = (torch.stack(invstds).float().pow(-2) - self.eps)
        var = (biased * (count / max(count - 1, 1))).mean(dim=0)
        self.num_batches_tracked.add_(1)
        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
        self.running_var.mul_(1 - m).add_(var.to(self.running_var.dtype), alpha=m)


class GhostBatchNorm1d(_GhostMixin, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with per-group training statistics (Eq. G1-G2); same parameters and state dict."""


class GhostBatchNorm2d(_GhostMixin, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with per-group training statistics (Eq. G1-G2); same parameters and state dict."""


_GHOST = {nn.BatchNorm1d: GhostBatchNorm1d, nn.BatchNorm2d: GhostBatchNorm2d}


def use_bn_groups(module: nn.Module, bn_samples: int) -> nn.Module:
    """Make every BatchNorm layer of ``module`` (in place) normalise groups of ``bn_samples`` images in training.

    The layers keep their parameters, buffers and state-dict keys (their class becomes the ghost variant),
    so checkpoints, the optimiser and the Mean-Net's deep copy are unaffected. ``bn_samples = 0`` leaves
    ``module`` untouched (whole-batch statistics). Returns ``module``.
    """
    if int(bn_samples) != bn_samples or bn_samples < 0:
        raise ValueError(f"model.bn_samples must be a non-negative integer (0 = the whole batch); got {bn_samples!r}")
    if bn_samples == 0:
        return module
    for m in module.modules():
        ghost = _GHOST.get(type(m))
        if ghost is not None:
            m.__class__ = ghost
        if isinstance(m, _GhostMixin):
            m.bn_samples = int(bn_samples)
    return module


def layout_groups(n_s: int, n_t: int, bn_samples: int) -> int:
    """Number of BatchNorm groups of a concatenated batch of ``n_s`` source + ``n_t`` target images.

    Refuses (naming ``model.bn_samples``) a total that is not a multiple of ``bn_samples`` or groups that
    cannot hold equal shares of each domain. ``bn_samples = 0`` or at least the total: one group.
    """
    total = n_s + n_t
    if bn_samples <= 0 or bn_samples >= total:
        return 1
    if total % bn_samples:
        raise ValueError(f"model.bn_samples = {bn_samples} must divide the local batch of {total} images "
                         f"({n_s} source + {n_t} target)")
    groups = total // bn_samples
    if n_s % groups or n_t % groups:
        raise ValueError(f"model.bn_samples = {bn_samples} gives {groups} BatchNorm groups, which cannot each hold "
                         f"the same share of the {n_s} source and {n_t} target images; choose bn_samples so that "
                         "the number of groups divides both")
    return groups


def domain_layout(n_s: int, n_t: int, groups: int) -> torch.Tensor:
    """Order of the rows of ``cat([x_s, x_t])`` that gives every group the same source/target mix.

    Group g (of ``groups`` consecutive runs of ``(n_s + n_t) / groups`` rows) holds source chunk g
    (``n_s / groups`` images, in order) followed by target chunk g: ``x[order]`` is
    ``[s_0; t_0; s_1; t_1; ...]`` -- what GPU g held in a DataParallel run that split each domain's batch into
    ``groups`` chunks. ``groups = 1`` is the identity (the plain concatenation).
    """
    if groups < 1 or n_s % groups or n_t % groups:
        raise ValueError(f"domain_layout: {groups} groups cannot each hold an equal share of {n_s} source and "
                         f"{n_t} target images")
    cs, ct = n_s // groups, n_t // groups
    src = torch.arange(n_s).view(groups, cs)
    tgt = torch.arange(n_s, n_s + n_t).view(groups, ct)
    return torch.cat([src, tgt], dim=1).reshape(-1)


def invert_layout(order: torch.Tensor) -> torch.Tensor:
    """The permutation that undoes ``order``: ``y[invert_layout(order)]`` with ``y = x[order]`` is ``x``."""
    inv = torch.empty_like(order)
    inv[order] = torch.arange(len(order), device=order.device)
    return inv


def apply_layout(out: Any, order: torch.Tensor) -> Any:
    """``out`` (a tensor or a nested dict of tensors with the batch first) with its rows taken in ``order``."""
    if isinstance(out, dict):
        return {k: apply_layout(v, order) for k, v in out.items()}
    return out.index_select(0, order.to(out.device))
