"""A run folder that never lies (issue 15): one test per class of fault, on the tiny synthetic pair.

Each test asserts the message and that every file already in the run folder is unchanged (sha256 before and
after). The SIGKILL fault test is in ``test_run_kill.py``.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_uda_lib import ram as memory_guard
from reid_uda_lib.cli import main
from reid_uda_lib.cluster import EmptyClusterError, check_clusters, jaccard_distance
from reid_uda_lib.config import get_preset
from reid_uda_lib.config import ConfigError
from reid_uda_lib.methods.validate import validate_config
from reid_uda_lib.data import load_dataset
from reid_uda_lib.data.synthetic import generate_synthetic_pair
from reid_uda_lib.train import NonFiniteLossError, load_checkpoint, pretrain
from reid_uda_lib.core.training import check_finite
from reid_uda_lib.core.loaders import train_loader
from reid_uda_lib.runtime.provenance import RESUMABLE_FIELDS, RunIdentityError
from reid_uda_lib.runtime.lock import RunLockedError

pytestmark = pytest.mark.slow

SETTINGS = {"pretrain.epochs": 1, "pretrain.iters_per_epoch": 2, "uda.epochs": 1, "uda.iters_per_epoch": 2,
            "data.batch_size": 16, "data.height": 32, "data.width": 16, "data.pad": 2,
            "uda.k1": 8, "uda.k2": 3, "uda.eps": 0.7, "uda.min_samples": 3}
CLI_SETTINGS = [x for k, v in SETTINGS.items() for x in ("--set", f"{k}={v}")]


def _cfg(**over):
    return get_preset("tiny", **{**SETTINGS, **over})


def snapshot(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file below ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def domains(synthetic_pair):
    return load_dataset(synthetic_pair["A"]), load_dataset(synthetic_pair["B"])


@pytest.fixture(scope="module")
def finished(domains, tmp_path_factory):
    """A finished one-epoch pretraining run (the folder every test reuses and must leave unchanged)."""
    src, tgt = domains
    out = tmp_path_factory.mktemp("finished") / "run"
    pretrain(_cfg(), src, tgt, out / "pretrain", progress=False)
    return out


def _cli(args, capsys) -> tuple[int, str]:
    rc = main(args)
    return rc, capsys.readouterr().err


def test_1_identity_is_checked_before_anything_is_written(domains, finished, synthetic_pair, capsys):
    src, tgt = domains
    before = snapshot(finished)
    run = finished / "pretrain"
    with pytest.raises(RunIdentityError, match="seed: 0 in the checkpoint, 5 asked"):
        pretrain(_cfg(seed=5), src, tgt, run, resume=True, progress=False)
    with pytest.raises(RunIdentityError, match=r"source data content_sha256: \w+ in the checkpoint, \w+ asked"):
        pretrain(_cfg(), tgt, tgt, run, resume="auto", progress=False)        # the other domain
    # `train` reuses OUT/pretrain automatically: another pretraining length is refused, nothing extended
    rc, err = _cli(["train", "--preset", "tiny", "--quiet", "--source", str(synthetic_pair["A"]), "--target",
                    str(synthetic_pair["B"]), "--out", str(finished), "--method", "base", *CLI_SETTINGS,
                    "--set", "pretrain.epochs=2"], capsys)
    assert rc == 2 and "error: " in err and "pretrain.epochs: 1 in the checkpoint, 2 asked" in err
    assert snapshot(finished) == before
    # the fields that may change on resume are listed in one place and do not refuse
    assert {"device", "data.num_workers", "uda.eval_every"} <= RESUMABLE_FIELDS
    again = pretrain(_cfg(**{"pretrain.eval_every": 3, "data.test_batch_size": 64}), src, tgt, run,
                     resume=True, progress=False)
    assert again["target"] == json.loads((run / "summary.json").read_text())["target"]
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["identity"]["data"]["source"]["train_images"] == len(src.train)
    # the explicit override accepts another identity (a finished run: nothing to train)
    pretrain(_cfg(seed=5), src, tgt, run, resume=True, progress=False, override_identity=True)
    assert snapshot(finished) == before


def test_2_one_writer_per_run_folder(domains, finished, capsys):
    src, tgt = domains
    run = finished / "pretrain"
    before = snapshot(finished)
    lock = run / ".lock"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(), "started": "then"}))
        with_lock = snapshot(finished)
        with pytest.raises(RunLockedError, match=f"in use by process {other.pid}"):
            pretrain(_cfg(), src, tgt, run, resume=True, progress=False)
        assert snapshot(finished) == with_lock
    finally:
        other.kill()
        other.wait()
    # the same lock of a process that has died is taken over with a message, and released at the end
    pretrain(_cfg(), src, tgt, run, resume=True, progress=False)
    assert f"taking over the stale lock {lock} of process {other.pid}" in capsys.readouterr().out
    assert not lock.exists() and snapshot(finished) == before


def test_2b_a_finished_stage_is_reused_read_only(domains, finished, monkeypatch, capsys):
    """Reusing a complete stage takes no lock and writes nothing: several processes may start from it at once
    (a second process sees no lock file); a stage with something to repair goes through the locked path
    (test_2: stale lock, test_7: torn log)."""
    from reid_uda_lib.runtime.lock import RunLock
    src, tgt = domains
    run = finished / "pretrain"
    before = snapshot(finished)

    def no_lock(self):
        raise AssertionError(f"a complete stage took its lock {self.path}")
    monkeypatch.setattr(RunLock, "acquire", no_lock)
    for _ in range(2):
        res = pretrain(_cfg(), src, tgt, run, resume="auto", progress=False)
        assert res["target"] == json.loads((run / "summary.json").read_text())["target"]
        assert f"reused {run}" in capsys.readouterr().out
        assert not (run / ".lock").exists() and snapshot(finished) == before


def test_3_config_is_validated_before_any_work(finished, synthetic_pair, capsys):
    for over, msg in (({"uda.epochs": 0}, "uda.epochs: expected >= 1, got 0"),
                      ({"pretrain.epochs": 0}, "pretrain.epochs: expected >= 1, got 0"),
                      ({"uda.iters_per_epoch": -5}, "uda.iters_per_epoch: expected >= 0, got -5"),
                      ({"uda.eps": 1.5}, "uda.eps: expected in (0, 1)"),
                      ({"uda.cluster": "hdbscan"}, "uda.cluster: expected one of dbscan, kmeans"),
                      ({"data": 5}, "data: is a section"),
                      ({"uda.cluster": "kmeans", "uda.n_clusters": 3}, "uda.n_clusters (3) must be at least")):
        with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            validate_config(_cfg(**over))
    before = snapshot(finished)
    base = ["train", "--preset", "tiny", "--quiet", "--source", str(synthetic_pair["A"]), "--target",
            str(synthetic_pair["B"]), "--out", str(finished), *CLI_SETTINGS]
    rc, err = _cli(base + ["--method", "sbsae"], capsys)
    assert rc == 2 and err.startswith("error: ") and "uda.method: expected one of base, base_mb" in err
    rc, err = _cli(base + ["--set", "uda.iters_per_epoch=-5"], capsys)
    assert rc == 2 and "uda.iters_per_epoch: expected >= 0, got -5" in err
    assert snapshot(finished) == before


def test_4_memory_guard_refuses_before_allocating(finished, synthetic_pair, capsys, monkeypatch):
    before = snapshot(finished)
    monkeypatch.setattr(memory_guard, "available_memory", lambda: 64 * 2 ** 20)   # a 64 MiB machine
    rc, err = _cli(["train", "--preset", "tiny", "--quiet", "--source", str(synthetic_pair["A"]), "--target",
                    str(synthetic_pair["B"]), "--out", str(finished), "--method", "base", *CLI_SETTINGS,
                    "--set", "uda.k1=100000"], capsys)
    assert rc == 2 and "uda.k1=100000" in err and "would need about" in err and "N x k1^2" in err
    assert "64 MiB available" in err
    assert snapshot(finished) == before
    with pytest.raises(memory_guard.MemoryGuardError, match=r"k1=1999 on N=2000 .* 2000 x 1999\^2 x 16 B"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jaccard_distance(torch.randn(2000, 8), k1=100000, k2=3)


def test_5_images_are_checked_up_front_and_a_bad_query_costs_no_epoch(domains, finished, synthetic_pair,
                                                                      tmp_path, capsys):
    src, _ = domains
    broken = tmp_path / "B"
    shutil.copytree(synthetic_pair["B"], broken)
    bad = sorted((broken / "query").glob("*.jpg"))[0]
    good_bytes = bad.read_bytes()
    bad.write_bytes(good_bytes[: len(good_bytes) // 3])                      # a truncated JPEG
    before = snapshot(finished)
    rc, err = _cli(["train", "--preset", "tiny", "--quiet", "--source", str(synthetic_pair["A"]), "--target",
                    str(broken), "--out", str(finished), "--method", "base", *CLI_SETTINGS], capsys)
    assert rc == 2 and f"cannot read image {bad}" in err and "1 unreadable image(s)" in err
    assert snapshot(finished) == before
    # without the check (verify none) the evaluation fails -- after the epoch's checkpoint was written
    tgt_bad = load_dataset(broken)
    out = tmp_path / "run"
    with pytest.raises(Exception, match=bad.name):
        pretrain(_cfg(), src, tgt_bad, out, progress=False)
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 0
    assert not (out / ".lock").exists()                                     # released when the stage raised
    bad.write_bytes(good_bytes)                                               # fixed: resume evaluates it
    pretrain(_cfg(), src, load_dataset(broken), out, resume=True, progress=False)
    assert (out / "metrics.jsonl").read_text() == (finished / "pretrain" / "metrics.jsonl").read_text()


def test_6_cli_prints_one_error_line_with_exit_code_2(finished, synthetic_pair, tmp_path, capsys):
    before = snapshot(finished)
    data = str(synthetic_pair["B"])
    rc, err = _cli(["evaluate", "--checkpoint", str(tmp_path), "--dataset", data, "--quiet"], capsys)
    assert rc == 2 and err.startswith("error: ") and "is a folder without a checkpoint.pt" in err
    pickled = tmp_path / "model.pt"
    torch.save({"opt": torch.optim.SGD}, pickled)                           # not loadable weights-only
    rc, err = _cli(["evaluate", "--checkpoint", str(pickled), "--dataset", data, "--quiet"], capsys)
    assert rc == 2 and "cannot read checkpoint" in err and "weights_only=False" not in err
    with pytest.raises(Exception, match="folder without a checkpoint.pt"):
        main(["--debug", "evaluate", "--checkpoint", str(tmp_path), "--dataset", data, "--quiet"])
    assert snapshot(finished) == before
    # the misleading advice is gone: no "last good checkpoint" that does not exist, no "raise eps" when
    # everything merged into one cluster (the PK sampler's empty-split message: test_samplers.py)
    with pytest.raises(NonFiniteLossError, match="No checkpoint was written yet"):
        check_finite({"tri": torch.tensor(float("nan"))}, "pretrain", 0, 1, 1, str(tmp_path / "checkpoint.pt"))
    with pytest.raises(EmptyClusterError, match="The points merged: for DBSCAN lower eps"):
        check_clusters(np.zeros(10, dtype=int), min_clusters=2)


def test_7_logs_recover_and_files_keep_their_mode(domains, finished, tmp_path):
    src, tgt = domains
    run = finished / "pretrain"
    before = snapshot(finished)
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write('{"stage": "pretrain", "epo')                              # a kill during the append
    (run / "checkpoint.pt.x1y2.tmp").write_bytes(b"partial")                  # a kill during a save
    with pytest.warns(UserWarning, match="dropping the torn last line 2"):
        pretrain(_cfg(), src, tgt, run, resume=True, progress=False)
    assert snapshot(finished) == before                                       # log repaired, temp file gone
    mode = (run / "config.json").stat().st_mode & 0o777
    assert (run / "checkpoint.pt").stat().st_mode & 0o777 == mode
    # data.num_workers does not change the numbers: the same batches and the same global RNG state after
    streams = []
    for workers in (0, 2):
        torch.manual_seed(0)
        loader = train_loader(src.train, _cfg(**{"data.num_workers": workers}).data, seed=3, random_erasing_p=0.5,
                              num_batches=2)
        loader.sampler.set_epoch(1)
        streams.append(([img for img, *_ in loader], torch.get_rng_state()))
    assert all(torch.equal(a, b) for a, b in zip(streams[0][0], streams[1][0]))
    assert torch.equal(streams[0][1], streams[1][1])
    # the synthetic generator checks its recorded counts before reusing, and regenerates on overwrite
    tiny = dict(num_train_ids=4, num_test_ids=3, height=32, width=16, progress=False)
    pair = generate_synthetic_pair(tmp_path / "syn", seed=1, **tiny)
    first = snapshot(pair["A"])
    sorted((pair["A"] / "query").glob("*.jpg"))[0].unlink()
    with pytest.raises(FileExistsError, match=r"does not hold the images .*query: \d+ images, \d+ recorded"):
        generate_synthetic_pair(tmp_path / "syn", seed=1, **tiny)
    generate_synthetic_pair(tmp_path / "syn", seed=1, overwrite=True, **tiny)
    assert snapshot(pair["A"]) == first


def test_identity_applies_todays_ignore_rules_to_an_older_checkpoint():
    from reid_uda_lib.methods import stage_ignores
    from reid_uda_lib.runtime.provenance import differences, identity_of_state, run_identity

    cfg = get_preset("tiny").to_dict()
    ignore = stage_ignores("pretrain")                 # derived from the registry: uda + every method's sections
    asked = run_identity(cfg, "pretrain", None, ignore=ignore)
    older = {"identity": {**asked, "config": {**asked["config"], "lf2.alpha": 1.0, "uda.epochs": 9}}}
    assert differences(identity_of_state(older, "pretrain", ignore), asked) == []
    changed = {"identity": {**asked, "config": {**asked["config"], "seed": 5}}}
    assert differences(identity_of_state(changed, "pretrain", ignore), asked) == ["seed: 5 in the checkpoint, 0 asked"]
    # without the registry's ignore rules the older checkpoint's UDA fields would count
    assert differences(identity_of_state(older, "pretrain"), asked) != []
