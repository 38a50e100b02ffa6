"""The pieces of .ci/gpu-check, run here on the CPU: the tracker timing writes a JSON and a markdown
table that read back, and the real main window tracks past the end of bag.avi (looping back to
frame 0) with the heatmap and channel grid drawing. On the GPU machine the same code runs on CUDA."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED, shared_path


def test_gpu_bench_writes_json_and_markdown_that_read_back(tmp_path):
    shared_path("models", "nanotrack", "nanotrackv2.pth")
    from trackers.tools import gpu_bench

    rc = gpu_bench.main(
        [
            "--out",
            str(tmp_path),
            "--frames",
            "9",
            "--cpu-frames",
            "7",
            "--trackers",
            "nanotrack-v2,siamscope-effnet",
            "--devices",
            "cpu,cuda",
            "--video",
            shared_path("data", "videos", "bag.avi"),
        ]
    )
    assert rc == 0
    report = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert report["frames"] == 9 and report["cpu_frames"] == 7
    assert report["device"]["torch"] and "cuda_available" in report["device"]
    cpu = {r["tracker"]: r for r in report["runs"] if r.get("device") == "cpu"}
    assert set(cpu) == {"nanotrack-v2", "siamscope-effnet"}
    assert all(r["fps"] > 0 and r["frames"] == 7 for r in cpu.values()), cpu
    assert cpu["nanotrack-v2"]["engine"] in ("onnxruntime", "torch")
    md = (tmp_path / "gpu_bench.md").read_text()
    assert "| tracker | device | engine | precision | fps |" in md and "| nanotrack-v2 | cpu |" in md
    # the summary step reads what the steps left
    assert gpu_bench.main(["--summary", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["bench"]["runs"] == report["runs"]
    assert "| siamscope-effnet | cpu |" in (tmp_path / "gpu_check.md").read_text()


def test_gpu_bench_refuses_a_missing_video_in_one_line(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "trackers.tools.gpu_bench",
            "--out",
            str(tmp_path / "o"),
            "--video",
            str(tmp_path / "nope.avi"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "does not exist" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()


def test_window_drive_tracks_past_the_end_with_heatmap_and_channels(tmp_path):
    pytest.importorskip("PySide6")
    pytest.importorskip("pyqtgraph")
    weights = shared_path("models", "nanotrack", "nanotrackv2.pth")
    out = tmp_path / "gui.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SIAMSCOPE_SHARED=SHARED)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.gpu_drive",
            "--device",
            "cpu",
            "--frames",
            "205",
            "--weights",
            weights,
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    got = json.loads(out.read_text())
    assert got["tracker_device"] == "cpu" and got["tracked_frames"] >= 205
    assert got["loops_back_to_frame_0"] >= 1  # bag.avi has 195 frames to track
    assert got["heatmap_results_drawn"] > 0 and got["channel_grid_results_drawn"] > 0
    assert got["channel_maps_per_frame"] > 0 and got["heatmap_blended_on_video"]
