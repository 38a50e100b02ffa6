"""Nothing the user has is ever destroyed: outputs are checked before any work, written through a
temporary file renamed into place, never over an input or a device; interrupts keep the work;
truncated videos are reported; boxes are bounded before any allocation.

Everything runs on real files, real subprocesses and real signals."""

import hashlib
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, shared_path
from tests.test_cli_track import BAG_BOX, InProcess, assert_one_line_error, run_main
from trackers.run.safe_output import RESULT_EXTS, VIDEO_EXTS, OutputError, atomic_write, check_output


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def v2_weights():
    return shared_path("models", "nanotrack", "nanotrackv2.pth")


@pytest.fixture
def bag_copy(tmp_path):
    import shutil

    dst = tmp_path / "v.avi"
    shutil.copyfile(shared_path("data", "videos", "bag.avi"), dst)
    return dst


# -- the check before any work -----------------------------------------------------------------
def test_check_output_refuses_the_input_itself_through_links_and_hard_links(tmp_path, bag_copy):
    sym = tmp_path / "sym.avi"
    os.symlink(bag_copy, sym)
    hard = tmp_path / "hard.avi"
    os.link(bag_copy, hard)
    for out in (bag_copy, sym, hard, tmp_path / "." / "v.avi"):
        with pytest.raises(OutputError, match="is the input"):
            check_output(out, VIDEO_EXTS, inputs=[str(bag_copy)])
    # the same name through a symlinked folder
    os.symlink(tmp_path, tmp_path / "alias")
    with pytest.raises(OutputError, match="is the input"):
        check_output(tmp_path / "alias" / "v.avi", VIDEO_EXTS, inputs=[str(bag_copy)])
    assert check_output(tmp_path / "other.avi", VIDEO_EXTS, inputs=[str(bag_copy)]).endswith("other.avi")


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda d: str(d / "sub"), "unknown format"),
        (lambda d: str(d / "r.exe"), "unknown format"),
        (lambda d: "/proc/r.txt", "not writable"),
        (lambda d: str(d / "missing" / "r.txt"), "does not exist"),
    ],
)
def test_check_output_refuses_unwritable_or_unknown_paths(tmp_path, make, fragment):
    with pytest.raises(OutputError, match=fragment):
        check_output(make(tmp_path), RESULT_EXTS)
    assert os.listdir(tmp_path) == []  # the probe file it made to test the folder is gone


def test_check_output_refuses_folders_and_devices(tmp_path):
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path / "dir.txt", RESULT_EXTS)
    os.symlink("/dev/null", tmp_path / "null.txt")
    with pytest.raises(OutputError, match="device"):
        check_output(tmp_path / "null.txt", RESULT_EXTS)
    assert os.path.islink(tmp_path / "null.txt") and os.path.exists("/dev/null")


def test_atomic_write_failure_keeps_the_previous_file(tmp_path):
    dest = tmp_path / "r.txt"
    dest.write_text("precious\n")
    os.chmod(dest, 0o640)
    with pytest.raises(RuntimeError):
        with atomic_write(str(dest)) as f:
            f.write("half")
            raise RuntimeError("disk went away")
    assert dest.read_text() == "precious\n" and os.listdir(tmp_path) == ["r.txt"]
    with atomic_write(str(dest)) as f:
        f.write("new\n")
    assert dest.read_text() == "new\n"
    assert oct(os.stat(dest).st_mode & 0o777) == oct(0o640)  # the replaced file's mode is kept
    with atomic_write(str(tmp_path / "fresh.txt")) as f:
        f.write("x")
    umask = os.umask(0)
    os.umask(umask)
    assert oct(os.stat(tmp_path / "fresh.txt").st_mode & 0o777) == oct(0o666 & ~umask)  # not 0600


FILL_UP = r"""
import resource, signal, sys
import cv2, numpy as np
sys.path.insert(0, sys.argv[1])
from trackers.run.video_io import AtomicVideoWriter
frames = [np.random.default_rng(i).integers(0, 255, (240, 320, 3), np.uint8) for i in range(20)]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (200000, resource.RLIM_INFINITY))
w = AtomicVideoWriter(sys.argv[2], 25, (320, 240))
for f in frames:
    w.write(f)
try:
    w.finish()
except OSError as e:
    print("refused:", e)
"""


def test_a_video_that_does_not_fit_leaves_the_previous_file_and_no_partial(tmp_path):
    """A file-size limit (RLIMIT_FSIZE: writes past it fail as on a full disk) cuts the video
    short: the read-back check refuses it, its temporary file goes, the old file stays."""
    dest = tmp_path / "keep.avi"
    dest.write_bytes(b"the user's old video")
    proc = subprocess.run([sys.executable, "-c", FILL_UP, ROOT, str(dest)], capture_output=True, text=True, timeout=120)
    assert "refused:" in proc.stdout and "of the 20 frames" in proc.stdout, proc.stdout + proc.stderr
    assert dest.read_bytes() == b"the user's old video"
    assert os.listdir(tmp_path) == ["keep.avi"]


# -- track: checks before work, never over the input -------------------------------------------
def test_track_refuses_to_write_the_video_over_its_input(tmp_path, bag_copy, capsys):
    before = _sha(bag_copy)
    hard = tmp_path / "hard.avi"
    os.link(bag_copy, hard)
    for out in (bag_copy, hard):
        proc = InProcess(["track", bag_copy, "--box", BAG_BOX, "--video-out", out], capsys)
        assert_one_line_error(proc, "is the input")
        assert "tracked" not in proc.stdout
    proc = InProcess(
        ["track", bag_copy, "--box", BAG_BOX, "--out", tmp_path / "b.txt", "--video-out", tmp_path / "b.txt"], capsys
    )
    assert_one_line_error(proc, "two outputs")
    assert _sha(bag_copy) == before and sorted(os.listdir(tmp_path)) == ["hard.avi", "v.avi"]


def test_track_checks_outputs_before_tracking(tmp_path, bag_copy, v2_weights, capsys):
    (tmp_path / "plain").write_text("a file, not a folder")
    for flag, out, fragment in [
        ("--out", "/proc/res.txt", "not writable"),
        ("--out", tmp_path / "plain" / "res.txt", "does not exist"),
        ("--video-out", tmp_path / "v.gif", "unknown format"),
    ]:
        proc = InProcess(["track", bag_copy, "--box", BAG_BOX, flag, out], capsys)
        assert_one_line_error(proc, fragment)
        assert "tracked" not in proc.stdout  # refused before a single frame was tracked
    os.symlink("/dev/full", tmp_path / "full.txt")
    proc = InProcess(["track", bag_copy, "--box", BAG_BOX, "--out", tmp_path / "full.txt"], capsys)
    assert_one_line_error(proc, "device")
    assert os.path.exists("/dev/full") and os.path.islink(tmp_path / "full.txt")


@pytest.mark.parametrize(
    "box,fragment",
    [
        ("0,0,1e30,1e30", "larger than the 480x360 frame"),
        ("0,0,1e308,1e308", "larger than"),
        ("-100,-100,30000,30000", "larger than"),
        ("0,0,nan,10", "non-finite"),
        ("0,0,inf,10", "non-finite"),
    ],
)
def test_huge_and_non_finite_boxes_are_one_line(bag_copy, box, fragment, capsys):
    proc = InProcess(["track", bag_copy, f"--box={box}"], capsys)
    assert_one_line_error(proc, fragment)


@pytest.mark.parametrize(
    "box,fragment",
    [("200,200,1,1", "at least 2 px"), ("100,200,300,1", "at least 2 px"), ("100,200,300,4", "elongated")],
)
def test_csrt_size_limits_are_one_line(bag_copy, box, fragment, capsys):
    proc = InProcess(["track", bag_copy, "--tracker", "csrt", "--box", box], capsys)
    assert_one_line_error(proc, "csrt", fragment)


def test_csrt_tracks_the_smallest_box_it_accepts(tmp_path, bag_copy, capsys):
    out = tmp_path / "small.txt"
    proc = InProcess(["track", bag_copy, "--tracker", "csrt", "--box", "100,200,64,2", "--out", out], capsys)
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().split()) == 196


# -- interrupts keep the work ------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_writes_what_was_tracked(tmp_path, v2_weights, sig):
    out, video = tmp_path / "part.txt", tmp_path / "part.avi"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            os.path.join(ROOT, "main.py"),
            "track",
            shared_path("data", "videos", "vtest.avi"),
            "--box",
            "300,200,40,90",
            "--threads",
            "1",
            "-v",
            "--out",
            str(out),
            "--video-out",
            str(video),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for line in proc.stdout:  # wait for the fifth tracked frame: a real condition
            if line.startswith("5 "):
                break
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    n = len(out.read_text().split())
    assert 6 <= n < 795, lines
    assert f"interrupted by {signal.Signals(sig).name} after {n} frames" in lines[0]
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while cap.grab():
        frames += 1
    cap.release()
    assert frames == n  # the video is closed properly, one frame per box
    assert sorted(os.listdir(tmp_path)) == ["part.avi", "part.txt"]  # no temporary file left


# -- truncated sources -------------------------------------------------------------------------
def test_a_truncated_video_is_reported_and_fails_unless_allowed(tmp_path, v2_weights):
    cut = tmp_path / "t.avi"
    cut.write_bytes(open(shared_path("data", "videos", "bag.avi"), "rb").read()[:306144])
    out = tmp_path / "t-boxes.txt"  # not t.txt: the window would take that as t.avi's ground truth (a warning)
    args = ["track", cut, "--tracker", "nanotrack-v2", "--weights", v2_weights, "--box", BAG_BOX, "--out", out]
    proc = run_main(*args)
    assert proc.returncode == 3, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "after 51 of the 196 frames" in warning[0] and "--allow-short" in warning[0]
    assert len(out.read_text().split()) == 51  # what was there is tracked and kept
    proc = run_main(*args, "--allow-short")
    assert proc.returncode == 0 and "after 51 of the 196 frames" in proc.stderr


def test_whole_videos_are_not_reported_short(tmp_path, v2_weights, capsys):
    out = tmp_path / "bag.txt"
    proc = InProcess(
        [
            "track",
            shared_path("data", "videos", "bag.avi"),
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
    assert proc.returncode == 0 and "warning" not in proc.stderr
    np.testing.assert_allclose(
        [float(v) for v in out.read_text().split()[0].split(",")], [float(v) for v in BAG_BOX.split(",")]
    )


def test_opencv_nanotrack_refuses_a_pth_instead_of_ignoring_it(bag_copy, v2_weights, capsys):
    proc = InProcess(
        ["track", bag_copy, "--tracker", "opencv-nanotrack", "--weights", v2_weights, "--box", BAG_BOX], capsys
    )
    assert_one_line_error(proc, "onnx pair", "nanotrackv2.pth")
