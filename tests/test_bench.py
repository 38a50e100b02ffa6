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
        rc = main(
            [
                "bench",
                "--load",
                "--trackers",
                "nanotrack-v2",
                "--load-frames",
                "4",
                "--rounds",
                "1",
                "--threads",
                "1",
                "--engine",
                "onnxruntime",
            ]
        )
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0].startswith("compute policy (--threads): ") and "1 compute threads" in out
    row = re.search(
        r"nanotrack-v2\s+onnxruntime\s+idle\s+(\d+\.\d) fps\s+one busy core\s+(\d+\.\d) fps\s+"
        r"ratio (\d+\.\d\d)",
        out,
    )
    assert row, out
    idle, loaded, ratio = (float(v) for v in row.groups())
    assert idle > 0 and loaded > 0 and ratio == pytest.approx(loaded / idle, abs=0.02)


def test_bench_unknown_tracker_is_one_line_error(capsys):
    from trackers.tools.cli import main

    rc = main(["bench", "--load", "--trackers", "no-such-tracker"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no-such-tracker" in err[0]


def _process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]  # R running, S sleeping, T stopped


def test_load_rounds_alternate_with_the_busy_core_on_only_in_loaded_rounds():
    """`bench --load`'s busy process spins only during loaded rounds (stopped, not busy, in idle
    ones), rounds alternate idle-first / loaded-first, and the process is gone afterwards."""
    from trackers.tools.busy_core import BusyCore, alternate_rounds

    seen = []
    with BusyCore() as busy:
        pid = busy.process.pid
        assert _process_state(pid) == "T"

        def run():
            seen.append(_process_state(pid))
            return float(len(seen))

        figures = alternate_rounds(3, busy, run)
        assert _process_state(pid) == "T"
    assert seen == ["T", "R", "R", "T", "T", "R"]
    assert figures == {"idle": [1.0, 4.0, 5.0], "loaded": [2.0, 3.0, 6.0]}
    assert busy.process.poll() is not None


def test_load_rounds_are_sized_from_the_warm_up_and_run_on_the_same_frames_back_and_forth():
    from trackers.tools.bench import LOAD_MIN_FRAMES, LOAD_ROUND_SECONDS, load_frame_count
    from trackers.tools.bench_timing import ping_pong

    assert load_frame_count(400.0) == round(400 * LOAD_ROUND_SECONDS)
    assert load_frame_count(0.5) == LOAD_MIN_FRAMES and load_frame_count(400.0, fixed=4) == 4
    assert ping_pong([0, 1, 2, 3], 11) == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]


def test_bench_gui_and_gui_under_load_print_their_figures(capsys):
    """--gui runs `track` and the real app (offscreen) on the same clip at the same thread count and
    prints both fps and the app's wall-clock fps with its ratio; --load --gui runs the app idle and
    with one busy core and prints both wall-clock figures and their ratio."""
    shared_path("models", "nanotrack", "nanotrackv2.pth")
    from trackers.tools.cli import main

    common = [
        "--frames",
        "12",
        "--rounds",
        "1",
        "--trackers",
        "nanotrack-v2",
        "--threads",
        "1",
        "--engine",
        "onnxruntime",
    ]
    assert main(["bench", "--gui", *common]) == 0
    out = capsys.readouterr().out
    assert "12 frames of bag.avi (back and forth), 1 compute thread(s) in both" in out
    row = re.search(
        r"nanotrack-v2\s+track\s+(\d+\.\d) fps\s+GUI\s+(\d+\.\d) fps \((\d+\.\d\d)x\)\s+GUI wall\s+"
        r"(\d+\.\d) fps = (\d+\.\d\d)x\s+\(11 frames, \d+ drawn, engine onnxruntime, 1 thread",
        out,
    )
    assert row, out
    track, gui, gui_ratio, wall, wall_ratio = (float(v) for v in row.groups())
    assert min(track, gui, wall) > 0
    assert gui_ratio == pytest.approx(gui / track, abs=0.02) and wall_ratio == pytest.approx(wall / track, abs=0.02)

    assert main(["bench", "--gui", "--load", *common]) == 0
    out = capsys.readouterr().out
    row = re.search(
        r"nanotrack-v2\s+GUI wall idle\s+(\d+\.\d) fps\s+one busy core\s+(\d+\.\d) fps\s+"
        r"ratio (\d+\.\d\d)\s+\(11 frames",
        out,
    )
    assert row, out
    idle, loaded, ratio = (float(v) for v in row.groups())
    assert idle > 0 and loaded > 0 and ratio == pytest.approx(loaded / idle, abs=0.02)


def test_time_budget_stops_after_the_minimum_frames():
    """`bench --all` times each tracker within a budget: a spent budget stops it once the minimum
    number of frames is tracked; without one every frame is tracked."""
    from trackers.core import registry
    from trackers.tools import bench_timing as bench

    frames = bench.read_frames(shared_path("data", "videos", "bag.avi"), 9)
    tracker = registry.build("csrt", None)
    seconds, tracked = bench.time_tracker_within(tracker, frames, bench.BAG_BOX, budget_s=0.0, min_frames=3)
    assert tracked == 3 and seconds > 0
    seconds, tracked = bench.time_tracker_within(tracker, frames, bench.BAG_BOX)
    assert tracked == len(frames) - 1 and seconds > 0


def test_soak_keeps_what_the_app_keeps_over_the_looped_video(capsys):
    """`bench --soak N` runs the session over the video looped past its end (bag has 196 frames) and
    prints RSS before and after; each tracker's line says how much it grew per frame."""
    shared_path("data", "videos", "bag.avi")
    from trackers.tools.cli import main

    assert main(["bench", "--soak", "200", "--trackers", "csrt", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "soak: 200 frames per tracker on bag.avi (looped) after 20 warm-up frames" in out
    row = re.search(
        r"csrt\s+start\s+(\d+\.\d)\s+end\s+(\d+\.\d)\s+\(\s*[+-]\d+\.\d MB,\s+[+-]\d+\.\d kB/frame; no checkpoint", out
    )
    assert row, out
    assert float(row.group(1)) > 0 and float(row.group(2)) > 0


def test_one_fixture_table_for_the_tests_and_bench():
    """The pysot trackers `bench` times by default take their folders from the one table."""
    from trackers.run.fixtures import SEEDED_FIXTURE
    from trackers.tools import bench

    assert set(bench.PYSOT_TIMED) <= set(SEEDED_FIXTURE)
    assert not hasattr(bench, "PYSOT_SEEDED") and not hasattr(bench, "tracker_weights")
