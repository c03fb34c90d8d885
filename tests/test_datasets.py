"""Layout parsers and load_dataset: the real CUHK03 tree and tiny trees in the exact naming schemes."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

from reid_uda_lib.data import CorruptImageError, DatasetLayoutError, ReidDataset, load_dataset


def _jpg(path: Path, color=(120, 30, 200)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 8), color).save(path, "JPEG")


def _market_tree(root: Path, files: dict[str, list[str]]) -> Path:
    for split, names in files.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for n in names:
            _jpg(root / split / n)
    return root


MARKET_FILES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c6s1_000001_01.jpg",
                           "0007_c3s1_000002_02.jpg", "0007_c3s1_000003_02.jpg"],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c4s1_000700_00.jpg"],
    "bounding_box_test": ["0001_c2s1_000001_01.jpg", "0003_c5s1_000002_01.jpg", "0000_c1s1_000100_01.jpg",
                          "0000_c6s1_000200_02.jpg", "-1_c1s1_000401_03.jpg", "-1_c3s1_000402_03.jpg"],
}


def _msmt_tree(root: Path, train_dir: str, test_dir: str) -> Path:
    lists = {
        "list_train.txt": (train_dir, [("0000/0000_000_01_0303morning_0008_0.jpg", 0),
                                       ("0000/0000_001_05_0303morning_0009_0.jpg", 0),
                                       ("0001/0001_000_15_0303noon_0010_1.jpg", 1)]),
        "list_val.txt": (train_dir, [("0001/0001_002_07_0303noon_0011_0.jpg", 1),
                                     ("0002/0002_000_02_0113morning_0001_0.jpg", 2)]),
        "list_query.txt": (test_dir, [("0000/0000_000_03_0303morning_0015_0.jpg", 0)]),
        "list_gallery.txt": (test_dir, [("0000/0000_001_10_0303morning_0016_0.jpg", 0),
                                        ("0005/0005_000_12_0302noon_0001_0.jpg", 5)]),
    }
    for list_name, (sub, entries) in lists.items():
        for rel, _ in entries:
            _jpg(root / sub / rel)
        (root / list_name).write_text("".join(f"{rel} {pid}\n" for rel, pid in entries))
    return root


# ---------------------------------------------------------------------------------------------- real data

@pytest.mark.realdata
def test_real_cuhk03_counts_cameras_and_relabelling(cuhk03_root):
    ds = load_dataset(cuhk03_root)
    assert isinstance(ds, ReidDataset) and ds.name == "cuhk03"
    assert (ds.num_train_imgs, ds.num_train_pids) == (7380, 767)
    assert (ds.num_query_imgs, ds.num_query_pids) == (1400, 700)
    assert (ds.num_gallery_imgs, ds.num_gallery_pids) == (5317, 700)
    assert ds.num_train_cams == ds.num_query_cams == ds.num_gallery_cams == 10
    for items in (ds.train, ds.query, ds.gallery):
        assert {c for _, _, c in items} == set(range(10))
    # train labels are 0..766; query/gallery keep the file names' ids; train and test ids are disjoint
    assert sorted({p for _, p, _ in ds.train}) == list(range(767))
    for path, pid, cam in ds.query[:50] + ds.gallery[:50]:
        name = Path(path).name
        assert pid == int(name[:4]) and cam == int(name.split("_c")[1].split("s")[0]) - 1
    assert {p for _, p, _ in ds.query} <= {p for _, p, _ in ds.gallery}
    raw_train_ids = {int(Path(p).name[:4]) for p, _, _ in ds.train}
    assert raw_train_ids.isdisjoint({p for _, p, _ in ds.gallery})
    # relabelling preserves the order of the original ids
    first = {}
    for path, label, _ in ds.train:
        first.setdefault(int(Path(path).name[:4]), label)
    assert [first[k] for k in sorted(first)] == list(range(767))
    table = ds.summary()
    assert "7380" in table and "5317" in table and "1400" in table and "cuhk03" in table
    assert "767" in repr(ds)


@pytest.mark.realdata
def test_real_cuhk03_by_name_case_insensitive(cuhk03_root):
    by_name = load_dataset("CUHK03", root=cuhk03_root.parent)
    by_path = load_dataset(str(cuhk03_root))
    assert Path(by_name.root) == cuhk03_root
    assert by_name.train == by_path.train and by_name.gallery == by_path.gallery


# ---------------------------------------------------------------------------------------------- Market / Duke

def test_market_rules_junk_dropped_distractors_kept(tmp_path):
    _market_tree(tmp_path / "Market-1501-v15.09.15", MARKET_FILES)
    (tmp_path / "Market-1501-v15.09.15" / "bounding_box_test" / "Thumbs.db").write_bytes(b"x")  # ignored
    _jpg(tmp_path / "Market-1501-v15.09.15" / "query" / "._0001_c1s1_001051_00.jpg")  # macOS fork: ignored
    ds = load_dataset("market1501", root=tmp_path)
    assert ds.name == "market1501"
    assert (ds.num_train_imgs, ds.num_train_pids, ds.num_train_cams) == (5, 2, 4)
    assert (ds.num_query_imgs, ds.num_query_pids) == (2, 2)
    assert (ds.num_gallery_imgs, ds.num_gallery_pids) == (4, 3)  # 2 junk dropped; pid 0 kept
    assert sorted(p for _, p, _ in ds.gallery) == [0, 0, 1, 3]
    labels = {Path(p).name: (pid, cam) for p, pid, cam in ds.train}
    assert labels["0002_c1s1_000451_03.jpg"] == (0, 0)
    assert labels["0007_c6s1_000001_01.jpg"] == (1, 5)
    assert {Path(p).name: (pid, cam) for p, pid, cam in ds.query}["0003_c4s1_000700_00.jpg"] == (3, 3)


@pytest.mark.parametrize("folder", ["market1501", "MARKET-1501", "market1501/Market-1501-v15.09.15"])
def test_market_common_folder_names(tmp_path, folder):
    _market_tree(tmp_path / folder, MARKET_FILES)
    for spec in ("market1501", "Market-1501", "MARKET"):
        ds = load_dataset(spec, root=tmp_path)
        assert Path(ds.root) == tmp_path / folder and ds.num_train_imgs == 5


def test_market_camera_out_of_range_named_vs_generic(tmp_path):
    files = {k: list(v) for k, v in MARKET_FILES.items()}
    files["bounding_box_train"].append("0002_c7s1_000001_01.jpg")
    root = _market_tree(tmp_path / "market1501", files)
    with pytest.raises(DatasetLayoutError, match=r"0002_c7s1_000001_01\.jpg.*c7.*1\.\.6"):
        load_dataset("market1501", root=tmp_path)
    assert load_dataset(root).num_train_cams == 5  # a generic Market-layout folder accepts any camera >= 1


def test_dukemtmc_naming(tmp_path):
    _market_tree(tmp_path / "DukeMTMC-reID", {
        "bounding_box_train": ["0005_c2_f0046985.jpg", "0005_c8_f0047000.jpg", "0008_c1_f0000100.jpg"],
        "query": ["0010_c3_f0012345.jpg"],
        "bounding_box_test": ["0010_c5_f0099999.jpg", "0011_c7_f0000001.jpg"]})
    ds = load_dataset("DukeMTMC-reID", root=tmp_path)
    assert ds.name == "dukemtmc"
    assert sorted((pid, cam) for _, pid, cam in ds.train) == [(0, 1), (0, 7), (1, 0)]
    assert sorted((pid, cam) for _, pid, cam in ds.gallery) == [(10, 4), (11, 6)]
    assert load_dataset("duke", root=tmp_path).train == ds.train


def test_generic_path_two_digit_cameras_and_relative_root(tmp_path):
    _market_tree(tmp_path / "A", {"bounding_box_train": ["0001_c10s1_000001_00.jpg", "0004_c2s1_000002_00.jpg"],
                                  "query": ["0100_c1s1_000003_00.jpg"],
                                  "bounding_box_test": ["0100_c12s1_000004_00.jpg"]})
    ds = load_dataset("A", root=tmp_path)
    assert ds.name == "A"
    assert sorted((pid, cam) for _, pid, cam in ds.train) == [(0, 9), (1, 1)]
    assert ds.gallery[0][1:] == (100, 11)
    assert load_dataset(tmp_path / "A").train == ds.train


def test_default_root_from_environment(tmp_path, monkeypatch):
    _market_tree(tmp_path / "cuhk03", MARKET_FILES)
    monkeypatch.setenv("REID_UDA_DATA_ROOT", str(tmp_path))
    assert load_dataset("cuhk03").num_gallery_imgs == 4


def test_cuhk03_np_prefers_detected(tmp_path):
    _market_tree(tmp_path / "cuhk03-np" / "labeled", MARKET_FILES)
    _market_tree(tmp_path / "cuhk03-np" / "detected", MARKET_FILES)
    assert Path(load_dataset("cuhk03", root=tmp_path).root) == tmp_path / "cuhk03-np" / "detected"


# ---------------------------------------------------------------------------------------------- MSMT17

@pytest.mark.parametrize("version,train_dir,test_dir", [("MSMT17_V1", "train", "test"),
                                                        ("MSMT17_V2", "mask_train_v2", "mask_test_v2"),
                                                        ("MSMT17_V2", "mask_train_V2", "mask_test_V2")])
def test_msmt17_v1_v2(tmp_path, version, train_dir, test_dir):
    _msmt_tree(tmp_path / "msmt17" / version, train_dir, test_dir)
    ds = load_dataset("msmt17", root=tmp_path)
    assert ds.name == "msmt17" and Path(ds.root) == tmp_path / "msmt17" / version
    # train = list_train + list_val, relabelled 0..n-1; camera = third '_' field, 0-based
    assert sorted((Path(p).name.split("_")[2], pid, cam) for p, pid, cam in ds.train) == [
        ("01", 0, 0), ("02", 2, 1), ("05", 0, 4), ("07", 1, 6), ("15", 1, 14)]
    assert all(Path(p).is_file() and f"/{train_dir}/" in p for p, _, _ in ds.train)
    assert [(pid, cam) for _, pid, cam in ds.query] == [(0, 2)]
    assert sorted((pid, cam) for _, pid, cam in ds.gallery) == [(0, 9), (5, 11)]
    assert load_dataset(tmp_path / "msmt17" / version).train == ds.train  # by path too


def test_msmt17_prefers_v1_when_both_present(tmp_path):
    _msmt_tree(tmp_path / "MSMT17_V2", "mask_train_v2", "mask_test_v2")
    _msmt_tree(tmp_path / "MSMT17_V1", "train", "test")
    assert Path(load_dataset("msmt17", root=tmp_path).root).name == "MSMT17_V1"


def test_msmt17_errors(tmp_path):
    root = _msmt_tree(tmp_path / "MSMT17_V1", "train", "test")
    (root / "list_val.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"list_val\.txt") as info:
        load_dataset("msmt17", root=tmp_path)
    assert "list_gallery.txt" in str(info.value)  # the expected layout is shown
    (root / "list_val.txt").write_text("0002/0002_000_02_0113morning_0001_0.jpg\n")  # no pid
    with pytest.raises(DatasetLayoutError, match=r"list_val\.txt, line 1"):
        load_dataset("msmt17", root=tmp_path)
    (root / "list_val.txt").write_text("0009/0009_000_02_0113morning_0001_0.jpg 9\n")  # not on disk
    with pytest.raises(DatasetLayoutError, match=r"missing under .*train.*0009_000_02"):
        load_dataset("msmt17", root=tmp_path)


# ---------------------------------------------------------------------------------------------- errors

def test_missing_folder_names_it_and_shows_layout(tmp_path):
    files = {k: v for k, v in MARKET_FILES.items() if k != "query"}
    _market_tree(tmp_path / "Market-1501-v15.09.15", files)
    for call in (lambda: load_dataset("market1501", root=tmp_path),
                 lambda: load_dataset(tmp_path / "Market-1501-v15.09.15")):
        with pytest.raises(DatasetLayoutError) as info:
            call()
        msg = str(info.value)
        assert "missing query/" in msg and "Market-1501-v15.09.15" in msg
        assert "├── bounding_box_train/" in msg and "└── bounding_box_test/" in msg
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_no_dataset_under_root(tmp_path):
    (tmp_path / "something_else").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"no dukemtmc folder found under .*DukeMTMC-reID") as info:
        load_dataset("dukemtmc", root=tmp_path)
    assert "bounding_box_test/" in str(info.value)
    with pytest.raises(DatasetLayoutError, match=r"data root folder not found: .*nowhere"):
        load_dataset("market1501", root=tmp_path / "nowhere")
    with pytest.raises(DatasetLayoutError, match=r"dataset folder not found: .*nowhere"):
        load_dataset(tmp_path / "nowhere")


def test_parent_folder_hints_at_the_dataset_below(tmp_path):
    _market_tree(tmp_path / "extracted" / "Market-1501-v15.09.15", MARKET_FILES)
    with pytest.raises(DatasetLayoutError, match=r"not a dataset folder[\s\S]*Market-1501-v15\.09\.15"):
        load_dataset(tmp_path / "extracted")


def test_empty_split_folder(tmp_path):
    files = dict(MARKET_FILES, query=[])
    _market_tree(tmp_path / "market1501", files)
    with pytest.raises(DatasetLayoutError, match=r"no images in .*query.*PPPP_cC"):
        load_dataset("market1501", root=tmp_path)


def test_file_names_not_matching_the_scheme(tmp_path):
    files = {k: list(v) for k, v in MARKET_FILES.items()}
    files["bounding_box_test"] += ["img_0001.jpg", "person3.jpg"]
    _market_tree(tmp_path / "market1501", files)
    with pytest.raises(DatasetLayoutError, match=r"2 file\(s\) in .*bounding_box_test.*PPPP_cC.*'img_0001\.jpg'"):
        load_dataset("market1501", root=tmp_path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"verify must be one of .*'maybe'"):
        load_dataset("market1501", root=tmp_path, verify="maybe")


# ---------------------------------------------------------------------------------------------- verify

def _corrupt_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = _market_tree(tmp_path / "market1501", MARKET_FILES)
    garbage = root / "bounding_box_test" / "0003_c6s1_000009_01.jpg"
    garbage.write_bytes(b"this is not a jpeg at all" * 10)
    # a truncated JPEG: a valid header, then the data stops (a real image, so there is data to lose)
    truncated = root / "bounding_box_train" / "0009_c1s1_000001_01.jpg"
    big = Image.effect_noise((64, 128), 60).convert("RGB")
    big.save(truncated, "JPEG")
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return root, garbage, truncated


def test_verify_error_names_the_file(tmp_path):
    root, garbage, truncated = _corrupt_tree(tmp_path)
    assert load_dataset("market1501", root=tmp_path).num_gallery_imgs == 5  # verify="none" trusts the files
    with pytest.raises(CorruptImageError) as info:
        load_dataset("market1501", root=tmp_path, verify="error")
    msg = str(info.value)
    assert (truncated.name in msg or garbage.name in msg) and "2 unreadable image(s)" in msg
    garbage.unlink()
    with pytest.raises(CorruptImageError, match=truncated.name):
        load_dataset("market1501", root=tmp_path, verify="error")


def test_verify_skip_drops_and_warns_once(tmp_path):
    root, garbage, truncated = _corrupt_tree(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset("market1501", root=tmp_path, verify="skip")
    ours = [w for w in caught if "unreadable" in str(w.message)]
    assert len(ours) == 1
    assert "skipped 2 unreadable image(s)" in str(ours[0].message)
    assert garbage.name in str(ours[0].message) and truncated.name in str(ours[0].message)
    assert (ds.num_train_imgs, ds.num_train_pids) == (5, 2)  # pid 9's only image dropped
    assert sorted({p for _, p, _ in ds.train}) == [0, 1]  # labels stay contiguous
    assert ds.num_gallery_imgs == 4
    assert all(Path(p).name not in (garbage.name, truncated.name) for p, _, _ in ds.train + ds.gallery)


def test_verify_clean_tree_passes_without_warning(tmp_path):
    _market_tree(tmp_path / "market1501", MARKET_FILES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset("market1501", root=tmp_path, verify="error")
    assert ds.num_train_imgs == 5


def test_root_may_be_the_dataset_folder_only_when_named_so(tmp_path):
    market = _market_tree(tmp_path / "Market-1501-v15.09.15", MARKET_FILES)
    assert Path(load_dataset("market1501", root=market).root) == market
    other = _market_tree(tmp_path / "A", MARKET_FILES)  # Market layout, but not named like DukeMTMC
    with pytest.raises(DatasetLayoutError, match="no dukemtmc folder found"):
        load_dataset("dukemtmc", root=other)


def test_path_objects_are_always_paths(tmp_path, monkeypatch):
    _market_tree(tmp_path / "cuhk03", MARKET_FILES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REID_UDA_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert load_dataset(Path("cuhk03")).name == "cuhk03"
    assert load_dataset("./cuhk03").num_train_imgs == 5
    with pytest.raises(DatasetLayoutError, match=r"data root folder not found: .*elsewhere"):
        load_dataset("cuhk03")  # a bare name is looked up under the data root
