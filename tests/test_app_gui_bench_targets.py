"""`bench --gui --targets N`: the window showing N targets against `track --boxes FILE`, the same
boxes on the same frames (trackers/tools/bench_gui.py, scripts/gui_bench.py --boxes)."""

import re

import numpy as np
import pytest

from tests.conftest import shared_path


def test_spread_boxes_are_distinct_inside_the_frame_and_read_back(tmp_path):
    from trackers.tools.bench_gui import spread_boxes, write_boxes_file
    from trackers.tools.track_multi import parse_boxes_file

    box = (292.23, 128.36, 145.96, 132.47)
    boxes = spread_boxes(box, 8, (480, 360))
    assert len(boxes) == 8 and boxes[0] == box and len(set(boxes)) == 8
    for x, y, w, h in boxes:
        assert x >= 0 and y >= 0 and x + w <= 480 and y + h <= 360 and w >= 16 and h >= 16
    read = parse_boxes_file(write_boxes_file(str(tmp_path / "boxes.txt"), boxes))
    assert [tid for tid, _, _ in read] == list(range(1, 9))
    np.testing.assert_allclose([b for _, b, _ in read], boxes, atol=1e-3)


def test_bench_gui_targets_prints_both_sides_and_the_ratio(capsys):
    """Both children run on the same clip with the same boxes; the window reports how many targets
    it showed, and the printed ratio is the two printed figures' ratio."""
    shared_path("models", "nanotrack", "nanotrackv2.pth")
    from trackers.tools.cli import main

    args = ["bench", "--gui", "--targets", "2", "--frames", "12", "--rounds", "1", "--threads", "1"]
    assert main([*args, "--engine", "onnxruntime"]) == 0
    out = capsys.readouterr().out
    assert "12 frames of bag.avi (back and forth), 1 compute thread(s) in both, the same boxes" in out
    row = re.search(
        r"nanotrack-v2\s+2 targets\s+track\s+(\d+\.\d) fps\s+GUI wall\s+(\d+\.\d) fps = (\d+\.\d\d)x.*"
        r"11 frames, \d+ drawn, 2 targets shown, engine onnxruntime, 1 thread",
        out,
    )
    assert row, out
    track, wall, ratio = (float(v) for v in row.groups())
    assert track > 0 and wall > 0 and ratio == pytest.approx(wall / track, abs=0.02)
