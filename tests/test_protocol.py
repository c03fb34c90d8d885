"""The evaluation protocol switch (issue 13): ``cross_camera_only=False`` ignores only the query image itself.

Hand-computed 3 x 4 example, no camera ids (all -1). Query 0 *is* gallery image 0 (same file).

    gallery          g0 a.jpg  g1 g1.jpg  g2 g2.jpg  g3 g3.jpg
    pid                 1         2          1          3
    q0 a.jpg  pid 1    0.0       0.3        0.5        0.2    g0 = itself, ignored: g3 -, g1 -, g2 + -> AP 1/3, R3
    q1 q1.jpg pid 2    0.4       0.1        0.2        0.3    g1 + first            -> AP 1,   R1
    q2 q2.jpg pid 1    0.3       0.2        0.4        0.1    g3 -, g1 -, g0 +, g2 + -> AP (1/3 + 2/4)/2 = 5/12, R3

mAP = (1/3 + 1 + 5/12) / 3 = 7/12; CMC@1 = 1/3, CMC@2 = 1/3, CMC@3 = 1.
"""
from __future__ import annotations

import numpy as np
import pytest

from reid_uda_lib.evaluation import evaluate
from reid_uda_lib.evaluation.metrics import evaluate_reference

D = np.array([[0.0, 0.3, 0.5, 0.2],
              [0.4, 0.1, 0.2, 0.3],
              [0.3, 0.2, 0.4, 0.1]], dtype=np.float32)
QPID, GPID = np.array([1, 2, 1]), np.array([1, 2, 1, 3])
QCAM, GCAM = np.full(3, -1), np.full(4, -1)
QPATH = ["/data/a.jpg", "/data/q1.jpg", "/data/q2.jpg"]
GPATH = ["/data/a.jpg", "/data/g1.jpg", "/data/g2.jpg", "/data/g3.jpg"]


@pytest.mark.parametrize("fn", [evaluate, evaluate_reference])
def test_hand_computed_3x4_without_cameras(fn):
    r = fn(D, QPID, GPID, QCAM, GCAM, topk=(1, 2, 3), cross_camera_only=False, query_paths=QPATH, gallery_paths=GPATH)
    assert r["mAP"] == pytest.approx(7 / 12, abs=1e-12)
    assert r["cmc"] == {1: pytest.approx(1 / 3), 2: pytest.approx(1 / 3), 3: 1.0}
    assert r["num_valid_queries"] == 3 and r["num_skipped_queries"] == 0


@pytest.mark.parametrize("fn", [evaluate, evaluate_reference])
def test_the_query_itself_is_found_by_normalised_path_only(fn):
    # "/data/./x/../a.jpg" is the same file as "/data/a.jpg": still ignored, same result
    same = fn(D, QPID, GPID, QCAM, GCAM, cross_camera_only=False,
              query_paths=["/data/./x/../a.jpg"] + QPATH[1:], gallery_paths=GPATH)
    assert same["mAP"] == pytest.approx(7 / 12, abs=1e-12)
    # another file (a copy under another name) is not the query itself: g0 becomes a rank-1 positive of q0
    # (AP of q0 = (1/1 + 2/4) / 2 = 3/4), so mAP = (3/4 + 1 + 5/12) / 3 = 13/18
    other = fn(D, QPID, GPID, QCAM, GCAM, cross_camera_only=False,
               query_paths=["/data/a_copy.jpg"] + QPATH[1:], gallery_paths=GPATH)
    assert other["mAP"] == pytest.approx(13 / 18, abs=1e-12) and other["cmc"][1] == pytest.approx(2 / 3)


def test_cameras_are_ignored_when_the_switch_is_off():
    # with camera ids, the same-camera gallery image g2 of q2 counts as a positive once the switch is off
    qcam, gcam = np.array([0, 0, 1]), np.array([0, 1, 1, 0])
    on = evaluate(D, QPID, GPID, qcam, gcam)
    off = evaluate(D, QPID, GPID, qcam, gcam, cross_camera_only=False, query_paths=QPATH, gallery_paths=GPATH)
    assert off["mAP"] == pytest.approx(7 / 12, abs=1e-12)
    # cross-camera: q0 (cam 0): g0 junk, g2 + at rank 3 -> 1/3; q1 (cam 0): g1 (cam 1) + R1 -> 1;
    # q2 (cam 1): g2 junk (pid 1, cam 1), g0 (cam 0) + after g3, g1 -> 1/3
    assert on["mAP"] == pytest.approx((1 / 3 + 1 + 1 / 3) / 3, abs=1e-12)


def test_all_camera_ids_equal_with_cross_camera_on_names_the_switch():
    with pytest.raises(ValueError, match=r"camera ids are absent \(-1\) for all 3 queries and 4 gallery images[\s\S]*"
                                         r"evaluation\.cross_camera_only=false"):
        evaluate(D, QPID, GPID, QCAM, GCAM)
    with pytest.raises(ValueError, match=r"camera ids are all equal to 2 "):
        evaluate_reference(D, QPID, GPID, QCAM + 3, GCAM + 3)


def test_switch_needs_the_paths():
    with pytest.raises(ValueError, match=r"cross_camera_only=False needs query_paths and gallery_paths"):
        evaluate(D, QPID, GPID, QCAM, GCAM, cross_camera_only=False)
    with pytest.raises(ValueError, match=r"query_paths/gallery_paths have 2/4 entries but there are 3 queries"):
        evaluate(D, QPID, GPID, QCAM, GCAM, cross_camera_only=False, query_paths=QPATH[:2], gallery_paths=GPATH)
