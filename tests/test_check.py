"""``check_dataset`` and ``python -m reid_uda_lib check`` (issue 13): output, problems and exit codes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


from reid_uda_lib.cli import main as cli_main
from reid_uda_lib.config import get_preset
from reid_uda_lib.data import check_dataset
from reid_uda_lib.data.problems import RoleNeeds
from test_folder_layout import TREE, _img, make_tree

REPO = Path(__file__).resolve().parents[1]
#: A run small enough for the 3-identity TREE: P = 8 // 4 = 2 identities per batch, DBSCAN clusters of 2 images
SMALL = {"data.batch_size": 8, "data.num_instances": 4, "uda.min_samples": 2}
SMALL_ARGS = ["--preset", "tiny", *[x for k, v in SMALL.items() for x in ("--set", f"{k}={v}")]]
NEEDS = RoleNeeds.from_config(get_preset("tiny", **SMALL))


def _levels(report) -> list[tuple[str, str]]:
    return [(p.level, p.message) for p in report.problems]


def test_good_folder_with_cameras(tmp_path, capsys):
    root = make_tree(tmp_path / "mine")
    report = check_dataset(root, cam_pattern=r"cam(?P<cam>\d+)", needs=NEEDS)
    assert report.ok and report.layout == "folder" and report.problems == []
    assert report.images_checked == 11
    assert report.roles()["source"] == (True, "3 labelled training identities")
    assert report.roles()["target"] == (True, "5 training images, cross-camera evaluation")
    text = report.text()
    assert "layout:  folder per person" in text
    # split, ids, images, cameras, images per id min/median/max
    assert "  train         3        5        3   1/2/2" in text
    assert "  query         2        2        2   1/1/1" in text
    assert "  gallery       3        4        3   1/1/2" in text
    assert "no problems found" in text and text.endswith("result: OK (usable as source, target)")
    assert "judged for preset tiny, method sbase: a source needs 2 labelled identities" in text
    assert cli_main(["check", str(root), "--cam-pattern", r"cam(?P<cam>\d+)", *SMALL_ARGS]) == 0
    assert capsys.readouterr().out.strip() == text
    # judged for the default preset (cpu: P = 32 // 4 = 8), the same folder serves in no role: exit code 1
    assert cli_main(["check", str(root), "--cam-pattern", r"cam(?P<cam>\d+)"]) == 1
    out = capsys.readouterr().out
    assert "as source: no (it has 3 labelled training identities, fewer than the P = 8" in out
    assert out.strip().endswith("result: FAILED (usable in none of the roles asked: source, target)")


def test_no_cameras_is_usable_with_the_switch(tmp_path):
    report = check_dataset(make_tree(tmp_path / "mine"), needs=NEEDS)
    assert report.ok
    assert _levels(report) == [("note", "no camera ids: evaluate with evaluation.cross_camera_only=false (only the "
                                        "query image itself is removed from its ranking); the default "
                                        "cross-camera protocol would fail")]
    # the preset's cross-camera protocol refuses it as a target (and as a source: it is evaluated in-domain)...
    usable, why = report.roles()["target"]
    assert not usable and "camera ids are absent" in why and "evaluation.cross_camera_only=false" in why
    assert "  gallery       3        4     none   1/1/2" in report.text()
    # ... the switch makes it usable
    switched = RoleNeeds.from_config(get_preset("tiny", **SMALL, **{"evaluation.cross_camera_only": False}))
    report = check_dataset(make_tree(tmp_path / "mine"), needs=switched)
    assert report.roles()["target"] == (True, "5 training images, evaluation on all cameras "
                                              "(evaluation.cross_camera_only=false)")


def test_all_camera_ids_equal(tmp_path):
    report = check_dataset(make_tree(tmp_path / "mine"), cam_pattern=r"(?P<cam>cam)")
    assert report.ok
    assert _levels(report)[0][1].startswith("all query and gallery images have the same camera id (0): "
                                            "cross-camera evaluation is impossible, evaluate with "
                                            "evaluation.cross_camera_only=false")


def test_empty_person_folder_is_a_warning(tmp_path):
    root = make_tree(tmp_path / "mine")
    (root / "gallery" / "nobody").mkdir()
    (root / "gallery" / "nobody" / "notes.txt").write_text("not an image")
    report = check_dataset(root, images=False)
    assert report.ok
    assert ("warning", "1 person folder(s) hold no image and are ignored: gallery/nobody") in _levels(report)


def test_unlabelled_target_can_only_be_a_target(tmp_path):
    tree = {k: v for k, v in TREE.items() if k != "train"}
    report = check_dataset(make_tree(tmp_path / "t", tree, loose_train=["a.jpg", "b.jpg", "c.jpg", "d.jpg"]),
                           images=False, needs=NEEDS, roles=("source", "target"))
    assert report.ok and report.images_checked == 0
    assert report.roles()["source"][1].startswith("its training images have no identities (images directly in "
                                                  "train/)")
    assert report.roles()["target"][0] is False           # no camera ids: the preset's protocol refuses it
    switched = RoleNeeds.from_config(get_preset("tiny", **SMALL, **{"evaluation.cross_camera_only": False}))
    report = check_dataset(report.path, images=False, needs=switched)
    assert report.roles()["target"][0] and report.usable
    assert "  train    unlab.        4     none   -" in report.text()
    assert "images: not opened (--no-images / images=False)" in report.text()


def test_query_id_missing_from_gallery_exit_code_1(tmp_path, capsys):
    root = make_tree(tmp_path / "mine", dict(TREE, query={"dave": ["cam1_q1.jpg"], "frank": ["cam1_q9.jpg"]}))
    report = check_dataset(root)
    assert not report.ok
    assert _levels(report)[0] == ("error", "1 query identity has no image in the gallery (1 query images cannot be "
                                           "evaluated): 'frank'; add gallery images of them or remove them from "
                                           "the query")
    assert report.roles()["source"] == (False, "fix the errors first")
    assert cli_main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "ERROR: 1 query identity has no image in the gallery" in out and out.strip().endswith("result: FAILED")


def test_unreadable_tiny_and_duplicated_images(tmp_path):
    root = make_tree(tmp_path / "mine")
    (root / "train" / "bob" / "cam1_c.jpg").write_bytes(b"not a jpeg at all")
    _img(root / "gallery" / "zed" / "cam2_small.jpg", size=(8, 30))
    # the same picture in train and query (a copy: different path, same content)
    (root / "query" / "dave" / "cam1_copy.jpg").write_bytes((root / "train" / "alice" / "cam1_a.jpg").read_bytes())
    # a query image copied into the gallery under another name: not "the query image itself"
    (root / "gallery" / "erin" / "cam3_again.jpg").write_bytes((root / "query" / "erin" / "cam2_q2.jpg").read_bytes())
    report = check_dataset(root, min_side=16)
    levels = _levels(report)
    assert [lv for lv, _ in levels] == ["error", "error", "warning", "warning", "note"]
    assert levels[0][1].startswith("1 unreadable image(s): ") and "cam1_c.jpg (UnidentifiedImageError" in levels[0][1]
    assert levels[1][1].startswith("1 query/gallery image(s) have the same content as a train image: ")
    assert "train/alice/cam1_a.jpg = " in levels[1][1] and levels[1][1].endswith("query/dave/cam1_copy.jpg")
    assert levels[2][1].startswith("1 tiny image(s) (under 16 px on a side): ") and "(8x30)" in levels[2][1]
    assert levels[3][1].startswith("1 query image(s) have a copy under another name in the gallery")
    assert levels[3][1].endswith("query/erin/cam2_q2.jpg = " + str(root / "gallery" / "erin" / "cam3_again.jpg"))
    assert not report.ok
    assert check_dataset(root, images=False).ok      # only the image checks find these


def test_not_a_dataset_and_the_module_entry_point(tmp_path):
    (tmp_path / "empty").mkdir()
    report = check_dataset(tmp_path / "empty")
    assert not report.ok and report.layout is None and report.dataset is None
    assert "is not a dataset folder" in report.problems[0].message
    assert "layout:  not recognised" in report.text()
    proc = subprocess.run([sys.executable, "-m", "reid_uda_lib", "check", str(tmp_path / "empty"), "--no-images"],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr
    assert "one folder per person" in proc.stdout and proc.stdout.strip().endswith("result: FAILED")
