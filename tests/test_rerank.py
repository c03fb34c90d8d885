"""Query/gallery k-reciprocal re-ranking against a loop reference of Zhong et al.'s reference code."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid_uda_lib.evaluation.rerank import re_ranking

from test_jaccard import clustered, ref_encoding, tied


def ref_re_ranking(q, g, k1, k2, lam):
    """Zhong's convention with loops: lists of k1+1 over query ∪ gallery, squared Euclidean distances
    divided by each row's maximum, Jaccard for query rows, then (1-λ) Jaccard + λ original."""
    x = np.concatenate([q, g])
    ref = ref_encoding(x, k1, k2, list_len=k1 + 1, metric="sqeuclidean", scale=True)
    original = ref["dist"] / ref["dist"].max(1, keepdims=True)
    n_q = len(q)
    return (1 - lam) * ref["jaccard"][:n_q, n_q:] + lam * original[:n_q, n_q:]


@pytest.mark.parametrize("make, k1, k2, lam", [(clustered, 20, 6, 0.3), (tied, 20, 6, 0.3),
                                               (clustered, 7, 1, 0.0), (tied, 9, 3, 1.0)])
def test_matches_loop_reference(make, k1, k2, lam):
    x = make(n=70, seed=4)
    q, g = x[:20], x[20:]
    got = re_ranking(q, g, k1=k1, k2=k2, lambda_value=lam)
    assert isinstance(got, np.ndarray) and got.shape == (20, 50) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref_re_ranking(q, g, k1, k2, lam), atol=1e-5)


def test_torch_in_torch_out():
    x = clustered(n=50, seed=2)
    got = re_ranking(torch.from_numpy(x[:10]), torch.from_numpy(x[10:]))
    assert isinstance(got, torch.Tensor) and got.shape == (10, 40)
    np.testing.assert_allclose(got.numpy(), re_ranking(x[:10], x[10:]), atol=1e-6)


def test_lambda_one_is_the_normalised_original_distance():
    x = clustered(n=40, seed=6)
    q, g = x[:8], x[8:]
    sq = ((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)
    expected = (sq / sq.max(1, keepdims=True))[:8, 8:]
    np.testing.assert_allclose(re_ranking(q, g, k1=10, k2=3, lambda_value=1.0), expected, atol=1e-5)


def _toy_retrieval(seed=0, ids=25, per_id=6, d=32):
    """Identities whose raw distances are confused by a camera offset shared across identities."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, d))
    cams = 0.5 * rng.standard_normal((3, d))
    pid = np.repeat(np.arange(ids), per_id + 1)
    cam = np.tile(np.arange(per_id + 1) % 3, ids)
    x = centres[pid] + cams[cam] + 0.9 * rng.standard_normal((pid.size, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    is_q = np.tile(np.arange(per_id + 1) == 0, ids)        # one query per identity, camera 0
    return (x[is_q].astype(np.float32), pid[is_q], cam[is_q],
            x[~is_q].astype(np.float32), pid[~is_q], cam[~is_q])


@pytest.mark.parametrize("seed", [0, 1])
def test_re_ranking_improves_map_on_a_toy_problem(seed):
    from reid_uda_lib.evaluation.metrics import evaluate

    qf, qp, qc, gf, gp, gc = _toy_retrieval(seed)
    raw = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    before = evaluate(raw, qp, gp, qc, gc)["mAP"]
    after = evaluate(re_ranking(qf, gf, k1=8, k2=3, lambda_value=0.3), qp, gp, qc, gc)["mAP"]
    assert after > before + 0.05, (before, after)


def test_errors_name_the_problem():
    x = clustered(n=20)
    with pytest.raises(ValueError, match="same dimension"):
        re_ranking(x[:5], x[5:, :6])
    with pytest.raises(ValueError, match="at least one query"):
        re_ranking(x[:0], x)
    with pytest.raises(ValueError, match="lambda_value"):
        re_ranking(x[:5], x[5:], lambda_value=1.5)
    with pytest.raises(ValueError, match="gallery_features contain NaN"):
        g = x[5:].copy()
        g[0, 0] = np.inf
        re_ranking(x[:5], g)
    with pytest.warns(UserWarning, match="clipping k1 to 19"):
        re_ranking(x[:5], x[5:], k1=20, k2=6)
