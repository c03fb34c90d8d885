"""RunDir's one plain line: "trained" / "reused ..., made by preset tiny, seed 0" / "continuing ... from
epoch N"; ``resume="auto"`` (notebooks, pipeline) is quiet, an explicit ``resume=True`` (CLI --resume)
without a checkpoint still warns."""
from __future__ import annotations

import warnings

import pytest

from reid_uda_lib.config import get_preset
from reid_uda_lib.runtime.rundir import RunDir


def _one_epoch(run: RunDir, epoch: int) -> None:
    """What a training loop does at the end of an epoch, without the training."""
    run.log.write({"stage": run.stage, "epoch": epoch, "step": epoch + 1, "lr": 0.1, "ce": 1.0})
    run.save({"epoch": epoch, "step": epoch + 1})


def test_auto_trains_quietly_then_reuses_then_continues(tmp_path, capsys):
    cfg = get_preset("tiny")  # pretrain.epochs == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the normal notebook path must not warn
        run = RunDir(tmp_path, "pretrain", cfg, resume="auto")
        assert run.start_epoch == 0 and capsys.readouterr().out == ""
        for epoch in range(cfg.pretrain.epochs):
            _one_epoch(run, epoch)
        run.finish({"stage": "pretrain"})
        assert capsys.readouterr().out == f"trained {tmp_path} (preset tiny, seed 0)\n"

        again = RunDir(tmp_path, "pretrain", cfg, resume="auto")
        assert again.start_epoch == 2
        again.finish({"stage": "pretrain"})
        assert capsys.readouterr().out == f"reused {tmp_path}, made by preset tiny, seed 0\n"

        cut = RunDir(tmp_path / "cut", "pretrain", cfg, resume="auto")     # a run killed after epoch 1
        _one_epoch(cut, 0)
        capsys.readouterr()
        longer = RunDir(tmp_path / "cut", "pretrain", cfg, resume="auto")
        assert longer.start_epoch == 1
        assert capsys.readouterr().out == (f"continuing {tmp_path / 'cut'} from epoch 2 of 2 "
                                           "(made by preset tiny, seed 0)\n")


def test_explicit_resume_without_checkpoint_is_an_error(tmp_path):
    """An explicit resume with nothing to continue (a typo in --out) is refused before anything is written;
    ``resume="auto"`` starts fresh (issue 28, class 5; the CLI: tests/test_last_mile.py)."""
    with pytest.raises(FileNotFoundError, match=r"nothing to resume in .*run: .*checkpoint.pt does not exist"):
        RunDir(tmp_path / "run", "uda", get_preset("tiny"), resume=True)
    assert not (tmp_path / "run").exists()
