"""PKSampler: P x K structure in every batch, outliers never yielded, (seed, epoch) determinism."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from reid_uda_lib.data import PKSampler


def _pids(seed=0, n_ids=13, outliers=9):
    """Identities with 1..7 images each plus -1 outliers, shuffled."""
    rng = np.random.default_rng(seed)
    pids = [pid for pid in range(n_ids) for _ in range(1 + pid % 7)] + [-1] * outliers
    return rng.permutation(pids).tolist()


def _batches(sampler):
    idx = list(sampler)
    assert len(idx) == len(sampler)
    return [idx[i:i + sampler.batch_size] for i in range(0, len(idx), sampler.batch_size)]


@pytest.mark.parametrize("k,batch", [(4, 16), (2, 8), (3, 12)])
def test_every_batch_is_p_identities_times_k(k, batch):
    pids = _pids()
    sampler = PKSampler(pids, num_instances=k, batch_size=batch, num_batches=20, seed=3)
    p = batch // k
    for b in _batches(sampler):
        labels = [pids[i] for i in b]
        assert -1 not in labels
        counts = Counter(labels)
        assert len(counts) == p and set(counts.values()) == {k}
        # grouped by identity: K consecutive indices share a label
        assert all(len(set(labels[g * k:(g + 1) * k])) == 1 for g in range(p))
        # no duplicate image within an identity's group unless it has fewer than K images
        for g in range(p):
            grp = b[g * k:(g + 1) * k]
            n_imgs = pids.count(labels[g * k])
            assert len(set(grp)) == min(k, n_imgs)


def test_default_num_batches_covers_every_identity():
    pids = _pids()
    sampler = PKSampler(pids, num_instances=4, batch_size=16, seed=0)
    assert sampler.num_identities == 13
    assert sampler.num_batches == math.ceil(13 / 4) and len(sampler) == 4 * 16
    for epoch in range(3):
        sampler.set_epoch(epoch)
        assert {pids[i] for i in sampler} == set(range(13))


def test_images_are_used_evenly():
    pids = [0] * 5 + [1] * 8 + [2] * 4 + [3] * 6
    sampler = PKSampler(pids, num_instances=4, batch_size=8, num_batches=60, seed=0)
    uses = Counter(sampler)
    for pid in range(4):
        per_image = [uses[i] for i, p in enumerate(pids) if p == pid]
        assert max(per_image) - min(per_image) <= 1, (pid, per_image)


def test_outliers_never_yielded_and_tensor_pids():
    pids = torch.tensor(_pids(outliers=40))
    sampler = PKSampler(pids, num_instances=2, batch_size=8, num_batches=50, seed=1)
    outlier_idx = set(torch.nonzero(pids < 0).squeeze(1).tolist())
    assert outlier_idx and outlier_idx.isdisjoint(set(sampler))


def test_order_depends_on_seed_and_epoch_only():
    pids = _pids()
    a = PKSampler(pids, num_instances=4, batch_size=16, num_batches=10, seed=5)
    b = PKSampler(pids, num_instances=4, batch_size=16, num_batches=10, seed=5)
    a.set_epoch(7)
    list(b)  # iterating another epoch first must not matter
    b.set_epoch(7)
    assert list(a) == list(b) == list(a)
    a.set_epoch(8)
    assert list(a) != list(b)
    c = PKSampler(pids, num_instances=4, batch_size=16, num_batches=10, seed=6)
    c.set_epoch(7)
    assert list(c) != list(b)


def test_error_messages():
    pids = _pids()
    with pytest.raises(ValueError, match=r"batch_size \(30\) must be a multiple of num_instances \(4\)"):
        PKSampler(pids, num_instances=4, batch_size=30)
    with pytest.raises(ValueError, match=r"P = batch_size // num_instances = 16 .*only 13"):
        PKSampler(pids, num_instances=4, batch_size=64)
    with pytest.raises(ValueError, match=r"no identity with label >= 0.*not the batch size"):
        PKSampler([-1, -1, -1], num_instances=1, batch_size=1)
    with pytest.raises(ValueError, match="num_batches"):
        PKSampler(pids, num_instances=4, batch_size=16, num_batches=0)
    with pytest.raises(ValueError, match="num_instances must be a positive integer"):
        PKSampler(pids, num_instances=0, batch_size=16)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer, got -1"):
        PKSampler(pids, num_instances=4, batch_size=16).set_epoch(-1)
