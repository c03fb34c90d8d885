"""The oracle: SBase's loop with the target's **true** identities in place of its pseudo labels.

An upper reference for a clustering-based UDA row must differ from it in one thing only, the labels. The
oracle therefore is a UDA method (``uda.method = "oracle"``, registered in :mod:`.methods`) that

* starts from the **same source-pretrained checkpoint** as every UDA row (``adapt(..., init_checkpoint)``);
* runs **the same loop** as SBase: the same mixed source + target batches, losses (CE-LS, triplet, memory
  bank), Mean-Net, optimiser and constant learning rate (``uda.lr``), target BatchNorm statistics, and the
  same number of epochs;
* takes its labels from the target's training identities instead of a clustering: every epoch the
  ``pseudo_labels`` hook returns them (:func:`true_identity_labels`), with the Mean-Net's features for the
  per-epoch classifier and memory bank (as SBase builds them from its clusters). Nothing is an outlier, so
  an epoch is one pass over all target training images: :func:`oracle_steps` steps, never fewer than a UDA
  row's (whose DBSCAN outliers are left out of the pass).

Why not plain supervised fine-tuning on the target? It was this library's oracle until it proved a weak
reference: at the same steps and learning rate, from the same checkpoint, it scored 66.4 ± 1.8 mAP on the
validation pair where SBase reached 66.3 ± 2.3 (and below SBase on one seed of the default pair), because it
lacks SBase's Mean-Net and memory bank. With those and the true labels the oracle scores 70.4 ± 1.2 there
(README, "How the cpu preset was chosen"): the gap it leaves is the gap the pseudo labels leave.

The target's training identities must be known (a labelled target); an unlabelled one is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..config import Config
from .base import ClusterContext, LabelSets, UDAMethod


def true_identity_labels(items: Sequence[tuple]) -> np.ndarray:
    """The training identities of ``items`` (``(path, pid, camid)``) as labels ``0..P-1``: the index of each
    pid among the sorted distinct pids. Raises ``ValueError`` when an image has no identity (pid < 0)."""
    pids = np.asarray([int(p) for _, p, _ in items], dtype=np.int64)
    if pids.size == 0:
        raise ValueError("the oracle needs target training images; the target train split is empty")
    if (pids < 0).any():
        raise ValueError(f"the oracle trains on the target's true identities, but {int((pids < 0).sum())} of "
                         f"{pids.size} target training images have none (an unlabelled target): leave the "
                         "oracle row out (`--rows` without oracle, or `demo --no-oracle`)")
    _, labels = np.unique(pids, return_inverse=True)
    return labels.astype(np.int64)


@dataclass(frozen=True)
class OracleMethod(UDAMethod):
    """SBase with the true target identities as its labels (see the module docstring)."""

    def pseudo_labels(self, ctx: ClusterContext) -> LabelSets:
        labels = true_identity_labels(ctx.items)
        return LabelSets([labels], ctx.features(ctx.eval_net))


def oracle_steps_per_epoch(cfg: Config, n_target_train: int) -> int:
    """Steps per oracle epoch: ``uda.iters_per_epoch`` when > 0, else ``n_target_train // data.batch_size``
    (at least 1): one pass over the target's training images (:func:`~.loaders.num_batches_for`)."""
    from ..core.loaders import num_batches_for
    return num_batches_for(int(n_target_train), cfg.data, int(cfg.uda.iters_per_epoch))


def oracle_steps(cfg: Config, n_target_train: int) -> int:
    """Total optimisation steps of the oracle: ``uda.epochs`` × :func:`oracle_steps_per_epoch`."""
    return cfg.uda.epochs * oracle_steps_per_epoch(cfg, n_target_train)
