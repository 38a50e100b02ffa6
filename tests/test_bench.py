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
    from trackers.cli import main
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
    from trackers.cli import main
    (tmp_path / "nanotrackv2.pth").write_bytes(open(shared_path("models", "nanotrack", "nanotrackv2.pth"), "rb").read())
    rc = main(["bench", "--frames", "4", "--rounds", "1", "--no-pysot", "--nanotrack-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "nanotrackv2_backbone_sim.onnx" in err[0]
