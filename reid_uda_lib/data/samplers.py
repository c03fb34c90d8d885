"""The PK sampler: batches of P identities × K images each (for batch-hard triplet losses), and its distributed
version: each process takes its contiguous share of the same batches."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterator, Optional, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["PKSampler", "DistributedPKSampler"]


class PKSampler(Sampler[int]):
    """Yield dataset indices so that every run of ``batch_size`` indices holds P × K images.

    P = ``batch_size // num_instances`` distinct identities, K = ``num_instances`` images each,
    grouped by identity inside the batch. Negative labels (``-1``: clustering outliers) are never
    yielded.

    * Each epoch walks through a random permutation of the identities, P at a time; the last, partial
      group is completed with identities drawn from the others, so every identity appears in at least
      one batch per epoch. ``num_batches=None`` gives exactly that: ``ceil(num_identities / P)``
      batches. A larger ``num_batches`` continues with fresh permutations; a smaller one stops early.
    * Within an identity the images are shuffled once per epoch and consumed cyclically, so its
      images are used evenly. An identity with fewer than K images repeats some of them within its
      group (sampling with replacement).
    * The order depends on ``(seed, epoch)`` only: call :meth:`set_epoch` before each epoch; a
      resumed run that sets the same epoch sees the same batches.

    ``len(sampler) == num_batches * batch_size``; use it with ``DataLoader(batch_size=batch_size,
    sampler=sampler, drop_last=True)``.
    """

    def __init__(self, pids: Sequence[int], num_instances: int = 4, batch_size: int = 64,
                 num_batches: Optional[int] = None, seed: int = 0):
        if hasattr(pids, "detach"):  # a torch tensor, possibly on an accelerator
            pids = pids.detach().cpu().numpy()
        pids = np.asarray(pids).reshape(-1)
        if pids.size and not np.issubdtype(pids.dtype, np.integer):
            raise ValueError(f"pids must be integer labels, got dtype {pids.dtype}")
        for name, value in (("num_instances", num_instances), ("batch_size", batch_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if batch_size % num_instances != 0:
            raise ValueError(f"batch_size ({batch_size}) must be a multiple of num_instances "
                             f"({num_instances}) so that each batch holds P whole identities")
        if num_batches is not None and (int(num_batches) != num_batches or num_batches < 1):
            raise ValueError(f"num_batches must be a positive integer or None, got {num_batches}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.num_instances = int(num_instances)
        self.batch_size = int(batch_size)
        self.num_pids_per_batch = self.batch_size // self.num_instances
        self.seed = int(seed)
        self.epoch = 0

        groups: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids.tolist()):
            if pid >= 0:
                groups[pid].append(index)
        self.pids = sorted(groups)  # sorted: the order must not depend on dict insertion
        self._index_groups = [np.asarray(groups[p], dtype=np.int64) for p in self.pids]
        if not self.pids:
            raise ValueError("PKSampler got no identity with label >= 0: the training split is empty or every "
                             "label is -1 (all pseudo labels outliers); check the dataset / clustering, not "
                             "the batch size")
        if len(self.pids) < self.num_pids_per_batch:
            raise ValueError(
                f"PKSampler needs at least P = batch_size // num_instances = {self.num_pids_per_batch} "
                f"identities with label >= 0, but only {len(self.pids)} were given: for a labelled source, add "
                "identities or lower data.batch_size (raise data.num_instances); for pseudo labels, the clustering "
                f"gave {len(self.pids)} clusters (DBSCAN: raise uda.eps or lower uda.min_samples; k-means: raise "
                "n_clusters). Datasets too small for P are refused before the run starts "
                "(python -m reid_uda_lib check --preset)")
        default = math.ceil(len(self.pids) / self.num_pids_per_batch)
        self.num_batches = int(num_batches) if num_batches is not None else default

    @property
    def num_identities(self) -> int:
        return len(self.pids)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def _identity_batches(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Endless groups of P distinct identity positions: permutation passes, last group completed."""
        n, p = len(self.pids), self.num_pids_per_batch
        while True:
            perm = rng.permutation(n)
            for start in range(0, n, p):
                group = perm[start:start + p]
                if len(group) < p:  # complete from identities not already in this group
                    others = np.setdiff1d(np.arange(n), group, assume_unique=True)
                    group = np.concatenate([group, rng.choice(others, p - len(group), replace=False)])
                yield group

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch]))
        queues = [rng.permutation(g) for g in self._index_groups]
        cursor = np.zeros(len(queues), dtype=np.int64)
        k = self.num_instances
        groups = self._identity_batches(rng)
        for _ in range(self.num_batches):
            for ident in next(groups):
                q = queues[ident]
                take = (cursor[ident] + np.arange(k)) % len(q)  # cyclic: repeats only if len(q) < K
                cursor[ident] += k
                yield from q[take].tolist()


class DistributedPKSampler(Sampler):
    """The share of process ``rank`` (of ``world_size``) of every batch of a PK-batched sampler.

    ``sampler`` yields global batches of ``batch_size`` consecutive items (a :class:`PKSampler`, or a wrapper
    that yields ``(index, seed)`` pairs in the same order); process r gets items ``[r·b, (r+1)·b)`` of each
    batch, ``b = batch_size / world_size``. The global batches -- hence the order, the augmentations and the
    effective batch -- are exactly the single-process ones, whatever the number of processes; deterministic per
    ``(seed, epoch)`` (``set_epoch`` is forwarded). ``b`` must be a multiple of K (``num_instances``) so that every
    identity's K images stay together in one process.

    Use with ``DataLoader(batch_size=batch_size // world_size, sampler=..., drop_last=True)``.
    """

    def __init__(self, sampler, batch_size: int, num_instances: int, world_size: int, rank: int):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"DistributedPKSampler: rank {rank} is not in [0, world_size={world_size})")
        if batch_size % (world_size * num_instances):
            raise ValueError(
                f"data.batch_size ({batch_size}) must be a multiple of (number of processes {world_size}) x "
                f"(data.num_instances {num_instances}) = {world_size * num_instances}: each process takes "
                f"batch_size / {world_size} images of every PK batch and must hold whole identities")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.local = self.batch_size // world_size
        self.world_size, self.rank = int(world_size), int(rank)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler) // self.world_size

    def __iter__(self):
        lo, hi = self.rank * self.local, (self.rank + 1) * self.local
        for pos, item in enumerate(self.sampler):
            if lo <= pos % self.batch_size < hi:
                yield item
