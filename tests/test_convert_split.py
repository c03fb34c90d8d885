"""The layout converter and the camera-disjoint domain split (issue 13), on generated trees and real CUHK03."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reid_uda_lib.data import load_dataset
from reid_uda_lib.data.convert import folder_to_market, market_to_folder
from reid_uda_lib.data.split import format_report, parse_groups, split_by_cameras
from test_folder_layout import TREE, _img, make_tree

REPO = Path(__file__).resolve().parents[1]


def _rel(ds, split):
    return [(Path(p).relative_to(ds.root).as_posix(), pid, cam) for p, pid, cam in getattr(ds, split)]


def _market(root: Path, spec: dict[str, list[tuple[int, int]]]) -> Path:
    """Market tree from ``{split: [(pid, cam), ...]}``; frame numbers keep names unique."""
    for split, items in spec.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for k, (pid, cam) in enumerate(items):
            _img(root / split / f"{pid if pid < 0 else f'{pid:04d}'}_c{cam}s1_{k:06d}_00.jpg")
    return root


# ids 1-4 in train; test ids 5 (cams 1,2), 6 (cams 1,3), 7 (cams 4,5), 8 (cam 3 only in gallery, query cam 3)
MARKET = {
    "bounding_box_train": [(1, 1), (1, 2), (2, 2), (2, 3), (3, 4), (3, 5), (4, 1), (4, 5)],
    "query": [(5, 1), (6, 1), (7, 4), (8, 3)],
    "bounding_box_test": [(5, 2), (5, 1), (6, 3), (7, 5), (7, 4), (8, 3), (0, 2), (-1, 1)],
}


def test_market_to_folder_and_back(tmp_path, capsys):
    src = _market(tmp_path / "m", MARKET)
    counts = market_to_folder(src, tmp_path / "f")
    assert counts == {"junk_dropped": 1, "train": 8, "query": 4, "gallery": 7}
    assert (tmp_path / "f" / "gallery" / "0000" / "0000_c2s1_000006_00.jpg").is_file()
    m, f = load_dataset(src), load_dataset(tmp_path / "f")
    assert f.layout == "folder" and f.id_names == ("0000", "0001", "0002", "0003", "0004", "0005", "0006", "0007",
                                                   "0008")
    for split in ("train", "query", "gallery"):   # same files, same order, same cameras
        assert [Path(p).name for p, _, _ in getattr(f, split)] == [Path(p).name for p, _, _ in getattr(m, split)]
        assert [c for _, _, c in getattr(f, split)] == [c for _, _, c in getattr(m, split)]
    assert [p for _, p, _ in f.train] == [p for _, p, _ in m.train]
    back = folder_to_market(tmp_path / "f", tmp_path / "m2")
    assert back == {"cameras": 5, "train": 8, "query": 4, "gallery": 7}
    m2 = load_dataset(tmp_path / "m2")
    assert [(p, c) for _, p, c in m2.query] == [(p, c) for _, p, c in m.query]
    assert (tmp_path / "m2" / "identities.csv").read_text().splitlines()[:2] == ["market_pid,person_folder", "0,0000"]
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        market_to_folder(src, tmp_path / "f")


def test_folder_with_names_to_market_and_the_script(tmp_path, capsys):
    import runpy
    root = make_tree(tmp_path / "mine")
    script = runpy.run_path(str(REPO / "data_scripts" / "convert_layout.py"))
    assert script["main"](["to-market", str(root), str(tmp_path / "m"), "--cam-pattern", r"cam(?P<cam>\d+)"]) == 0
    assert "ok: wrote" in capsys.readouterr().out
    m = load_dataset(tmp_path / "m")
    assert sorted(Path(p).name for p, _, _ in m.train)[:2] == ["0001_c1s1_000000_00.jpg", "0001_c2s1_000001_00.jpg"]
    assert [p for _, p, _ in m.gallery] == [4, 4, 5, 6]              # dave, dave, erin, zed -> 4, 4, 5, 6
    rows = (tmp_path / "m" / "identities.csv").read_text().splitlines()
    assert rows == ["market_pid,person_folder", "1,alice", "2,bob", "3,carol", "4,dave", "5,erin", "6,zed"]
    files_csv = (tmp_path / "m" / "files.csv").read_text()
    assert "bounding_box_train/0003_c2s1_000004_00.png,train/carol/cam2_e.png" in files_csv
    # no camera pattern: all camera 1; an unlabelled train cannot be written
    assert folder_to_market(root, tmp_path / "nocam")["cameras"] == 0
    assert {c for _, _, c in load_dataset(tmp_path / "nocam", check=False).gallery} == {0}
    unl = make_tree(tmp_path / "u", {"query": TREE["query"], "gallery": TREE["gallery"]}, loose_train=["x.jpg"])
    assert script["main"](["to-market", str(unl), str(tmp_path / "m3")]) == 1
    assert "holds unlabelled images (no person folders)" in capsys.readouterr().err


def test_split_by_cameras_generated(tmp_path):
    src = _market(tmp_path / "m", MARKET)
    rep = split_by_cameras(src, tmp_path / "out", parse_groups("1,2,3:4,5"), names=["A", "B"])
    a, b = rep["domains"]["A"], rep["domains"]["B"]
    # A: train ids 1 (c1,c2), 2 (c2,c3), 4 (c1); query 5 (c1: gallery c2 ok), 6 (c1: gallery c3 ok),
    #    8 (c3: gallery only c3 -> dropped); gallery 5,5,6,8,0
    assert a == {"cameras": [1, 2, 3], "train_images": 5, "train_ids": 3, "query_images": 2, "query_ids": 2,
                 "gallery_images": 5, "gallery_ids": 4, "dropped_query_images": 1, "dropped_query_ids": 1}
    assert b == {"cameras": [4, 5], "train_images": 3, "train_ids": 2, "query_images": 1, "query_ids": 1,
                 "gallery_images": 2, "gallery_ids": 1, "dropped_query_images": 0, "dropped_query_ids": 0}
    assert rep["shared_train_ids"] == 1 and rep["unused_cameras"] == []     # id 4: c1 (A) and c5 (B)
    assert json.loads((tmp_path / "out" / "split.json").read_text()) == rep
    da, db = load_dataset(tmp_path / "out" / "A"), load_dataset(tmp_path / "out" / "B")   # checks pass
    assert {c for _, _, c in da.train + da.query + da.gallery} == {0, 1, 2}
    assert {c for _, _, c in db.train + db.query + db.gallery} == {3, 4}
    assert "| A | 1,2,3 | 5 | 3 | 2 | 2 | 5 | 4 | 1 | 1 |" in format_report(rep)


@pytest.mark.parametrize("groups, match", [
    ("1,2:2,3", r"camera\(s\) \[2\] appear in two groups"),
    ("1,2:7", r"camera\(s\) \[7\] of the groups are not in the dataset; its cameras are \[1, 2, 3, 4, 5\]"),
    ("1,2,3,4,5", r"need at least two non-empty camera groups"),
    ("4:5", r"domain 'cams4' \(cameras \[4\]\) would have no query_images"),
    ("1,x:2", r"camera groups must look like '1,2:3,4,5'"),
])
def test_split_by_cameras_errors(tmp_path, groups, match):
    src = _market(tmp_path / "m", MARKET)
    with pytest.raises(ValueError, match=match):
        split_by_cameras(src, tmp_path / "out", parse_groups(groups))
    assert not (tmp_path / "out").exists()      # nothing written on error


@pytest.mark.realdata
def test_split_real_cuhk03_by_camera_pairs(cuhk03_root, tmp_path, capsys):
    import runpy
    script = runpy.run_path(str(REPO / "data_scripts" / "split_by_cameras.py"))
    out = tmp_path / "split"
    assert script["main"]([str(cuhk03_root), "--out", str(out), "--groups", "1,2:3,4,5,6,7,8,9,10",
                           "--names", "pair1,pairs2-5", "--mode", "hardlink"]) == 0
    assert "| pair1 | 1,2 | 4346 | 449 | 788 | 394 | 3043 | 394 | 0 | 0 |" in capsys.readouterr().out
    rep = json.loads((out / "split.json").read_text())
    assert rep["domains"]["pairs2-5"] == {
        "cameras": [3, 4, 5, 6, 7, 8, 9, 10], "train_images": 3034, "train_ids": 318, "query_images": 607,
        "query_ids": 306, "gallery_images": 2274, "gallery_ids": 306, "dropped_query_images": 5,
        "dropped_query_ids": 0}
    assert rep["shared_train_ids"] == 0     # CUHK03 sees each person with one camera pair: identity-disjoint
    a, b = load_dataset(out / "pair1"), load_dataset(out / "pairs2-5")
    assert (a.num_train_imgs + b.num_train_imgs, a.num_gallery_imgs + b.num_gallery_imgs) == (7380, 5317)
    assert not {p for _, p, _ in a.query} & {p for _, p, _ in b.query}
