"""Ground-truth files (trackers/run/groundtruth.py): the OTB / GOT-10k / LaSOT / VOT layouts, absent frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_path
from trackers.run import metrics
from trackers.run.groundtruth import GroundTruthError, find_groundtruth, iou_by_frame, read_groundtruth, score_so_far


def test_otb_separators_nan_and_empty_rows(tmp_path):
    seq = tmp_path / "Basketball"
    (seq / "img").mkdir(parents=True)
    (seq / "groundtruth_rect.txt").write_text(
        "198,214,34,81\n197\t214\t34\t81\n196 213 34 82\nNaN,NaN,NaN,NaN\n\n0,0,0,0\n10, 20, 30, 40\n"
    )
    # an OTB image folder finds the file in its parent
    assert find_groundtruth(str(seq / "img")) == str(seq / "groundtruth_rect.txt")
    gt = read_groundtruth(str(seq / "img"))
    assert gt.layout == "OTB" and len(gt) == 7 and gt.present == 4
    assert gt.box(1) == (197.0, 214.0, 34.0, 81.0) and gt.box(2) == (196.0, 213.0, 34.0, 82.0)
    assert gt.box(3) is None and gt.box(4) is None and gt.box(5) is None  # NaN, empty, no area
    assert gt.box(6) == (10.0, 20.0, 30.0, 40.0) and gt.box(7) is None  # past the end


def test_got10k_and_lasot_absence_flags(tmp_path):
    got = tmp_path / "GOT-10k_Train_000001"
    got.mkdir()
    (got / "groundtruth.txt").write_text("1,2,30,40\n2,3,30,40\n3,4,30,40\n")
    (got / "absence.label").write_text("0\n1\n0\n")
    (got / "meta_info.ini").write_text("[METAINFO]\n")
    gt = read_groundtruth(str(got))
    assert gt.layout == "GOT-10k" and gt.box(1) is None and gt.box(2) == (3.0, 4.0, 30.0, 40.0)
    (got / "cover.label").write_text("8\n8\n0\n")  # cover 0: fully covered, as eval reads it
    assert read_groundtruth(str(got)).box(2) is None

    lasot = tmp_path / "airplane-1"
    (lasot / "img").mkdir(parents=True)
    (lasot / "groundtruth.txt").write_text("\n".join("5,5,20,20" for _ in range(5)) + "\n")
    (lasot / "full_occlusion.txt").write_text("0,0,1,0,0")
    (lasot / "out_of_view.txt").write_text("0,0,0,0,1")
    gt = read_groundtruth(str(lasot / "img"))
    assert gt.layout == "LaSOT" and [gt.box(i) is None for i in range(5)] == [False, False, True, False, True]


def test_vot_polygons_become_their_bounding_boxes():
    poly = read_groundtruth(shared_path("bench", "bag", "groundtruth_poly.txt"))
    rect = read_groundtruth(shared_path("bench", "bag", "groundtruth.txt"))
    assert poly.layout == "VOT polygon" and len(poly) == len(rect) == 196
    np.testing.assert_allclose(poly.boxes, rect.boxes, atol=0.011)  # the file rounds to 0.01


def test_bad_files_give_one_message_naming_file_and_line(tmp_path):
    bad = tmp_path / "gt.txt"
    bad.write_text("1,2,3,4\n1,2,three,4\n")
    with pytest.raises(GroundTruthError, match=r"gt.txt, line 2: expected x,y,w,h numbers"):
        read_groundtruth(str(bad))
    bad.write_text("1,2,3\n")
    with pytest.raises(GroundTruthError, match="line 1: expected 4 numbers"):
        read_groundtruth(str(bad))
    bad.write_text("m1,2,3\n")
    with pytest.raises(GroundTruthError, match="segmentation mask"):
        read_groundtruth(str(bad))
    bad.write_text("\n\n")
    with pytest.raises(GroundTruthError, match="empty"):
        read_groundtruth(str(bad))
    with pytest.raises(GroundTruthError, match="no groundtruth.txt"):
        read_groundtruth(str(tmp_path))
    assert bad.read_text() == "\n\n"  # nothing written over


def test_iou_and_running_score_skip_frames_without_truth():
    gt = read_groundtruth(shared_path("bench", "bag", "groundtruth.txt"))
    gt.boxes[2] = np.nan
    pred = {i: tuple(gt.boxes[0]) for i in range(4)}
    ious = iou_by_frame(pred, gt)
    assert sorted(ious) == [0, 1, 3] and ious[0] == pytest.approx(1.0)
    expected = metrics.iou(np.array([pred[f] for f in (0, 1, 3)]), gt.boxes[[0, 1, 3]])
    np.testing.assert_allclose([ious[f] for f in (0, 1, 3)], expected)
    s = score_so_far(pred, gt)
    assert s.frames == 3 and s.mean_iou == pytest.approx(float(expected.mean()))
    assert s.auc == pytest.approx(
        metrics.score_sequence(np.array([pred[f] for f in (0, 1, 3)]), gt.boxes[[0, 1, 3]]).auc
    )
    assert score_so_far({100000: (1, 1, 2, 2)}, gt) is None
