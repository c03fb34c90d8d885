"""DCDFA's modules (Zhang et al., sec. 3): channel attention, disentanglement, recomposition, domain classifier.

A feature ``f`` (the globally average-pooled map, ``ReidNet`` output ``"f"``) is split by a channel attention
``m(F)`` computed from the map ``F`` itself::

    b = m(F) ⊙ f,   e = (1 − m(F)) ⊙ f,   so   f = b + e          (DCDFA Eq. 1–2)

``b`` is the domain-shared identity base feature, ``e`` the domain-specific enhancement. Exchanging ``b``
between a source image i and a target image j gives two augmented features (Eq. 4–5)::

    r_i^t = b_i + e_j^t   (identity i, target domain)
    r_j^s = b_j + e_i^s   (identity j, source domain)

The losses that drive the split live in :mod:`reid_uda_lib.losses.dcdfa`.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """CBAM's channel branch (DCDFA Eq. 3): ``m(F) = σ(W1·ReLU(W0·pool_avg(F)) + W1·ReLU(W0·pool_max(F)))``.

    One two-layer MLP ``C → C/r → C`` is shared by the average- and the max-pooled descriptor.
    ``forward(fmap)`` maps (B, C, H, W) to m(F) of shape (B, C), values in (0, 1).
    """

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        if reduction < 1 or channels % reduction:
            raise ValueError(f"ChannelAttention: the feature width {channels} must be divisible by the "
                             f"reduction r={reduction} (dcdfa.reduction)")
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(inplace=True),
                                 nn.Linear(channels // reduction, channels))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        if fmap.dim() != 4 or fmap.shape[1] != self.channels:
            raise ValueError(f"ChannelAttention expects a feature map (B, {self.channels}, H, W); "
                             f"got {tuple(fmap.shape)}")
        avg = fmap.mean(dim=(2, 3))
        mx = fmap.amax(dim=(2, 3))
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))


def disentangle(f: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DCDFA Eq. 1–2: ``b = m ⊙ f`` and ``e = (1 − m) ⊙ f`` (so ``b + e = f`` exactly up to rounding).

    ``f`` and ``m`` are (B, C); returns ``(b, e)``.
    """
    if f.shape != m.shape:
        raise ValueError(f"disentangle: f {tuple(f.shape)} and the attention m {tuple(m.shape)} must have "
                         "the same shape (B, C)")
    b = m * f
    return b, f - b


def pair_indices(n_source: int, n_target: int, generator: torch.Generator) -> torch.Tensor:
    """The random source–target pairing of DCDFA sec. 4.1 ("Ours").

    A mixed batch of N source and N target images is split into N pairs, each image in exactly one pair:
    pair k is (source k, target ``perm[k]``) for a random permutation ``perm`` of ``range(N)`` drawn from
    ``generator`` (seeded by the loop from the run's seed and step, so a resumed run draws the same pairs).
    """
    if n_source != n_target:
        raise ValueError(f"DCDFA pairs every source image with one target image: the batch holds "
                         f"{n_source} source and {n_target} target images (they must be equal; "
                         "both domains use data.batch_size)")
    if n_source < 1:
        raise ValueError("DCDFA pairing needs at least one source and one target image")
    return torch.randperm(n_source, generator=generator)


def recompose(b_i: torch.Tensor, e_i_s: torch.Tensor, b_j: torch.Tensor,
              e_j_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DCDFA Eq. 4–5: exchange the base features of the paired source image i and target image j.

    Returns ``(r_i^t, r_j^s)`` with ``r_i^t = b_i + e_j^t`` (identity of source image i, target domain) and
    ``r_j^s = b_j + e_i^s`` (identity of target image j, source domain). Row k of every input holds pair k.

    Reading of Eq. 5: the text prints ``r_i^t = b_i + e_i^t, r_i^s = b_j + e_i^s``, which would recompose an
    image with its own enhancement. The surrounding text (Fig. 2: "we exchange their domain-shared
    features to get r_j^s and r_i^t"; the set {f_i^s, f_j^t, r_j^s, r_i^t} of sec. 3.3) fixes the indices
    used here: the subscript is the identity (from b), the superscript the domain (from e).
    """
    for name, x in (("e_i_s", e_i_s), ("b_j", b_j), ("e_j_t", e_j_t)):
        if x.shape != b_i.shape:
            raise ValueError(f"recompose: {name} has shape {tuple(x.shape)}, b_i has {tuple(b_i.shape)}; "
                             "row k of every input must hold pair k")
    return b_i + e_j_t, b_j + e_i_s


class DomainClassifier(nn.Module):
    """DCDFA sec. 3.3: two "FC + ReLU + Dropout" blocks (each divides the width by ``reduction``), then FC → 2.

    Column 1 of the logits is "source" (label 1), column 0 "target" (label 0), as in the paper (Eq. 7).
    """

    def __init__(self, channels: int, reduction: int = 8, dropout: float = 0.1):
        super().__init__()
        if reduction < 1:
            raise ValueError(f"DomainClassifier: dcdfa.reduction must be >= 1; got {reduction}")
        hidden1 = channels // reduction
        hidden2 = hidden1 // reduction
        if hidden2 < 1:
            raise ValueError(f"DomainClassifier: the width {channels} divided twice by r={reduction} leaves "
                             "no unit; lower dcdfa.reduction")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DomainClassifier: dropout must be in [0, 1); got {dropout}")
        self.channels = channels
        self.net = nn.Sequential(
            nn.Linear(channels, hidden1), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden1, hidden2), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.channels:
            raise ValueError(f"DomainClassifier expects features (N, {self.channels}); got {tuple(x.shape)}")
        return self.net(x)


class Temperature(nn.Module):
    """The learnable temperature τ of L_CID (DCDFA Eq. 6), initialised to ``init`` (1 in the paper).

    Stored as ``log τ`` so that τ = exp(log τ) stays positive whatever step the optimiser takes.
    """

    def __init__(self, init: float = 1.0):
        super().__init__()
        if not init > 0:
            raise ValueError(f"the temperature tau must start positive (dcdfa.tau_init); got {init}")
        self.log_tau = nn.Parameter(torch.tensor(math.log(init)))

    def forward(self) -> torch.Tensor:
        return self.log_tau.exp()


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """Gradient reversal layer (Ganin & Lempitsky, DANN): identity forward, ``−lam ×`` gradient backward."""
    return _GradReverse.apply(x, float(lam))
