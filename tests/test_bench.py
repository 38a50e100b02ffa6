"""`python main.py bench` smoke test: both NanoTracks run on the same frames and the ratio is printed.
(Speed itself is not asserted: CI machines are shared and their load varies.)"""
import re

import pytest

from tests.conftest import shared_path


def test_bench_prints_both_rates_and_ratio(capsys):
    shared_path("models", "nanotrack", "nanotrackv2_backbone_sim.onnx")
    shared_path("data", "videos", "bag.avi")
    import cv2
    import torch
    from trackers.tools.cli import main
    threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        rc = main(["bench", "--frames", "8", "--rounds", "1", "--no-pysot", "--threads", "1"])
    finally:  # --threads sets process-wide counts; give the other tests theirs back
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    out = capsys.readouterr().out
    assert rc == 0
    ours = re.search(r"nanotrack-v2 \(ours, (\w+)\): (\d+\.\d) fps", out)
    theirs = re.search(r"cv2\.TrackerNano \(OpenCV, v2 ONNX\): (\d+\.\d) fps", out)
    ratio = re.search(r"ratio ours/cv2: (\d+\.\d\d)", out)
    assert ours and theirs and ratio, out
    assert float(ours.group(2)) > 0 and float(theirs.group(1)) > 0
    assert float(ratio.group(1)) == pytest.approx(float(ours.group(2)) / float(theirs.group(1)), abs=0.02)


def test_bench_missing_onnx_is_one_line_error(tmp_path, capsys):
    from trackers.tools.cli import main
    (tmp_path / "nanotrackv2.pth").write_bytes(open(shared_path("models", "nanotrack", "nanotrackv2.pth"), "rb").read())
    rc = main(["bench", "--frames", "4", "--rounds", "1", "--no-pysot", "--nanotrack-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "nanotrackv2_backbone_sim.onnx" in err[0]


def test_bench_load_runs_idle_and_loaded_in_one_run(capsys):
    """--load starts its own busy process, times the tracker idle and loaded, prints both and the ratio."""
    shared_path("models", "nanotrack", "nanotrackv2.pth")
    shared_path("data", "videos", "bag.avi")
    import cv2
    import torch
    from trackers.tools.cli import main
    threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        rc = main(["bench", "--load", "--trackers", "nanotrack-v2", "--load-frames", "4", "--rounds", "1",
                   "--threads", "1", "--engine", "onnxruntime"])
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0].startswith("compute policy (--threads): ") and "1 compute threads" in out
    row = re.search(r"nanotrack-v2\s+onnxruntime\s+idle\s+(\d+\.\d) fps\s+one busy core\s+(\d+\.\d) fps\s+"
                    r"ratio (\d+\.\d\d)", out)
    assert row, out
    idle, loaded, ratio = (float(v) for v in row.groups())
    assert idle > 0 and loaded > 0 and ratio == pytest.approx(loaded / idle, abs=0.02)


def test_bench_unknown_tracker_is_one_line_error(capsys):
    from trackers.tools.cli import main
    rc = main(["bench", "--load", "--trackers", "no-such-tracker"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no-such-tracker" in err[0]


def test_time_budget_stops_after_the_minimum_frames():
    """`bench --all` times each tracker within a budget: a spent budget stops it once the minimum
    number of frames is tracked; without one every frame is tracked."""
    from trackers.core import registry
    from trackers.tools import bench
    frames = bench.read_frames(shared_path("data", "videos", "bag.avi"), 9)
    tracker = registry.build("csrt", None)
    seconds, tracked = bench.time_tracker_within(tracker, frames, bench.BAG_BOX, budget_s=0.0, min_frames=3)
    assert tracked == 3 and seconds > 0
    seconds, tracked = bench.time_tracker_within(tracker, frames, bench.BAG_BOX)
    assert tracked == len(frames) - 1 and seconds > 0
