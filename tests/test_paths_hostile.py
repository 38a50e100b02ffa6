"""Paths and names that come from files, and ground truth as an input, tried as an attacker would
(issue 21 items 2, 3, 4 and part of 8, 9): crafted pysot JSON annotations, list.txt and VOT
`sequence` files whose names lead out of the results folder, symlinks planted in the results
folder, `vot-setup` over the toolkit's own layout, `track --out` onto ground truth, corrupted
finished results, a stale temporary file, a full file-size limit. Real files are written and read
back; the whole temporary tree is listed before and after: nothing is written outside the
destination."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, shared_path
from tests.test_zoo_hostile import added, tree
from trackers.run.groundtruth import GroundTruthError, read_groundtruth
from trackers.run.sequences import EvalError
from trackers.tools import eval_results
from trackers.tools.cli import main
from trackers.tools.datasets import load_dataset

N = 6
BOX = (20.0, 15.0, 16.0, 12.0)


def _frames(folder, n=N, size=(64, 48)):
    """n small real JPEGs with a bright square moving right (something csrt can follow)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.rectangle(img, (20 + i, 15), (36 + i, 27), (230, 230, 230), -1)
        p = os.path.join(folder, f"{i + 1:08d}.jpg")
        cv2.imwrite(p, img)
        paths.append(p)
    return paths


def _gt_lines(n=N):
    return [f"{20 + i},15,16,12" for i in range(n)]


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _pysot(tmp_path, name, entry=None):
    root = tmp_path / "data"
    _frames(str(root / "seq"))
    entry = (
        entry
        if entry is not None
        else {
            "img_names": [f"seq/{i + 1:08d}.jpg" for i in range(N)],
            "gt_rect": [[float(v) for v in line.split(",")] for line in _gt_lines()],
        }
    )
    p = root / "anno.json"
    p.write_text(json.dumps({name: entry}))
    return str(p)


# -- item 2: eval --results never leaves the results folder -----------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "../../notes",
        "../notes",
        "/ABS/notes",
        "a/../../notes",
        "..",
        ".",
        "",
        "x\\..\\..\\notes",
        "C:notes",
        "seq\nname",
    ],
)
def test_a_pysot_sequence_name_never_leads_a_result_out(tmp_path, capsys, name):
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's notes")
    anno = _pysot(tmp_path, name.replace("/ABS", str(tmp_path)))
    results = tmp_path / "out" / "results"
    before = tree(tmp_path)
    assert main(["eval", anno, "--trackers", "csrt", "--results", str(results), "--quiet"]) == 2
    assert "sequence name" in _one_line(capsys)
    assert added(before, tree(tmp_path)) == set() and notes.read_text() == "the user's notes"


@pytest.mark.parametrize(
    "entry, field",
    [
        ({"img_names": ["seq/00000001.jpg"], "gt_rect": 5}, "gt_rect is int"),
        ({"img_names": 5, "gt_rect": [[1, 2, 3, 4]]}, "img_names is int"),
        ({"img_names": ["seq/00000001.jpg"], "gt_rect": [[1, 2, "a", 4]]}, "gt_rect[0]"),
        ({"img_names": ["seq/00000001.jpg"], "gt_rect": [5]}, "gt_rect[0]"),
        ({"img_names": ["seq/00000001.jpg"], "gt_rect": [[1, 2, 3]]}, "got 3 numbers"),
        ({"img_names": ["seq/00000001.jpg"], "gt_rect": [[1, 2, -3, 4]]}, "negative width or height"),
        ({"img_names": [["x"]], "gt_rect": [[1, 2, 3, 4]]}, "img_names[0]"),
        ({"img_names": ["/etc/passwd"], "gt_rect": [[1, 2, 3, 4]]}, "img_names[0]"),
        ({"img_names": ["../../../etc/passwd"], "gt_rect": [[1, 2, 3, 4]]}, "img_names[0]"),
        ({"img_names": ["seq/00000001.jpg"], "gt_rect": [[1, 2, 3, 4]], "absent": "x"}, "absent is str"),
        ({"img_names": ["seq/00000001.jpg"], "gt_rect": [[1, 2, 3, 4]], "absent": [None]}, "absent must be"),
        ({"img_names": ["seq/00000001.jpg"]}, "lacks img_names or gt_rect"),
    ],
)
def test_malformed_pysot_annotations_are_one_line(tmp_path, capsys, entry, field):
    anno = _pysot(tmp_path, "seq", entry)
    before = tree(tmp_path)
    assert main(["eval", anno, "--trackers", "csrt", "--results", str(tmp_path / "res"), "--quiet"]) == 2
    assert field in _one_line(capsys)
    assert added(before, tree(tmp_path)) == set()


@pytest.mark.parametrize("plant", ["tracker-folder", "result-file", "got10k-folder"])
def test_a_symlink_planted_in_the_results_folder_is_refused_before_tracking(tmp_path, capsys, plant):
    anno = _pysot(tmp_path, "seq")
    results, outside = tmp_path / "results", tmp_path / "elsewhere"
    results.mkdir()
    outside.mkdir()
    (outside / "seq.txt").write_text("keep")
    fmt = ["--result-format", "got10k"] if plant == "got10k-folder" else []
    if plant == "tracker-folder":
        os.symlink(outside, results / "csrt")
    elif plant == "result-file":
        (results / "csrt").mkdir()
        os.symlink(outside / "seq.txt", results / "csrt" / "seq.txt")
    else:
        (results / "csrt").mkdir()
        os.symlink(outside, results / "csrt" / "seq")
    before = tree(tmp_path)
    assert main(["eval", anno, "--trackers", "csrt", "--results", str(results), "--quiet", *fmt]) == 2
    assert "leads outside" in _one_line(capsys)
    assert added(before, tree(tmp_path)) == set() and (outside / "seq.txt").read_text() == "keep"


def test_eval_writes_inside_the_results_folder_and_nowhere_else(tmp_path, capsys):
    anno = _pysot(tmp_path, "seq")
    results = tmp_path / "results"
    before = tree(tmp_path)
    assert main(["eval", anno, "--trackers", "csrt", "--results", str(results), "--quiet"]) == 0
    new = added(before, tree(tmp_path))
    assert new and all(p == "results" or p.startswith("results" + os.sep) for p in new), new
    assert {os.path.basename(p) for p in new} >= {"seq.txt", "seq_time.txt", "seq_confidence.value"}


# -- list.txt, VOT sequence files ---------------------------------------------------------------------
def _got10k(root, names, listed):
    for n in names:
        _frames(str(root / n))
        (root / n / "groundtruth.txt").write_text("\n".join(_gt_lines()) + "\n")
    (root / "list.txt").write_text(listed)


@pytest.mark.parametrize(
    "listed, message",
    [
        ("a\nb\na\n", "'a' is listed twice (lines 1 and 3)"),
        ("", "lists no sequences"),
        ("\n  \n", "lists no sequences"),
        ("a\n../a\n", "line 2: sequence name '../a'"),
        ("/etc\n", "line 1: sequence name '/etc' is an absolute path"),
    ],
)
def test_list_txt_duplicates_empty_and_escaping_names_are_errors(tmp_path, capsys, listed, message):
    root = tmp_path / "got"
    _got10k(root, ["a", "b"], listed)
    with pytest.raises(EvalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(str(root))
    assert main(["eval", str(root), "--trackers", "csrt", "--quiet"]) == 2
    assert message in _one_line(capsys)


def test_a_vot_sequence_file_name_is_checked(tmp_path, capsys):
    seq = tmp_path / "vot" / "s1"
    _frames(str(seq / "color"))
    (seq / "groundtruth.txt").write_text("\n".join(_gt_lines()) + "\n")
    (seq / "sequence").write_text("channels.color=color/%08d.jpg\nname=../../../owned\n")
    with pytest.raises(EvalError, match="sequence name '../../../owned' contains '..'"):
        load_dataset(str(seq))


# -- item 9: ground truth with negative sizes is an error naming the line ---------------------------
def test_negative_sizes_are_an_error_naming_the_line(tmp_path, capsys):
    root = tmp_path / "got"
    _got10k(root, ["a"], "a\n")
    lines = _gt_lines()
    lines[3] = "23,15,-16,12"
    (root / "a" / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(EvalError, match=r"groundtruth.txt:4: a box with a negative width or height"):
        load_dataset(str(root))
    with pytest.raises(GroundTruthError, match=r"groundtruth.txt, line 4: a box with a negative width"):
        read_groundtruth(str(root / "a" / "groundtruth.txt"))
    assert main(["eval", str(root), "--trackers", "csrt", "--quiet"]) == 2
    assert ":4: a box with a negative" in _one_line(capsys)
    # NaN (absent) and zero-area rows are still "no box", not errors
    lines[3] = "nan,nan,nan,nan"
    lines[4] = "0,0,0,0"
    (root / "a" / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    assert len(load_dataset(str(root))[0].gt) == N


# -- item 9: a finished result that is corrupted but well-formed is not read back -------------------
@pytest.mark.parametrize("damage", ["short", "nan-init", "negative", "inf", "other-init", "all-zero"])
def test_a_corrupted_finished_result_is_run_again(tmp_path, capsys, damage):
    anno = _pysot(tmp_path, "seq")
    results = tmp_path / "results"
    assert main(["eval", anno, "--trackers", "csrt", "--results", str(results), "--quiet"]) == 0
    capsys.readouterr()
    boxes_file = results / "csrt" / "seq.txt"
    good = boxes_file.read_text()
    rows = [line.split(",") for line in good.splitlines()]
    if damage == "short":
        rows = rows[:-1]
    elif damage == "nan-init":
        rows[0] = ["nan"] * 4
    elif damage == "negative":
        rows[2][2] = "-5"
    elif damage == "inf":
        rows[2][0] = "inf"
    elif damage == "other-init":
        rows[0] = ["1", "1", "5", "5"]
    else:
        rows = [["0", "0", "0", "0"]] * len(rows)
    boxes_file.write_text("\n".join(",".join(r) for r in rows) + "\n")
    assert main(["eval", anno, "--trackers", "csrt", "--results", str(results), "--quiet"]) == 0
    assert "1 jobs (0 read back)" in capsys.readouterr().out
    assert boxes_file.read_text() == good  # run again: the same boxes as the first run
    assert main(["eval", anno, "--trackers", "csrt", "--results", str(results), "--quiet"]) == 0
    assert "1 jobs (1 read back)" in capsys.readouterr().out


def test_finished_accepts_our_own_nan_rows():
    boxes = np.array([[np.nan] * 4, [1, 2, 3, 4], [2, 2, 3, 4], [np.nan] * 4])
    assert eval_results.finished(boxes, 4, 1, (1, 2, 3, 4))
    assert not eval_results.finished(boxes, 4, 0)
    assert not eval_results.finished(boxes, 5, 1)


# -- item 3: vot-setup never writes into the folder it reads ----------------------------------------
def _vot_workspace_layout(ws):
    """The VOT toolkit's own layout: WS/sequences/list.txt, WS/sequences/<seq>/ with polygons."""
    seq = ws / "sequences" / "s1"
    _frames(str(seq / "color"))
    poly = [f"{20 + i},15,{36 + i},15,{36 + i},27,{20 + i},27" for i in range(N)]
    (seq / "groundtruth.txt").write_text("\n".join(poly) + "\n")
    (seq / "sequence").write_text("channels.color=color/%08d.jpg\nname=s1\n")
    (ws / "sequences" / "list.txt").write_text("s1\n")
    return seq / "groundtruth.txt"


@pytest.mark.parametrize("layout", ["ws/sequences", "ws", "dataset holds ws", "via a link"])
def test_vot_setup_never_overwrites_the_dataset_it_reads(tmp_path, capsys, layout):
    ws = tmp_path / "ws"
    gt = _vot_workspace_layout(ws)
    sequences, workspace = ws / "sequences", ws
    if layout == "ws":
        sequences = ws / "sequences"
        workspace = ws / "sequences"
    elif layout == "dataset holds ws":
        workspace = ws / "sequences" / "s1" / "newws"
    elif layout == "via a link":
        os.symlink(ws, tmp_path / "alias")
        workspace = tmp_path / "alias"
    want = _sha(gt)
    before = tree(tmp_path)
    assert main(["vot-setup", str(workspace), "--trackers", "csrt", "--sequences", str(sequences)]) == 2
    assert "would write into it" in _one_line(capsys)
    assert _sha(gt) == want and added(before, tree(tmp_path)) == set()


def test_vot_setup_into_a_fresh_workspace_keeps_the_polygons_and_writes_only_there(tmp_path, capsys):
    ws = tmp_path / "ws"
    gt = _vot_workspace_layout(ws)
    want = _sha(gt)
    before = tree(tmp_path)
    assert main(["vot-setup", str(tmp_path / "ws2"), "--trackers", "csrt", "--sequences", str(ws / "sequences")]) == 0
    new = added(before, tree(tmp_path))
    assert all(p.startswith("ws2") for p in new) and _sha(gt) == want
    assert (tmp_path / "ws2" / "sequences" / "s1" / "groundtruth.txt").read_text().splitlines()[0] == "20,15,16,12"


# -- item 4: ground truth is an input -----------------------------------------------------------------
@pytest.fixture
def seq_folder(tmp_path):
    seq = tmp_path / "seq"
    _frames(str(seq / "img"))
    (seq / "groundtruth.txt").write_text("\n".join(_gt_lines()) + "\n")
    (seq / "absence.label").write_text("0\n" * N)
    return seq


@pytest.mark.parametrize("target", ["groundtruth.txt", "absence.label.txt", "link-to-gt.txt"])
def test_track_refuses_to_write_over_the_sequences_ground_truth(tmp_path, capsys, seq_folder, target):
    gt = seq_folder / "groundtruth.txt"
    want = _sha(gt)
    out = seq_folder / "groundtruth.txt"
    if target == "link-to-gt.txt":
        out = tmp_path / "link-to-gt.txt"
        os.symlink(gt, out)
    elif target == "absence.label.txt":
        out = tmp_path / "hard.txt"
        os.link(seq_folder / "absence.label", out)
    before = tree(tmp_path)
    assert main(["track", str(seq_folder), "--tracker", "csrt", "--box", "20,15,16,12", "--out", str(out)]) == 2
    assert "is the input" in _one_line(capsys)
    assert _sha(gt) == want and added(before, tree(tmp_path)) == set()


@pytest.fixture
def small_video(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for p in _frames(str(tmp_path / "clipframes")):
        writer.write(cv2.imread(p))
    writer.release()
    shutil.rmtree(tmp_path / "clipframes")
    return path


def test_track_video_out_onto_its_sidecar_ground_truth(tmp_path, capsys, small_video):
    """`<video>.txt` is the name the window auto-attaches as ground truth: refused when it exists (it
    is an input), written with a warning when it does not (decision: docs/data-safety-paths.md)."""
    sidecar = tmp_path / "clip.txt"
    sidecar.write_text("\n".join(_gt_lines()) + "\n")
    want = _sha(sidecar)
    assert main(["track", str(small_video), "--tracker", "csrt", "--box", "20,15,16,12", "--out", str(sidecar)]) == 2
    assert "is the input" in _one_line(capsys) and _sha(sidecar) == want
    sidecar.unlink()
    assert main(["track", str(small_video), "--tracker", "csrt", "--box", "20,15,16,12", "--out", str(sidecar)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "ground truth" in err and len(sidecar.read_text().splitlines()) == N


def test_out_onto_a_symlink_writes_through_and_keeps_the_link(tmp_path, capsys, small_video):
    real = tmp_path / "store" / "boxes.txt"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "boxes.txt"
    os.symlink(real, link)
    assert main(["track", str(small_video), "--tracker", "csrt", "--box", "20,15,16,12", "--out", str(link)]) == 0
    assert os.path.islink(link) and os.readlink(link) == str(real)
    assert len(real.read_text().splitlines()) == N and real.read_text().startswith("20,15,16,12")
    assert sorted(os.listdir(real.parent)) == ["boxes.txt"]  # no temporary file left beside it


def test_a_stale_part_of_a_killed_track_is_removed_by_the_next_write(tmp_path, capsys, small_video):
    out = tmp_path / "boxes.txt"
    stale = tmp_path / ".boxes.txt.k1ll3d00.part.txt"
    stale.write_text("half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    live = tmp_path / ".boxes.txt.l1ve0000.part.txt"  # another writer's, touched just now
    live.write_text("running")
    video_stale = tmp_path / ".clip.avi.k1ll3d00.part.avi"  # the one SIGKILL left in issue 21
    assert main(["track", str(small_video), "--tracker", "csrt", "--box", "20,15,16,12", "--out", str(out)]) == 0
    assert not stale.exists() and live.exists() and out.exists()
    video_stale.write_bytes(b"\0" * 1000)
    os.utime(video_stale, (old, old))
    vout = tmp_path / "clip-out.avi"
    (tmp_path / ".clip-out.avi.k1ll3d00.part.avi").write_bytes(b"\0" * 1000)
    os.utime(tmp_path / ".clip-out.avi.k1ll3d00.part.avi", (old, old))
    assert main(["track", str(small_video), "--tracker", "csrt", "--box", "20,15,16,12", "--video-out", str(vout)]) == 0
    assert not (tmp_path / ".clip-out.avi.k1ll3d00.part.avi").exists() and vout.exists()
    assert video_stale.exists()  # another destination's: left for its own next write


# -- item 9: mixed image sizes, a failed write names its file ----------------------------------------
def test_an_image_folder_of_mixed_sizes_is_refused_naming_the_first_odd_image(tmp_path, capsys):
    folder = tmp_path / "mixed"
    frames = _frames(str(folder))
    img = cv2.imread(frames[3])
    cv2.imwrite(frames[3], cv2.resize(img, (128, 96)))
    out, vout = tmp_path / "b.txt", tmp_path / "v.avi"
    assert (
        main(
            [
                "track",
                str(folder),
                "--tracker",
                "csrt",
                "--box",
                "20,15,16,12",
                "--out",
                str(out),
                "--video-out",
                str(vout),
            ]
        )
        == 2
    )
    err = _one_line(capsys)
    assert "00000004.jpg" in err and "128x96" in err and "64x48" in err and "disk full" not in err
    assert len(out.read_text().splitlines()) == 3  # the frames before it are kept


def test_a_failed_write_names_the_file(tmp_path):
    """A write the kernel refuses (here the file-size limit, EFBIG; a full disk, ENOSPC, takes the
    same path) is one line naming the file, and the previous file is untouched."""
    out = tmp_path / "boxes.txt"
    out.write_text("previous\n")
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from trackers.run.results import write_otb\n"
        "try:\n"
        f"    write_otb({str(out)!r}, [(1.5, 2.5, 3.5, 4.5)] * 5000)\n"
        "except OSError as e:\n"
        "    print('ERR', e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.stdout.startswith("ERR cannot write") and str(out) in run.stdout, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert out.read_text() == "previous\n" and os.listdir(tmp_path) == ["boxes.txt"]


# -- item 4: the window's results export onto the open sequence's ground truth -----------------------
def test_the_window_refuses_to_export_results_over_the_ground_truth(qtbot, tmp_path):
    pytest.importorskip("pytestqt")
    from tests.app_support import BAG, TRACKER, ground_truth, make_window, require_nanotrack

    weights = require_nanotrack()
    frames = 8
    cap = cv2.VideoCapture(shared_path(*BAG))
    images = [cap.read()[1] for _ in range(frames)]
    cap.release()
    video = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, images[0].shape[1::-1])
    for f in images:
        writer.write(f)
    writer.release()
    gt = ground_truth()[:frames]
    sidecar = tmp_path / "short.txt"  # auto-attached: the open sequence's ground truth
    sidecar.write_text("\n".join(",".join(f"{v:g}" for v in b) for b in gt) + "\n")
    elsewhere = tmp_path / "annotations" / "truth.csv"  # attached by hand from another folder
    elsewhere.parent.mkdir()
    shutil.copy(sidecar, elsewhere)
    window = make_window(qtbot, tmp_path / "app")
    window.select_tracker(TRACKER, weights)
    window.open_source(str(video))
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.tracker_info is not None, timeout=30000)
    assert window.groundtruth is not None and window.groundtruth.path == str(sidecar)
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.video.set_user_box(tuple(gt[0]))
    window.start_button.click()
    qtbot.waitUntil(lambda: window.current_index == frames - 1 and not window.playing, timeout=60000)
    want = _sha(sidecar)
    before = tree(tmp_path)
    assert not window.export_results(str(sidecar))
    assert window.messages.level == "error" and "is the input" in window.messages.text
    assert window.attach_groundtruth(str(elsewhere))
    want_elsewhere = _sha(elsewhere)
    assert not window.export_results(str(elsewhere))
    assert "is the input" in window.messages.text and "truth.csv" in window.messages.text
    assert _sha(sidecar) == want and _sha(elsewhere) == want_elsewhere
    assert {p for p in added(before, tree(tmp_path)) if not p.startswith("app")} == set()
    assert window.export_results(str(tmp_path / "results.txt"))  # another name is written


@pytest.fixture
def full_disk(tmp_path):
    """A real, small file system (tmpfs, 512 kB) that a filler file leaves almost full; skipped
    where mounting is not allowed (needs root)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {made.stderr.strip()[:120]}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_full_disk_names_the_file_not_a_bare_errno(tmp_path, capsys, small_video, full_disk):
    """issue 21 item 9: --out and --video-out on one disk that fills: one line naming the file."""
    filler = full_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, os.path.getsize(filler) - 4096))  # room for a temporary file, not a video
    out, vout = full_disk / "b.txt", full_disk / "v.avi"
    frames = _frames(str(tmp_path / "big"), n=N, size=(640, 480))
    code = main(
        [
            "track",
            os.path.dirname(frames[0]),
            "--tracker",
            "csrt",
            "--box",
            "20,15,16,12",
            "--out",
            str(out),
            "--video-out",
            str(vout),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    # the video is what does not fit (its temporary file fills the disk, before or after the boxes
    # are written, as the disk's last blocks go): named, said to be a full disk; the boxes are kept
    assert "v.avi" in err[0] and "[Errno" not in err[0], err
    assert "No space left" in err[0] or "the disk is full" in err[0], err
    assert sorted(os.listdir(full_disk)) == ["b.txt", "filler"] and len(out.read_text().splitlines()) == N


def test_vot_setup_never_writes_through_a_link_planted_in_the_workspace(tmp_path, capsys):
    ws = tmp_path / "ws"
    _vot_workspace_layout(ws)
    color = tmp_path / "ws2" / "sequences" / "s1" / "color"
    color.mkdir(parents=True)
    os.symlink(tmp_path / "outside.jpg", color / "00000001.jpg")  # dangling, pointing out
    os.symlink(tmp_path / "outside-gt.txt", color.parent / "groundtruth.txt")  # the ground truth itself
    assert main(["vot-setup", str(tmp_path / "ws2"), "--trackers", "csrt", "--sequences", str(ws / "sequences")]) == 2
    assert "leads outside" in _one_line(capsys)
    os.unlink(color.parent / "groundtruth.txt")
    assert main(["vot-setup", str(tmp_path / "ws2"), "--trackers", "csrt", "--sequences", str(ws / "sequences")]) == 0
    assert not (tmp_path / "outside.jpg").exists() and not (tmp_path / "outside-gt.txt").exists()


def test_several_targets_refuse_the_ground_truth_too(tmp_path, capsys, seq_folder):
    gt = seq_folder / "groundtruth.txt"
    want = _sha(gt)
    before = tree(tmp_path)
    assert (
        main(
            [
                "track",
                str(seq_folder),
                "--tracker",
                "csrt",
                "--box",
                "20,15,16,12",
                "--box",
                "2,2,8,8",
                "--mot",
                str(gt),
            ]
        )
        == 2
    )
    assert "is the input" in _one_line(capsys)
    assert _sha(gt) == want and added(before, tree(tmp_path)) == set()


def test_sigkill_during_video_out_leaves_a_part_that_the_next_write_removes(tmp_path):
    """issue 21 item 8: SIGKILL mid `track --video-out` leaves `.<name>.XXXXXXXX.part.avi` (nothing
    can run on SIGKILL); the next write to that destination, once the file is stale, removes it."""
    import signal

    bag = shared_path("data", "videos", "bag.avi")
    vout = tmp_path / "out.avi"
    argv = [
        sys.executable,
        os.path.join(ROOT, "main.py"),
        "track",
        bag,
        "--tracker",
        "csrt",
        "--box",
        "292,128,146,132",
        "--video-out",
        str(vout),
    ]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        parts = []
        while time.time() < deadline and proc.poll() is None:
            parts = [n for n in os.listdir(tmp_path) if n.startswith(".out.avi.") and n.endswith(".part.avi")]
            if parts and os.path.getsize(tmp_path / parts[0]) > 0:
                break
            time.sleep(0.05)
        assert parts and proc.poll() is None, "the run ended before a partial video was seen"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = tmp_path / parts[0]
    assert left.exists() and not vout.exists()
    # a fresh one may be another run's, still writing: kept
    assert (
        main(
            ["track", bag, "--tracker", "csrt", "--box", "292,128,146,132", "--frames", "0:3", "--video-out", str(vout)]
        )
        == 0
    )
    assert left.exists()
    old = time.time() - 3600
    os.utime(left, (old, old))
    assert (
        main(
            ["track", bag, "--tracker", "csrt", "--box", "292,128,146,132", "--frames", "0:3", "--video-out", str(vout)]
        )
        == 0
    )
    assert not left.exists() and sorted(os.listdir(tmp_path)) == ["out.avi"]
