"""k-reciprocal encoding and the Jaccard distance (Zhong et al., CVPR 2017) -- the one implementation.

Used by :func:`jaccard_distance` (clustering distance, SpCL/MMT convention) and by
:func:`reid_uda_lib.evaluation.rerank.re_ranking` (query/gallery re-ranking, Zhong's reference
convention). The stages, each a function here:

1. :func:`.knn.neighbour_lists` -- ordered kNN lists, self first, ties broken by the lower index.
2. :func:`reciprocal_mask` -- k-reciprocal sets R(i, k) = {j in L_i[:k+1] : i in L_j[:k+1]}.
3. :func:`expanded_sets` -- R*(i) = R(i, k1) plus R(c, round(k1/2)) for each candidate c in R(i, k1)
   whose half-set has more than 2/3 of its members in R(i, k1).
4. :func:`encode` -- V[i, j] = exp(-d(i, j)) / sum over R*(i) (the paper's Gaussian-kernel encoding).
5. :func:`query_expand` -- local query expansion: V_i <- mean of V over the first k2 entries of L_i.
6. :func:`sum_min` -- Σ_l min(V_il, V_jl) over shared columns; Jaccard = 1 - Σmin / (2 - Σmin).
   Because every row of V sums to 1, Σmax = Σa + Σb - Σmin = 2 - Σmin, so this is exactly the
   paper's 1 - Σmin/Σmax.

Everything runs in torch on the features' device, chunked, with V stored as sparse rows (CSR), so
memory stays O(N * k1^2) apart from the requested output (a dense N x N matrix, or a scipy CSR
holding only the pairs with distance < 1).

Convention differences (``list_len``): SpCL/MMT clustering keeps k1 list entries (faiss returns k1
neighbours, the point itself first), so the "k1 + 1" slice of the k-reciprocal test holds k1 entries;
Zhong's re-ranking sorts the whole row, so its lists have k1 + 1 entries. Both force the point itself
to the front of its own list (faiss / argsort put it there anyway unless there are duplicates).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from .knn import few_threads, neighbour_lists
from .sparse_rows import RowSparse, as_feature_tensor, check_k

#: ``jaccard_distance(sparse=None)`` returns a dense matrix up to this N and a scipy CSR above it
#: (a dense float32 N x N at N = 16384 is 1 GiB).
DENSE_MAX_N = 16384

_CHUNK_ROWS = 512          # rows per chunk in the set stage (temporaries of a few MB: large
                           # fresh allocations page-fault, which costs more than the arithmetic)
_MAX_TRIPLES = 1 << 17     # (i, l, j) triples expanded at once in the Σmin / expansion stages
                           # (a few MB per temporary: cache-sized chunks measured fastest)


# ----------------------------------------------------------------------------------------------
# 2-3. k-reciprocal sets and their expansion
# ----------------------------------------------------------------------------------------------

def back_rank(knn: torch.Tensor) -> torch.Tensor:
    """``out[i, t]`` = position of i in the list of j = knn[i, t], or L (the list length) if absent."""
    n, length = knn.shape
    ar = torch.arange(n, device=knn.device)
    key = (ar[:, None] * n + knn).reshape(-1)              # "knn[j, r] belongs to row j", key j*n + i
    key_sorted, order = key.sort()
    rank_sorted = (order % length)
    query = (knn * n + ar[:, None]).reshape(-1)            # is i in the list of j = knn[i, t]?
    pos = torch.searchsorted(key_sorted, query).clamp_max(key.numel() - 1)
    found = key_sorted[pos] == query
    return torch.where(found, rank_sorted[pos], length).view(n, length)


def reciprocal_mask(knn: torch.Tensor, k: int, ranks: torch.Tensor | None = None) -> torch.Tensor:
    """k-reciprocal membership (Zhong et al. 2017, R(p, k)).

    ``mask[i, t]`` says whether ``knn[i, t]`` (t <= k) belongs to R(i, k) = {j in L_i[:k+1] :
    i in L_j[:k+1]}, where L is the neighbour list (``knn``; slices longer than the list are the whole
    list, as in the reference code). Returns a (N, min(k+1, L)) bool tensor. ``ranks`` is
    :func:`back_rank` of ``knn`` when already computed.
    """
    m = min(k + 1, knn.shape[1])
    ranks = back_rank(knn) if ranks is None else ranks
    return ranks[:, :m] < m


def expanded_sets(knn: torch.Tensor, k1: int, chunk: int | None = None) -> RowSparse:
    """R*(i): the k-reciprocal set of i expanded by its candidates' half-size sets (Zhong et al. 2017).

    For each c in R(i, k1) (i itself included), R(c, round(k1/2)) is added when more than 2/3 of it
    lies in R(i, k1) -- the original R(i, k1), not the growing union, as in the reference code.
    ``round`` is numpy's (half to even). Returns the sets as CSR rows (values: ones).
    """
    n = knn.shape[0]
    dev = knn.device
    chunk = min(chunk or _CHUNK_ROWS, n)
    half = int(np.around(k1 / 2.0))
    ranks = back_rank(knn)
    full = reciprocal_mask(knn, k1, ranks)
    half_mask = reciprocal_mask(knn, half, ranks)
    mh = half_mask.shape[1]
    half_list = knn[:, :mh]
    half_size = half_mask.sum(1)
    member = torch.zeros(chunk, n, dtype=torch.bool, device=dev)    # membership bitmap of R(i, k1)
    keys = []
    for r0 in range(0, n, chunk):
        r1 = min(r0 + chunk, n)
        fi, ft = full[r0:r1].nonzero(as_tuple=True)           # entries of R(i, k1), i = r0 + fi
        cand = knn[r0 + fi, ft]
        member[fi, cand] = True
        c_mask = half_mask[cand]                                # (E, mh): members of R(c, half)
        c_list = half_list[cand]
        n_inside = (member[fi[:, None], c_list] & c_mask).sum(1)
        member[fi, cand] = False
        # |C ∩ R| > 2/3 |C|  <=>  3 |C ∩ R| > 2 |C| for integers (the float threshold never lands
        # on an integer, so this matches the reference's float comparison exactly)
        take = (3 * n_inside > 2 * half_size[cand]).nonzero()[:, 0]
        ti, tt = c_mask[take].nonzero(as_tuple=True)
        added_rows, added_cols = fi[take[ti]], c_list[take[ti], tt]
        keys.append(torch.unique(torch.cat([fi * n + cand, added_rows * n + added_cols])) + r0 * n)
    key = torch.cat(keys)
    counts = torch.bincount(key // n, minlength=n)
    crow = torch.zeros(n + 1, dtype=torch.long, device=dev)
    crow[1:] = counts.cumsum(0)
    return RowSparse(crow, key % n, torch.ones(key.numel(), device=dev), n)


# ----------------------------------------------------------------------------------------------
# 4-5. encoding and local query expansion
# ----------------------------------------------------------------------------------------------

def _pair_distances(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, metric: str,
                    knn: torch.Tensor, knn_dist: torch.Tensor) -> torch.Tensor:
    """d(rows[e], cols[e]) for every entry e; looked up in the kNN lists where possible.

    Most members of R*(i) are in i's own list; the rest (members of a candidate's half-set that are
    outside L_i) are computed from the features. Gathering 2048-d rows is memory-bound, so the
    look-up avoids most of it.
    """
    n, length = knn.shape
    key_knn = (torch.arange(n, device=knn.device)[:, None] * n + knn).reshape(-1)
    key_sorted, order = key_knn.sort()
    key = rows * n + cols
    pos = torch.searchsorted(key_sorted, key).clamp_max(key_sorted.numel() - 1)
    found = key_sorted[pos] == key
    d = torch.empty(key.numel(), dtype=torch.float32, device=x.device)
    d[found] = knn_dist.reshape(-1)[order[pos[found]]]
    miss = (~found).nonzero()[:, 0]
    # small gathers stay in cache on a CPU (big ones are memory-bound); a GPU wants big launches
    step = 256 if x.device.type == "cpu" else 1 << 16
    for s0 in range(0, miss.numel(), step):
        e = miss[s0:s0 + step]
        xi, xj = x[rows[e]], x[cols[e]]
        dot = (xi * xj).sum(1)
        if metric == "cosine":
            d[e] = 2 - 2 * dot
        else:
            d[e] = ((xi * xi).sum(1) + (xj * xj).sum(1)) - 2 * dot
    return d


def encode(x: torch.Tensor, sets: RowSparse, knn: torch.Tensor, knn_dist: torch.Tensor,
           metric: str = "cosine", row_scale: torch.Tensor | None = None) -> RowSparse:
    """Gaussian-kernel k-reciprocal encoding (Zhong et al. 2017): V[i, j] ∝ exp(-d(i, j)) on R*(i).

    Each row is normalised to sum 1 (a softmax over R*(i)). ``row_scale`` divides row i's distances
    first (Zhong's re-ranking divides by the row's largest distance; SpCL uses d = 2 - 2cos as is).
    """
    rows = sets.row_ids()
    d = _pair_distances(x, rows, sets.col, metric, knn, knn_dist)
    if row_scale is not None:
        d = d / row_scale[rows]
    # softmax per row: subtract the row minimum (a member of every row is the point itself) for range
    row_min = torch.full((sets.n_rows,), math.inf, device=d.device).scatter_reduce(0, rows, d, "amin")
    w = torch.exp(row_min[rows] - d)
    total = torch.zeros(sets.n_rows, device=d.device).index_add_(0, rows, w)
    return RowSparse(sets.crow, sets.col, w / total[rows], sets.n_cols)


def query_expand(v: RowSparse, knn: torch.Tensor, k2: int) -> RowSparse:
    """Local query expansion (Zhong et al. 2017): V_i <- (1/k2) Σ_{t < k2} V_{L_i[t]}.

    ``k2 = 1`` returns ``v`` unchanged (L_i[0] = i). Rows keep summing to 1.
    """
    if k2 <= 1:
        return v
    n = v.n_rows
    nbr = knn[:, :k2]
    counts_v = v.crow[1:] - v.crow[:-1]
    crows = [torch.zeros(1, dtype=torch.long, device=v.col.device)]
    cols, vals = [], []
    offset = 0
    step = max(1, _MAX_TRIPLES // max(1, k2 * int(counts_v.max())))
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        src = nbr[r0:r1].reshape(-1)                          # rows of V to average
        cnt = counts_v[src]
        total = int(cnt.sum())
        local = torch.repeat_interleave(torch.arange(r1 - r0, device=src.device).repeat_interleave(k2), cnt)
        start = torch.repeat_interleave(v.crow[src] - (cnt.cumsum(0) - cnt), cnt)
        pos = start + torch.arange(total, device=src.device)
        key = local * n + v.col[pos]
        uniq, inv = torch.unique(key, sorted=True, return_inverse=True)
        summed = torch.zeros(uniq.numel(), device=src.device).index_add_(0, inv, v.val[pos])
        urow = uniq // n
        counts = torch.bincount(urow, minlength=r1 - r0)
        cols.append(uniq % n)
        vals.append(summed / k2)
        crows.append(offset + counts.cumsum(0))
        offset += uniq.numel()
    return RowSparse(torch.cat(crows), torch.cat(cols), torch.cat(vals), v.n_cols)


# ----------------------------------------------------------------------------------------------
# 6. Σ min and the Jaccard distance
# ----------------------------------------------------------------------------------------------

def _to_columns(v: RowSparse) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inverted index of V: (col_ptr, rows, vals, csc_pos), rows ascending within each column.

    ``csc_pos[e]`` is where CSR entry e sits in the column arrays.
    """
    order = torch.sort(v.col, stable=True).indices           # stable: rows stay ascending per column
    counts = torch.bincount(v.col, minlength=v.n_cols)
    col_ptr = torch.zeros(v.n_cols + 1, dtype=torch.long, device=v.col.device)
    col_ptr[1:] = counts.cumsum(0)
    csc_pos = torch.empty_like(order)
    csc_pos[order] = torch.arange(order.numel(), device=order.device)
    return col_ptr, v.row_ids()[order], v.val[order], csc_pos


def sum_min(v: RowSparse, rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None,
            upper: bool = False):
    """Σ_l min(V[i, l], V[j, l]) -- the numerator of the min/max Jaccard (Zhong et al. 2017).

    Only pairs sharing a column contribute, so this is an inverted-index join costing Σ_l |column l|^2
    (halved with ``upper``), chunked so that at most ``_MAX_TRIPLES`` (i, l, j) triples exist at once.
    Sums run over l in increasing order, like the reference loops.

    Parameters
    ----------
    rows, cols : half-open ranges of i and j (default: all).
    upper : only j >= i (the matrix is symmetric); then ``cols`` must be None.

    Yields
    ------
    ``(r0, r1, c0, block)``: rows r0..r1-1 of the result as a dense float32 block whose column 0 is
    j = c0 (c0 = r0 with ``upper``; entries left of the diagonal are then 0 and meaningless).
    """
    n = v.n_rows
    dev = v.col.device
    r_lo, r_hi = rows if rows is not None else (0, n)
    c_lo, c_hi = cols if cols is not None else (0, n)
    if upper and cols is not None:
        raise ValueError("sum_min: 'upper' needs all columns")
    col_ptr, inv_rows, inv_vals, csc_pos = _to_columns(v)
    if (c_lo, c_hi) != (0, n):
        # keep only the wanted j in the inverted index (entries stay grouped by column)
        keep = (inv_rows >= c_lo) & (inv_rows < c_hi)
        inv_cols = torch.repeat_interleave(torch.arange(v.n_cols, device=dev), col_ptr[1:] - col_ptr[:-1])
        counts = torch.bincount(inv_cols[keep], minlength=v.n_cols)
        col_ptr = torch.zeros_like(col_ptr)
        col_ptr[1:] = counts.cumsum(0)
        inv_rows, inv_vals = inv_rows[keep], inv_vals[keep]
    if upper:
        # entry e = (i, l) pairs with the rows j >= i of column l: from its own CSC position on
        ent_start = csc_pos
        ent_count = col_ptr[v.col + 1] - csc_pos
    else:
        ent_start = col_ptr[v.col]
        ent_count = col_ptr[v.col + 1] - ent_start
    per_row = torch.zeros(n + 1, dtype=torch.long, device=dev)
    per_row[1:] = ent_count.cumsum(0)[v.crow[1:] - 1].where(v.crow[1:] > 0, 0)
    per_row = per_row.cpu()                                  # triples before row i (cumulative)
    r0 = r_lo
    while r0 < r_hi:
        c0 = r0 if upper else c_lo
        width = (n if upper else c_hi) - c0
        # grow the chunk to the triple budget and to ~64 MB of output block (at least one row)
        r1 = int(torch.searchsorted(per_row, per_row[r0] + _MAX_TRIPLES, right=True)) - 1
        r1 = min(max(r1, r0 + 1), r_hi, r0 + max(1, (1 << 24) // max(width, 1)))
        e0, e1 = int(v.crow[r0]), int(v.crow[r1])
        cnt = ent_count[e0:e1]
        total = int(cnt.sum())
        ent_row = torch.repeat_interleave(torch.arange(r1 - r0, device=dev), v.crow[r0 + 1:r1 + 1] - v.crow[r0:r1])
        offsets = torch.repeat_interleave(ent_start[e0:e1] - (cnt.cumsum(0) - cnt), cnt)
        pos = offsets + torch.arange(total, device=dev)
        mins = torch.minimum(torch.repeat_interleave(v.val[e0:e1], cnt), inv_vals[pos])
        block = torch.zeros((r1 - r0) * width, device=dev)
        block.index_add_(0, torch.repeat_interleave(ent_row, cnt) * width + (inv_rows[pos] - c0), mins)
        yield r0, r1, c0, block.view(r1 - r0, width)
        r0 = r1


def jaccard_from_sum_min(m: torch.Tensor) -> torch.Tensor:
    """Jaccard distance from Σmin of two rows that each sum to 1: 1 - m / (2 - m), clipped at 0.

    Zhong et al. 2017 (Jaccard distance with min/max): Σmax = 2 - Σmin for rows summing to 1.
    """
    return (1 - m / (2 - m)).clamp_min_(0)


def reciprocal_encoding(x: torch.Tensor, k1: int, k2: int, list_len: int, metric: str = "cosine",
                        scale_by_row_max: bool = False) -> tuple[RowSparse, torch.Tensor, torch.Tensor]:
    """Stages 1-5: kNN lists, R*(i), encoding and query expansion.

    ``list_len`` is the neighbour-list length (k1 for SpCL/MMT clustering, k1 + 1 for Zhong's
    re-ranking); ``scale_by_row_max`` divides each row's distances by its largest one (Zhong).
    Returns ``(V, knn, row_max)`` where V is the query-expanded encoding as CSR rows.
    """
    knn, knn_dist, row_max = neighbour_lists(x, list_len, metric=metric, need_row_max=scale_by_row_max)
    sets = expanded_sets(knn, k1)
    v = encode(x, sets, knn, knn_dist, metric=metric, row_scale=row_max if scale_by_row_max else None)
    return query_expand(v, knn, k2), knn, row_max


# ----------------------------------------------------------------------------------------------
# public entry point
# ----------------------------------------------------------------------------------------------

def jaccard_distance(features, k1: int = 30, k2: int = 6, sparse: bool | None = None):
    """k-reciprocal Jaccard distance between all pairs of ``features`` (SpCL / MMT convention).

    Parameters
    ----------
    features : (N, D) numpy array or torch tensor (any device). Rows are L2-normalised here (left
        as they are when their norms are already 1 to within 1e-5, which avoids an (N, D) copy).
    k1 : neighbour-list length (the point itself included, as faiss returns it); k-reciprocal sets use
        k1, their expansion round(k1 / 2). Clipped to N - 1 with a warning when k1 >= N.
    k2 : local query expansion over the first k2 list entries (1 disables it).
    sparse : False -> dense (N, N) float32 (numpy for numpy input, torch on the input's device for
        torch input); True -> ``scipy.sparse.csr_matrix`` float32 holding exactly the pairs with
        distance < 1 (explicit zeros kept; every absent pair is exactly 1). None -> dense when
        N <= ``DENSE_MAX_N`` (16384), else sparse.

    Returns
    -------
    The Jaccard distance in [0, 1], symmetric, exactly 0 on the diagonal (the computed value is 0 up
    to float rounding, ~1e-7; SpCL keeps that residue).

    Notes
    -----
    Memory: the features, O(N * k1^2) for the sparse encoding and the output. The kNN step computes
    only the upper block triangle of the similarity matrix, in blocks. On a CPU the bookkeeping ops
    run single-threaded and the matmuls with torch's thread count (see :mod:`.knn`).
    """
    x, is_numpy = as_feature_tensor(features)
    n = x.shape[0]
    k1, k2 = check_k(n, k1, k2)
    from ..ram import check_memory, jaccard_estimate
    nbytes, formula = jaccard_estimate(n, k1)
    check_memory(f"the k-reciprocal Jaccard distance with k1={k1} on N={n} points", nbytes, formula,
                 hint="Lower k1")
    norms = x.norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError(f"features has {int((norms == 0).sum())} all-zero rows; they cannot be "
                         "L2-normalised for a cosine kNN")
    if not bool(((norms - 1).abs() <= 1e-5).all()):      # already unit rows: skip the (N, D) copy
        x = x / norms[:, None]
    if sparse is None:
        sparse = n > DENSE_MAX_N
    with few_threads(x.device):
        v, _, _ = reciprocal_encoding(x, k1, k2, list_len=k1, metric="cosine")
        return _symmetric_jaccard(v, sparse, is_numpy)


def _symmetric_jaccard(v: RowSparse, sparse: bool, is_numpy: bool, block: int = 1024):
    """Stage 6 over all pairs.

    Dense: an (N, N) float32 tensor / array; the upper triangle is computed, then mirrored.
    Sparse: scipy CSR holding exactly the pairs with distance < 1 (explicit zeros kept).
    """
    n = v.n_rows
    if not sparse:
        out = torch.empty((n, n), dtype=torch.float32, device=v.val.device)
        for r0, r1, c0, m in sum_min(v, upper=True):
            out[r0:r1, c0:] = jaccard_from_sum_min(m)
        # mirror the upper triangle into the lower one, block by block (no N x N temporary)
        for b0 in range(0, n, block):
            b1 = min(b0 + block, n)
            diag = out[b0:b1, b0:b1]
            diag.copy_(diag.triu() + diag.triu(1).T)
            out[b1:, b0:b1] = out[b0:b1, b1:].T
        out.fill_diagonal_(0)                  # exact: Σmin(i, i) = Σ V_i = 1 up to rounding
        return out.cpu().numpy() if is_numpy else out
    # sparse: full rows (twice the Σmin work of the upper triangle, but no mirror / re-sort pass),
    # kept row by row in CSR order
    counts = torch.zeros(n, dtype=torch.long)
    cols, vals = [], []
    for r0, r1, c0, m in sum_min(v):
        d = jaccard_from_sum_min(m)
        local = torch.arange(r1 - r0, device=d.device)
        d[local, local + r0 - c0] = 0                         # the diagonal, exactly (stored: a zero)
        i, j = (d < 1).nonzero(as_tuple=True)                 # absent pairs are exactly 1
        counts[r0:r1] = torch.bincount(i, minlength=r1 - r0).cpu()
        cols.append((j + c0).to(torch.int32).cpu())
        vals.append(d[i, j].cpu())
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts.numpy(), out=indptr[1:])
    index_dtype = np.int32 if indptr[-1] < np.iinfo(np.int32).max else np.int64
    col = torch.cat(cols).numpy().astype(index_dtype, copy=False)
    del cols
    val = torch.cat(vals).numpy()
    del vals
    return sp.csr_matrix((val, col, indptr.astype(index_dtype, copy=False)), shape=(n, n))
