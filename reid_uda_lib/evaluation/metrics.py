"""mAP / CMC under the Market-1501 protocol: a fast exact ``evaluate`` and the sort-based reference.

Protocol (for each query):

* gallery items with the query's pid **and** camid are *junk*: removed from the ranking;
* gallery items with the query's pid and another camid are *positives*, all others are *negatives*;
* the gallery is ranked by increasing distance, ties broken by gallery index (a **stable** sort), so the
  result is a function of the inputs alone (torchreid's unstable argsort makes tied ranks arbitrary);
* a query without any positive is skipped and counted;
* **without camera ids** (``cross_camera_only=False``): only *the query image itself* is junk, i.e. a
  gallery entry with the same file path as the query (``os.path.abspath`` + ``normcase``; pass
  ``query_paths``/``gallery_paths``); every other image of the query's pid is a positive, whatever its
  camera. Query and gallery are separate lists, so this only matters when a file is in both. With
  cross-camera evaluation on and every camera id equal (e.g. all -1 = absent), no query could have a
  positive: ``evaluate`` raises a ValueError naming the switch instead of returning nothing;
* AP = mean over positives of (positives up to it) / (its rank among kept items);
  CMC@k = 1 when the first positive is within rank k. Both are averaged over the valid queries.

``evaluate_reference`` implements this literally (a full stable argsort per row); ``evaluate`` gives the
same numbers without sorting the gallery: a positive's rank is (# negatives ranked before it) + (its order
among the positives), and only negatives not further than the query's furthest positive can come before
one. So ``evaluate`` thresholds each row at that distance (one vectorised comparison), keeps the few
candidates (~3 % of a Market-1501 matrix for a mAP ~0.7 model), packs (row, distance, gallery index) into
one int64 key per item -- integer order == stable-sort order, ties included -- sorts the candidates' keys
and reads each positive's count of earlier negatives with ``searchsorted``. Work is one pass over the
matrix plus O(K log K) for K candidates; a poor model (positives far down the list) means more candidates
and slower runs, never different numbers.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = ["evaluate", "evaluate_reference", "protocol_camids"]

# Dense temporaries per chunk are one bool (the threshold mask) per element: 2**21 elements (2 MB mask,
# 8 MB of float32 rows) keeps the threshold pass in cache and amortises numpy's per-call overhead.
_CHUNK_ELEMENTS = 1 << 21


# --------------------------------------------------------------------------------------------- input checks
def _to_numpy(x: Any) -> np.ndarray:
    """Host numpy view of an array-like or a torch tensor (any device; bfloat16/float16 become float32)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # exact: every half value is a float32 value
        return x.cpu().numpy()
    return np.asarray(x)


def _check_distmat(distmat: Any) -> np.ndarray:
    d = _to_numpy(distmat)
    if d.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query x num_gallery); got shape {tuple(d.shape)}")
    if d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"distmat is empty (shape {tuple(d.shape)}): "
                         "need at least one query and one gallery item")
    if d.dtype == np.float16:
        d = d.astype(np.float32)  # exact
    elif d.dtype not in (np.float32, np.float64):
        raise ValueError(f"distmat must hold floating-point distances (float16/32/64); got dtype {d.dtype}")
    return np.ascontiguousarray(d)


def _check_ids(x: Any, name: str, size: int, axis_name: str) -> np.ndarray:
    a = _to_numpy(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {tuple(a.shape)}")
    if a.shape[0] != size:
        raise ValueError(f"{name} has {a.shape[0]} entries but distmat has {size} {axis_name} "
                         f"(distmat is num_query x num_gallery)")
    if a.dtype.kind not in "iub":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)  # integral floats, e.g. ids that went through a float tensor
        else:
            raise ValueError(f"{name} must hold integer ids; got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _check_topk(topk: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(topk)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"topk must contain positive integers (CMC ranks such as 1, 5, 10); got {topk!r}")
    return tuple(int(k) for k in ks)


def _checked(distmat, query_pids, gallery_pids, query_camids, gallery_camids, topk):
    d = _check_distmat(distmat)
    nq, ng = d.shape
    qp = _check_ids(query_pids, "query_pids", nq, "queries (rows)")
    gp = _check_ids(gallery_pids, "gallery_pids", ng, "gallery items (columns)")
    qc = _check_ids(query_camids, "query_camids", nq, "queries (rows)")
    gc = _check_ids(gallery_camids, "gallery_camids", ng, "gallery items (columns)")
    return d, qp, gp, qc, gc, _check_topk(topk)


def _image_key(p: Any) -> Any:
    return os.path.normcase(os.path.abspath(os.fspath(p))) if isinstance(p, (str, os.PathLike)) else p


def protocol_camids(query_camids: Any, gallery_camids: Any, cross_camera_only: bool = True,
                    query_paths: Sequence | None = None, gallery_paths: Sequence | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The "camera" arrays the junk rule (same pid and same camera) compares, for either protocol.

    ``cross_camera_only=True``: the camids themselves; a ValueError names the switch when they are all
    equal. ``False``: one integer per distinct image (same path -> same integer, across query and
    gallery), so the junk rule removes exactly the query image itself.
    """
    qc, gc = np.asarray(query_camids), np.asarray(gallery_camids)
    if cross_camera_only:
        values = np.unique(np.concatenate([qc.ravel(), gc.ravel()]))
        if values.size == 1:
            what = "absent (-1)" if values[0] < 0 else f"all equal to {int(values[0])}"
            raise ValueError(
                f"no valid query: camera ids are {what} for all {qc.size} queries and {gc.size} gallery images: "
                "cross-camera evaluation ignores every gallery image from the query's camera, so no query would "
                "have a match. If the data has no camera ids, switch the protocol off: config "
                "evaluation.cross_camera_only=false (--set evaluation.cross_camera_only=false), or evaluate(..., "
                "cross_camera_only=False, query_paths=..., gallery_paths=...), which ignores only the query image "
                "itself (same file path)")
        return qc, gc
    if query_paths is None or gallery_paths is None:
        raise ValueError("cross_camera_only=False needs query_paths and gallery_paths (file paths, or any "
                         "hashable image keys): the query image itself is found in the gallery by its path")
    if len(query_paths) != qc.size or len(gallery_paths) != gc.size:
        raise ValueError(f"query_paths/gallery_paths have {len(query_paths)}/{len(gallery_paths)} entries but "
                         f"there are {qc.size} queries and {gc.size} gallery items")
    keys: dict = {}
    qk = np.fromiter((keys.setdefault(_image_key(p), len(keys)) for p in query_paths), np.int64, qc.size)
    gk = np.fromiter((keys.setdefault(_image_key(p), len(keys)) for p in gallery_paths), np.int64, gc.size)
    return qk, gk


def _summary(ap: np.ndarray, first_rank: np.ndarray, valid: np.ndarray, topk: tuple[int, ...]) -> dict:
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError(f"no valid query: none of the {valid.size} queries has a gallery item with the same pid "
                         "and a different camid, so mAP/CMC are undefined (check the pid/camid arrays; for data "
                         "without camera ids use cross_camera_only=False, config evaluation.cross_camera_only=false)")
    ap, first_rank = ap[valid], first_rank[valid]
    return {"mAP": float(ap.mean()),
            "cmc": {k: float(np.count_nonzero(first_rank <= k) / n_valid) for k in topk},
            "num_valid_queries": n_valid,
            "num_skipped_queries": int(valid.size - n_valid)}


# ------------------------------------------------------------------------------------------------ reference
def evaluate_reference(distmat: Any, query_pids: Any, gallery_pids: Any, query_camids: Any,
                       gallery_camids: Any, topk: Sequence[int] = (1, 5, 10), *, cross_camera_only: bool = True,
                       query_paths: Sequence | None = None, gallery_paths: Sequence | None = None) -> dict:
    """The Market-1501 protocol done literally: a stable argsort of every row, then a per-query loop.

    Slow (it sorts the whole matrix); it defines what :func:`evaluate` must return and is the baseline of
    ``benchmarks/bench_evaluation.py``. Same arguments, checks and return value as :func:`evaluate`.
    """
    d, qp, gp, qc, gc, ks = _checked(distmat, query_pids, gallery_pids, query_camids, gallery_camids, topk)
    qc, gc = protocol_camids(qc, gc, cross_camera_only, query_paths, gallery_paths)
    if np.isnan(d).any():
        raise ValueError("distmat contains NaN distances")
    order = np.argsort(d, axis=1, kind="stable")  # ties -> lower gallery index first
    ap = np.zeros(d.shape[0])
    first_rank = np.zeros(d.shape[0], dtype=np.int64)
    valid = np.zeros(d.shape[0], dtype=bool)
    for q in range(d.shape[0]):
        same_pid = gp[order[q]] == qp[q]
        keep = ~(same_pid & (gc[order[q]] == qc[q]))  # drop junk: same pid seen by the same camera
        hits = same_pid[keep]
        if not hits.any():
            continue
        ranks = np.flatnonzero(hits) + 1  # 1-based ranks of the positives among kept items
        ap[q] = np.mean(np.arange(1, ranks.size + 1) / ranks)
        first_rank[q] = ranks[0]
        valid[q] = True
    return _summary(ap, first_rank, valid, ks)


# -------------------------------------------------------------------------------------------- fast, exact
def _float32_codes(values: np.ndarray) -> np.ndarray:
    """Integers in [0, 2**32) with the order and equalities of the float32 ``values`` (no NaN)."""
    bits = (values + np.float32(0)).view(np.int32)  # + 0 turns -0.0 into +0.0: equal floats, equal codes
    # IEEE floats order like sign-magnitude integers: flip the magnitude bits of negatives.
    return (bits ^ ((bits >> 31) & 0x7FFFFFFF)).astype(np.int64) + (1 << 31)


def _encoder(positive_values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A map to integers in [0, 2**32) that keeps order and equality relative to ``positive_values``.

    float32 uses the bit pattern directly; float64 values (64 bits) are coded by their position among
    the chunk's positive distances: 2*i for values strictly between the (i-1)-th and i-th distinct
    positive distance, 2*i+1 for values equal to the i-th. That is all the ranking needs.
    """
    if positive_values.dtype == np.float32:
        return _float32_codes
    levels = np.unique(positive_values)

    def codes(values: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(levels, values, side="left")
        equal = levels[np.minimum(pos, levels.size - 1)] == values
        return 2 * pos + equal
    return codes


def _same_pid_pairs(qpid: np.ndarray, groups: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """All (row, gallery column) pairs with equal pid, rows ascending then columns ascending."""
    order, pids, starts, counts = groups
    loc = np.minimum(np.searchsorted(pids, qpid), pids.size - 1)
    cnt = np.where(pids[loc] == qpid, counts[loc], 0)
    rows = np.repeat(np.arange(qpid.size), cnt)
    first = np.repeat(starts[loc] - (np.cumsum(cnt) - cnt), cnt)  # start of the group minus pair offset
    return rows, order[first + np.arange(rows.size)]


def _nan_error() -> ValueError:
    return ValueError("distmat contains NaN distances")


def _chunk_ranks(d: np.ndarray, qpid: np.ndarray, qcam: np.ndarray, gpid: np.ndarray, gcam: np.ndarray,
                 groups: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row AP, rank of the first positive and validity for one chunk of rows ``d`` (B x G).

    Every gallery item gets the exact sort key (row, distance code, column) packed in one int64, so the
    stable-sort order (ties -> lower column first) is plain integer order and ranks are counts of keys.
    """
    nb, ng = d.shape
    cbits = max(ng - 1, 1).bit_length()
    rshift = 32 + cbits  # row | 32-bit distance code | column; the caller keeps this below 63 bits
    ap = np.zeros(nb)
    first_rank = np.zeros(nb, dtype=np.int64)

    # 1. Positives from the pid groups (no dense pid comparison), sorted by key.
    rows, cols = _same_pid_pairs(qpid, groups)
    keep = gcam[cols] != qcam[rows]
    prow, pcol = rows[keep], cols[keep]
    npos = np.bincount(prow, minlength=nb)
    valid = npos > 0
    if not valid.any():
        if np.isnan(d).any():
            raise _nan_error()
        return ap, first_rank, valid
    pval = d[prow, pcol]
    if np.isnan(pval).any():
        raise _nan_error()
    code = _encoder(pval)
    pkey = np.sort((prow << rshift) | (code(pval) << cbits) | pcol)
    prow = pkey >> rshift  # rows stay grouped and ascending: they are the top bits
    pstart = np.cumsum(npos) - npos
    last = pstart[valid] + npos[valid] - 1
    far = np.full(nb, -np.inf, dtype=d.dtype)  # the row's furthest positive (-inf: no positive)
    far[valid] = d[valid.nonzero()[0], pkey[last] & ((1 << cbits) - 1)]

    # 2. Candidates: everything not further than the furthest positive -- the rest ranks after all
    #    positives. "not greater" rather than "less or equal" also catches NaN, checked on the few kept.
    mask = np.greater(d, far[:, None])
    np.logical_not(mask, out=mask)
    flat = np.flatnonzero(mask)
    val = d.ravel()[flat]
    if np.isnan(val).any():
        raise _nan_error()
    crow = flat // ng
    ccol = flat - crow * ng
    neg = gpid[ccol] != qpid[crow]  # drop positives and junk (same pid)
    crow, ccol, val = crow[neg], ccol[neg], val[neg]
    ckey = np.sort((crow << rshift) | (code(val) << cbits) | ccol)

    # 3. Rank of a positive among kept items = negatives with a smaller key + its order among positives.
    row_first = np.searchsorted(ckey, np.arange(nb, dtype=np.int64) << rshift)
    negatives_before = np.searchsorted(ckey, pkey) - row_first[prow]
    order_in_row = np.arange(pkey.size) - pstart[prow] + 1
    rank = negatives_before + order_in_row
    ap[valid] = np.bincount(prow, weights=order_in_row / rank, minlength=nb)[valid] / npos[valid]
    first_rank[valid] = rank[pstart[valid]]
    return ap, first_rank, valid


def evaluate(distmat: Any, query_pids: Any, gallery_pids: Any, query_camids: Any, gallery_camids: Any,
             topk: Sequence[int] = (1, 5, 10), *, cross_camera_only: bool = True,
             query_paths: Sequence | None = None, gallery_paths: Sequence | None = None,
             chunk_queries: int | None = None, num_threads: int | None = None) -> dict:
    """mAP and CMC of a query x gallery distance matrix under the Market-1501 protocol.

    Exact: equals :func:`evaluate_reference` (stable sort, ties broken by gallery index) without sorting.
    Runs on the CPU with numpy; torch tensors on any device are copied to host memory first.

    Parameters
    ----------
    distmat : (Q, G) float16/32/64 array or tensor; smaller = more similar. No NaN.
    query_pids, gallery_pids, query_camids, gallery_camids : integer ids of length Q, G, Q, G.
    topk : CMC ranks to report.
    cross_camera_only : the Market-1501 protocol (default). ``False`` for data without camera ids: only
        the query image itself (a gallery entry with the same path) is ignored; needs ``query_paths``
        and ``gallery_paths``.
    query_paths, gallery_paths : file paths (or hashable keys) of the images, for ``cross_camera_only=False``.
    chunk_queries : rows per chunk (default: about 2 M matrix elements, i.e. a few MB of temporaries
        per chunk and thread; memory beyond the host copy of ``distmat`` stays small).
    num_threads : worker threads over chunks (default: ``torch.get_num_threads()``).

    Returns
    -------
    dict ``{"mAP": float, "cmc": {k: float}, "num_valid_queries": int, "num_skipped_queries": int}``,
    fractions in [0, 1]; skipped queries are those without a positive (same pid, other camera; with
    ``cross_camera_only=False``: same pid, other image).
    """
    d, qp, gp, qc, gc, ks = _checked(distmat, query_pids, gallery_pids, query_camids, gallery_camids, topk)
    qc, gc = protocol_camids(qc, gc, cross_camera_only, query_paths, gallery_paths)
    nq, ng = d.shape
    for name, value in (("chunk_queries", chunk_queries), ("num_threads", num_threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise ValueError(f"{name} must be a positive integer or None; got {value!r}")
    cbits = max(ng - 1, 1).bit_length()
    if cbits > 31:
        raise ValueError(f"distmat has {ng} gallery columns; at most 2**31 are supported")
    step = int(chunk_queries) if chunk_queries else max(1, _CHUNK_ELEMENTS // ng)
    step = min(step, 1 << (31 - cbits))  # sort keys pack row | 32-bit distance code | column in 63 bits
    threads = int(num_threads) if num_threads else max(1, min(torch.get_num_threads(), os.cpu_count() or 1))

    gorder = np.argsort(gp, kind="stable")  # gallery grouped by pid, columns ascending inside a group
    pids, starts, counts = np.unique(gp[gorder], return_index=True, return_counts=True)
    groups = (gorder, pids, starts, counts)

    def run(lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hi = min(lo + step, nq)
        return _chunk_ranks(d[lo:hi], qp[lo:hi], qc[lo:hi], gp, gc, groups)

    starts_q = range(0, nq, step)
    if threads > 1 and len(starts_q) > 1:
        # numpy releases the GIL in the heavy loops (comparison, nonzero, sort), so chunks overlap.
        with ThreadPoolExecutor(max_workers=threads) as pool:
            parts = list(pool.map(run, starts_q))
    else:
        parts = [run(lo) for lo in starts_q]
    ap, first_rank, valid = (np.concatenate(x) for x in zip(*parts))
    return _summary(ap, first_rank, valid, ks)
