"""Supervised fine-tuning from a checkpoint (``pretrain(..., init=...)``, train/warm_start.py): the weights
it loads, the head it builds, its run identity and its resume."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from reid_uda_lib.train import load_checkpoint, pretrain
from reid_uda_lib.core.features import extract_features
from reid_uda_lib.runtime.provenance import RunIdentityError
from reid_uda_lib.train.warm_start import load_init_weights
from reid_uda_lib.models import build_model

from uda_helpers import Interrupt, stop_after_first_epoch, tiny_cfg


def test_init_loads_the_backbone_and_builds_the_head_from_identity_centroids(tiny_pretrained):
    _, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("sbase")
    model = build_model(cfg.model, num_classes=tgt.num_train_pids)
    load_init_weights(model, ckpt, cfg, tgt.train, torch.device("cpu"), progress=False)
    saved = load_checkpoint(ckpt)["model"]
    for k, v in model.state_dict().items():
        if not k.startswith("classifiers."):
            assert torch.equal(v, saved[k]), k
    feats = extract_features(model, tgt.train, cfg.data, torch.device("cpu"), progress=False)
    pids = torch.tensor([p for _, p, _ in tgt.train])
    first = F.normalize(feats[pids == 0].mean(0), dim=0)       # identity 0's centroid, by hand
    assert torch.allclose(model.classifiers["source"].weight[0], first, atol=1e-5)
    assert model.classifiers["source"].weight.shape[0] == tgt.num_train_pids


def test_finetuning_from_a_checkpoint_identity_and_resume(tiny_pretrained, tmp_path):
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("sbase", **{"pretrain.epochs": 2, "pretrain.iters_per_epoch": 3})
    res = pretrain(cfg, tgt, tgt, tmp_path / "full", init=ckpt, progress=False)
    records = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2 * 3
    # trained and evaluated on the same dataset: its split is evaluated once, not twice as "source" too
    assert 0.0 < res["target"]["mAP"] <= 1.0 and "source" not in records[-1]
    state = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert state["identity"]["init"]["stage"] == "pretrain" and len(state["identity"]["init"]["weights_sha256"]) == 16

    # from scratch (no init) the same settings give other weights: the init really is used
    scratch = pretrain(cfg, tgt, tgt, tmp_path / "scratch", progress=False)
    assert scratch["target"]["mAP"] != res["target"]["mAP"]

    # a run cut after its first epoch continues to the same weights as the uninterrupted one
    with pytest.raises(Interrupt):
        pretrain(cfg, tgt, tgt, tmp_path / "cut", init=ckpt, progress=False, on_epoch_end=stop_after_first_epoch)
    pretrain(cfg, tgt, tgt, tmp_path / "cut", init=ckpt, resume="auto", progress=False)
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert all(torch.equal(cut["model"][k], state["model"][k]) for k in state["model"])

    # the identity covers the init checkpoint: another init, or none, is refused before anything is written
    other = tmp_path / "other_init"
    pretrain(tiny_cfg("sbase", seed=1), src, tgt, other, progress=False)
    before = (tmp_path / "full" / "metrics.jsonl").read_text()
    with pytest.raises(RunIdentityError, match=r"init: the pretrain checkpoint of epoch 0, step 3 \(weights "):
        pretrain(cfg, tgt, tgt, tmp_path / "full", init=other / "checkpoint.pt", resume="auto", progress=False)
    with pytest.raises(RunIdentityError, match="init: .* in the checkpoint, no init checkpoint"):
        pretrain(cfg, tgt, tgt, tmp_path / "full", resume="auto", progress=False)
    assert (tmp_path / "full" / "metrics.jsonl").read_text() == before
    again = pretrain(cfg, tgt, tgt, tmp_path / "full", init=ckpt, resume="auto", progress=False)
    assert again["target"] == res["target"]
