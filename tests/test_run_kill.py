"""Fault test (issue 15): a ``tiny`` pretraining killed with SIGKILL at a random step resumes bit-identically."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reid_uda_lib.cli import main
from reid_uda_lib.config import get_preset
from reid_uda_lib.data import load_dataset
from reid_uda_lib.train import load_checkpoint, pretrain

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"pretrain.epochs": 3, "pretrain.iters_per_epoch": 3, "pretrain.eval_every": 3, "data.batch_size": 16,
            "data.height": 32, "data.width": 16, "data.pad": 2}          # small: the test takes seconds


def test_sigkill_at_a_random_step_then_resume_is_bit_identical(synthetic_pair, tmp_path):
    src, tgt = synthetic_pair["A"], synthetic_pair["B"]
    args = ["pretrain", "--preset", "tiny", "--quiet", "--source", str(src), "--target", str(tgt),
            *[x for k, v in SETTINGS.items() for x in ("--set", f"{k}={v}")]]
    cut = tmp_path / "cut"
    delay = random.Random().uniform(0.0, 0.4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "reid_uda_lib", *args, "--out", str(cut)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (cut / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(delay)                                  # somewhere in epoch 1 or 2 (or a save, or an eval)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed or proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    assert (cut / ".lock").exists() == killed          # the stale lock of the dead process is left behind

    assert main([*args, "--out", str(cut), "--resume"]) == 0
    full = tmp_path / "full"
    pretrain(get_preset("tiny", **SETTINGS), load_dataset(src), load_dataset(tgt), full, progress=False)
    a, b = load_checkpoint(cut / "checkpoint.pt"), load_checkpoint(full / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"]), f"killed after +{delay:.2f}s"
    assert (cut / "metrics.jsonl").read_text() == (full / "metrics.jsonl").read_text()
    assert not (cut / ".lock").exists() and not list(cut.glob("*.tmp"))
