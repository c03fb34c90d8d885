"""Bring your own data, end to end (issue 13): a folder-per-person copy of the synthetic pair, made by the
converter, trains ``sbase`` to exactly the same numbers as the Market-layout original (same seed, same
machine); a copy without camera ids fails before training unless ``evaluation.cross_camera_only=false``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reid_uda_lib.config import get_preset
from reid_uda_lib.data import DatasetCheckError, load_dataset
from reid_uda_lib.data.convert import market_to_folder
from reid_uda_lib.train import adapt, pretrain

pytestmark = pytest.mark.slow


def _cfg(**over):
    base = {"pretrain.epochs": 1, "pretrain.iters_per_epoch": 3, "uda.epochs": 1, "uda.iters_per_epoch": 3,
            "data.batch_size": 16, "uda.k1": 8, "uda.k2": 3, "uda.eps": 0.7, "uda.min_samples": 3}
    base.update(over)
    return get_preset("tiny", **base)


@pytest.fixture(scope="module")
def folder_pair(synthetic_pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("folder_pair")
    for d in ("A", "B"):
        market_to_folder(synthetic_pair[d], out / d)
    return {"A": out / "A", "B": out / "B"}


def _run(cfg, src, tgt, out: Path) -> tuple[dict, dict]:
    pre = pretrain(cfg, src, tgt, out / "pretrain", progress=False)
    res = adapt(cfg, src, tgt, pre["checkpoint"], out / "sbase", progress=False)
    return pre, res


def test_folder_copy_of_the_synthetic_pair_trains_sbase_to_the_same_map(synthetic_pair, folder_pair, tmp_path):
    market = [load_dataset(synthetic_pair[d]) for d in ("A", "B")]
    folder = [load_dataset(folder_pair[d]) for d in ("A", "B")]
    for m, f in zip(market, folder):
        assert f.layout == "folder" and m.layout == "market"
        # identical order, training labels and cameras; test ids are indices into id_names (the folders)
        assert [(Path(p).name, pid, c) for p, pid, c in f.train] == [(Path(p).name, pid, c) for p, pid, c in m.train]
        for split in ("query", "gallery"):
            assert [(Path(p).name, int(f.id_names[pid]), c) for p, pid, c in getattr(f, split)] == \
                   [(Path(p).name, pid, c) for p, pid, c in getattr(m, split)]
    cfg = _cfg(**{"uda.method": "sbase"})
    pre_m, res_m = _run(cfg, *market, tmp_path / "market")
    pre_f, res_f = _run(cfg, *folder, tmp_path / "folder")
    assert pre_f["target"] == pre_m["target"] and pre_f["source"] == pre_m["source"]
    assert res_f["target"] == res_m["target"]          # mAP, CMC, protocol: exactly equal
    assert res_f["target"]["cross_camera_only"] is True
    assert 0.0 < res_f["target"]["mAP"] <= 1.0


def test_no_camera_ids_fail_early_then_run_with_the_switch(synthetic_pair, folder_pair, tmp_path, capsys):
    src = load_dataset(folder_pair["A"])
    nocam = tmp_path / "B_nocam"
    market_to_folder(synthetic_pair["B"], nocam)
    (nocam / "reid_dataset.json").unlink()                 # forget the camera pattern: no camera ids
    tgt = load_dataset(nocam)
    assert not tgt.has_cameras
    with pytest.raises(DatasetCheckError,
                       match=r"camera ids are absent \(-1\)[\s\S]*evaluation.cross_camera_only=false"):
        pretrain(_cfg(), src, tgt, tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused").exists()            # failed before any training or run directory
    summary = pretrain(_cfg(**{"evaluation.cross_camera_only": "false"}), src, tgt, tmp_path / "run", progress=False)
    # one protocol for every evaluation of the run, stored with the metrics and printed
    assert summary["target"]["cross_camera_only"] is False and summary["source"]["cross_camera_only"] is False
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["target"]["cross_camera_only"] is False and 0.0 < record["target"]["mAP"] <= 1.0
    assert "(all cameras)" in capsys.readouterr().out
