"""The validation set (trackers/train/validation.py): the hand-checked labels, their interpolation,
the synthetic sequences' exact ground truth, and the acceptance rules the default is chosen by
(trackers/tools/guard_decision.py), the re-find rule on a synthetic re-appearance in particular."""

import json
import os

import cv2
import numpy as np
import pytest

from tests.conftest import SHARED, shared_path
from trackers.run import metrics as M
from trackers.tools import guard_decision as G
from trackers.train import validation as V

VIDEOS = {"Megamind.avi", "bag.avi", "box.mp4", "cup.mp4", "tree.avi", "vtest.avi"}


def test_interpolation_between_keyframes_and_absent_spans():
    kf = [[0, 10, 10, 20, 20], [10, 20, 10, 40, 20], [11, None], [15, 50, 50, 10, 10], [20, 60, 50, 10, 10]]
    gt = V.interpolate(kf, 25)
    np.testing.assert_allclose(gt[5], (15, 10, 30, 20))  # half-way between 0 and 10
    np.testing.assert_allclose(gt[10], (20, 10, 40, 20))  # the last present frame
    assert np.isnan(gt[11:15]).all() and np.isnan(gt[21:]).all()  # absent, then past the last keyframe
    np.testing.assert_allclose(gt[15], (50, 50, 10, 10))
    np.testing.assert_allclose(gt[20], (60, 50, 10, 10))


def test_labels_cover_the_six_videos_and_are_well_formed():
    labels = V.load_labels()
    assert {lab["video"] for lab in labels} == VIDEOS
    for lab in labels:
        frames = [k[0] for k in lab["keyframes"]]
        assert frames == sorted(frames) and len(set(frames)) == len(frames), lab["name"]
        present = [k for k in lab["keyframes"] if k[1] is not None]
        assert all(len(k) == 5 and k[3] > 0 and k[4] > 0 for k in present), lab["name"]
        gaps = [
            b[0] - a[0] for a, b in zip(lab["keyframes"], lab["keyframes"][1:]) if a[1] is not None and b[1] is not None
        ]
        assert max(gaps) <= 30, lab["name"]  # keyframes every <= 30 frames while in view
        for first, last in lab["clips"]:
            assert 50 <= last - first + 1 <= 200, (lab["name"], first, last)
            gt = V.interpolate(lab["keyframes"], last + 1)[first:]
            assert M.valid_frames(gt)[0], (lab["name"], first)  # a start the tracker can take
        assert lab["how"] and lab["target"]
    # several targets / starts per video where the video has several
    per_video = {v: sum(len(lab["clips"]) for lab in labels if lab["video"] == v) for v in VIDEOS}
    assert all(n >= 2 for v, n in per_video.items() if v != "tree.avi"), per_video
    # targets that leave the view: Megamind's faces across its shot cuts
    assert any(any(k[1] is None for k in lab["keyframes"]) for lab in labels if lab["video"] == "Megamind.avi")


def test_labelled_clip_is_written_in_otb_layout(tmp_path):
    shared_path("data", "videos", "bag.avi")
    lab = next(lab for lab in V.load_labels() if lab["name"] == "bag-bag")
    names = V.write_labelled(dict(lab, clips=[[70, 129]]), SHARED, str(tmp_path))
    from trackers.run.sequences import load_sequence

    seq = load_sequence(str(tmp_path / names[0]))
    assert names == ["bag-bag-070"] and len(seq.frames) == 60
    bench = np.loadtxt(shared_path("bench", "bag", "groundtruth.txt"), delimiter=",")
    np.testing.assert_allclose(
        seq.gt[0], bench[70], atol=0.06
    )  # keyframes kept to 0.1 px          # a keyframe: the human label itself
    assert np.abs(seq.gt - bench[70:130]).max() < 0.06  # every frame of the human label


def test_synthetic_ground_truth_is_where_the_patch_was_pasted():
    shared_path("data", "images", "orange.jpg")
    frames, gt = V.synth_reappear_big(SHARED)
    a, b = V.REAPPEAR
    valid = M.valid_frames(gt)
    assert valid[:a].all() and not valid[a:b].any() and valid[b:].all()
    assert gt[b, 2] == pytest.approx(3 * gt[0, 2], abs=1)  # back at 3x the size
    assert abs(gt[b, 0] - gt[a - 1, 0]) > 150  # elsewhere
    patch = V._target(SHARED, "orange")
    x, y, w, h = (int(v) for v in gt[b])
    want = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA if w < patch.shape[1] else cv2.INTER_LINEAR)
    assert np.array_equal(frames[b][y : y + h, x : x + w], want)  # exactly the pasted pixels
    frames, gt = V.synth_scale(SHARED)
    sides = gt[:, 2]
    assert sides.max() / sides.min() == pytest.approx(4, rel=0.05)
    frames, gt = V.synth_reappear_small(SHARED)
    assert gt[b, 2] == pytest.approx(gt[0, 2] / 3, abs=1)


def test_lost_replay_and_the_refind_rule_on_a_synthetic_reappearance():
    """The rule: after the target comes back (here at 3x its size, on the other side of the frame),
    some frame among the first 10 has IoU >= 0.5 and is not LOST. A tracker that holds its last
    box breaks it; one that finds the target on the 7th frame back meets it; one that finds it on
    the 11th does not; a box on the target but LOST does not count."""
    shared_path("data", "images", "orange.jpg")
    _, gt = V.synth_reappear_big(SHARED)
    backs = G.comebacks(gt)
    assert backs == [V.REAPPEAR[1]]
    back = backs[0]
    held = gt.copy()
    held[V.REAPPEAR[0] :] = gt[V.REAPPEAR[0] - 1]
    never = np.zeros(len(gt), bool)
    assert not G.refound(held, gt, never, back)
    late = held.copy()
    late[back + 6 :] = gt[back + 6 :]
    assert G.refound(late, gt, never, back)
    later = held.copy()
    later[back + 10 :] = gt[back + 10 :]
    assert not G.refound(later, gt, never, back)
    assert not G.refound(gt, gt, np.ones(len(gt), bool), back)  # on it, but LOST
    # the LOST state replayed from the confidence: 10 frames below 0.5 in a row, back at >= 0.5
    conf = np.full(40, 0.9)
    conf[5:20] = 0.05
    conf[20:22] = 0.2  # not yet back (found at 0.3)
    conf[25:32] = 0.05
    lost = G.lost_states(conf, 0, (0.1, 10, 0.3))
    assert not lost[:14].any() and lost[14:22].all() and not lost[22:].any()
    from trackers.families.default import CalibratedParams

    p = CalibratedParams()
    assert G.LOST_RULES["siamscope-default"] == (p.lost_score, p.lost_frames, p.found_score)


def test_writer_makes_the_whole_set_and_contact_sheets(tmp_path):
    shared_path("data", "videos", "tree.avi")
    shared_path("data", "images", "butterfly.jpg")
    assert (
        V.main(
            [
                str(tmp_path / "val"),
                "--shared",
                SHARED,
                "--only",
                "tree-foliage-gap,synth-blur",
                "--check",
                str(tmp_path / "chk"),
            ]
        )
        == 0
    )
    assert sorted(os.listdir(tmp_path / "val")) == ["synth-blur", "tree-foliage-gap-000"]
    img = cv2.imread(str(tmp_path / "chk" / "synth-blur.png"))
    assert img is not None and img.shape[0] > 100
    with pytest.raises(SystemExit):  # never over an existing set
        V.main([str(tmp_path / "val"), "--shared", SHARED, "--only", "synth-blur"])
    # the labels are text in the checkout's tests/data, not package data
    assert os.path.basename(os.path.dirname(V.LABELS_DIR)) == "data" and "tests" in V.LABELS_DIR
    assert all(json.load(open(os.path.join(V.LABELS_DIR, f))) for f in os.listdir(V.LABELS_DIR))
