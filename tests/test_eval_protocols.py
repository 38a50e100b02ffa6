"""`eval --protocol sre|tre` (trackers/tools/eval_protocols.py): the OTB toolkit's starts, one result
file per start under its toolkit name, per-sequence figures that are the means over the starts,
and frames where the target is absent handled under every protocol. A synthetic sequence with
known motion, so the tests need nothing from ../shared."""

import os
import re

import cv2
import numpy as np
import pytest

from trackers.run import metrics as M
from trackers.run.results import read_boxes
from trackers.run.sequences import write_sequence
from trackers.tools import eval_protocols as P
from trackers.tools.cli import main

N = 48
SIZE = (200, 150)  # w, h


def _moving_patch(n=N, absent=()):
    """A checker patch moving 2 px right and 1 px down a frame over a smooth background; NaN ground
    truth (and no patch drawn) on the `absent` frames."""
    rng = np.random.default_rng(3)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8), (0, 0), 6)
    patch = np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((8, 8)))[..., None] * np.array([40, 200, 255])
    frames, gt = [], np.full((n, 4), np.nan)
    for t in range(n):
        img = bg.copy()
        x, y = 30 + 2 * t, 30 + t
        if t not in absent:
            img[y : y + 32, x : x + 32] = patch.astype(np.uint8)
            gt[t] = (x, y, 32, 32)
        frames.append(img)
    return frames, gt


def test_sre_starts_are_the_toolkits_twelve():
    box = (100.0, 50.0, 40.0, 20.0)
    st = {s.label: s for s in P.starts(_seq(box), "sre", (640, 480))}
    assert [s.index for s in st.values()] == list(range(1, 13))
    assert list(st) == [
        "left",
        "right",
        "up",
        "down",
        "topLeft",
        "topRight",
        "bottomLeft",
        "bottomRight",
        "scale_8",
        "scale_9",
        "scale_11",
        "scale_12",
    ]
    np.testing.assert_allclose(st["left"].box, (96, 50, 40, 20))
    np.testing.assert_allclose(st["down"].box, (100, 52, 40, 20))
    np.testing.assert_allclose(st["bottomRight"].box, (104, 52, 40, 20))
    np.testing.assert_allclose(st["scale_8"].box, (104, 52, 32, 16))  # same centre (120, 60)
    np.testing.assert_allclose(st["scale_12"].box, (96, 48, 48, 24))
    # clipped to the frame as the toolkit clips
    edge = {s.label: s for s in P.starts(_seq((0.0, 0.0, 40.0, 20.0)), "sre", (640, 480))}
    np.testing.assert_allclose(edge["topLeft"].box, (0, 0, 36, 18))


def _seq(box, n=5):
    from trackers.run.sequences import Sequence

    return Sequence("s", [f"{i}.jpg" for i in range(n)], np.tile(np.asarray(box, float), (n, 1)))


def test_tre_starts_skip_absent_frames_and_leave_twenty_frames():
    gt = np.tile([10.0, 10, 20, 20], (200, 1))
    gt[18:25] = np.nan
    f = P.tre_start_frames(gt)
    assert len(f) == 20 and f[0] == 0 and f[-1] == 180  # the last start leaves 20 frames
    assert all(np.isfinite(gt[i]).all() for i in f)
    assert 18 not in f and 25 in f  # linspace's 18.9 -> next present frame
    assert f == sorted(f)


@pytest.mark.parametrize("protocol, n_runs", [("sre", 12), ("tre", 20)])
def test_protocol_writes_one_file_per_start_and_the_means(tmp_path, capsys, protocol, n_runs):
    frames, gt = _moving_patch(absent=(20, 21, 22))
    write_sequence(str(tmp_path / "data" / "mover"), frames, gt)
    out_dir = tmp_path / "res"
    rc = main(
        [
            "eval",
            str(tmp_path / "data"),
            "--trackers",
            "csrt",
            "--protocol",
            protocol,
            "--quiet",
            "--results",
            str(out_dir),
            "--threads",
            "1",
            "--report",
            str(tmp_path / "r.md"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    folder = out_dir / protocol.upper() / "csrt"
    names = sorted(p for p in os.listdir(folder) if re.fullmatch(r"mover_\d+\.txt", p))
    assert names == sorted(f"mover_{k}.txt" for k in range(1, n_runs + 1))  # the toolkit's <seq>_<idx>
    aucs = []
    for k in range(1, n_runs + 1):
        boxes = read_boxes(str(folder / f"mover_{k}.txt"))
        if protocol == "sre":
            assert len(boxes) == N
            start = P.starts(_loaded(tmp_path), "sre", SIZE)[k - 1]
            np.testing.assert_allclose(boxes[0], start.box, atol=0.01)  # init on the perturbed box
            aucs.append(M.score_sequence(boxes, gt).auc)
        else:
            first = P.tre_start_frames(gt)[k - 1]
            assert len(boxes) == N - first and first not in (20, 21, 22)
            np.testing.assert_allclose(boxes[0], gt[first], atol=0.01)
            aucs.append(M.score_sequence(boxes, gt[first:]).auc)
    row = re.search(r"^mover\s+48 \|\s+(\d\.\d{3})", out, re.M)
    assert row and float(row.group(1)) == pytest.approx(np.mean(aucs), abs=6e-4), out  # mean over starts
    overall = re.search(r"^overall\s+48 \|\s+(\d\.\d{3})", out, re.M)
    assert float(overall.group(1)) == float(row.group(1))  # one sequence: overall = its mean
    assert re.search(
        rf"^long-term \(\d+ sequences with absence labels, {protocol.upper()} runs\) csrt: "
        r"precision \d\.\d{3} recall \d\.\d{3} F \d\.\d{3}",
        out,
        re.M,
    ), out
    assert f"{protocol.upper()} per start" in out
    report = (tmp_path / "r.md").read_text()
    assert f"{protocol.upper()} per run" in report and "mover_1" in report and "Long-term per sequence" in report
    # a second run reads every start back instead of running it again
    assert (
        main(
            [
                "eval",
                str(tmp_path / "data"),
                "--trackers",
                "csrt",
                "--protocol",
                protocol,
                "--quiet",
                "--results",
                str(out_dir),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert f"({n_runs} read back)" in capsys.readouterr().out


def _loaded(tmp_path):
    from trackers.run.sequences import load_sequence

    return load_sequence(str(tmp_path / "data" / "mover"))


def test_aggregate_is_the_mean_of_the_starts_curves():
    from trackers.run.sequences import Sequence
    from trackers.tools.eval_core import SequenceRun, TrackerRuns

    gt = np.tile([10.0, 10, 20, 20], (10, 1))
    seq = Sequence("a", [f"{i}.jpg" for i in range(10)], gt)
    runs = P.expand([seq], "sre")
    rng = np.random.default_rng(0)
    scores = {}
    for r in runs:
        pred = gt + rng.normal(0, 4, gt.shape)
        scores[r.name] = SequenceRun(pred, 1.0, 9, M.score_sequence(pred, gt))
    agg = P.aggregate([TrackerRuns("t", scores)], [seq], runs)[0]
    np.testing.assert_allclose(
        agg.runs["a"].score.success_curve, np.mean([s.score.success_curve for s in scores.values()], axis=0)
    )
    assert agg.overall.auc == pytest.approx(np.mean([s.score.auc for s in scores.values()]))
    assert agg.runs["a"].tracked == 12 * 9
