"""A UDA run records the checkpoint it started from: a row trained from another (retrained) pretraining is
refused, a resume that does not name it keeps the recorded one, and folders from before the record still load."""
from __future__ import annotations

import pytest

from reid_uda_lib.train import adapt, load_checkpoint, pretrain
from reid_uda_lib.runtime.checkpoint import save_checkpoint
from reid_uda_lib.runtime.provenance import RunIdentityError, checkpoint_fingerprint
from reid_uda_lib.runtime.rundir import preflight
from reid_uda_lib.experiments.ladder import preflight_seed

from uda_helpers import Interrupt, stop_after_first_epoch, tiny_cfg


@pytest.fixture(scope="module")
def adapted(tiny_pretrained, tmp_path_factory):
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("base", **{"uda.epochs": 1})
    out = tmp_path_factory.mktemp("uda_init") / "base"
    adapt(cfg, src, tgt, ckpt, out, progress=False)
    return cfg, src, tgt, ckpt, out


def test_the_init_is_recorded_and_a_retrained_pretraining_is_refused(adapted, tmp_path, capsys):
    cfg, src, tgt, ckpt, out = adapted
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["identity"]["init"] == checkpoint_fingerprint(ckpt)
    assert state["identity"]["init"]["stage"] == "pretrain"
    # the same settings retrained with other weights (another machine, thread count, seed of the weights)
    other = load_checkpoint(ckpt)
    other["model"] = {k: (v + 1e-3 if v.is_floating_point() else v) for k, v in other["model"].items()}
    retrained = tmp_path / "retrained.pt"
    save_checkpoint(retrained, other)
    with pytest.raises(RunIdentityError, match=r"init: the pretrain checkpoint of epoch \d+, step \d+ \(weights "):
        adapt(cfg, src, tgt, retrained, out, resume="auto", progress=False)
    with pytest.raises(RunIdentityError, match="init: "):          # checked up front too, nothing written
        preflight(out, "uda", cfg, "auto", {"source": src, "target": tgt}, init=retrained)
    before = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    adapt(cfg, src, tgt, ckpt, out, resume="auto", progress=False)      # the same init: reused as it is
    assert capsys.readouterr().out.startswith("reused ")
    assert (out / "checkpoint.pt").read_bytes() == before


def test_resume_without_naming_the_init_keeps_the_recorded_one(tiny_pretrained, tmp_path):
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("base")                                        # 2 epochs, cut after the first
    with pytest.raises(Interrupt):
        adapt(cfg, src, tgt, ckpt, tmp_path / "base", progress=False, on_epoch_end=stop_after_first_epoch)
    adapt(cfg, src, tgt, None, tmp_path / "base", resume=True, progress=False)
    state = load_checkpoint(tmp_path / "base" / "checkpoint.pt")
    assert state["epoch"] == 1 and state["identity"]["init"] == checkpoint_fingerprint(ckpt)


def test_folders_from_before_the_record_are_accepted(adapted, tmp_path):
    cfg, src, tgt, ckpt, out = adapted
    import shutil
    run = tmp_path / "legacy"
    shutil.copytree(out, run)
    state = load_checkpoint(run / "checkpoint.pt")
    state["identity"]["init"] = None                              # what adapt() wrote before it recorded it
    save_checkpoint(run / "checkpoint.pt", state)
    res = adapt(cfg, src, tgt, ckpt, run, resume="auto", progress=False)
    assert res["target"]["mAP"] > 0


def test_the_ladder_checks_every_row_against_its_seeds_pretraining(tiny_pretrained, tmp_path):
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("base", **{"uda.epochs": 1})
    seed = tmp_path / "seed0"
    (seed / "pretrain").mkdir(parents=True)
    # a row folder trained from the session's pretrained model, next to another pretraining
    adapt(cfg, src, tgt, ckpt, seed / "base", progress=False)
    other = load_checkpoint(ckpt)
    other["model"] = {k: (v * 0.5 if v.is_floating_point() else v) for k, v in other["model"].items()}
    save_checkpoint(seed / "pretrain" / "checkpoint.pt", other)
    with pytest.raises(RunIdentityError, match="init: "):
        preflight_seed(cfg, src, tgt, seed, ["direct", "base"])
