"""Tests of the synthetic two-domain generator (layout, protocol, determinism, domain gap, reuse, CLI)."""
from __future__ import annotations

import hashlib
import json
import math
import re
import runpy
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid_uda_lib.data.synthetic import (
    SPLITS, STYLE_A, STYLE_B_REF, Person, BodyFrame, contact_sheet, domain_styles, draw_person,
    generate_synthetic_pair, main,
)

REPO = Path(__file__).resolve().parents[1]
MARKET_RE = re.compile(r"([-\d]+)_c(\d+)")
STRICT_NAME = re.compile(r"^\d{4}_c[1-9]s1_\d{6}_00\.jpg$")
TINY = dict(num_train_ids=4, num_test_ids=3, height=32, width=16, progress=False)


def _items(domain: Path, split: str) -> list[tuple[str, int, int]]:
    out = []
    for p in sorted((domain / split).iterdir()):
        m = MARKET_RE.match(p.name)
        assert m is not None and STRICT_NAME.match(p.name), f"bad file name {p}"
        out.append((p.name, int(m.group(1)), int(m.group(2))))
    return out


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------
# Layout and protocol
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("domain,num_cams", [("A", 4), ("B", 5)])
def test_layout_names_and_counts(synthetic_pair, domain, num_cams):
    root = synthetic_pair[domain]
    assert root.is_dir() and root.name == domain
    meta = json.loads((root / "synthetic.json").read_text())
    assert meta["domain"] == domain and meta["spec"]["num_train_ids"] == 24
    train, query, gallery = (_items(root, s) for s in SPLITS)
    for split, items in zip(SPLITS, (train, query, gallery)):
        assert meta["counts"][split]["images"] == len(items) > 0
        assert len({n for n, _, _ in items}) == len(items)
        assert all(1 <= c <= num_cams for _, _, c in items)
        assert all(pid > 0 for _, pid, _ in items)
    train_ids = {p for _, p, _ in train}
    test_ids = {p for _, p, _ in query} | {p for _, p, _ in gallery}
    assert len(train_ids) == 24 and len(test_ids) == 16 and not train_ids & test_ids
    assert {c for _, _, c in train} == set(range(1, num_cams + 1))
    # image size and format
    for name, _, _ in train[:: max(1, len(train) // 20)]:
        with Image.open(root / "bounding_box_train" / name) as im:
            assert im.format == "JPEG" and im.size == (32, 64) and im.mode == "RGB"


@pytest.mark.parametrize("domain", ["A", "B"])
def test_every_query_has_a_cross_camera_gallery_match(synthetic_pair, domain):
    root = synthetic_pair[domain]
    query, gallery = _items(root, "query"), _items(root, "bounding_box_test")
    g_cams = defaultdict(set)
    for _, pid, cam in gallery:
        g_cams[pid].add(cam)
    q_per_cam = defaultdict(int)
    for _, pid, cam in query:
        q_per_cam[pid, cam] += 1
        assert g_cams[pid] - {cam}, f"query {pid} c{cam} has no gallery image of {pid} in another camera"
    assert max(q_per_cam.values()) == 1                                 # at most one query per (id, camera)
    assert {p for _, p, _ in query} == set(g_cams)                      # every test id is queried
    all_cams = defaultdict(set)
    for _, pid, cam in query + gallery:
        all_cams[pid].add(cam)
    assert min(len(c) for c in all_cams.values()) >= 2


def test_load_dataset_reads_the_synthetic_layout(synthetic_pair):
    from reid_uda_lib.data import load_dataset

    for domain, cams in (("A", 4), ("B", 5)):
        root = synthetic_pair[domain]
        ds = load_dataset(root)
        n = {s: len(list((root / s).glob("*.jpg"))) for s in SPLITS}
        assert (len(ds.train), len(ds.query), len(ds.gallery)) == (n["bounding_box_train"], n["query"],
                                                                   n["bounding_box_test"])
        assert sorted({p for _, p, _ in ds.train}) == list(range(24))   # relabelled
        assert {c for _, _, c in ds.train} == set(range(cams))           # 0-based cameras


# ----------------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------------

def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = generate_synthetic_pair(tmp_path / "a", seed=3, **TINY)
    b = generate_synthetic_pair(tmp_path / "b", seed=3, jobs=2, **TINY)      # A and B in two processes
    c = generate_synthetic_pair(tmp_path / "c", seed=4, **TINY)
    for d in ("A", "B"):
        da, db, dc = _digest(a[d]), _digest(b[d]), _digest(c[d])
        assert len(da) > 20 and da == db
        jpg = lambda dig: {v for k, v in dig.items() if k.endswith(".jpg")}   # noqa: E731
        assert not jpg(da) & jpg(dc)                    # no image of seed 4 equals one of seed 3


# ----------------------------------------------------------------------------------------------
# The domain gap
# ----------------------------------------------------------------------------------------------

def _image_stats(domain: Path) -> dict:
    x = np.stack([np.asarray(Image.open(p), np.float32) / 255.0
                  for p in sorted((domain / "bounding_box_train").glob("*.jpg"))])
    mean = x.mean(axis=(0, 1, 2))
    g = x.mean(axis=3)
    lap = np.abs(4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:])
    return {"lum": float(mean.mean()), "cast": float(mean[2] - mean[0]), "sharp": float(lap.mean())}


def test_gap_zero_matches_statistics_gap_one_does_not(synthetic_pair, tmp_path):
    same = generate_synthetic_pair(tmp_path, seed=0, gap=0.0, num_train_ids=24, num_test_ids=16, height=64,
                                   width=32, progress=False)
    s0a, s0b = _image_stats(same["A"]), _image_stats(same["B"])
    s1a, s1b = _image_stats(synthetic_pair["A"]), _image_stats(synthetic_pair["B"])
    assert s0a == pytest.approx(s1a)                    # A does not depend on the gap
    # gap=0: B has A's style -- brightness, colour cast and sharpness agree closely
    assert abs(s0a["lum"] - s0b["lum"]) < 0.08
    assert abs(s0a["cast"] - s0b["cast"]) < 0.04
    assert 0.8 < s0b["sharp"] / s0a["sharp"] < 1.25
    # gap=1: B is darker, bluer and blurrier
    assert s1a["lum"] - s1b["lum"] > 0.15
    assert s1b["cast"] - s1a["cast"] > 0.06
    assert s1b["sharp"] / s1a["sharp"] < 0.6


def test_domain_styles_worked_values():
    a0, b0 = domain_styles(0.0)
    assert a0 == STYLE_A
    for f in ("brightness", "contrast", "gamma", "white_balance", "bg_texture", "blur", "jpeg_quality",
              "palette_weights", "bag_p"):
        assert getattr(b0, f) == pytest.approx(getattr(STYLE_A, f)), f
    assert b0.num_cameras == 5 and a0.num_cameras == 4
    _, b1 = domain_styles(1.0)
    for f in ("brightness", "contrast", "gamma", "white_balance", "bg_clutter", "noise", "palette_weights"):
        assert getattr(b1, f) == pytest.approx(getattr(STYLE_B_REF, f)), f
    _, bh = domain_styles(0.5)
    assert bh.brightness == pytest.approx((STYLE_A.brightness + STYLE_B_REF.brightness) / 2)
    assert bh.white_balance == pytest.approx(np.sqrt(np.multiply(STYLE_A.white_balance, STYLE_B_REF.white_balance)))
    odds = math.sqrt(STYLE_A.bag_p / (1 - STYLE_A.bag_p) * STYLE_B_REF.bag_p / (1 - STYLE_B_REF.bag_p))
    assert bh.bag_p == pytest.approx(odds / (1 + odds))               # midpoint on the logit scale
    _, b2 = domain_styles(2.0)
    assert b2.gamma == pytest.approx(2 * STYLE_B_REF.gamma - STYLE_A.gamma)   # the difference doubles
    assert b2.blur > b1.blur > bh.blur > b0.blur == 1.0
    with pytest.raises(ValueError, match="gap"):
        domain_styles(-0.5)


# ----------------------------------------------------------------------------------------------
# Figures look like people
# ----------------------------------------------------------------------------------------------

def _person(**kw) -> Person:
    base = dict(pid=1, head_r=0.065, neck=0.015, torso_len=0.3, shoulder_w=0.12, waist_w=0.1, hip_w=0.1,
                leg_t=0.04, arm_t=0.03, height_frac=0.9, skin=(230, 190, 160), hair=(20, 20, 20),
                hair_style="short", upper=(200, 30, 30), upper2=(30, 30, 200), pattern="plain",
                stripe_period=0.04, long_sleeves=True, lower=(30, 30, 90), lower_type="trousers",
                shoes=(10, 10, 10))
    base.update(kw)
    return Person(**base)


def _runs(row: np.ndarray) -> int:
    return int(np.sum(np.diff(np.concatenate([[0], row.astype(int), [0]])) == 1))


def test_draw_person_has_head_torso_arms_and_two_legs():
    h, w, u, top = 400, 200, 360.0, 20.0
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw_person(img, _person(), "front", BodyFrame(cx=w / 2, top=top, u=u, ax=1.0, flip=1),
                {"stride": 0.06, "swing": 0.2, "lean": 0.0, "side_dir": 1})
    a = np.asarray(img)
    mask = a[..., 3] > 0
    rows = np.nonzero(mask.any(axis=1))[0]
    assert abs(rows[0] - top) <= 3 and abs(rows[-1] - (top + u)) <= 0.03 * u    # head top to soles
    width = mask.sum(axis=1)
    head, chest, ankle = (int(top + y * u) for y in (0.065, 0.3, 0.9))
    assert 0 < width[head] < 0.6 * width[chest]                                  # head narrower than body
    assert _runs(mask[chest]) == 1 and width[chest] > 2 * 0.12 * u                # torso + arms, one blob
    assert _runs(mask[ankle]) == 2                                                # two separate legs
    assert tuple(a[head, w // 2, :3]) == (230, 190, 160)                          # a face in a front view
    assert tuple(a[chest, w // 2, :3]) == (200, 30, 30)                           # upper clothes
    assert tuple(a[ankle, mask[ankle].argmax() + 2, :3]) == (30, 30, 90)          # trousers
    side = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw_person(side, _person(), "side", BodyFrame(cx=w / 2, top=top, u=u, ax=1.0, flip=1))
    assert (np.asarray(side)[chest, :, 3] > 0).sum() < 0.8 * width[chest]        # side views are narrower
    with pytest.raises(ValueError, match="view"):
        draw_person(img, _person(), "top", BodyFrame(cx=w / 2, top=top, u=u, ax=1.0, flip=1))


def test_contact_sheet_grid_and_content(synthetic_pair):
    root = synthetic_pair["A"]
    sheet = contact_sheet(root, n=16, per_row=4, split="bounding_box_train", pad=2)
    assert sheet.size == (4 * (32 + 2) + 2, 4 * (64 + 2) + 2)
    first_pid = min(pid for _, pid, _ in _items(root, "bounding_box_train"))
    first = sorted((cam, name) for name, pid, cam in _items(root, "bounding_box_train") if pid == first_pid)[0]
    tile = np.asarray(sheet)[2:66, 2:34]
    assert np.array_equal(tile, np.asarray(Image.open(root / "bounding_box_train" / first[1]).convert("RGB")))
    with pytest.raises(FileNotFoundError, match="no_such_split"):
        contact_sheet(root, split="no_such_split")


# ----------------------------------------------------------------------------------------------
# Reuse, errors, command line
# ----------------------------------------------------------------------------------------------

def test_reuse_when_parameters_match_error_when_they_differ(tmp_path):
    out = generate_synthetic_pair(tmp_path, seed=0, **TINY)
    marker = out["A"] / "marker.txt"
    marker.write_text("kept")
    some_jpg = next((out["B"] / "query").glob("*.jpg"))
    mtime = some_jpg.stat().st_mtime_ns
    again = generate_synthetic_pair(tmp_path, seed=0, **TINY)
    assert again == out and marker.exists() and some_jpg.stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError) as err:
        generate_synthetic_pair(tmp_path, seed=1, **TINY)
    msg = str(err.value)
    assert str(out["A"]) in msg and "seed" in msg and "overwrite" in msg
    assert marker.exists()                                          # nothing was touched
    fresh = generate_synthetic_pair(tmp_path, seed=1, overwrite=True, **TINY)
    assert not marker.exists()
    assert json.loads((fresh["B"] / "synthetic.json").read_text())["spec"]["seed"] == 1
    assert not list(tmp_path.glob(".*partial*"))                    # no temporary folders left


def test_foreign_folder_and_bad_arguments(tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "A" / "notes.txt").write_text("not ours")
    with pytest.raises(FileExistsError, match=r"synthetic\.json"):
        generate_synthetic_pair(tmp_path, **TINY)
    assert (tmp_path / "A" / "notes.txt").exists() and not (tmp_path / "B").exists()
    with pytest.raises(ValueError, match="'gap'"):
        generate_synthetic_pair(tmp_path / "x", gap=-1.0, **TINY)
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        generate_synthetic_pair(tmp_path / "x", jobs=0, **TINY)
    with pytest.raises(ValueError, match="'num_test_ids'"):
        generate_synthetic_pair(tmp_path / "x", num_test_ids=0, num_train_ids=4, progress=False)
    with pytest.raises(ValueError, match="'height'"):
        generate_synthetic_pair(tmp_path / "x", num_train_ids=4, num_test_ids=3, height=8, progress=False)


def test_cli_subprocess_and_wrapper(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--train-ids", "3", "--test-ids", "2", "--height", "32", "--width", "16",
            "--seed", "5", "--gap", "0.5", "--quiet"]
    proc = subprocess.run([sys.executable, "-m", "reid_uda_lib.data.synthetic", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    paths = json.loads(proc.stdout)
    assert paths == {"A": str(out.resolve() / "A"), "B": str(out.resolve() / "B")}
    spec = json.loads((out / "B" / "synthetic.json").read_text())["spec"]
    assert (spec["seed"], spec["gap"], spec["num_train_ids"], spec["height"]) == (5, 0.5, 3, 32)
    # a mismatch is a clear error with exit status 2
    assert main([*args[:-2], "0.7", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # the data_scripts wrapper reuses the same folder (same parameters)
    monkeypatch.setattr(sys, "argv", ["make_synthetic.py", *args])
    with pytest.raises(SystemExit) as ex:
        runpy.run_path(str(REPO / "data_scripts" / "make_synthetic.py"), run_name="__main__")
    assert ex.value.code == 0 and json.loads(capsys.readouterr().out) == paths


def test_parallel_generation_error_leaves_no_folder(tmp_path, monkeypatch):
    """With jobs=2 a domain's failure reaches the caller, and neither a partial nor a final folder is left."""
    import reid_uda_lib.data.synthetic.generator as synthetic

    def boom(out_dir, domain, *a, **k):
        if domain == "B":
            raise RuntimeError("renderer failed on B")
        return generate_domain_orig(out_dir, domain, *a, **k)

    generate_domain_orig = synthetic.generate_domain
    monkeypatch.setattr(synthetic, "generate_domain", boom)
    with pytest.raises(RuntimeError, match="renderer failed on B"):
        generate_synthetic_pair(tmp_path, seed=0, jobs=2, **TINY)
    assert not (tmp_path / "B").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]      # no partial folders
