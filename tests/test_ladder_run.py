"""The ladder end to end (``tiny`` preset, the small synthetic pair): a SIGKILL mid-ladder, then the same command
finishes it in parallel seed processes, reusing every finished stage; the report holds every row × seed."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reid_uda_lib.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"pretrain.epochs": 1, "pretrain.iters_per_epoch": 3, "uda.epochs": 2, "uda.iters_per_epoch": 3,
            "data.batch_size": 16, "uda.k1": 8, "uda.k2": 3, "uda.eps": 0.7, "uda.min_samples": 3}


def _args(pair, out, *extra):
    sets = [x for k, v in SETTINGS.items() for x in ("--set", f"{k}={v}")]
    return ["ladder", "--preset", "tiny", "--quiet", "--source", str(pair["A"]), "--target", str(pair["B"]),
            "--seeds", "0,1", "--rows", "direct,base,oracle", "--out", str(out), *sets, *extra]


def test_kill_then_resume_reuses_finished_stages_and_reports_every_row(synthetic_pair, tmp_path, capsys):
    out = tmp_path / "ladder"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "reid_uda_lib", *_args(synthetic_pair, out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = out / "seed0" / "oracle" / "checkpoint.pt"        # seed 0: pretrain, then the oracle's epoch 1
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, f"the ladder ended before the kill: {proc.stderr.read().decode()[-2000:]}"
    assert not (out / "results.md").exists()
    pre = out / "seed0" / "pretrain" / "checkpoint.pt"
    pre_bytes, pre_mtime = pre.read_bytes(), pre.stat().st_mtime_ns

    # the same command, now two processes at once: seed 0 continues, seed 1 starts; each seed's rows run as
    # their own processes once its pretraining is done, and their lines are relayed with the item's name
    assert main(_args(synthetic_pair, out, "--jobs", "2")) == 0
    printed = capsys.readouterr().out
    for item in ("seed0-pretrain", "seed1-pretrain", "seed0-oracle", "seed0-base", "seed1-oracle", "seed1-base"):
        assert f"{item}: done" in printed, item
    assert "| row | seeds |" in printed and "[seed1-base]" not in printed        # --quiet: no relayed lines
    assert "[uda] epoch 2" in (out / "logs" / "seed1-base.log").read_text()
    assert printed.index("seed1-pretrain: done") < printed.index("seed1-base: running")
    assert pre.read_bytes() == pre_bytes and pre.stat().st_mtime_ns == pre_mtime     # reused, not retrained
    log0 = (out / "logs" / "seed0-pretrain.log").read_text()
    assert f"reused {out / 'seed0' / 'pretrain'}" in log0
    for s in (0, 1):
        for row in ("pretrain", "oracle", "base"):
            records = [json.loads(x) for x in (out / f"seed{s}" / row / "metrics.jsonl").read_text().splitlines()]
            assert [r["epoch"] for r in records] == list(range(len(records))) and len(records) >= 1, (s, row)
        # the rows' first-epoch passes on the pretrained model went through the seed's shared cache
        assert list((out / f"seed{s}" / "pass_cache").glob("features-*.pt")), s
        timings = json.loads((out / f"seed{s}" / "timings.json").read_text())
        assert set(timings) == {"direct", "oracle", "base"} and all(t["seconds"] > 0 for t in timings.values())
        assert timings["base"]["epochs"] == 2

    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert [r["method"] for r in rows] == ["oracle", "direct", "base"] and all(r["seeds"] == "2" for r in rows)
    # the table's figures are the stages' own summaries
    summaries = [json.loads((out / f"seed{s}" / "base" / "summary.json").read_text()) for s in (0, 1)]
    mean = sum(100 * x["target"]["mAP"] for x in summaries) / 2
    assert float(rows[2]["mAP_mean"]) == pytest.approx(mean, abs=1e-3)
    assert rows[0]["row"] == "oracle (SBase with the target's true identities, from the pretrained model, 6 steps)"
    md = (out / "results.md").read_text()
    assert "--jobs 2" in md and "up to 2 processes at once" in md and "1 thread per process" in md
    assert "(when the call started)" in md                  # the commit of the code that trained

    # once more: everything is reused, the table is the same
    before = (out / "results.csv").read_text()
    assert main(_args(synthetic_pair, out)) == 0
    assert (out / "results.csv").read_text() == before
    # and with processes: the finished rows start none (their logs do not grow), the table is the same
    logs = {p: p.stat().st_size for p in (out / "logs").glob("seed*.log") if "pretrain" not in p.name}
    assert main(_args(synthetic_pair, out, "--jobs", "2")) == 0
    printed = capsys.readouterr().out
    assert ("4 finished rows reused without a process: seed0-oracle, seed0-base, seed1-oracle, seed1-base"
            in printed), printed
    assert "-base: running" not in printed and "seed0-pretrain: done" in printed
    assert all(p.stat().st_size == n for p, n in logs.items())
    assert (out / "results.csv").read_text() == before
    # a seed whose pretraining is not complete skips nothing: its rows are checked against it in their process
    (out / "seed1" / "pretrain" / "summary.json").unlink()
    assert main(_args(synthetic_pair, out, "--jobs", "2")) == 0
    printed = capsys.readouterr().out
    assert "2 finished rows reused without a process: seed0-oracle, seed0-base" in printed, printed
    assert "seed1-base: done" in printed and "seed0-base: running" not in printed
    assert (out / "results.csv").read_text() == before
    # another setting into the same folder is refused before any stage runs, naming the field
    assert main(_args(synthetic_pair, out, "--set", "uda.eps=0.6")) == 2
    assert "uda.eps: 0.7 in the checkpoint, 0.6 asked" in capsys.readouterr().err
    assert (out / "results.csv").read_text() == before


def test_parallel_items_pretraining_first_then_costliest_rows_and_relayed_lines(tmp_path, capsys):
    from reid_uda_lib.experiments.parallel import Item, _relay, next_ready, plan_items, threads_for
    items = plan_items([0, 1], ["oracle", "direct", "direct_bn", "sbase", "dcdfa", "lf2"])
    assert [(it.name, it.rows) for it in items[:2]] == [("seed0-pretrain", ["direct", "direct_bn"]),
                                                        ("seed0-oracle", ["oracle"])]
    assert next_ready(items, set()).name == "seed0-pretrain"
    rows_only = [it for it in items if not it.pretraining]
    assert next_ready(rows_only, set()) is None                 # no seed pretrained yet: nothing can start
    assert next_ready(rows_only, {1}).name == "seed1-oracle"    # the costliest row of a pretrained seed
    # the demo's rows in queue order: the two costliest start together, the two shorter follow
    queue, order = [it for it in items if not it.pretraining and it.seed == 0], []
    while queue:
        order.append(next_ready(queue, {0}).rows[0])
        queue.remove(next(it for it in queue if it.rows[0] == order[-1]))
    assert order == ["oracle", "dcdfa", "lf2", "sbase"]
    # one seed (make demo): its pretraining runs alone with every thread, its rows with one thread each
    one = plan_items([0], ["direct", "sbase", "lf2"])
    pre = one.pop(0)
    assert threads_for([], one, set(), jobs=2) == min(2, os.cpu_count()) and threads_for([], one, set(), 64) <= os.cpu_count()
    assert threads_for([pre], one, {0}, jobs=2) == 1 and threads_for([], one, {0}, jobs=2) == 1
    assert threads_for([], items[1:], set(), jobs=2) == 1       # two seeds: the other pretraining waits
    log = tmp_path / "x.log"
    log.write_bytes(b"[uda] epoch 1 | a\n[uda] epo")
    item = Item(0, ["sbase"], False, "seed0-sbase", log=log)
    _relay(item)
    with open(log, "ab") as fh:
        fh.write(b"ch 2 | b\n")
    _relay(item)
    assert capsys.readouterr().out == "[seed0-sbase] [uda] epoch 1 | a\n[seed0-sbase] [uda] epoch 2 | b\n"


def test_bad_rows_and_half_a_pair_are_refused_before_any_work(synthetic_pair, tmp_path, capsys):
    assert main(_args(synthetic_pair, tmp_path / "x", "--rows", "sbase,nope")) == 2
    assert "unknown ladder row(s) 'nope'" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["ladder", "--preset", "tiny", "--source", str(synthetic_pair["A"]), "--out", str(tmp_path / "y")]) == 2
    assert "give both --source and --target" in capsys.readouterr().err
    assert main(_args(synthetic_pair, tmp_path / "z", "--gap", "2")) == 2        # a gap for given folders
    assert "--gap sets the generated synthetic pair's style gap" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


def test_gap_reaches_the_generated_pair_and_make_ladder_gap_2_has_its_own_folders(tmp_path, monkeypatch, capsys):
    """``ladder --gap 2`` generates the harder pair (the generator's style gap), ``make ladder GAP=2`` into
    ``data/synthetic-gap2`` and ``runs/ladder-cpu-gap2`` (the default pair's folders are never reused for it)."""
    import reid_uda_lib.data.synthetic as synthetic
    asked = {}

    def fake(out, seed=0, gap=1.0, **kw):
        asked.update(out=out, seed=seed, gap=gap)
        raise ValueError("stop here")
    monkeypatch.setattr(synthetic, "generate_synthetic_pair", fake)
    assert main(["ladder", "--preset", "tiny", "--synthetic", str(tmp_path / "p"), "--gap", "2", "--quiet",
                 "--out", str(tmp_path / "o")]) == 2
    assert asked == {"out": str(tmp_path / "p"), "seed": 0, "gap": 2.0}
    capsys.readouterr()

    def dry(*args):
        return subprocess.run(["make", "-n", "-s", "ladder", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout
    assert "--synthetic data/synthetic-gap2 --gap 2 " in dry("GAP=2") and "--out runs/ladder-cpu-gap2" in dry("GAP=2")
    assert "--synthetic data/synthetic --gap 1 " in dry() and "--out runs/ladder-cpu\n" in dry()


def test_row_clock_sums_resumed_calls_and_restarts_a_row_trained_again(tmp_path, monkeypatch):
    """timings.json: a resumed call adds its epochs' time; a row that runs its first epoch again (its folder
    deleted and trained from scratch) starts from 0 instead of adding to the old run."""
    from reid_uda_lib.experiments import ladder as ladder_run
    now = [100.0]
    monkeypatch.setattr(ladder_run.time, "time", lambda: now[0])

    def call(epochs, seconds_each):
        book = ladder_run.RowClock(tmp_path).start("sbase")
        for e in epochs:
            now[0] += seconds_each
            book(e, {})
        return json.loads((tmp_path / "timings.json").read_text())["sbase"]

    assert call([0, 1], 10.0) == {"seconds": 20.0, "epochs": 2}
    assert call([2, 3], 5.0) == {"seconds": 30.0, "epochs": 4}          # resumed: 20 + 2 x 5
    assert call([0], 7.0) == {"seconds": 7.0, "epochs": 1}              # trained again from scratch
