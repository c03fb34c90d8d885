import random

import numpy as np
import pytest
import torch

from reid_uda_lib.runtime import checkpoint as ck


def test_round_trip_with_weights_only_and_rng(tmp_path):
    path = tmp_path / "c.pt"
    torch.manual_seed(1); np.random.seed(1); random.seed(1)
    state = {"kind": "pretrain", "epoch": 3, "model": {"w": torch.arange(4.0)}, "rng": ck.rng_state()}
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ck.save_checkpoint(path, state)
    loaded = ck.load_checkpoint(path, kind="pretrain")
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    ck.set_rng_state(loaded["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    ck.save_checkpoint(path, {"kind": "uda", "epoch": 0})

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(ck.torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(path, {"kind": "uda", "epoch": 1})
    monkeypatch.undo()
    assert ck.load_checkpoint(path)["epoch"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_wrong_files_give_clear_errors(tmp_path):
    with pytest.raises(ck.CheckpointError, match="not found"):
        ck.load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ck.CheckpointError, match="cannot read checkpoint .*junk.pt"):
        ck.load_checkpoint(junk)
    foreign = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, foreign)
    with pytest.raises(ck.CheckpointError, match="not a reid_uda_lib checkpoint"):
        ck.load_checkpoint(foreign)
    ck.save_checkpoint(tmp_path / "u.pt", {"kind": "uda", "epoch": 0})
    with pytest.raises(ck.CheckpointError, match="written by the 'uda' stage, expected 'pretrain'"):
        ck.load_checkpoint(tmp_path / "u.pt", kind="pretrain")
