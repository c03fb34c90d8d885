"""prepare_dataset / data_scripts/prepare_dataset.py on generated tiny archives in Market layout."""
from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from reid_uda_lib.data import load_dataset
from reid_uda_lib.data.prepare import ChecksumError, KNOWN_CHECKSUMS, extract_archive, prepare_dataset

REPO = Path(__file__).resolve().parents[1]
FILES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c6s1_000001_01.jpg"],
    "query": ["0001_c1s1_001051_00.jpg"],
    "bounding_box_test": ["0001_c2s1_000001_01.jpg", "0000_c1s1_000100_01.jpg", "-1_c3s1_000402_03.jpg"],
}


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 8), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


def _members(top: str) -> dict[str, bytes]:
    jpg = _jpeg_bytes()
    return {f"{top}/{split}/{name}": jpg for split, names in FILES.items() for name in names}


def _zip(path: Path, top="Market-1501-v15.09.15", extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in {**_members(top), **(extra or {})}.items():
            zf.writestr(name, data)
    return path


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_zip_with_checksum(tmp_path):
    archive = _zip(tmp_path / "market.zip", extra={"__MACOSX/Market-1501-v15.09.15/._x.jpg": b"junk"})
    lines = []
    ds = prepare_dataset("Market1501", archive, tmp_path / "out", sha256=_sha256(archive).upper(), log=lines.append)
    assert (ds.num_train_imgs, ds.num_train_pids, ds.num_query_imgs, ds.num_gallery_imgs) == (3, 2, 1, 2)
    assert Path(ds.root) == tmp_path / "out" / "Market-1501-v15.09.15"
    assert not (tmp_path / "out" / "__MACOSX").exists()
    assert any("subset" in line and "# images" in line for line in lines)  # the summary was printed
    assert load_dataset("market1501", root=tmp_path / "out").train == ds.train


def test_prepare_wrong_checksum_names_file_and_digests(tmp_path):
    archive = _zip(tmp_path / "market.zip")
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        prepare_dataset("market1501", archive, tmp_path / "out", sha256=wrong, log=None)
    msg = str(info.value)
    assert "market.zip" in msg and wrong in msg and _sha256(archive) in msg
    assert not (tmp_path / "out").exists()  # nothing extracted
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        prepare_dataset("market1501", archive, tmp_path / "out", sha256="abc", log=None)


def test_known_archive_name_is_checked_against_published_md5(tmp_path):
    fake = _zip(tmp_path / "Market-1501-v15.09.15.zip")  # our tiny zip under the official name
    algorithm, digest, _ = KNOWN_CHECKSUMS["Market-1501-v15.09.15.zip"]
    assert algorithm == "md5" and len(digest) == 32
    with pytest.raises(ChecksumError, match=rf"md5 of .*Market-1501-v15\.09\.15\.zip .*expected {digest}.*"
                                            r"--skip-known-checksum"):
        prepare_dataset("market1501", fake, tmp_path / "out", log=None)
    ds = prepare_dataset("market1501", fake, tmp_path / "out", check_known=False, log=None)
    assert ds.num_train_imgs == 3


def test_prepare_tar_gz_cuhk03(tmp_path):
    archive = _tar_gz(tmp_path / "cuhk03.tar.gz", _members("cuhk03"))
    ds = prepare_dataset("cuhk03", archive, tmp_path / "out", log=None)
    assert ds.name == "cuhk03" and ds.num_gallery_pids == 2


def test_prepare_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"archive not found: .*nope\.zip"):
        prepare_dataset("market1501", tmp_path / "nope.zip", tmp_path / "out", log=None)
    junk = tmp_path / "data.bin"
    junk.write_bytes(b"plain bytes")
    with pytest.raises(ValueError, match=r"data\.bin is not a zip or tar archive"):
        prepare_dataset("market1501", junk, tmp_path / "out", log=None)
    with pytest.raises(ValueError, match=r"unknown dataset name 'viper'"):
        prepare_dataset("viper", junk, tmp_path / "out", log=None)
    wrong = _zip(tmp_path / "duke.zip", top="something")  # extracts fine, but no DukeMTMC folder inside
    with pytest.raises(FileNotFoundError, match=r"no dukemtmc folder found"):
        prepare_dataset("dukemtmc", wrong, tmp_path / "out2", log=None)


def test_extraction_stays_inside_out_dir(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../escaped.txt", b"x")
    extract_archive(z, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and (tmp_path / "out" / "escaped.txt").exists()
    t = _tar_gz(tmp_path / "evil.tar.gz", {"../escaped2.txt": b"x"})
    with pytest.raises(ValueError, match="escaped2.txt"):
        extract_archive(t, tmp_path / "out")
    assert not (tmp_path / "escaped2.txt").exists()


def _script():
    spec = importlib.util.spec_from_file_location("prepare_dataset_script", REPO / "data_scripts" / "prepare_dataset.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_command_line(tmp_path, capsys):
    script = _script()
    archive = _zip(tmp_path / "market.zip")
    out = tmp_path / "out"
    assert script.main(["market1501", str(archive), "--out", str(out), "--sha256", _sha256(archive),
                        "--verify", "error"]) == 0
    printed = capsys.readouterr().out
    assert "train" in printed and "ok: load it with" in printed and "market1501" in printed
    assert script.main(["market1501", str(archive), "--out", str(out), "--sha256", "1" * 64]) == 1
    assert "error: sha256 of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["prid", str(archive), "--out", str(out)])
