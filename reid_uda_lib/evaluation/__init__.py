"""Evaluation: distance matrices, re-ranking and Market-1501 mAP/CMC."""
from __future__ import annotations

from .distance import pairwise_distance
from .metrics import evaluate
from .rerank import re_ranking

__all__ = ["evaluate", "pairwise_distance", "re_ranking"]
