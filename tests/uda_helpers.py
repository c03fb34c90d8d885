"""Helpers shared by the end-to-end UDA method tests (tiny preset, tiny synthetic pair)."""
from __future__ import annotations

from reid_uda_lib.config import get_preset


class Interrupt(Exception):
    """Stands in for a Colab disconnect / Ctrl-C right after a checkpoint."""


def stop_after_first_epoch(epoch, record):
    """``on_epoch_end`` callback that interrupts the run after its first epoch's checkpoint."""
    if epoch == 0:
        raise Interrupt


def tiny_cfg(method: str, **over):
    """The ``tiny`` preset with 1 pretraining and 2 UDA epochs of 3 steps, and clustering for ~24 identities."""
    base = {"pretrain.epochs": 1, "pretrain.iters_per_epoch": 3, "uda.epochs": 2, "uda.iters_per_epoch": 3,
            "data.batch_size": 16, "uda.k1": 8, "uda.k2": 3, "uda.eps": 0.7, "uda.min_samples": 3,
            "uda.method": method}
    base.update(over)
    return get_preset("tiny", **base)
