"""k-reciprocal Jaccard distance against a brute-force loop reference of the SpCL/MMT convention."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from reid_uda_lib.cluster import jaccard as J
from reid_uda_lib.cluster import jaccard_distance, neighbour_lists


# ------------------------------------------------------------------------------------------------
# brute-force reference: plain loops, float64, written from the convention (not from the library)
# ------------------------------------------------------------------------------------------------

def ref_encoding(x, k1, k2, list_len=None, metric="cosine", scale=False):
    """Every stage of the k-reciprocal encoding with loops; ``list_len`` defaults to k1 (SpCL)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        dist = 2 - 2 * x @ x.T
    else:
        sq = (x ** 2).sum(1)
        dist = sq[:, None] + sq[None, :] - 2 * x @ x.T
    length = k1 if list_len is None else list_len
    knn = []
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: (dist[i, j], j))
        knn.append([i] + others[:length - 1])
    knn = np.array(knn)

    def recip(i, k):
        return [j for j in knn[i, :k + 1] if i in knn[j, :k + 1]]

    half = int(np.around(k1 / 2))
    r_full = [recip(i, k1) for i in range(n)]
    r_half = [recip(i, half) for i in range(n)]
    expanded, v = [], np.zeros((n, n))
    for i in range(n):
        e = set(r_full[i])
        for c in r_full[i]:
            if len(set(r_half[c]) & set(r_full[i])) > 2 / 3 * len(r_half[c]):
                e |= set(r_half[c])
        e = sorted(e)
        expanded.append(e)
        d = dist[i, e] / (dist[i].max() if scale else 1.0)
        v[i, e] = np.exp(-d) / np.exp(-d).sum()
    if k2 > 1:
        v = np.stack([np.mean([v[j] for j in knn[i, :k2]], axis=0) for i in range(n)])
    jac = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            m = sum(min(v[i, l], v[j, l]) for l in np.nonzero(v[i])[0])
            jac[i, j] = max(0.0, 1 - m / (2 - m))
    return {"knn": knn, "r_full": r_full, "r_half": r_half, "expanded": expanded, "v": v,
            "jaccard": jac, "dist": dist}


def clustered(n=60, d=12, centres=6, spread=0.8, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    return (c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, d))).astype(np.float32)


def tied(n=60, d=16, seed=0):
    """Entries ±1/4: unit norm, dot products multiples of 1/16, exact in float32 -> many exact ties."""
    rng = np.random.default_rng(seed)
    return ((rng.integers(0, 2, (n, d)) * 2 - 1) * 0.25).astype(np.float32)


CASES = [(clustered(), 20, 6), (tied(), 20, 6), (clustered(seed=3), 5, 1), (tied(seed=1), 7, 3)]


@pytest.fixture(scope="module", params=range(len(CASES)), ids=["clustered", "tied", "k1=5,k2=1", "tied-k1=7"])
def case(request):
    x, k1, k2 = CASES[request.param]
    return x, k1, k2, ref_encoding(x, k1, k2)


# ------------------------------------------------------------------------------------------------
# stage by stage
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
@pytest.mark.parametrize("block, stripe", [(7, 7), (7, 20), (64, None)])
def test_neighbour_lists_exact_order_with_ties(metric, block, stripe):
    # blocks smaller than the list length exercise the padding; stripes the off-diagonal merges
    x = torch.from_numpy(tied(n=90, seed=2))
    idx, dist, row_max = neighbour_lists(x, 20, metric=metric, block=block, stripe=stripe, need_row_max=True)
    ref = ref_encoding(x.numpy(), 20, 1, metric=metric)
    np.testing.assert_array_equal(idx.numpy(), ref["knn"])
    np.testing.assert_allclose(dist.numpy(), np.take_along_axis(ref["dist"], ref["knn"], 1), atol=1e-6)
    np.testing.assert_allclose(row_max.numpy(), ref["dist"].max(1), atol=1e-6)


def test_neighbour_lists_self_first_even_for_duplicates():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    idx, _, _ = neighbour_lists(x, 3)
    assert idx.tolist() == [[0, 1, 2], [1, 0, 2], [2, 0, 1]]   # the duplicate ties with self: self wins


def test_reciprocal_sets_match_reference(case):
    x, k1, _, ref = case
    xt = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    knn, _, _ = neighbour_lists(xt, k1)
    half = int(np.around(k1 / 2))
    for k, key in ((k1, "r_full"), (half, "r_half")):
        mask = J.reciprocal_mask(knn, k)
        got = [knn[i, :mask.shape[1]][mask[i]].tolist() for i in range(len(x))]
        assert got == [list(map(int, r)) for r in ref[key]]


def test_expanded_sets_match_reference(case):
    x, k1, _, ref = case
    xt = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    knn, _, _ = neighbour_lists(xt, k1)
    sets = J.expanded_sets(knn, k1, chunk=13)            # several chunks
    got = [sets.col[sets.crow[i]:sets.crow[i + 1]].tolist() for i in range(len(x))]
    assert got == ref["expanded"]


def test_encoding_and_query_expansion_match_reference(case):
    x, k1, k2, ref = case
    xt = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
    v, _, _ = J.reciprocal_encoding(xt, k1, k2, list_len=k1)
    np.testing.assert_allclose(v.to_scipy().toarray(), ref["v"], atol=1e-6)
    np.testing.assert_allclose(v.to_scipy().sum(1).A1, 1.0, atol=1e-5)   # rows stay distributions


def test_jaccard_matches_reference(case):
    x, k1, k2, ref = case
    d = jaccard_distance(x, k1=k1, k2=k2, sparse=False)
    assert isinstance(d, np.ndarray) and d.dtype == np.float32 and d.shape == (len(x), len(x))
    np.testing.assert_allclose(d, ref["jaccard"], atol=1e-5)
    np.testing.assert_array_equal(d, d.T)                    # mirrored: exactly symmetric
    assert (np.diag(d) == 0).all()


def test_rounding_of_half_k1_is_numpy_half_to_even():
    # k1 = 5 -> np.around(2.5) = 2 (not 3); the reference uses the same rule, so the sets must agree
    x = clustered(n=40, seed=5)
    ref = ref_encoding(x, 5, 1)
    np.testing.assert_allclose(jaccard_distance(x, k1=5, k2=1), ref["jaccard"], atol=1e-5)


# ------------------------------------------------------------------------------------------------
# sparse output, types, devices
# ------------------------------------------------------------------------------------------------

def test_sparse_holds_exactly_the_pairs_below_one():
    # duplicated rows give off-diagonal distances of exactly 0: they must stay as explicit zeros
    x = np.concatenate([clustered(n=50, seed=7), clustered(n=50, seed=7)[:10]])
    dense = jaccard_distance(x, k1=12, k2=4, sparse=False)
    csr = jaccard_distance(x, k1=12, k2=4, sparse=True)
    assert sp.isspmatrix_csr(csr) and csr.dtype == np.float32
    rows, cols = np.nonzero(dense < 1)
    assert csr.nnz == rows.size
    np.testing.assert_array_equal(csr[rows, cols].A1, dense[rows, cols])
    assert (csr.data < 1).all()
    diag = csr.tocoo()
    assert ((diag.row == diag.col) & (diag.data == 0)).sum() == 60      # the diagonal: stored zeros
    assert (dense[0:10, 50:60][np.eye(10, dtype=bool)] < 1e-6).all()   # the duplicates
    n_zero = int((dense == 0).sum())
    assert n_zero >= 10 and (csr.data == 0).sum() == n_zero             # stored as explicit zeros
    rebuilt = np.ones_like(dense)
    coo = csr.tocoo()
    rebuilt[coo.row, coo.col] = coo.data
    np.testing.assert_array_equal(rebuilt, dense)


def test_auto_layout_switches_to_sparse_above_dense_max_n(monkeypatch):
    x = clustered(n=40)
    monkeypatch.setattr(J, "DENSE_MAX_N", 39)
    assert sp.isspmatrix_csr(jaccard_distance(x, k1=10, k2=3))
    monkeypatch.setattr(J, "DENSE_MAX_N", 40)
    assert isinstance(jaccard_distance(x, k1=10, k2=3), np.ndarray)


def test_torch_in_torch_out_and_normalisation_inside():
    x = clustered(n=45)
    d_np = jaccard_distance(x, k1=10, k2=3)
    d_t = jaccard_distance(torch.from_numpy(x) * 7.0, k1=10, k2=3)   # scale does not matter
    assert isinstance(d_t, torch.Tensor) and d_t.dtype == torch.float32
    np.testing.assert_allclose(d_t.numpy(), d_np, atol=1e-6)
    np.testing.assert_allclose(jaccard_distance(x.astype(np.float64), k1=10, k2=3), d_np, atol=1e-6)


def test_small_blocks_and_chunks_give_the_same_result(monkeypatch):
    x = clustered(n=120, seed=11)
    full = jaccard_distance(x, k1=15, k2=4)
    monkeypatch.setattr(J, "_MAX_TRIPLES", 3000)             # force several Σmin chunks
    monkeypatch.setattr(J, "_CHUNK_ROWS", 9)
    np.testing.assert_array_equal(jaccard_distance(x, k1=15, k2=4), full)
    np.testing.assert_array_equal(jaccard_distance(x, k1=15, k2=4, sparse=True).toarray()[full < 1], full[full < 1])


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------

def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least 2 points"):
        jaccard_distance(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        x = clustered(n=10)
        x[3, 1] = np.nan
        jaccard_distance(x)
    with pytest.raises(ValueError, match="2-D"):
        jaccard_distance(np.ones(5, np.float32))
    with pytest.raises(ValueError, match="all-zero rows"):
        x = clustered(n=10)
        x[2] = 0
        jaccard_distance(x, k1=3, k2=1)
    with pytest.raises(ValueError, match="k1 must be a positive integer"):
        jaccard_distance(clustered(n=10), k1=0)
    with pytest.raises(ValueError, match="k2 must be a positive integer"):
        jaccard_distance(clustered(n=10), k1=3, k2=0)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        jaccard_distance([[1.0, 0.0], [0.0, 1.0]])


def test_large_k1_is_clipped_with_a_warning():
    x = clustered(n=12)
    with pytest.warns(UserWarning, match="clipping k1 to 11"):
        d = jaccard_distance(x, k1=30, k2=6)
    np.testing.assert_array_equal(d, jaccard_distance(x, k1=11, k2=6))
    with pytest.warns(UserWarning, match="clipping k2 to 4"):
        jaccard_distance(x, k1=4, k2=6)


def test_thread_count_is_restored_and_does_not_change_results(monkeypatch):
    from reid_uda_lib.cluster import knn

    x = clustered(n=80, seed=9)
    before = torch.get_num_threads()
    d = jaccard_distance(x, k1=12, k2=4)
    assert torch.get_num_threads() == before
    with knn.few_threads(torch.device("cpu")):
        assert torch.get_num_threads() == min(before, knn.SMALL_OP_THREADS)
    assert torch.get_num_threads() == before
    monkeypatch.setattr(knn, "SMALL_OP_THREADS", None)        # leave torch's setting alone
    np.testing.assert_allclose(jaccard_distance(x, k1=12, k2=4), d, atol=1e-6)
