"""evaluate(): exact Market-1501 mAP/CMC (stable-sort tie rule) against a literal brute force."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid_uda_lib.evaluation import evaluate
from reid_uda_lib.evaluation.metrics import evaluate_reference

TOPK = (1, 2, 3, 5, 10)


def brute_force(distmat, qpid, gpid, qcam, gcam, topk=TOPK) -> dict:
    """The protocol spelled out in plain Python: sort each row by (distance, gallery index)."""
    d = np.asarray(distmat, dtype=np.float64)
    aps, first = [], []
    skipped = 0
    for q in range(d.shape[0]):
        order = sorted(range(d.shape[1]), key=lambda g: (d[q, g], g))
        kept = [g for g in order if not (gpid[g] == qpid[q] and gcam[g] == qcam[q])]
        hits = [gpid[g] == qpid[q] for g in kept]
        if not any(hits):
            skipped += 1
            continue
        ranks = [i + 1 for i, h in enumerate(hits) if h]
        aps.append(sum((j + 1) / r for j, r in enumerate(ranks)) / len(ranks))
        first.append(ranks[0])
    if not first:
        return {"num_valid_queries": 0, "num_skipped_queries": skipped}
    return {"mAP": float(np.mean(aps)), "cmc": {k: float(np.mean([f <= k for f in first])) for k in topk},
            "num_valid_queries": len(first), "num_skipped_queries": skipped}


def assert_same(got: dict, want: dict, tol: float = 1e-6) -> None:
    assert got["num_valid_queries"] == want["num_valid_queries"]
    assert got["num_skipped_queries"] == want["num_skipped_queries"]
    assert abs(got["mAP"] - want["mAP"]) <= tol, (got, want)
    assert got["cmc"].keys() == want["cmc"].keys()
    for k in want["cmc"]:
        assert abs(got["cmc"][k] - want["cmc"][k]) <= tol, (k, got, want)


def random_problem(rng: np.random.Generator, nq: int, ng: int, ids: int, cams: int, decimals: int | None,
                   dtype=np.float32):
    d = rng.random((nq, ng))
    if decimals is not None:
        d = np.round(d, decimals)  # many exact ties
    return (d.astype(dtype), rng.integers(0, ids, nq), rng.integers(0, ids, ng),
            rng.integers(0, cams, nq), rng.integers(0, cams, ng))


def hand_example():
    """3 queries x 6 gallery items; see test_hand_worked_example for the arithmetic."""
    gpid = np.array([1, 2, 1, 3, 1, 2])
    gcam = np.array([0, 1, 1, 0, 2, 0])
    qpid = np.array([1, 2, 3])
    qcam = np.array([0, 1, 0])
    distmat = np.array([[0.1, 0.3, 0.2, 0.4, 0.5, 0.6],
                        [0.5, 0.1, 0.4, 0.2, 0.3, 0.2],
                        [0.3, 0.2, 0.1, 0.6, 0.5, 0.4]], dtype=np.float32)
    return distmat, qpid, gpid, qcam, gcam


def test_hand_worked_example():
    # Query 0 (pid 1, cam 0): g0 is junk (pid 1, cam 0); positives g2 (cam 1) and g4 (cam 2).
    #   kept, by distance: g2 .2 (+), g1 .3, g3 .4, g4 .5 (+), g5 .6  -> positive ranks 1, 4
    #   AP = (1/1 + 2/4) / 2 = 0.75; first match at rank 1.
    # Query 1 (pid 2, cam 1): g1 is junk; the only positive is g5 (cam 0) at distance .2, tied with g3.
    #   stable sort puts g3 (index 3) before g5 (index 5): kept g3 .2, g5 .2 (+), ... -> rank 2, AP = 1/2.
    #   (Breaking the tie the other way would give AP = 1.)
    # Query 2 (pid 3, cam 0): its only same-pid item g3 is also cam 0 -> junk -> no positive: skipped.
    # mAP = (0.75 + 0.5) / 2 = 0.625; CMC@1 = 1/2 (query 0 only), CMC@k>=2 = 1.
    r = evaluate(*hand_example(), topk=(1, 2, 5))
    assert r["mAP"] == pytest.approx(0.625, abs=1e-12)
    assert r["cmc"] == {1: 0.5, 2: 1.0, 5: 1.0}
    assert r["num_valid_queries"] == 2 and r["num_skipped_queries"] == 1
    assert_same(evaluate_reference(*hand_example(), topk=(1, 2, 5)), r, tol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_with_ties_and_missing_matches(seed):
    rng = np.random.default_rng(seed)
    for trial in range(25):
        nq, ng = int(rng.integers(1, 25)), int(rng.integers(1, 50))
        dtype = (np.float32, np.float64)[trial % 2]
        decimals = (None, 0, 1, 2)[trial % 4]  # 0 decimals: distances in {0, 1}, ties everywhere
        prob = random_problem(rng, nq, ng, ids=int(rng.integers(1, 8)), cams=int(rng.integers(1, 4)),
                              decimals=decimals, dtype=dtype)
        want = brute_force(*prob)
        if want["num_valid_queries"] == 0:
            with pytest.raises(ValueError, match="no valid query"):
                evaluate(*prob, topk=TOPK)
            continue
        chunk = int(rng.integers(1, 6))
        assert_same(evaluate(*prob, topk=TOPK, chunk_queries=chunk, num_threads=1 + trial % 2), want)
        assert_same(evaluate(*prob, topk=TOPK), want)
        assert_same(evaluate_reference(*prob, topk=TOPK), want)


def test_larger_random_matches_reference_float64_and_chunks():
    rng = np.random.default_rng(7)
    prob = random_problem(rng, 300, 900, ids=60, cams=4, decimals=2, dtype=np.float64)
    want = evaluate_reference(*prob)
    assert_same(want, brute_force(*prob, topk=(1, 5, 10)))
    for chunk in (1, 7, 64, None):
        assert_same(evaluate(*prob, chunk_queries=chunk, num_threads=2), want)


def test_single_gallery_item_and_single_query():
    d = np.array([[0.5], [0.2], [0.7]], dtype=np.float32)
    qpid, gpid = np.array([4, 4, 5]), np.array([4])
    qcam, gcam = np.array([0, 1, 0]), np.array([1])
    # Query 0: positive (cam 0 vs 1) at rank 1; query 1: junk (same cam) -> skipped; query 2: no pid 5.
    r = evaluate(d, qpid, gpid, qcam, gcam, topk=(1, 5))
    assert r == {"mAP": 1.0, "cmc": {1: 1.0, 5: 1.0}, "num_valid_queries": 1, "num_skipped_queries": 2}
    assert evaluate(d[:1], qpid[:1], gpid, qcam[:1], gcam, topk=(1, 5)) == {
        "mAP": 1.0, "cmc": {1: 1.0, 5: 1.0}, "num_valid_queries": 1, "num_skipped_queries": 0}


def test_all_positives_are_same_camera_junk_is_skipped():
    rng = np.random.default_rng(3)
    d = rng.random((4, 10)).astype(np.float32)
    gpid = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
    gcam = np.array([0, 0, 0, 1, 2, 0, 1, 1, 1, 1])
    qpid = np.array([0, 1, 2, 3])
    qcam = np.array([0, 1, 0, 1])  # query 0: all pid-0 items on cam 0; query 3: all pid-3 items on cam 1
    r = evaluate(d, qpid, gpid, qcam, gcam, topk=TOPK)
    assert r["num_skipped_queries"] == 2 and r["num_valid_queries"] == 2
    assert_same(r, brute_force(d, qpid, gpid, qcam, gcam))


def test_signed_zero_and_infinite_distances_follow_the_index_rule():
    # -0.0 == 0.0, so g0 (negative, 0.0) stays ahead of g1 (positive, -0.0): rank 2, AP 1/2.
    d = np.array([[0.0, -0.0, np.inf, np.inf, -np.inf]], dtype=np.float32)
    gpid, gcam = np.array([1, 0, 1, 0, 2]), np.array([0, 1, 0, 1, 0])
    qpid, qcam = np.array([0]), np.array([0])
    r = evaluate(d, qpid, gpid, qcam, gcam, topk=(1, 2, 3))
    # ranks: g4 (-inf) 1, g0 2, g1 (+) 3, g2 4, g3 (+, inf, after g2 by index) 5 -> AP = (1/3 + 2/5) / 2
    assert r["mAP"] == pytest.approx((1 / 3 + 2 / 5) / 2, abs=1e-12)
    assert r["cmc"] == {1: 0.0, 2: 0.0, 3: 1.0}
    assert_same(r, brute_force(d, qpid, gpid, qcam, gcam, topk=(1, 2, 3)))
    assert_same(evaluate(d.astype(np.float64), qpid, gpid, qcam, gcam, topk=(1, 2, 3)), r)


def test_torch_and_half_inputs_match_numpy():
    rng = np.random.default_rng(11)
    d, qpid, gpid, qcam, gcam = random_problem(rng, 40, 120, ids=10, cams=3, decimals=1)
    want = brute_force(d, qpid, gpid, qcam, gcam)
    t = [torch.from_numpy(x) for x in (qpid, gpid, qcam, gcam)]
    assert_same(evaluate(torch.from_numpy(d), *t, topk=TOPK), want)
    assert_same(evaluate(torch.from_numpy(d).double(), *t, topk=TOPK), want)
    # float16 / bfloat16 round the distances: compare with the brute force on the rounded values.
    for half in (torch.float16, torch.bfloat16):
        dh = torch.from_numpy(d).to(half)
        assert_same(evaluate(dh, *t, topk=TOPK), brute_force(dh.float().numpy(), qpid, gpid, qcam, gcam))
    assert_same(evaluate(d.astype(np.float16), qpid, gpid, qcam, gcam, topk=TOPK),
                brute_force(d.astype(np.float16), qpid, gpid, qcam, gcam))
    # lists of ids and integral float ids are accepted
    assert_same(evaluate(d, list(qpid), list(gpid), qcam.astype(np.float32), gcam, topk=TOPK), want)


def test_return_types():
    r = evaluate(*hand_example())
    assert set(r) == {"mAP", "cmc", "num_valid_queries", "num_skipped_queries"}
    assert isinstance(r["mAP"], float) and all(isinstance(v, float) for v in r["cmc"].values())
    assert list(r["cmc"]) == [1, 5, 10]
    assert isinstance(r["num_valid_queries"], int) and isinstance(r["num_skipped_queries"], int)


@pytest.mark.parametrize("fn", [evaluate, evaluate_reference])
def test_shape_errors_name_the_argument_and_sizes(fn):
    d, qpid, gpid, qcam, gcam = hand_example()  # 3 x 6
    with pytest.raises(ValueError, match=r"query_pids has 2 entries but distmat has 3 queries"):
        fn(d, qpid[:2], gpid, qcam, gcam)
    with pytest.raises(ValueError, match=r"gallery_pids has 5 entries but distmat has 6 gallery"):
        fn(d, qpid, gpid[:5], qcam, gcam)
    with pytest.raises(ValueError, match=r"query_camids has 4 entries but distmat has 3 queries"):
        fn(d, qpid, gpid, np.zeros(4, int), gcam)
    with pytest.raises(ValueError, match=r"gallery_camids has 7 entries but distmat has 6 gallery"):
        fn(d, qpid, gpid, qcam, np.zeros(7, int))
    with pytest.raises(ValueError, match=r"distmat must be 2-D.*\(6,\)"):
        fn(d[0], qpid, gpid, qcam, gcam)
    with pytest.raises(ValueError, match=r"gallery_pids must be 1-D"):
        fn(d, qpid, gpid[None], qcam, gcam)


@pytest.mark.parametrize("fn", [evaluate, evaluate_reference])
def test_value_errors(fn):
    d, qpid, gpid, qcam, gcam = hand_example()
    with pytest.raises(ValueError, match="distmat is empty"):
        fn(np.zeros((0, 6), np.float32), qpid[:0], gpid, qcam[:0], gcam)
    with pytest.raises(ValueError, match="distmat is empty"):
        fn(np.zeros((3, 0), np.float32), qpid, gpid[:0], qcam, gcam[:0])
    for r, c in [(0, 2), (1, 0), (2, 5)]:  # NaN on a positive, on a candidate, far away in a skipped row
        bad = d.copy()
        bad[r, c] = np.nan
        with pytest.raises(ValueError, match="distmat contains NaN"):
            fn(bad, qpid, gpid, qcam, gcam)
    with pytest.raises(ValueError, match="floating-point distances"):
        fn(d.astype(np.int64), qpid, gpid, qcam, gcam)
    with pytest.raises(ValueError, match="query_pids must hold integer ids"):
        fn(d, qpid + 0.5, gpid, qcam, gcam)
    with pytest.raises(ValueError, match="topk must contain positive integers"):
        fn(d, qpid, gpid, qcam, gcam, topk=(0, 5))
    # every item on camera 0: all same-pid gallery items are junk, so no query has a positive; the error
    # names the problem and the protocol switch (issue 13)
    with pytest.raises(ValueError, match=r"no valid query: camera ids are all equal to 0 for all 3 queries and 6 "
                                         r"gallery images[\s\S]*evaluation.cross_camera_only=false"):
        fn(d, qpid, gpid, np.zeros(3, int), np.zeros(6, int))
    # two cameras, but every same-pid gallery item is on the query's camera: the general message
    with pytest.raises(ValueError, match=r"no valid query: none of the 3 queries has a gallery item with the "
                                         r"same pid and a different camid"):
        fn(d, qpid, gpid, np.array([0, 1, 0]), np.array([0, 1, 0, 0, 0, 1]))


def test_nan_in_skipped_row_of_chunk_without_positives_is_caught():
    d, qpid, gpid, qcam, gcam = hand_example()
    bad = d.copy()
    bad[2, 0] = np.nan  # row 2 has no positive; alone in its chunk
    with pytest.raises(ValueError, match="distmat contains NaN"):
        evaluate(bad, qpid, gpid, qcam, gcam, chunk_queries=1)


def test_bad_chunk_and_thread_arguments():
    with pytest.raises(ValueError, match="chunk_queries must be a positive integer"):
        evaluate(*hand_example(), chunk_queries=0)
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        evaluate(*hand_example(), num_threads=-1)
