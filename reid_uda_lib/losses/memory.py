"""Memory bank with a circle-loss contrastive term (SBase, DCDFA sec. 4.1).

"We build a memory bank and update it with the prototypes (each prototype is an averaged feature of each
person) of D_s, and instance features of D_t. [...] given a query sample from D_s or D_t, we add contrastive
loss (with re-weighting as in circle loss) w.r.t. this query and elements in the memory bank."

One label space covers the whole bank: source prototype j has label j; target instance i has label
``Ns + y_i`` for its pseudo label ``y_i >= 0``; outlier instances (``y_i = -1``) are never a positive.
A source query's positive is its identity's prototype; a target query's positives are the instances
carrying its pseudo label (its own slot included: the bank cannot tell which slot a query came from).
Negatives are all other slots, prototypes and instances alike (outliers included).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DOMAINS = ("source", "target")


def circle_loss(sim: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, scale: float = 16.0,
                margin: float = 0.25) -> torch.Tensor:
    """Circle loss per query (Sun et al., CVPR 2020, Eq. 4 with the re-weighting of Eq. 6–8).

    ``L = log(1 + Σ_n exp(γ α_n (s_n − Δ_n)) · Σ_p exp(−γ α_p (s_p − Δ_p)))`` with
    ``α_p = [1 + m − s_p]_+``, ``α_n = [s_n + m]_+`` (no gradient through α), ``Δ_p = 1 − m``,
    ``Δ_n = m``, ``γ = scale``; computed as ``softplus(logsumexp_n(...) + logsumexp_p(...))``.

    Parameters
    ----------
    sim : (Q, M) cosine similarities of Q queries to M slots.
    pos, neg : (Q, M) boolean masks; every row needs at least one positive and one negative.

    Returns
    -------
    (Q,) loss of each query.
    """
    alpha_p = (1.0 + margin - sim).clamp_min(0.0).detach()
    alpha_n = (sim + margin).clamp_min(0.0).detach()
    logit_p = -scale * alpha_p * (sim - (1.0 - margin))
    logit_n = scale * alpha_n * (sim - margin)
    lse_p = torch.logsumexp(logit_p.masked_fill(~pos, float("-inf")), dim=1)
    lse_n = torch.logsumexp(logit_n.masked_fill(~neg, float("-inf")), dim=1)
    return F.softplus(lse_n + lse_p)


class MemoryBank(nn.Module):
    """Source identity prototypes + target instance features, all L2-normalised, stored as buffers.

    Parameters
    ----------
    num_source : Ns, number of source identities (prototype slots).
    num_target : Nt, number of target training images (instance slots).
    dim : C, feature dimension.
    momentum : μ, weight of the *old* slot in the updates (``slot ← norm(μ·slot + (1−μ)·new)``); μ = 0
        replaces slots by the newest features.
    scale, margin : γ and m of the circle loss.
    """

    def __init__(self, num_source: int, num_target: int, dim: int, momentum: float = 0.2,
                 scale: float = 16.0, margin: float = 0.25):
        super().__init__()
        if num_source < 1 or num_target < 1 or dim < 1:
            raise ValueError(f"MemoryBank needs num_source, num_target, dim >= 1; got {num_source}, "
                             f"{num_target}, {dim}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"MemoryBank momentum must be in [0, 1]; got {momentum}")
        self.num_source, self.num_target, self.dim = int(num_source), int(num_target), int(dim)
        self.momentum, self.scale, self.margin = float(momentum), float(scale), float(margin)
        # one (Ns + Nt, C) buffer so the loss needs no concatenation; source/target are views of it
        self.register_buffer("bank", torch.zeros(self.num_source + self.num_target, self.dim))
        self.register_buffer("target_labels", torch.full((self.num_target,), -1, dtype=torch.long))
        self.register_buffer("source_ready", torch.zeros((), dtype=torch.bool))
        self.register_buffer("target_ready", torch.zeros((), dtype=torch.bool))

    @property
    def source(self) -> torch.Tensor:
        """(Ns, C) view of the bank: source identity prototypes."""
        return self.bank[: self.num_source]

    @property
    def target(self) -> torch.Tensor:
        """(Nt, C) view of the bank: target instance features."""
        return self.bank[self.num_source:]

    def extra_repr(self) -> str:
        return (f"num_source={self.num_source}, num_target={self.num_target}, dim={self.dim}, "
                f"momentum={self.momentum}, scale={self.scale}, margin={self.margin}")

    # -- validation ---------------------------------------------------------------------------------
    def _check_feats(self, f: torch.Tensor, rows: int | None, what: str) -> None:
        ok = torch.is_tensor(f) and f.dim() == 2 and f.shape[1] == self.dim
        if not ok or (rows is not None and f.shape[0] != rows):
            want = f"({rows if rows is not None else 'B'}, {self.dim})"
            got = tuple(f.shape) if torch.is_tensor(f) else type(f).__name__
            raise ValueError(f"MemoryBank: {what} must have shape {want}; got {got}")

    def _check_index(self, idx: torch.Tensor, n: int | None, lo: int, what: str, rows: int) -> None:
        """Shape (rows,), integer dtype and, unless n is None, values in [lo, n)."""
        if not torch.is_tensor(idx) or idx.dim() != 1 or idx.shape[0] != rows:
            got = tuple(idx.shape) if torch.is_tensor(idx) else type(idx).__name__
            raise ValueError(f"MemoryBank: {what} must be a ({rows},) integer tensor; got {got}")
        if idx.dtype.is_floating_point or idx.dtype == torch.bool:
            raise ValueError(f"MemoryBank: {what} must be integers; got {idx.dtype}")
        if n is not None and idx.numel():
            a, b = (int(v) for v in torch.stack([idx.min(), idx.max()]).tolist())
            if a < lo or b >= n:
                raise ValueError(f"MemoryBank: {what} must lie in [{lo}, {n}); got values in [{a}, {b}]")

    def _check_ready(self, which: tuple[str, ...], action: str) -> None:
        for name in which:
            if not bool(getattr(self, f"{name}_ready")):
                raise RuntimeError(f"MemoryBank.{action}: the {name} part of the bank is not initialised; "
                                   f"call init_{name}(...) first")

    # -- initialisation -------------------------------------------------------------------------------
    @torch.no_grad()
    def init_source(self, prototypes: torch.Tensor) -> None:
        """Store the (Ns, C) source identity prototypes (mean feature per identity), L2-normalised."""
        self._check_feats(prototypes, self.num_source, "source prototypes")
        self.source.copy_(F.normalize(prototypes.detach().float(), dim=1))
        self.source_ready.fill_(True)

    @torch.no_grad()
    def init_target(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Store the (Nt, C) target instance features (L2-normalised) and their (Nt,) pseudo labels."""
        self._check_feats(features, self.num_target, "target features")
        self.set_target_labels(labels)
        self.target.copy_(F.normalize(features.detach().float(), dim=1))
        self.target_ready.fill_(True)

    @torch.no_grad()
    def set_target_labels(self, labels: torch.Tensor) -> None:
        """Replace the (Nt,) pseudo labels (``-1`` = outlier) after a re-clustering."""
        self._check_index(labels, None, -1, "target pseudo labels", self.num_target)
        if labels.numel() and int(labels.min()) < -1:
            raise ValueError(f"MemoryBank: target pseudo labels must be >= 0 or -1 (outlier); got "
                             f"{int(labels.min())}")
        self.target_labels.copy_(labels)

    # -- loss ------------------------------------------------------------------------------------------
    def slot_labels(self) -> torch.Tensor:
        """(Ns + Nt,) label of every slot in the shared label space (-1 for outliers)."""
        src = torch.arange(self.num_source, device=self.target_labels.device)
        tgt = torch.where(self.target_labels >= 0, self.target_labels + self.num_source,
                          torch.full_like(self.target_labels, -1))
        return torch.cat([src, tgt])

    def query_labels(self, labels: torch.Tensor, domain: str) -> torch.Tensor:
        """Map source pids / target pseudo labels of queries to the shared label space (-1 stays -1).

        Source labels must lie in [0, Ns); target labels in [-1, number of clusters in the bank).
        """
        if domain == "source":
            self._check_index(labels, self.num_source, 0, "source query labels", len(labels))
            return labels.long()
        num_clusters = int(self.target_labels.max()) + 1
        self._check_index(labels, num_clusters, -1, "target query pseudo labels", len(labels))
        return torch.where(labels >= 0, labels.long() + self.num_source, torch.full_like(labels.long(), -1))

    def masks(self, labels: torch.Tensor, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Ns + Nt) positive and negative masks of the queries against the bank slots."""
        q = self.query_labels(labels.to(self.bank.device), domain)
        same = q.unsqueeze(1) == self.slot_labels().unsqueeze(0)
        pos = same & (q >= 0).unsqueeze(1)
        return pos, ~pos

    def loss(self, f: torch.Tensor, labels: torch.Tensor, domain: str) -> torch.Tensor:
        """Circle-loss contrast of queries ``f`` (B, C) against the whole bank (DCDFA sec. 4.1).

        ``f`` is L2-normalised here; only ``f`` receives gradients. ``labels`` are source pids
        (``domain="source"``) or target pseudo labels (``"target"``; ``-1`` queries have no positive).
        The mean is over queries with at least one positive and one negative; 0 (with a gradient path)
        when there is none.
        """
        if domain not in DOMAINS:
            raise ValueError(f"MemoryBank.loss: domain must be 'source' or 'target'; got {domain!r}")
        self._check_feats(f, None, "query features f")
        self._check_index(labels, None, -1, "query labels", f.shape[0])
        self._check_ready(("source", "target"), "loss")
        pos, neg = self.masks(labels, domain)
        valid = pos.any(dim=1) & neg.any(dim=1)
        if not bool(valid.any()):
            return f.sum() * 0.0
        q = F.normalize(f[valid].to(self.bank.dtype), dim=1)  # float32 bank: AMP-safe
        sim = q @ self.bank.t()
        return circle_loss(sim, pos[valid], neg[valid], self.scale, self.margin).mean()

    # -- updates ---------------------------------------------------------------------------------------
    @staticmethod
    def _momentum_update(bank: torch.Tensor, f: torch.Tensor, idx: torch.Tensor, mu: float) -> None:
        """slot ← normalise(μ·slot + (1−μ)·mean of the normalised rows of f mapped to that slot)."""
        f = F.normalize(f.detach().to(bank.device, bank.dtype), dim=1)
        slots, inverse = torch.unique(idx.to(bank.device), return_inverse=True)
        sums = torch.zeros(len(slots), bank.shape[1], device=bank.device, dtype=bank.dtype)
        sums.index_add_(0, inverse, f)
        counts = torch.bincount(inverse, minlength=len(slots)).unsqueeze(1).to(bank.dtype)
        bank[slots] = F.normalize(mu * bank[slots] + (1.0 - mu) * sums / counts, dim=1)

    @torch.no_grad()
    def update_source(self, f: torch.Tensor, pids: torch.Tensor) -> None:
        """Move each prototype of a pid in the batch towards the mean of its (normalised) batch features."""
        self._check_feats(f, None, "source features f")
        self._check_index(pids, self.num_source, 0, "source pids", f.shape[0])
        self._check_ready(("source",), "update_source")
        self._momentum_update(self.source, f, pids.long(), self.momentum)

    @torch.no_grad()
    def update_target(self, f: torch.Tensor, indices: torch.Tensor) -> None:
        """Move target instance slots ``indices`` (into the target train set) towards the features ``f``.

        An index repeated in the batch uses the mean of its features.
        """
        self._check_feats(f, None, "target features f")
        self._check_index(indices, self.num_target, 0, "target indices", f.shape[0])
        self._check_ready(("target",), "update_target")
        self._momentum_update(self.target, f, indices.long(), self.momentum)
