"""The folder-per-person layout (issue 13): identities from folder names, cameras from a file-name pattern,
an unlabelled target, layout detection, and the structural checks ``load_dataset`` runs."""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import pytest
from PIL import Image

from reid_uda_lib.data import DatasetCheckError, DatasetLayoutError, load_dataset
from reid_uda_lib.data.layouts import detect_layout

# person -> file names; cameras in the names as "cam<N>"
TREE = {
    "train": {"alice": ["cam1_a.jpg", "cam2_b.jpg"], "bob": ["cam1_c.jpg", "cam3_d.jpg"],
              "carol": ["cam2_e.png"]},
    "query": {"dave": ["cam1_q1.jpg"], "erin": ["cam2_q2.jpg"]},
    "gallery": {"dave": ["cam2_g1.jpg", "cam1_g2.jpg"], "erin": ["cam3_g3.jpg"], "zed": ["cam1_g4.jpg"]},
}


def _img(path: Path, size=(32, 64)) -> None:
    """A flat image whose colour depends on its path: distinct files have distinct contents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    color = tuple(hashlib.sha1(path.as_posix().encode()).digest()[:3])
    Image.new("RGB", size, color).save(path)


def make_tree(root: Path, tree: dict = TREE, loose_train: list[str] | None = None) -> Path:
    for split, persons in tree.items():
        for person, files in persons.items():
            for f in files:
                _img(root / split / person / f)
    for f in loose_train or []:
        _img(root / "train" / f)
    return root


def test_folder_layout_without_camera_pattern(tmp_path):
    root = make_tree(tmp_path / "mine")
    assert detect_layout(root) == "folder"
    ds = load_dataset(root)
    assert ds.layout == "folder" and ds.name == "mine"
    assert ds.id_names == ("alice", "bob", "carol", "dave", "erin", "zed")  # sorted over all splits
    # sorted by (person, file name); train pids relabelled 0..n-1; no camera: -1
    assert [(Path(p).relative_to(root).as_posix(), pid, cam) for p, pid, cam in ds.train] == [
        ("train/alice/cam1_a.jpg", 0, -1), ("train/alice/cam2_b.jpg", 0, -1), ("train/bob/cam1_c.jpg", 1, -1),
        ("train/bob/cam3_d.jpg", 1, -1), ("train/carol/cam2_e.png", 2, -1)]
    assert [(pid, cam) for _, pid, cam in ds.query] == [(3, -1), (4, -1)]
    assert [ds.id_names[pid] for _, pid, _ in ds.gallery] == ["dave", "dave", "erin", "zed"]
    assert not ds.has_cameras and ds.labelled_train
    assert (ds.num_train_pids, ds.num_query_pids, ds.num_gallery_pids) == (3, 2, 3)
    assert ds.num_gallery_cams == 0


def test_folder_layout_with_camera_pattern_argument_and_settings_file(tmp_path):
    root = make_tree(tmp_path / "mine")
    ds = load_dataset(root, cam_pattern=r"cam(?P<cam>\d+)")
    assert [cam for _, _, cam in ds.train] == [0, 1, 0, 2, 1]      # cameras "1","2","3" -> 0, 1, 2
    assert [cam for _, _, cam in ds.gallery] == [0, 1, 2, 0]   # dave: cam1_g2, cam2_g1; erin; zed
    assert ds.has_cameras and ds.num_train_cams == 3
    (root / "reid_dataset.json").write_text(json.dumps({"cam_pattern": r"cam(?P<cam>\d+)"}))
    assert load_dataset(root).train == ds.train                     # the folder's own setting
    # camera names that are not all digits: string order
    assert [c for _, _, c in load_dataset(root, cam_pattern=r"_(?P<cam>[a-z])").train] == [0, 1, 2, 3, 4]


def test_camera_pattern_errors_name_the_file_and_the_group(tmp_path):
    root = make_tree(tmp_path / "mine")
    with pytest.raises(ValueError, match=r"no named group 'cam'"):
        load_dataset(root, cam_pattern=r"cam(\d+)")
    with pytest.raises(ValueError, match=r"not a valid regular expression"):
        load_dataset(root, cam_pattern=r"cam(?P<cam>\d+")
    with pytest.raises(DatasetLayoutError, match=r"6 image\(s\) in .* do not match the camera pattern "
                                                 r"'cam\(\?P<cam>\\d\)_\[a-e\]' [\s\S]*"
                                                 r"first: .*query/dave/cam1_q1\.jpg"):
        load_dataset(root, cam_pattern=r"cam(?P<cam>\d)_[a-e]")   # matches the 5 train names only
    (root / "reid_dataset.json").write_text(json.dumps({"cams": "x"}))
    with pytest.raises(DatasetLayoutError, match=r"reid_dataset.json: expected a JSON object with the key"):
        load_dataset(root)
    with pytest.raises(ValueError, match="folder-per-person layout only"):
        _img(tmp_path / "m" / "bounding_box_train" / "0001_c1s1_000001_00.jpg")
        load_dataset(tmp_path / "m", cam_pattern=r"c(?P<cam>\d)")


def test_unlabelled_target(tmp_path):
    tree = {k: v for k, v in TREE.items() if k != "train"}
    root = make_tree(tmp_path / "target", tree, loose_train=["x2.jpg", "x1.jpg", "x3.jpg"])
    ds = load_dataset(root)
    assert [Path(p).name for p, _, _ in ds.train] == ["x1.jpg", "x2.jpg", "x3.jpg"]
    assert {pid for _, pid, _ in ds.train} == {-1} and not ds.labelled_train and ds.num_train_pids == 0
    assert ds.id_names == ("dave", "erin", "zed")
    # it can be a target, never a source
    from reid_uda_lib.data.check import require_role
    require_role(ds, "target", cross_camera_only=False)
    with pytest.raises(DatasetCheckError, match=r"camera ids are absent[\s\S]*evaluation.cross_camera_only=false"):
        require_role(ds, "target")          # no camera ids: the default protocol is refused before training
    with pytest.raises(DatasetCheckError, match=r"cannot serve as the source: its training images have no identities"):
        require_role(ds, "source")


def test_layout_errors(tmp_path):
    root = make_tree(tmp_path / "a", {"query": {}, "gallery": TREE["gallery"]})
    _img(root / "query" / "loose.jpg")
    with pytest.raises(DatasetLayoutError,
                       match=r"query holds 1 image\(s\) directly .*loose.jpg.* one folder per person"):
        load_dataset(root)
    mixed = make_tree(tmp_path / "b", {"train": {"alice": ["1.jpg"]}}, loose_train=["2.jpg"])
    with pytest.raises(DatasetLayoutError, match=r"also holds person folders \('alice'"):
        load_dataset(mixed)
    (tmp_path / "c" / "train" / "alice").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"no images found in .*c/\{train,query,gallery\}/<person>/"):
        load_dataset(tmp_path / "c")


def test_query_id_missing_from_gallery_fails_at_load(tmp_path):
    tree = dict(TREE, query={"dave": ["cam1_q1.jpg"], "frank": ["cam1_q9.jpg", "cam2_q8.jpg"]})
    root = make_tree(tmp_path / "mine", tree)
    with pytest.raises(DatasetCheckError, match=r"1 query identity has no image in the gallery \(2 query images "
                                                r"cannot be evaluated\): 'frank'[\s\S]*reid_uda_lib check"):
        load_dataset(root)
    ds = load_dataset(root, check=False)        # the check can be skipped explicitly
    assert ds.num_query_imgs == 3


def test_same_file_in_train_and_test_fails_at_load_and_query_in_gallery_warns(tmp_path):
    root = make_tree(tmp_path / "mine")
    ds = load_dataset(root)
    # a hand-made dataset whose gallery reuses a train file and whose query reuses a gallery file
    from reid_uda_lib.data.check import raise_on_problems
    bad = type(ds)(name="x", root="x", train=ds.train, query=ds.query, gallery=ds.gallery + [ds.train[0]])
    with pytest.raises(DatasetCheckError, match=r"1 file\(s\) are both in train and in query/gallery: .*cam1_a.jpg"):
        raise_on_problems(bad)
    dup = type(ds)(name="x", root="x", train=ds.train, query=ds.query, gallery=ds.gallery + [ds.query[0]])
    with pytest.warns(UserWarning, match=r"1 query file\(s\) are also in the gallery"):
        raise_on_problems(dup)


def test_market_and_msmt_detection_unchanged(tmp_path):
    _img(tmp_path / "m" / "bounding_box_train" / "0001_c1s1_000001_00.jpg")
    (tmp_path / "s" / "train").mkdir(parents=True)
    (tmp_path / "s" / "list_train.txt").write_text("")
    (tmp_path / "q" / "query").mkdir(parents=True)
    assert detect_layout(tmp_path / "m") == "market"
    assert detect_layout(tmp_path / "s") == "msmt"       # MSMT17 V1 also has train/
    assert detect_layout(tmp_path / "q") == "market"     # a Market tree missing its bounding_box_* folders
    assert detect_layout(tmp_path) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DatasetLayoutError, match=r"missing bounding_box_train/"):
            load_dataset(tmp_path / "q")
