"""The pieces of the Jaccard stage that are not the algorithm: the CSR row store and the input checks."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


@dataclass
class RowSparse:
    """A sparse matrix stored by rows (CSR) as torch tensors; columns sorted within each row."""

    crow: torch.Tensor     # (n_rows + 1,) int64
    col: torch.Tensor      # (nnz,) int64
    val: torch.Tensor      # (nnz,) float32
    n_cols: int

    @property
    def n_rows(self) -> int:
        return self.crow.numel() - 1

    def row_ids(self) -> torch.Tensor:
        """Row index of every stored entry."""
        counts = self.crow[1:] - self.crow[:-1]
        return torch.repeat_interleave(torch.arange(self.n_rows, device=self.crow.device), counts)

    def to_scipy(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.val.cpu().numpy(), self.col.cpu().numpy(), self.crow.cpu().numpy()),
                             shape=(self.n_rows, self.n_cols))


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------

def as_feature_tensor(features, name: str = "features") -> tuple[torch.Tensor, bool]:
    """Validate a 2-D finite feature matrix; return it as float32 torch (same device) and ``is_numpy``."""
    is_numpy = isinstance(features, np.ndarray)
    if is_numpy:
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    elif isinstance(features, torch.Tensor):
        x = features.detach().float()
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(features).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N x D), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).any(1).nonzero()[:5, 0].tolist()
        raise ValueError(f"{name} contain NaN or inf values (rows {bad}...); check the feature extractor")
    return x.contiguous(), is_numpy


def check_k(n: int, k1: int, k2: int, name: str = "features") -> tuple[int, int]:
    """Check N >= 2, k1 >= 1, k2 >= 1; clip k1 to N - 1 and k2 to k1 with a warning.

    Clipping (not an error) keeps tiny notebook / CI data sets working with the paper's k1 = 20 / 30;
    k1 >= N asks for more neighbours than there are other points.
    """
    if n < 2:
        raise ValueError(f"{name} must hold at least 2 points for a Jaccard distance, got N={n}")
    if int(k1) != k1 or k1 < 1:
        raise ValueError(f"k1 must be a positive integer, got {k1!r}")
    if int(k2) != k2 or k2 < 1:
        raise ValueError(f"k2 must be a positive integer (1 disables query expansion), got {k2!r}")
    k1, k2 = int(k1), int(k2)
    if k1 >= n:
        warnings.warn(f"k1={k1} >= N={n} points: clipping k1 to {n - 1}", UserWarning, stacklevel=3)
        k1 = n - 1
    if k2 > k1:
        warnings.warn(f"k2={k2} > k1={k1}: clipping k2 to {k1}", UserWarning, stacklevel=3)
        k2 = k1
    return k1, k2
