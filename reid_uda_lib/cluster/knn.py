"""Exact, deterministic k-nearest-neighbour lists by chunked matmul (no N x N matrix is kept).

Ordering: the point itself first, then by decreasing score (= increasing distance), ties broken by
the lower index. To make that order cheap, every (score, index) pair is packed into one int64 key
whose integer order is exactly that order (``_keys``), so plain ``topk`` on keys is tie-free.

Threads: on a CPU, the k-reciprocal pipeline runs its many small bookkeeping ops (selections,
merges, sparse index arithmetic) inside :func:`few_threads` and gives the matmuls back the caller's
thread count (:func:`matmul`). Small ops gain little from threads, and on a busy machine OpenMP's
spin-waiting turned each of them into a scheduler stall: N = 12,936 took 24-31 s with 2 threads
against 7-10 s single-threaded under the same load (load average ~5 on 2 cores).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

BLOCK = 1024      # rows of one score block: large enough for an efficient matmul
STRIPE = 16384    # columns of an off-diagonal block (64 MB in float32): fewer, larger tensor ops
                  # (much faster on a busy CPU, where every small parallel op can stall)
_LOW = 0xFFFFFFFF  # the low 32 bits of a key hold (_LOW - index): lower index -> larger key


#: threads for the small ops on a CPU; None leaves torch's setting alone everywhere
SMALL_OP_THREADS: int | None = 1
_caller_threads: list[int] = []


@contextlib.contextmanager
def few_threads(device: torch.device) -> Iterator[None]:
    """Run the enclosed CPU work with ``SMALL_OP_THREADS`` torch threads; restore the count after."""
    if device.type != "cpu" or SMALL_OP_THREADS is None or _caller_threads:
        yield
        return
    n = torch.get_num_threads()
    _caller_threads.append(n)
    torch.set_num_threads(min(n, SMALL_OP_THREADS))
    try:
        yield
    finally:
        _caller_threads.pop()
        torch.set_num_threads(n)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` with the caller's thread count, also inside :func:`few_threads`."""
    if not _caller_threads:
        return a @ b
    small = torch.get_num_threads()
    torch.set_num_threads(_caller_threads[-1])
    try:
        return a @ b
    finally:
        torch.set_num_threads(small)


def _keys(score: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered like (score descending, index ascending) when sorted descending.

    float32 -> int32 by the usual order-preserving bit trick (negative floats have their magnitude
    bits flipped); ``+ 0.0`` first folds -0.0 into +0.0 so that the two compare equal, as floats do.
    """
    bits = (score.float() + 0.0).view(torch.int32)
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).long()
    return (bits << 32) | (_LOW - index)


def _unkey(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`_keys`: (score float32, index int64)."""
    bits = (key >> 32).int()
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return bits.view(torch.float32), _LOW - (key & _LOW)


def _merge(best: torch.Tensor, r0: int, rows: torch.Tensor, keys: torch.Tensor, fill: int) -> None:
    """Merge candidate ``keys`` of local ``rows`` (sorted ascending) into ``best[r0 + row]`` in place."""
    k = best.shape[1]
    b = int(rows[-1]) + 1
    counts = torch.bincount(rows, minlength=b)
    start = counts.cumsum(0) - counts
    slot = torch.arange(rows.numel(), device=rows.device) - start[rows]
    cand = torch.full((b, int(counts.max())), fill, dtype=torch.long, device=keys.device)
    cand[rows, slot] = keys
    best[r0:r0 + b] = torch.cat([best[r0:r0 + b], cand], 1).topk(k, dim=1).values


def neighbour_lists(x: torch.Tensor, length: int, metric: str = "cosine", block: int = BLOCK,
                    need_row_max: bool = False, stripe: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Ordered nearest-neighbour lists of every row of ``x``.

    Parameters
    ----------
    x : (N, D) float32 tensor (any device).
    length : entries per list, the point itself included (clipped to N).
    metric : ``"cosine"`` ranks by x_i . x_j (``x`` expected L2-normalised) and returns
        d = 2 - 2 x_i . x_j; ``"sqeuclidean"`` ranks by d = |x_i|^2 + |x_j|^2 - 2 x_i . x_j.
    need_row_max : also return each row's largest distance over all N points.
    block, stripe : rows and columns of one score block (defaults ``BLOCK``, ``STRIPE``).

    Returns
    -------
    idx : (N, length) int64 -- self first, then increasing distance, ties by lower index.
    dist : (N, length) float32 -- the distances to them (self: the computed d(i, i)).
    row_max : (N,) float32 or None.

    Notes
    -----
    The score matrix is symmetric, so only its upper block triangle is computed (about N^2 D / 2
    multiply-adds); each off-diagonal block serves its rows and, transposed, its columns. Diagonal
    blocks seed each row's list with ``topk``; off-diagonal blocks only contribute entries scoring at
    least the row's current k-th score (few survive after the seed), merged with ``topk`` on keys.
    Memory: O(block * stripe + N * length).
    """
    if metric not in ("cosine", "sqeuclidean"):
        raise ValueError(f"metric must be 'cosine' or 'sqeuclidean', got {metric!r}")
    n = x.shape[0]
    k = min(length, n)
    dev = x.device
    sq = (x * x).sum(1)
    starts = list(range(0, n, block))
    ends = [min(s0 + block, n) for s0 in starts]
    # padding: a key below every real one that still decodes to a score (-inf), so thresholds work
    pad = int(_keys(torch.tensor(-math.inf), torch.tensor(n)))
    best = torch.full((n, k), pad, dtype=torch.long, device=dev)
    min_score = torch.full((n,), math.inf, device=dev) if need_row_max else None

    def score(r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        s = matmul(x[r0:r1], x[c0:c1].T)                            # higher = closer
        if metric == "sqeuclidean":
            # -d; (sq_i + sq_j) is commutative, so the (j, i) block is exactly the transpose
            s = 2 * s - (sq[r0:r1, None] + sq[None, c0:c1])
        if min_score is not None:
            min_score[r0:r1] = torch.minimum(min_score[r0:r1], s.min(1).values)
            min_score[c0:c1] = torch.minimum(min_score[c0:c1], s.min(0).values)
        return s

    for r0, r1 in zip(starts, ends):
        s = score(r0, r1, r0, r1)
        s.fill_diagonal_(math.inf)                      # the point itself always comes first
        keys = _keys(s, torch.arange(r0, r1, device=dev)[None, :])
        kk = min(k, r1 - r0)
        best[r0:r1, :kk] = keys.topk(kk, dim=1).values
    stripe = stripe or STRIPE
    for r0, r1 in zip(starts, ends):
        for c0 in range(r1, n, stripe):
            c1 = min(c0 + stripe, n)
            s = score(r0, r1, c0, c1)
            # rows r0..r1 against columns c0..c1; ">=" keeps ties with the k-th (the key decides)
            kth = _unkey(best[r0:r1, k - 1])[0]
            i, j = (s >= kth[:, None]).nonzero(as_tuple=True)
            if i.numel():
                _merge(best, r0, i, _keys(s[i, j], j + c0), pad)
            # rows c0..c1 against columns r0..r1 (the transposed block)
            kth = _unkey(best[c0:c1, k - 1])[0]
            j, i = (s.T >= kth[:, None]).nonzero(as_tuple=True)
            if j.numel():
                _merge(best, c0, j, _keys(s[i, j], i + r0), pad)
    score_, idx = _unkey(best)
    if metric == "cosine":
        score_[:, 0] = sq
        dist = 2 - 2 * score_
    else:
        score_[:, 0] = 2 * sq - (sq + sq)
        dist = -score_
    row_max = None
    if min_score is not None:
        row_max = 2 - 2 * min_score if metric == "cosine" else -min_score
    return idx, dist, row_max
