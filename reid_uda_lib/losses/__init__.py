"""Losses: CE with label smoothing, batch-hard and softmax triplet, the memory-bank circle loss."""
from __future__ import annotations

from .memory import MemoryBank, circle_loss
from .reid import batch_hard_triplet, cross_entropy_ls, euclidean_dist, hardest_pairs, softmax_triplet

__all__ = ["MemoryBank", "circle_loss", "batch_hard_triplet", "cross_entropy_ls", "euclidean_dist",
           "hardest_pairs", "softmax_triplet"]
