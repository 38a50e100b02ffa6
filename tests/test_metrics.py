"""OPE metrics on cases whose answer is known by hand."""

import numpy as np
import pytest

from tests.conftest import shared_path
from trackers.run import metrics as M
from trackers.run.results import read_boxes


def boxes(n, box=(10, 20, 40, 30)):
    return np.tile(np.asarray(box, np.float64), (n, 1))


def test_identical_boxes_score_the_otb_maximum():
    gt = boxes(50)
    s = M.score_sequence(gt, gt)
    assert s.auc == pytest.approx(20 / 21) and round(s.auc, 3) == 0.952
    assert s.precision == 1.0
    assert s.norm_precision == 1.0
    assert s.frames == 50


def test_real_ground_truth_against_itself():
    gt = read_boxes(shared_path("bench", "bag", "groundtruth.txt"))
    s = M.score_sequence(gt, gt)
    assert round(s.auc, 3) == 0.952 and s.precision == 1.0


def test_iou_of_known_overlaps():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[5, 0, 10, 10], [10, 0, 10, 10], [2, 2, 6, 6], [np.nan] * 4], float)
    np.testing.assert_allclose(M.iou(a, b), [50 / 150, 0.0, 36 / 100, 0.0])


def test_shifted_boxes_give_known_values():
    gt = boxes(10, (0, 0, 10, 10))
    pred = gt + [5, 0, 0, 0]  # IoU 1/3, centre error 5 px, normalised 0.5
    s = M.score_sequence(pred, gt)
    # IoU 1/3 exceeds thresholds 0, 0.05, ..., 0.30 (7 of 21)
    assert s.auc == pytest.approx(7 / 21)
    assert s.precision == 1.0  # 5 px <= 20 px
    assert s.precision_curve[4] == 0.0 and s.precision_curve[5] == 1.0
    assert s.norm_precision == 0.0  # 0.5 > 0.2
    assert s.norm_precision_curve[50] == 1.0  # 0.5 <= 0.5

    far = gt + [30, 40, 0, 0]  # 50 px off, no overlap
    s = M.score_sequence(far, gt)
    assert s.auc == 0.0 and s.precision == 0.0
    assert s.precision_curve[50] == 1.0 and s.precision_curve[49] == 0.0


def test_half_the_frames_right():
    gt = boxes(20)
    pred = gt.copy()
    pred[10:] += [100, 100, 0, 0]
    s = M.score_sequence(pred, gt)
    assert s.auc == pytest.approx(0.5 * 20 / 21)
    assert s.precision == pytest.approx(0.5)


def test_nan_ground_truth_frames_are_left_out():
    gt = boxes(10)
    pred = gt.copy()
    gt[3] = np.nan
    gt[4] = [1, 1, 0, 0]  # zero area also marks the target absent
    pred[3] += 500  # wrong where the target is absent: must not count
    pred[4] += 500
    s = M.score_sequence(pred, gt)
    assert s.frames == 8
    assert s.auc == pytest.approx(20 / 21) and s.precision == 1.0


def test_nan_prediction_is_a_miss():
    gt = boxes(4)
    pred = gt.copy()
    pred[1] = np.nan
    s = M.score_sequence(pred, gt)
    assert s.auc == pytest.approx(0.75 * 20 / 21)
    assert s.precision == pytest.approx(0.75)


def test_mean_over_sequences_weights_each_sequence_once():
    gt_long, gt_short = boxes(90), boxes(10)
    perfect = M.score_sequence(gt_long, gt_long)
    miss = M.score_sequence(gt_short + 100, gt_short)
    overall = M.mean_score([perfect, miss])
    assert overall.auc == pytest.approx(0.5 * 20 / 21)
    assert overall.frames == 100


def test_length_mismatch_and_empty_are_errors():
    with pytest.raises(ValueError):
        M.score_sequence(boxes(3), boxes(4))
    with pytest.raises(ValueError):
        M.score_sequence(boxes(2), np.full((2, 4), np.nan))


def test_long_term_precision_recall_f_on_a_known_case():
    """trackers/tools/longterm.py on four frames: target present, present, absent, present; the tracker's
    IoUs 1, 0.5, -, 0 with confidences 0.9, 0.8, 0.7, 0.2. By hand: tau 0.9 -> Pr 1, Re 1/3, F 0.5;
    tau 0.8 -> Pr 0.75, Re 0.5, F 0.6 (the best); tau 0.7 -> Pr 0.5, Re 0.5; tau 0.2 -> Pr 0.375."""
    from trackers.run import longterm as LT

    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4, [0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [5, 5, 10, 10], [50, 50, 10, 10]], float)  # IoU 1, 0.5, -, 0
    present = M.valid_frames(gt)
    conf = np.array([0.9, 0.8, 0.7, 0.2])
    taus = np.array([0.2, 0.7, 0.8, 0.9])
    pr, re = LT.sequence_curves(pred, gt, present, conf, taus, start=-1)  # start -1: every frame counts
    np.testing.assert_allclose(pr, [0.375, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(re, [0.5, 0.5, 0.5, 1 / 3])
    s = LT.long_term_score([(pred, gt, present, conf, -1)])
    assert (s.f_score, s.precision, s.recall, s.threshold) == (
        pytest.approx(0.6),
        pytest.approx(0.75),
        pytest.approx(0.5),
        0.8,
    )
    # the same boxes, the absent frame given the lowest confidence: claiming it is now the last step
    pr, _ = LT.sequence_curves(pred, gt, present, np.array([0.9, 0.8, 0.1, 0.2]), np.array([0.1, 0.2, 0.8, 0.9]), -1)
    np.testing.assert_allclose(pr, [0.375, 0.5, 0.75, 1.0])


def test_presence_rates_count_by_hand():
    r = M.presence_rates([0.9, 0.8, 0.6, 0.4, 0.1], [True, True, False, True, False])
    assert r["present_given_high"] == pytest.approx(2 / 3)  # 0.9, 0.8 present; 0.6 absent
    assert r["absent_given_low"] == pytest.approx(1 / 2)  # 0.4 present, 0.1 absent
    assert (r["high_frames"], r["low_frames"]) == (3, 2)
