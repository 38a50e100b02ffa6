"""The headless `python main.py track` / `trackers` commands, run as a user runs them (subprocess).

Bad input must give exactly one line on stderr and a non-zero exit, never a traceback.
"""

import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, shared_path

BAG_BOX = "292.23,128.36,145.96,132.47"
# The reference NanoTrack V2 scores mean IoU 0.770 on bag against the axis-aligned VOT boxes
# (fixtures README); ours is the same tracker, so anything clearly below that is a regression.
MIN_MEAN_IOU = 0.74


def run_main(*args, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="2", QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "main.py"), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def read_boxes(path):
    return np.array([[float(v) for v in line.split(",")] for line in open(path).read().split()])


def mean_iou(a, b):
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return float(np.mean(inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)))


class InProcess:
    """`trackers.tools.cli.main(argv)` run in this process, shaped like a CompletedProcess. The error
    cases go through exactly the code a subprocess runs, minus the interpreter start-up."""

    def __init__(self, argv, capsys):
        from trackers.tools.cli import main

        self.returncode = main([str(a) for a in argv])
        captured = capsys.readouterr()
        self.stdout, self.stderr = captured.out, captured.err


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    for frag in fragments:
        assert frag.lower() in lines[0].lower(), f"{frag!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def v2_weights():
    return shared_path("models", "nanotrack", "nanotrackv2.pth")


@pytest.fixture(scope="module")
def bag_video():
    return shared_path("data", "videos", "bag.avi")


@pytest.fixture(scope="module")
def bag_gt():
    return np.loadtxt(shared_path("bench", "bag", "groundtruth.txt"), delimiter=",")


def test_track_video_with_outputs(tmp_path, v2_weights, bag_video, bag_gt):
    out, video_out = tmp_path / "bag.txt", tmp_path / "bag.mp4"
    proc = run_main(
        "track",
        bag_video,
        "--tracker",
        "nanotrack-v2",
        "--weights",
        v2_weights,
        "--box",
        BAG_BOX,
        "--out",
        out,
        "--video-out",
        video_out,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.fullmatch(r"\d+\.\d fps", proc.stdout.strip().splitlines()[-1]), proc.stdout
    lines = open(out).read().split()
    assert len(lines) == 196
    assert lines[0] == BAG_BOX
    boxes = read_boxes(out)
    iou = mean_iou(boxes, bag_gt)
    assert iou >= MIN_MEAN_IOU, f"mean IoU {iou:.3f}"
    cap = cv2.VideoCapture(str(video_out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 196


def test_track_image_folder(tmp_path, v2_weights, bag_gt):
    img_dir = shared_path("bench", "bag", "img")
    out = tmp_path / "bag_img.txt"
    proc = run_main(
        "track", img_dir, "--tracker", "nanotrack-v2", "--weights", v2_weights, "--box", BAG_BOX, "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"\d+\.\d fps", proc.stdout.strip().splitlines()[-1])
    boxes = read_boxes(out)
    assert len(boxes) == 196
    assert mean_iou(boxes, bag_gt) >= MIN_MEAN_IOU


def test_damaged_frame_mid_folder_keeps_the_boxes_before_it(tmp_path, v2_weights, bag_gt, capsys):
    """A damaged image in the middle of a sequence: one error line naming it, exit 2, and the
    boxes tracked up to it are in --out (nothing tracked is lost)."""
    import shutil

    img = tmp_path / "seq" / "img"
    img.mkdir(parents=True)
    src = sorted(os.listdir(shared_path("bench", "bag", "img")))[:12]
    for i, name in enumerate(src):
        shutil.copy(shared_path("bench", "bag", "img", name), img / f"{i + 1:04d}.jpg")
    (img / "0009.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "partial.txt"
    proc = InProcess(
        [
            "track",
            tmp_path / "seq",
            "--tracker",
            "nanotrack-v2",
            "--weights",
            v2_weights,
            "--box",
            BAG_BOX,
            "--out",
            out,
        ],
        capsys,
    )
    line = assert_one_line_error(proc, "0009.jpg", "8 boxes", str(out))
    assert "after 8 frames" in line
    boxes = read_boxes(out)
    assert len(boxes) == 8
    assert mean_iou(boxes, bag_gt[:8]) > 0.6  # the real boxes of a tracker that follows the bag


def test_a_video_cut_short_by_a_full_disk_is_detected(tmp_path, bag_video):
    """VideoWriter.write() never reports a failed write; check_written_video reads the file back.
    A file truncated part-way (what a disk that fills up mid-export leaves) is refused."""
    from trackers.run.video_io import AtomicVideoWriter, check_written_video

    cap = cv2.VideoCapture(bag_video)
    frames = [cap.read()[1] for _ in range(10)]
    cap.release()
    path = str(tmp_path / "ten.avi")
    writer = AtomicVideoWriter(path, 25.0, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(f)
    writer.finish()  # read back whole, then renamed into place
    assert os.listdir(tmp_path) == ["ten.avi"]
    check_written_video(path, 10)  # complete: no error
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(OSError, match=r"only [0-9] of the 10 frames"):
        check_written_video(path, 10)


def test_trackers_lists_nanotrack():
    proc = run_main("trackers")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    for v in ("v1", "v2", "v3"):
        assert f"nanotrack-{v}" in names
    line = next(l for l in proc.stdout.splitlines() if l.startswith("nanotrack-v2 "))
    assert "nanotrackv2.pth" in line


def test_error_missing_video(tmp_path, v2_weights):
    missing = tmp_path / "missing.avi"
    proc = run_main("track", missing, "--tracker", "nanotrack-v2", "--weights", v2_weights, "--box", BAG_BOX)
    assert_one_line_error(proc, str(missing))


def test_error_unreadable_video(tmp_path, v2_weights, capsys):
    fake = tmp_path / "notes.avi"
    fake.write_text("this is a text file, not a video\n")
    proc = InProcess(["track", fake, "--tracker", "nanotrack-v2", "--weights", v2_weights, "--box", BAG_BOX], capsys)
    assert_one_line_error(proc, str(fake))


@pytest.mark.parametrize(
    "box,fragment",
    [("600,500,50,50", "outside"), ("100,100,0,20", "empty"), ("1,2,3", "four numbers"), ("a,b,c,d", "numbers")],
)
def test_error_bad_box(v2_weights, bag_video, box, fragment, capsys):
    proc = InProcess(["track", bag_video, "--tracker", "nanotrack-v2", "--weights", v2_weights, "--box", box], capsys)
    assert_one_line_error(proc, fragment)


def test_error_unknown_tracker(bag_video, capsys):
    proc = InProcess(["track", bag_video, "--tracker", "nanotrack-v9", "--box", BAG_BOX], capsys)
    assert_one_line_error(proc, "unknown tracker", "nanotrack-v9")


def test_error_checkpoint_mismatch(bag_video):
    v3 = shared_path("models", "nanotrack", "nanotrackv3.pth")
    proc = run_main("track", bag_video, "--tracker", "nanotrack-v2", "--weights", v3, "--box", BAG_BOX)
    line = assert_one_line_error(proc, v3, "nanotrack-v3", "missing keys", "unexpected keys")
    assert "shape-mismatched keys" in line


def test_track_start_and_frames_range(tmp_path, bag_video, bag_gt, capsys):
    """--start N initialises on frame N (the first output line is that box); --frames A:B stops
    before B. Bag's frame 20 box from the benchmark ground truth."""
    box = ",".join(f"{v:.2f}" for v in bag_gt[20])
    out = tmp_path / "from20.txt"
    proc = InProcess(["track", bag_video, "--tracker", "csrt", "--box", box, "--start", 20, "--out", out], capsys)
    assert proc.returncode == 0, proc.stderr
    boxes = read_boxes(out)
    assert boxes.shape == (196 - 20, 4)
    np.testing.assert_allclose(boxes[0], bag_gt[20], atol=0.01)
    assert "frames 20-195" in proc.stdout
    # CSRT follows the bag from there: the boxes match the ground truth of the same frames
    assert mean_iou(boxes[1:30], bag_gt[21:50]) > 0.5
    out2 = tmp_path / "range.txt"
    proc = InProcess(
        ["track", bag_video, "--tracker", "csrt", "--box", box, "--frames", "20:31", "--out", out2], capsys
    )
    assert proc.returncode == 0, proc.stderr
    assert read_boxes(out2).shape == (11, 4)
    np.testing.assert_allclose(read_boxes(out2), boxes[:11], atol=1e-3)  # same frames, same boxes


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--start", "500"], "past the end"),
        (["--start", "-3"], "--start must be"),
        (["--frames", "20"], "--frames must be A:B"),
        (["--frames", "20:21"], "B > A + 1"),
        (["--start", "2", "--frames", "3:9"], "not both"),
    ],
)
def test_error_bad_frame_range(bag_video, extra, fragment, capsys):
    proc = InProcess(["track", bag_video, "--tracker", "csrt", "--box", BAG_BOX, *extra], capsys)
    assert_one_line_error(proc, fragment)
