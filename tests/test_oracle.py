"""The oracle row (methods/oracle.py): SBase's loop with the target's true identities as its labels, from the
source-pretrained checkpoint, the same epochs as the UDA rows."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reid_uda_lib.train import adapt
from reid_uda_lib.core.training import build_optimizer, uda_optim
from reid_uda_lib.methods.registry import get_method
from reid_uda_lib.methods.oracle import OracleMethod, oracle_steps, oracle_steps_per_epoch, true_identity_labels

from uda_helpers import tiny_cfg


def test_true_identity_labels_worked_values():
    items = [("a", 7, 0), ("b", 3, 1), ("c", 7, 1), ("d", 12, 0), ("e", 3, 0)]
    # sorted distinct pids 3, 7, 12 -> labels 0, 1, 2
    assert true_identity_labels(items).tolist() == [1, 0, 1, 2, 0]
    assert true_identity_labels(items).dtype == np.int64
    with pytest.raises(ValueError, match="2 of 3 target training images have none .an unlabelled target."):
        true_identity_labels([("a", -1, 0), ("b", 4, 0), ("c", -1, 1)])
    with pytest.raises(ValueError, match="target train split is empty"):
        true_identity_labels([])


def test_steps_worked_values():
    cfg = tiny_cfg("sbase", **{"uda.iters_per_epoch": 0, "uda.epochs": 4, "data.batch_size": 32})
    # one pass over the target's training images: 1305 // 32 = 40 steps per epoch, 4 epochs = 160 steps
    assert oracle_steps_per_epoch(cfg, 1305) == 40 and oracle_steps(cfg, 1305) == 160
    assert oracle_steps_per_epoch(cfg, 10) == 1                      # never zero
    fixed = cfg.override(**{"uda.iters_per_epoch": 7})
    assert oracle_steps_per_epoch(fixed, 1305) == 7 and oracle_steps(fixed, 1305) == 28
    # the fine-tuning learning rate (uda.lr) is the oracle's as every UDA row's; the pretraining keeps optim.lr
    ft = cfg.override(**{"optim.lr": 3.5e-4, "uda.lr": 7e-4})
    assert uda_optim(ft).lr == 7e-4 and uda_optim(cfg) is cfg.optim
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], uda_optim(ft))
    assert opt.param_groups[0]["lr"] == 7e-4 and opt.param_groups[0]["weight_decay"] == cfg.optim.weight_decay


def test_the_oracle_is_sbase_with_true_labels():
    oracle, sbase = get_method("oracle"), get_method("sbase")
    assert isinstance(oracle, OracleMethod)
    assert (oracle.mean_net, oracle.memory_bank, oracle.source_batches, oracle.shared_terms) == \
        (sbase.mean_net, sbase.memory_bank, sbase.source_batches, sbase.shared_terms)


def test_oracle_run_uses_the_true_identities_and_the_loop_of_sbase(tiny_pretrained, tmp_path):
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("oracle", **{"uda.iters_per_epoch": 0})
    res = adapt(cfg, src, tgt, ckpt, tmp_path / "oracle", progress=False)
    records = [json.loads(x) for x in (tmp_path / "oracle" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r.get("stage") == "uda" and "step" in r]
    # every epoch's labels are the true identities: perfect agreement, no outlier, one cluster per identity
    for r in epochs:
        assert r["cluster"]["nmi"] == pytest.approx(1.0) and r["cluster"]["ari"] == pytest.approx(1.0)
        assert r["cluster"]["n_clusters"] == tgt.num_train_pids and r["cluster"]["outlier_ratio"] == 0.0
        assert {"s_ce", "t_ce", "t_mem"} <= set(r)                  # SBase's terms, memory bank included
    # one pass over all target training images per epoch: oracle_steps in all
    assert epochs[-1]["step"] == oracle_steps(cfg, len(tgt.train)) == cfg.uda.epochs * (len(tgt.train) // 16)
    assert 0.0 < res["target"]["mAP"] <= 1.0
    assert json.loads((tmp_path / "oracle" / "config.json").read_text())["uda"]["method"] == "oracle"


def test_an_unlabelled_target_is_refused_by_the_oracle(tiny_pretrained, tmp_path):
    import dataclasses
    src, tgt, ckpt = tiny_pretrained
    unlabelled = dataclasses.replace(tgt, train=[(p, -1, c) for p, _, c in tgt.train])
    with pytest.raises(ValueError, match="unlabelled target"):
        adapt(tiny_cfg("oracle"), src, unlabelled, ckpt, tmp_path / "oracle", progress=False)
