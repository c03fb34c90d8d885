"""The last mile of reliability (issue 28): one test per class of fault, on the small synthetic pair.

1. ``check`` judges with the same function and the same needs as ``train``: their verdicts agree on every
   generated bad folder; 2. no file is skipped in silence; 3. every error is one line (exit code 2; Ctrl-C:
   130); 4. a refused run leaves nothing behind; 5. long runs: ``--resume`` without a checkpoint, a moved
   dataset, a killed ladder's workers. Each refusal is asserted with its message and with a snapshot of the
   run folder (nothing changed, nothing appeared).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from reid_uda_lib.cli import main
from reid_uda_lib.config import get_preset
from reid_uda_lib.data import check_dataset, load_dataset
from reid_uda_lib.data.problems import RoleNeeds
from reid_uda_lib.runtime.checkpoint import load_checkpoint, save_checkpoint
from reid_uda_lib.train import pretrain
from reid_uda_lib.train.checks import role_needs
from test_folder_layout import TREE, _img, make_tree
from test_run_safety import snapshot

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# P = 16 // 4 = 4 identities per batch; DBSCAN clusters of 3 images: a target needs 4 x 3 = 12 training images
SETTINGS = {"pretrain.epochs": 1, "pretrain.iters_per_epoch": 3, "uda.epochs": 1, "uda.iters_per_epoch": 2,
            "data.batch_size": 16, "uda.k1": 8, "uda.k2": 3, "uda.eps": 0.7, "uda.min_samples": 3}
ARGS = ["--preset", "tiny", *[x for k, v in SETTINGS.items() for x in ("--set", f"{k}={v}")]]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _cfg(**over):
    return get_preset("tiny", **{**SETTINGS, **over})


def _cli(args, capsys) -> tuple[int, list[str]]:
    """Exit code and the lines written on stderr."""
    rc = main(list(map(str, args)))
    return rc, capsys.readouterr().err.strip().splitlines()


def _small(root: Path, b: Path) -> Path:
    """Fewer images and identities than one batch needs: 2 identities x 4 images of ``b``, its test split."""
    b_train = sorted((b / "bounding_box_train").glob("*.jpg"))
    ids = sorted({f.name[:4] for f in b_train})[:2]
    return _market(root, {f.name: f for pid in ids for f in [g for g in b_train if g.name.startswith(pid)][:4]}, b)


def _market(root: Path, train: dict[str, Path], test_from: Path) -> Path:
    """A Market-layout folder: ``train`` ({new name: source image}), query/gallery copied from ``test_from``."""
    (root / "bounding_box_train").mkdir(parents=True)
    for name, src in train.items():
        shutil.copy(src, root / "bounding_box_train" / name)
    for split in ("query", "bounding_box_test"):
        shutil.copytree(test_from / split, root / split)
    return root


@pytest.fixture(scope="module")
def finished(synthetic_pair, tmp_path_factory):
    """A finished one-epoch pretraining run in ``<run>/pretrain``."""
    out = tmp_path_factory.mktemp("finished") / "run"
    pretrain(_cfg(), load_dataset(synthetic_pair["A"]), load_dataset(synthetic_pair["B"]), out / "pretrain",
             progress=False)
    return out


# ---------------------------------------------------------------------------------------------- class 1

class _Started(Exception):
    """Raised at the first UDA step: every check of ``train`` passed, the pretraining ran, the target was
    clustered and its PK sampler built (where a late refusal used to come from)."""


def _bad_folders(root: Path, pair: dict) -> dict[str, tuple[Path, dict]]:
    """Every kind of bad folder the suite generates (test_check, test_folder_layout, this issue), and a good
    one: ``{name: (folder, check_dataset kwargs)}``."""
    a, b = Path(pair["A"]), Path(pair["B"])
    b_train = sorted((b / "bounding_box_train").glob("*.jpg"))
    out: dict[str, tuple[Path, dict]] = {"good": (a, {})}
    # every training file a junk identity: the "check says OK"
    out["junk_only"] = (_market(root / "junk", {f"-1{f.name[4:]}": f for f in b_train[:20]}, b), {})
    out["small"] = (_small(root / "small", b), {})
    # an unreadable training image (train decodes every image first; check opens them)
    broken = _market(root / "broken", {f.name: f for f in b_train}, b)
    first = sorted((broken / "bounding_box_train").glob("*.jpg"))[0]
    first.write_bytes(first.read_bytes()[:200])
    out["unreadable"] = (broken, {})
    out["not_a_dataset"] = ((root / "empty"), {})
    (root / "empty").mkdir()
    out["tree_3_ids"] = (make_tree(root / "tree", TREE), {})                       # no cameras, 3 identities
    out["tree_one_camera"] = (make_tree(root / "onecam", TREE), {"pattern": "(?P<cam>cam)"})
    missing = dict(TREE, query={"dave": ["cam1_q1.jpg"], "frank": ["cam1_q9.jpg"]})
    out["query_id_missing"] = (make_tree(root / "missing", missing), {})
    out["query_only"] = (make_tree(root / "qonly", {"query": TREE["query"]}), {})
    # an unlabelled target without camera ids, images directly in train/ (and files that are not read)
    unlab = make_tree(root / "unlab", {k: v for k, v in TREE.items() if k != "train"},
                      loose_train=[f"x{k}.jpg" for k in range(20)])
    (unlab / "train" / "notes.txt").write_text("not an image")
    out["unlabelled_no_cameras"] = (unlab, {})
    for name, (folder, kw) in out.items():
        if "pattern" in kw:
            (folder / "reid_dataset.json").write_text(json.dumps({"cam_pattern": kw["pattern"]}))
    return out


def test_1_check_agrees_with_train_on_every_bad_folder(synthetic_pair, tmp_path, capsys, monkeypatch):
    import importlib
    uda_module = importlib.import_module("reid_uda_lib.train.uda")

    def started(*a, **k):
        raise _Started
    monkeypatch.setattr(uda_module, "check_finite", started)
    a, b = synthetic_pair["A"], synthetic_pair["B"]
    folders = _bad_folders(tmp_path / "data", synthetic_pair)
    needs = role_needs(_cfg())
    assert (needs.pids_per_batch, needs.target_images) == (4, 12)
    verdicts: dict[tuple[str, str], bool] = {}
    for name, (folder, _) in folders.items():
        for role in ("source", "target"):
            # check's verdict: the CLI, the same preset and settings, the role asked
            rc = main(["check", str(folder), *ARGS, "--role", role])
            text = capsys.readouterr().out
            said = rc == 0
            assert (f"as {role}: yes" in text) == said, (name, role, text)
            # train's acceptance: the CLI with this folder in the role, the good synthetic domains in the other
            out = tmp_path / "runs" / f"{name}-{role}"
            source, target = (folder, b) if role == "source" else (a, folder)
            try:
                rc, err = _cli(["train", *ARGS, "--quiet", "--method", "sbase", "--source", source, "--target",
                                target, "--out", out], capsys)
                accepted = False
                assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), (name, role, err)
                assert not out.exists(), f"{name} as {role}: a refused run left {sorted(out.rglob('*'))}"
            except _Started:
                accepted = True
            capsys.readouterr()
            assert said == accepted, f"{name} as {role}: check says {said}, train {'accepts' if accepted else err}"
            verdicts[name, role] = accepted
    assert verdicts["good", "source"] and verdicts["good", "target"]
    assert not any(v for (name, _), v in verdicts.items() if name != "good")
    # the cases, by their message
    report = check_dataset(folders["junk_only"][0], needs=needs)
    assert not report.usable and report.ok                    # no error, but usable in no role: exit code 1
    assert report.roles()["source"] == (False, "it has no training images")
    assert "fewer than the 12 that P = 4 DBSCAN clusters of uda.min_samples = 3 images need" in \
        check_dataset(folders["small"][0], needs=needs, images=False).roles()["target"][1]
    # the wiring matters: judged without the run's needs (what check did before), check disagrees with train
    loose = {(name, role): check_dataset(folder, needs=RoleNeeds(cross_camera_only=False), images=False)
             .roles()[role][0] for name, (folder, _) in folders.items() for role in ("source", "target")}
    assert any(loose[k] != v for k, v in verdicts.items())


# ---------------------------------------------------------------------------------------------- class 2

def test_2_no_file_is_skipped_in_silence(synthetic_pair, tmp_path, capsys):
    # folder per person: an image one folder too deep, a dangling link, a note, a macOS fork file
    root = make_tree(tmp_path / "mine", TREE)
    _img(root / "train" / "alice" / "extra" / "cam1_deep.jpg")
    (root / "train" / "bob" / "cam1_gone.jpg").symlink_to(root / "nowhere.jpg")
    (root / "train" / "notes.txt").write_text("my notes")
    (root / "train" / "alice" / "._cam1_a.jpg").write_bytes(b"\0fork")
    before = snapshot(root)
    with pytest.warns(UserWarning) as caught:
        ds = load_dataset(root)
    msgs = [str(w.message) for w in caught if "are not read" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith(f"4 file(s) in {root} are not read: ")
    for part in ("train/alice/._cam1_a.jpg (hidden file)", "train/alice/extra/cam1_deep.jpg (in a sub-folder",
                 "train/bob/cam1_gone.jpg (broken symbolic link)"):
        assert part in msgs[0], part
    assert sorted(os.path.relpath(p, root) for p, _ in ds.skipped) == [
        "train/alice/._cam1_a.jpg", "train/alice/extra/cam1_deep.jpg", "train/bob/cam1_gone.jpg", "train/notes.txt"]
    report = check_dataset(root, images=False)
    assert ("warning", "4 file(s) are not read: train/alice/._cam1_a.jpg (hidden file), "
                       "train/alice/extra/cam1_deep.jpg (in a sub-folder (image folders are read one level deep)), "
                       "train/bob/cam1_gone.jpg (broken symbolic link), ...") in \
        [(p.level, p.message) for p in report.problems]
    assert main(["check", str(root), "--no-images"]) == 1
    out = capsys.readouterr().out
    assert "WARNING: 4 file(s) are not read" in out and "no problems found" not in out
    assert snapshot(root) == before                                       # check and loads write nothing
    # Market layout: a nested folder and Thumbs.db are warned about; junk identities are the protocol's (a note)
    market = tmp_path / "market"
    shutil.copytree(synthetic_pair["B"], market)
    one = sorted((market / "bounding_box_train").glob("*.jpg"))[0]
    (market / "bounding_box_train" / "more").mkdir()
    shutil.copy(one, market / "bounding_box_train" / "more" / one.name)
    (market / "bounding_box_test" / "Thumbs.db").write_bytes(b"x")
    shutil.move(one, market / "bounding_box_train" / f"-1{one.name[4:]}")
    with pytest.warns(UserWarning, match=r"2 file\(s\) in .* are not read: bounding_box_test/Thumbs.db \(not an "
                                         r"image \(.db; .*bounding_box_train/more/" + one.name):
        ds = load_dataset(market)
    assert [w for _, w in ds.skipped].count("junk image (identity -1), dropped as the protocol does") == 1
    levels = [(p.level, p.message) for p in check_dataset(market, images=False).problems]
    assert ("note", f"1 junk image(s) (identity -1) are dropped, as the evaluation protocol does: "
                    f"bounding_box_train/-1{one.name[4:]}") in levels
    assert any(lv == "warning" and m.startswith("2 file(s) are not read") for lv, m in levels)
    # MSMT17 lists: an image no list names
    from test_datasets import _msmt_tree
    msmt = _msmt_tree(tmp_path / "MSMT17_V1", "train", "test")
    _img(msmt / "train" / "0009" / "0009_000_01_0303morning_0001_0.jpg")
    with pytest.warns(UserWarning, match=r"1 file\(s\) in .* are not read: train/0009/0009_000_01_0303morning_"
                                         r"0001_0.jpg \(not named by any list_\*.txt file\)"):
        load_dataset(msmt)
    # a folder whose every image is one level too deep: the error names what was not read
    deep = tmp_path / "deep"
    _img(deep / "train" / "alice" / "day1" / "cam1_a.jpg")
    with pytest.raises(Exception, match=r"no images found in .*\(1 file\(s\) not read: .*day1/cam1_a.jpg \(in a "
                                        r"sub-folder"):
        load_dataset(deep)
    assert main(["check", str(deep), "--no-images"]) == 1
    assert "1 file(s) not read: " in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- class 3

def test_3_every_error_is_one_line_with_exit_code_2(finished, synthetic_pair, tmp_path, capsys, monkeypatch):
    a, b = synthetic_pair["A"], synthetic_pair["B"]
    before = snapshot(finished)
    pre = ["pretrain", *ARGS, "--quiet", "--source", a, "--target", b]
    cases = {
        "no such GPU": (pre + ["--out", tmp_path / "x", "--device", "cuda" if not torch.cuda.is_available()
                               else "cuda:99"], "error: device: 'cuda"),
        "not a device": (pre + ["--out", tmp_path / "x", "--device", "gpu"],
                         "error: device: 'gpu' is not a device name; expected auto, cpu, cuda, cuda:N or mps"),
        "bad setting": (pre + ["--out", tmp_path / "x", "--set", "lf2.n_clusters=0", "--set", "uda.method=lf2"],
                        "error: invalid configuration: lf2.n_clusters"),
        "not a dataset": (["pretrain", *ARGS, "--source", tmp_path, "--out", tmp_path / "x"],
                          f"error: {tmp_path} is not a dataset folder"),
        "other settings": (pre + ["--out", finished / "pretrain", "--resume", "--set", "seed=3"],
                           "seed: 0 in the checkpoint, 3 asked"),
        "nothing to resume": (pre + ["--out", tmp_path / "x", "--resume"], "error: nothing to resume in"),
    }
    for name, (args, msg) in cases.items():
        rc, err = _cli(args, capsys)
        assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and msg in err[0], (name, err)
    assert not (tmp_path / "x").exists() and snapshot(finished) == before

    # a full disk during a checkpoint write: the writer's RuntimeError (inline_container.cc) becomes one line, the
    # previous checkpoint stays, no temporary file is left
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        pretrain(_cfg(**{"pretrain.epochs": 2}), load_dataset(a), load_dataset(b), cut, progress=False,
                 on_epoch_end=_stop_at(0))
    saved = snapshot(cut)
    import reid_uda_lib.runtime.checkpoint as ckpt_module
    real_mkstemp = ckpt_module.tempfile.mkstemp

    def full_disk(*args, **kwargs):                  # the temp file lives on a device that is always full
        fd, path = real_mkstemp(*args, **kwargs)
        os.close(fd)
        return os.open("/dev/full" if os.path.exists("/dev/full") else path, os.O_WRONLY), path
    monkeypatch.setattr(ckpt_module.tempfile, "mkstemp", full_disk)
    if not os.path.exists("/dev/full"):               # no /dev/full: the writer fails as it does on a full disk
        monkeypatch.setattr(ckpt_module.torch, "save", _failing_save)
    rc, err = _cli(["pretrain", *ARGS, "--quiet", "--source", a, "--target", b, "--out", cut, "--resume",
                    "--set", "pretrain.epochs=2"], capsys)
    monkeypatch.undo()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: could not write {cut / 'checkpoint.pt'} (") and "MiB free there" in err[0]
    assert "the previous checkpoint.pt is unchanged" in err[0]
    assert snapshot(cut) == saved                    # nothing changed, no temp file, lock released

    # evaluate on a checkpoint whose config does not match its weights
    state = load_checkpoint(finished / "pretrain" / "checkpoint.pt")
    state["config"]["model"]["arch"] = "resnet18"
    edited = tmp_path / "edited.pt"
    save_checkpoint(edited, {k: v for k, v in state.items() if k not in ("format", "version")})
    rc, err = _cli(["evaluate", "--checkpoint", edited, "--dataset", b, "--quiet", "--device", "cpu"], capsys)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: the model weights in {edited} do not fit the model that its config describes")
    assert "missing (first: " in err[0] and "of another shape (first: backbone.conv1.weight (16, 3, 3, 3) in the " \
        "file, (64, 3, 7, 7) here)" in err[0]
    rc, err = _cli(["evaluate", "--checkpoint", edited, "--dataset", b, "--device", "gpu"], capsys)
    assert rc == 2 and err == ["error: device: 'gpu' is not a device name; expected auto, cpu, cuda, cuda:N or mps"]

    # Ctrl-C: exit code 130 and one line naming the checkpoint to resume from and the command
    run = tmp_path / "interrupted"
    args = [sys.executable, "-m", "reid_uda_lib", "pretrain", *ARGS, "--quiet", "--source", str(a), "--target",
            str(b), "--out", str(run), "--set", "pretrain.epochs=100000", "--set", "pretrain.eval_every=100000"]
    # The child starts with SIGINT at its default action whatever this process inherited: a test run started as
    # a background job of a non-interactive shell (`make test &`) ignores SIGINT, an exec keeps it ignored, and
    # Python then never raises KeyboardInterrupt (the run went on to its last epoch and exited 0). Far more
    # epochs than the run lasts, so it cannot end before the Ctrl-C.
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:                    # a child that did not stop must not outlive the test
        if proc.poll() is None:
            proc.kill()
    lines = stderr.decode().strip().splitlines()
    assert proc.returncode == 130 and len(lines) == 1, lines
    assert lines[0].startswith(f"interrupted: {run} can be resumed from {run / 'checkpoint.pt'} (")
    assert lines[0].endswith("epoch(s) done): run the same command with --resume")
    assert not (run / ".lock").exists() and not list(run.glob("*.tmp"))


def _stop_at(stop: int):
    def on_epoch_end(epoch, record):
        if epoch == stop:
            raise KeyboardInterrupt
    return on_epoch_end


def _failing_save(obj, f, *a, **k):
    raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0")


# ---------------------------------------------------------------------------------------------- class 4

def test_4_a_refused_run_leaves_nothing_behind(finished, synthetic_pair, tmp_path, capsys, monkeypatch):
    from reid_uda_lib.train import adapt
    a, b = synthetic_pair["A"], synthetic_pair["B"]
    small = _small(tmp_path / "small", Path(b))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    init = finished / "pretrain" / "checkpoint.pt"
    before = snapshot(finished)
    train = ["train", *ARGS, "--quiet", "--source", a, "--target", b]
    cases = {   # the run folder of each is a fresh one, or the finished one (which must not change)
        "lf2.n_clusters=0": (train + ["--method", "lf2", "--set", "lf2.n_clusters=0", "--out", tmp_path / "o1"],
                             "invalid configuration: lf2.n_clusters"),
        "target smaller than a batch": (["train", *ARGS, "--quiet", "--source", a, "--target", small, "--out",
                                         tmp_path / "o2"], "cannot serve as the target: it has 8 training image(s), "
                                                           "fewer than the 12 that P = 4 DBSCAN clusters"),
        "source of too few identities": (["pretrain", *ARGS, "--quiet", "--source", small, "--out", tmp_path / "o3"],
                                         "cannot serve as the source: it has 2 labelled training identities, fewer "
                                         "than the P = 4 that one batch draws"),
        "init not a checkpoint": (train + ["--init", garbage, "--out", tmp_path / "o4"],
                                  f"cannot read checkpoint {garbage}"),
        "init of another model": (train + ["--init", init, "--set", "model.arch=resnet18", "--out", tmp_path / "o5"],
                                  "holds a 'tiny' model but the config asks for 'resnet18'"),
        "init missing": (train + ["--init", tmp_path / "nope.pt", "--out", tmp_path / "o6"],
                         "checkpoint file not found"),
        "into a finished run": (train + ["--method", "base", "--set", "uda.eps=1.5", "--out", finished],
                                "uda.eps: expected in (0, 1)"),
        "too small a target, into a finished run": (["train", *ARGS, "--quiet", "--source", a, "--target", small,
                                                     "--out", finished], "cannot serve as the target"),
    }
    for name, (args, msg) in cases.items():
        rc, err = _cli(args, capsys)
        assert rc == 2 and len(err) == 1 and msg in err[0], (name, err)
    assert not any((tmp_path / f"o{k}").exists() for k in range(1, 7))
    assert snapshot(finished) == before                                  # no config.json of a run that never ran
    # the Python API refuses before its first write too; a stage that fails after opening its folder (here:
    # cut before its first checkpoint) removes what it created: no config.json, no empty folder
    with pytest.raises(Exception, match="was written by the 'pretrain' stage|cannot read checkpoint"):
        adapt(_cfg(), load_dataset(a), load_dataset(b), garbage, tmp_path / "o7" / "sbase", progress=False)
    import importlib
    pre_module = importlib.import_module("reid_uda_lib.train.pretrain")   # the package exports the function
    stage = tmp_path / "o8" / "pretrain"

    def cut(*a, **k):                    # Ctrl-C at the first step: the stage has opened its folder (locked it)
        assert (stage / ".lock").exists() and not (stage / "config.json").exists()
        raise KeyboardInterrupt
    monkeypatch.setattr(pre_module, "check_finite", cut)
    with pytest.raises(KeyboardInterrupt):
        pretrain(_cfg(), load_dataset(a), load_dataset(b), stage, progress=False)
    assert not (tmp_path / "o7").exists() and not (tmp_path / "o8").exists()


# ---------------------------------------------------------------------------------------------- class 5

def test_5_long_runs_resume_moved_data_and_orphans(finished, synthetic_pair, tmp_path, capsys):
    a, b = synthetic_pair["A"], synthetic_pair["B"]
    # --resume with no checkpoint (a typo in --out) is an error; --resume auto starts fresh
    typo = tmp_path / "typo"
    rc, err = _cli(["pretrain", *ARGS, "--quiet", "--source", a, "--out", typo, "--resume"], capsys)
    assert rc == 2 and err == [f"error: nothing to resume in {typo}: {typo / 'checkpoint.pt'} does not exist (a typo "
                               "in --out?); pass --resume auto (resume='auto') to continue a checkpoint when there is "
                               "one and start fresh otherwise"]
    assert not typo.exists()
    assert main([str(x) for x in ("pretrain", *ARGS, "--quiet", "--source", a, "--out", typo, "--resume",
                                  "auto")]) == 0
    assert (typo / "checkpoint.pt").is_file()
    capsys.readouterr()

    # the same files under another path are the same data (Colab users move Drive folders); other data is not
    moved = tmp_path / "drive" / "moved"
    shutil.copytree(a, moved / "A")
    shutil.copytree(b, moved / "B")
    before = snapshot(finished)
    res = pretrain(_cfg(), load_dataset(moved / "A"), load_dataset(moved / "B"), finished / "pretrain",
                   resume=True, progress=False)
    assert res["target"] == json.loads((finished / "pretrain" / "summary.json").read_text())["target"]
    assert snapshot(finished) == before
    from reid_uda_lib.runtime.provenance import RunIdentityError
    with pytest.raises(RunIdentityError, match=r"source data content_sha256: \w+ in the checkpoint, \w+ asked"):
        pretrain(_cfg(), load_dataset(moved / "B"), load_dataset(moved / "B"), finished / "pretrain",
                 resume=True, progress=False)
    # a checkpoint written before (its identity has the root, no content hash) is still accepted when moved...
    old = tmp_path / "old" / "pretrain"
    shutil.copytree(finished / "pretrain", old)
    state = load_checkpoint(old / "checkpoint.pt")
    for role in ("source", "target"):
        ident = state["identity"]["data"][role]
        ident.pop("content_sha256")
        ident["root"] = f"/content/drive/MyDrive/{role}"
    save_checkpoint(old / "checkpoint.pt", {k: v for k, v in state.items() if k not in ("format", "version")})
    pretrain(_cfg(), load_dataset(moved / "A"), load_dataset(moved / "B"), old, resume=True, progress=False)
    # ... and still refused for other files
    with pytest.raises(RunIdentityError, match=r"source data files_sha256: \w+ in the checkpoint, \w+ asked"):
        pretrain(_cfg(), load_dataset(moved / "B"), load_dataset(moved / "B"), old, resume=True, progress=False)

    # a killed `ladder --jobs 2` takes its row processes with it
    out = tmp_path / "ladder"
    proc = subprocess.Popen([sys.executable, "-m", "reid_uda_lib", "ladder", *ARGS, "--quiet", "--source", str(a),
                             "--target", str(b), "--seeds", "0,1", "--rows", "sbase", "--jobs", "2", "--no-report",
                             "--set", "pretrain.epochs=50", "--out", str(out)], env=ENV, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = _wait_for_children(proc, 2, "reid_uda_lib.experiments.worker", timeout=300)
    proc.kill()
    proc.wait()
    assert _gone(workers, timeout=60), f"orphans still running: {workers}"


def _children(pid: int, marker: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and marker in cmd:
            out.append(int(d.name))
    return out


def _wait_for_children(proc, n: int, marker: str, timeout: float) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        kids = _children(proc.pid, marker)
        if len(kids) >= n:
            return kids
        time.sleep(0.2)
    raise AssertionError(f"the ladder did not start {n} workers (exit code {proc.poll()})")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(_running(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
@pytest.mark.parametrize("mechanism", ["prctl", "poll", None])
def test_5b_a_worker_dies_with_its_parent(mechanism, tmp_path):
    """:func:`die_with_parent` by each mechanism (prctl on Linux, the polling thread elsewhere); without it (None:
    the wiring removed) the worker outlives its parent, which is what the ladder test above would catch."""
    worker_py = REPO / "reid_uda_lib" / "experiments" / "worker.py"
    child = textwrap.dedent(f"""
        import importlib.util, os, sys, time
        spec = importlib.util.spec_from_file_location("worker", {str(worker_py)!r})
        worker = importlib.util.module_from_spec(spec); spec.loader.exec_module(worker)
        if {mechanism!r} == "poll":
            sys.platform = "darwin"                    # no prctl: the portable fallback
        how = worker.die_with_parent(os.getppid()) if {mechanism!r} else "none"
        print(how, flush=True)
        time.sleep(120)
    """)
    parent = textwrap.dedent(f"""
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", {child!r}], stdout=sys.stdout)
        print(p.pid, flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    worker_pid = int(proc.stdout.readline())
    assert proc.stdout.readline().strip() == (mechanism or "none")
    proc.kill()
    proc.wait()
    try:
        assert _gone([worker_pid], timeout=15) == (mechanism is not None)
    finally:
        if _running(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
