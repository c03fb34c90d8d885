"""End-to-end tests of the training engine on the tiny synthetic pair with the ``tiny`` preset."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from reid_uda_lib.config import get_preset
from reid_uda_lib.data import load_dataset
from reid_uda_lib.train import (CheckpointError, NonFiniteLossError, adapt, load_checkpoint, pretrain)
from reid_uda_lib.core import training as common

pytestmark = pytest.mark.slow


class Interrupt(Exception):
    """Stands in for a Colab disconnect / Ctrl-C right after a checkpoint."""


def _cfg(**over):
    base = {"pretrain.epochs": 2, "pretrain.iters_per_epoch": 3, "uda.epochs": 2, "uda.iters_per_epoch": 3,
            "data.batch_size": 16, "uda.k1": 8, "uda.k2": 3, "uda.eps": 0.7, "uda.min_samples": 3}
    base.update(over)
    return get_preset("tiny", **base)


@pytest.fixture(scope="module")
def domains(synthetic_pair):
    return load_dataset(synthetic_pair["A"]), load_dataset(synthetic_pair["B"])


@pytest.fixture(scope="module")
def pretrained(domains, tmp_path_factory):
    src, tgt = domains
    out = tmp_path_factory.mktemp("pre")
    summary = pretrain(_cfg(), src, tgt, out, progress=False)
    return out, summary


def _stop_after_first_epoch(epoch, record):
    if epoch == 0:
        raise Interrupt


def test_pretrain_writes_run_directory(pretrained):
    out, summary = pretrained
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    assert {"ce", "tri", "lr"} <= set(records[0])
    for split in ("target", "source"):
        assert 0.0 <= summary[split]["mAP"] <= 1.0 and 0.0 <= summary[split]["rank1"] <= 1.0
    assert (out / "config.json").exists() and (out / "summary.json").exists()
    assert (out / "figures" / "curves.png").stat().st_size > 1000
    state = load_checkpoint(out / "checkpoint.pt", kind="pretrain")
    assert state["epoch"] == 1 and state["config"]["preset"] == "tiny"


def test_pretrain_resume_equals_uninterrupted(domains, pretrained, tmp_path):
    src, tgt = domains
    with pytest.raises(Interrupt):
        pretrain(_cfg(), src, tgt, tmp_path, progress=False, on_epoch_end=_stop_after_first_epoch)
    with pytest.raises(FileExistsError, match="--resume"):
        pretrain(_cfg(), src, tgt, tmp_path, progress=False)
    resumed = pretrain(_cfg(), src, tgt, tmp_path, resume=True, progress=False)
    full_out, full = pretrained
    assert resumed["target"] == full["target"]
    a = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    b = load_checkpoint(full_out / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert (tmp_path / "metrics.jsonl").read_text() == (full_out / "metrics.jsonl").read_text()


@pytest.mark.parametrize("method", ["sbase", "base"])
def test_uda_resume_equals_uninterrupted(domains, pretrained, tmp_path, method):
    src, tgt = domains
    init = pretrained[0] / "checkpoint.pt"
    cfg = _cfg(**{"uda.method": method})
    full = adapt(cfg, src, tgt, init, tmp_path / "full", progress=False)
    with pytest.raises(Interrupt):
        adapt(cfg, src, tgt, init, tmp_path / "cut", progress=False, on_epoch_end=_stop_after_first_epoch)
    resumed = adapt(cfg, src, tgt, init, tmp_path / "cut", resume=True, progress=False)
    assert resumed["target"] == full["target"] and resumed["cluster"] == full["cluster"]
    a = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
    # the method switches decide what the checkpoint holds
    assert ("mean_net" in b) == (method == "sbase") and ("memory" in b) == (method == "sbase")
    rec = [json.loads(l) for l in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert {"nmi", "ari", "purity", "n_clusters", "outlier_ratio"} <= set(rec[-1]["cluster"])
    assert ("s_mem" in rec[-1]) == (method == "sbase")


def test_nan_loss_stops_with_message_and_keeps_checkpoint(domains, pretrained, tmp_path, monkeypatch):
    src, tgt = domains
    real = common.batch_hard_triplet
    calls = {"n": 0}

    def poisoned(features, labels, margin=0.3):
        calls["n"] += 1
        loss = real(features, labels, margin=margin)
        return loss * float("nan") if calls["n"] > 3 else loss  # epoch 0 is fine (3 steps), then NaN

    monkeypatch.setattr(common, "batch_hard_triplet", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"loss term 'tri' is nan at epoch 1, iteration 0 \(global step 3\)"):
        pretrain(_cfg(), src, tgt, tmp_path, progress=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 0  # last good checkpoint kept


def test_wrong_checkpoints_are_named(domains, pretrained, tmp_path):
    src, tgt = domains
    with pytest.raises(CheckpointError, match="holds a 'tiny' model but the config asks for 'resnet18'"):
        adapt(_cfg(**{"model.arch": "resnet18"}), src, tgt, pretrained[0] / "checkpoint.pt",
              tmp_path / "a", progress=False)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="bad.pt"):
        adapt(_cfg(), src, tgt, bad, tmp_path / "b", progress=False)
    fewer = src.train[: len(src.train) // 2]  # a source with fewer identities than the checkpoint's head
    n = len({p for _, p, _ in fewer})
    other = dataclasses.replace(src, train=[(f, p, c) for f, p, c in fewer])
    assert other.num_train_pids == n < src.num_train_pids
    with pytest.raises(CheckpointError, match=f"do not fit this model \\(source has {n} identities\\)"):
        adapt(_cfg(), other, tgt, pretrained[0] / "checkpoint.pt", tmp_path / "c", progress=False)


def test_cli_pretrain_and_evaluate(domains, pretrained, tmp_path, capsys, synthetic_pair):
    from reid_uda_lib.cli import main

    assert main(["evaluate", "--checkpoint", str(pretrained[0] / "checkpoint.pt"),
                 "--dataset", str(synthetic_pair["B"]), "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["stage"] == "pretrain" and res["mAP"] == pytest.approx(pretrained[1]["target"]["mAP"], abs=1e-6)
    with pytest.raises(SystemExit):
        main(["train", "--source", str(synthetic_pair["A"]), "--out", str(tmp_path)])  # --target missing


def test_one_seed_table_and_oracle(synthetic_pair, tmp_path):
    from reid_uda_lib.experiments import run_ladder, seed_dir

    res = run_ladder(_cfg(**{"uda.epochs": 1}), synthetic_pair["A"], synthetic_pair["B"], tmp_path,
                     seeds=(0,), rows=["direct", "base", "oracle"], jobs=1, progress=False)
    # the oracle starts from the pretrained model and runs the UDA loop with the true labels (1 epoch x 3)
    labels = [e["label"] for e in res["rows"]]
    assert labels[0].startswith("oracle (SBase with the target's true identities") and "base" in labels[-1]
    assert res["markdown"] in (tmp_path / "results.md").read_text()
    seed0 = seed_dir(tmp_path, 0)
    assert json.loads((seed0 / "base" / "summary.json").read_text())["cluster"]["n_clusters"] >= 2
    # the oracle is a UDA stage: evaluated on the target only
    last = [json.loads(l) for l in (seed0 / "oracle" / "metrics.jsonl").read_text().splitlines()][-1]
    assert "target" in last and "source" not in last
    before = (tmp_path / "results.md").read_text()
    # a re-run into the same folder with other settings is refused before any stage runs (no stale table)
    from reid_uda_lib.runtime.provenance import RunIdentityError
    with pytest.raises(RunIdentityError, match="uda.epochs: 1 in the checkpoint, 2 asked"):
        run_ladder(_cfg(**{"uda.epochs": 2}), synthetic_pair["A"], synthetic_pair["B"], tmp_path,
                   seeds=(0,), rows=["direct", "base", "oracle"], jobs=1, progress=False)
    assert (tmp_path / "results.md").read_text() == before
