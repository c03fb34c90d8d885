"""Inference passes shared by the rows of a seed: a memo on disk, keyed by everything the pass depends on.

Every row of a seed starts from the same pretrained model, and its first epoch begins with the same passes over
the same images: the source features behind the memory bank's prototypes, the target BatchNorm statistics
(:mod:`.bn_stats`) and the target features the first clustering reads. Each is a function of the network's
weights and buffers, the images, the data settings and the kernels that compute it, and nothing else: no random
draw, no training. :class:`PassCache` stores each result under a hash of exactly those inputs, so a later row
(or a later run) of the same seed reads it instead of repeating the pass.

The key holds every tensor of the network's ``state_dict`` (names, dtypes, shapes, strides and bytes), the items
``(path, pid, camid)`` with each file's size and modification time, the whole data config, and :func:`~reid_uda_lib.runtime.machine.kernel_signature`
(device, CPU capability and its caps, torch threads, torch version). A network that differs in one weight, or
a process with another thread count, computes its own pass: a cached result is the result, bit for bit, that
the pass would give in this process. Entries are written atomically (a temporary file, then a rename), so two
rows writing the same entry at once leave one complete file. An unreadable entry is computed again and
rewritten. Under torchrun the cache is not used (each process holds a shard).

On the default synthetic pair the three passes take about 40-55 s of a row's 200-290 s (``cpu`` preset, one
thread; docs/results.md, "make demo: its tables and its time per commit").
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..config import DataConfig
from ..runtime import distributed as ddp
from ..runtime.checkpoint import atomic_replace
from ..runtime.machine import kernel_signature
from .bn_stats import refresh_bn_stats
from .features import extract_features

#: bump when what an entry holds changes: older entries are then never read
FORMAT = 1


def state_digest(net: nn.Module) -> str:
    """sha256 of every tensor of ``net.state_dict()``: its name, dtype, shape, strides (the memory layout, e.g.
    ``model.channels_last``, changes the kernels' rounding) and bytes, in order."""
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|{t.stride()}|".encode())
        t = t.detach().cpu().contiguous()
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _items_digest(items: Sequence[tuple]) -> str:
    """sha256 of the items ``(path, pid, camid)`` and of each file's size and modification time: an image
    replaced at the same path is another input."""
    def stamp(path: str) -> list:
        try:
            st = os.stat(path)
            return [st.st_size, st.st_mtime_ns]
        except OSError:
            return []
    return hashlib.sha256(json.dumps([[*map(str, it[:3]), *stamp(str(it[0]))] for it in items]).encode()).hexdigest()


class PassCache:
    """Memoised inference passes in ``folder`` (created on the first write).

    ``hits`` and ``misses`` count the passes read and computed by this object (what the tests and the row's
    log line use)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def key(self, kind: str, net: nn.Module, items: Sequence[tuple], cfg: DataConfig,
            device: torch.device) -> str:
        """The entry's name: a hash of ``kind``, the network's state, the items, ``cfg`` and the kernels."""
        parts = {"format": FORMAT, "kind": kind, "state": state_digest(net), "items": _items_digest(items),
                 "data": dict(sorted(vars(cfg).items())), "kernels": kernel_signature(device)}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def _memo(self, name: str, compute: Callable[[], dict]) -> dict:
        if ddp.is_distributed():
            return compute()
        path = self.folder / f"{name}.pt"
        if path.is_file():
            try:
                out = torch.load(path, map_location="cpu", weights_only=True)
                self.hits += 1
                return out
            except Exception:            # a damaged entry: computed again below and replaced
                pass
        out = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in out.items()}
        atomic_replace(path, lambda fh: torch.save(payload, fh), binary=True)
        self.misses += 1
        return out

    def features(self, net: nn.Module, items: Sequence[tuple], cfg: DataConfig, device: torch.device,
                 key: str = "bn", desc: str = "extract", progress: bool = True) -> torch.Tensor:
        """:func:`~.features.extract_features`, read from the cache when this exact pass was made before."""
        name = "features-" + self.key(f"features:{key}", net, items, cfg, device)
        out = self._memo(name, lambda: {"feats": extract_features(net, items, cfg, device, key=key, desc=desc,
                                                                   progress=progress)})
        return out["feats"].to(device)

    def bn_stats(self, net: nn.Module, items: Sequence[tuple], cfg: DataConfig, device: torch.device,
                 progress: bool = True) -> int:
        """:func:`~.bn_stats.refresh_bn_stats` on ``net``, or the statistics that pass left, loaded into it.
        Returns the number of BatchNorm layers, as the pass does."""
        name = "bn-" + self.key("bn_stats", net, items, cfg, device)
        computed = []

        def compute() -> dict:
            computed.append(refresh_bn_stats(net, items, cfg, device, progress=progress))
            return {n: b for n, b in net.named_buffers() if _is_bn_stat(n)}

        saved = self._memo(name, compute)
        if computed:
            return computed[0]
        buffers = dict(net.named_buffers())
        with torch.no_grad():
            for n, b in saved.items():
                buffers[n].copy_(b.to(buffers[n].device))
        return sum(n.endswith("running_mean") for n in saved)


def _is_bn_stat(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")
