"""Long-term precision / recall / F on hand-worked answers, and the report `eval --report` writes."""

import base64
import re

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from tests.test_datasets import N, _got10k
from trackers.run import longterm as LT
from trackers.tools.cli import main


def _one_sequence():
    """Init frame + 4 frames: present, present, absent, present. Predictions: exact (IoU 1), shifted
    by half the width (IoU 1/3), anything (target absent), exact. Confidences 0.9, 0.5, 0.8, 0.2."""
    gt = np.array([[10, 10, 20, 20]] * 5, float)
    gt[3] = np.nan
    pred = np.array([[10, 10, 20, 20], [10, 10, 20, 20], [20, 10, 20, 20], [50, 50, 20, 20], [10, 10, 20, 20]], float)
    present = np.isfinite(gt[:, 0])
    conf = np.array([1.0, 0.9, 0.5, 0.8, 0.2])
    return pred, gt, present, conf


def test_long_term_precision_recall_f_known_answer():
    pred, gt, present, conf = _one_sequence()
    taus = LT.thresholds(conf[1:])
    assert taus.tolist() == [0.2, 0.5, 0.8, 0.9]
    pr, re_ = LT.sequence_curves(pred, gt, present, conf, taus)
    # tau 0.2: all 4 claimed, IoUs 1, 1/3, 0, 1 -> Pr 7/12; present frames 3 -> Re 7/9
    # tau 0.5: frames 1-3 claimed -> Pr 4/9, Re 4/9; tau 0.8: frames 1, 3 -> Pr 1/2, Re 1/3;
    # tau 0.9: frame 1 -> Pr 1, Re 1/3
    np.testing.assert_allclose(pr, [7 / 12, 4 / 9, 1 / 2, 1.0])
    np.testing.assert_allclose(re_, [7 / 9, 4 / 9, 1 / 3, 1 / 3])
    s = LT.long_term_score([(pred, gt, present, conf, 0)])
    # F: 2/3, 4/9, 2/5, 1/2 -> best at tau 0.2
    assert s.f_score == pytest.approx(2 / 3) and s.threshold == 0.2
    assert s.precision == pytest.approx(7 / 12) and s.recall == pytest.approx(7 / 9) and s.sequences == 1


def test_long_term_averages_over_sequences_and_skips_unclaimed_precision():
    pred, gt, present, conf = _one_sequence()
    # a second sequence, always present, tracked exactly but with confidence 0.3 throughout
    gt2 = np.array([[5, 5, 10, 10]] * 3, float)
    conf2 = np.array([1.0, 0.3, 0.3])
    taus = LT.thresholds(np.concatenate([conf[1:], conf2[1:]]))
    assert taus.tolist() == [0.2, 0.3, 0.5, 0.8, 0.9]
    pr2, re2 = LT.sequence_curves(gt2, gt2, np.ones(3, bool), conf2, taus)
    # above 0.3 the second sequence claims nothing: no precision there, recall 0
    assert np.isnan(pr2[2:]).all() and pr2[:2].tolist() == [1.0, 1.0] and re2.tolist() == [1, 1, 0, 0, 0]
    s = LT.long_term_score([(pred, gt, present, conf, 0), (gt2, gt2, np.ones(3, bool), conf2, 0)])
    # tau 0.2: Pr (7/12 + 1)/2 = 19/24, Re (7/9 + 1)/2 = 8/9; tau 0.3: seq 1 claims frames 1-3
    # (Pr 4/9, Re 4/9) -> Pr 13/18, Re 13/18 = F 0.722; tau 0.2 gives F 0.838: the best
    f02 = 2 * (19 / 24) * (8 / 9) / (19 / 24 + 8 / 9)
    assert s.f_score == pytest.approx(f02) and s.threshold == 0.2 and s.sequences == 2


def test_a_tracker_that_never_loses_the_box_is_penalised_on_absent_frames():
    gt = np.array([[10, 10, 20, 20]] * 6, float)
    gt[3:] = np.nan  # the target leaves after frame 2
    pred = np.array([[10, 10, 20, 20]] * 6, float)  # claims the old place with full confidence
    s = LT.long_term_score([(pred, gt, np.isfinite(gt[:, 0]), np.ones(6), 0)])
    assert s.recall == 1.0 and s.precision == pytest.approx(2 / 5)


def _embedded_pngs(text):
    return [
        cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR)
        for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    ]


def test_eval_report_html_is_self_contained_with_long_term_scores(tmp_path, capsys):
    data = tmp_path / "GOT-10k" / "val"
    _got10k(str(data), ["bag", "cup"], absent_at=(5, 6))
    report = tmp_path / "out" / "report.html"
    assert (
        main(
            [
                "eval",
                str(data),
                "--trackers",
                "csrt,effnet-siamfc-floor",
                "--threads",
                "1",
                "--quiet",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"report written to {report}" in out
    printed = re.findall(
        r"long-term \(2 sequences with absence labels\) (\S+): precision [\d.]+ recall [\d.]+ F ([\d.]+)", out
    )
    assert [name for name, _ in printed] == ["csrt", "effnet-siamfc-floor"]
    text = report.read_text()
    assert 'src="http' not in text and "<link" not in text  # nothing fetched from elsewhere
    pngs = _embedded_pngs(text)
    assert len(pngs) == 2 and all(p is not None and p.shape == (540, 720, 3) for p in pngs)
    for section in ("Overall", "Per sequence", "Long-term (sequences with absence labels)", "Machine", "Compute"):
        assert f"<h2>{section}</h2>" in text
    for must in (
        "csrt",
        "effnet-siamfc-floor",
        "<td>bag</td>",
        "<td>cup</td>",
        "load average",
        "threads per job",
        "torch",
        "executor",
    ):
        assert must in text
    lt = re.search(r"Long-term.*?</table>", text, re.S).group(0)
    f_scores = [
        float(v) for v in re.findall(r"<tr><td>[a-z-]+</td><td>[\d.]+</td><td>[\d.]+</td><td>([\d.]+)</td>", lt)
    ]
    assert len(f_scores) == 2 and all(0 < f <= 1 for f in f_scores)
    assert f_scores == [float(f) for _, f in printed]  # the report and the console agree


def test_eval_report_markdown_with_plots_beside_it(tmp_path, capsys):
    bag = shared_path("bench", "bag")
    report = tmp_path / "r.md"
    assert (
        main(
            [
                "eval",
                bag,
                "--trackers",
                "csrt",
                "--max-frames",
                str(N),
                "--threads",
                "1",
                "--quiet",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    text = report.read_text()
    assert "## Per sequence" in text and "| bag | otb | 12 |" in text and "Long-term" not in text
    assert "![success](r_success.png)" in text and cv2.imread(str(tmp_path / "r_success.png")) is not None
    assert main(["eval", bag, "--trackers", "csrt", "--max-frames", "3", "--report", str(tmp_path / "r.pdf")]) == 2
    assert ".html or .md" in capsys.readouterr().err
