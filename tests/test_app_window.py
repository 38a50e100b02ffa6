"""The desktop app end to end (pytest-qt, offscreen): open bag.avi, draw the box with the mouse,
track with NanoTrack V2, look at the heatmap / channel grid, pause, step, re-draw, export, read the
exports back; checkpoint and box problems shown inside the window; the hyper-parameter panel."""

import dataclasses
import hashlib
import json
import os

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from tests.app_support import (
    BAG,
    drag_box,
    frame_pixel_size,
    ground_truth,
    iou,
    make_active,
    make_window,  # noqa: E402
    open_bag,
    require_nanotrack,
    wait_drawn_latest,
)
from tests.conftest import shared_path  # noqa: E402


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_track_inspect_pause_step_redraw_export(qtbot, tmp_path):
    weights = require_nanotrack()
    gt = ground_truth()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    view = window.video

    # -- draw the box with the mouse; it lands where the user dragged (within a widget pixel)
    drag_box(qtbot, view, tuple(gt[0]))
    drawn = view.user_box()
    assert drawn is not None
    tol = 1.5 * frame_pixel_size(view) + 0.5
    assert np.allclose(drawn, gt[0], atol=tol), (drawn, gt[0], tol)

    # -- start; track at full speed until frame 60, then pause
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.start_button.click()
    qtbot.waitUntil(lambda: window.current_index >= 60, timeout=60000)
    window.set_playing(False)
    wait_drawn_latest(qtbot, window)
    paused_at = window.current_index
    assert window.drawn_packet.kind == "track"

    # the box follows the bag (NanoTrack V2 on bag: the reference gets AUC 0.81 on the bench, so a
    # mean IoU of 0.6 over these frames is a loose floor that a lost or frozen box fails)
    rec = window.store.record
    ious = [iou(f.box, gt[f.frame]) for f in rec.frames if not f.init]
    assert len(ious) == paused_at
    assert np.mean(ious) > 0.6, np.mean(ious)
    assert iou(view.result_box.rect().getRect(), gt[paused_at]) > 0.4

    # -- the heatmap and the channel grid show the result on screen, not an older one
    result = window.drawn_packet.result
    np.testing.assert_array_equal(window.heatmap.score_map, result.score_map)
    np.testing.assert_array_equal(window.heatmap.image.image, result.score_map)
    maps = {(c.level, c.branch): c.maps for c in result.channels}
    assert maps, "nanotrack-v2 reports its correlation channels"
    shown = [c for c in window.channels.cells if c.key is not None]
    assert len(shown) == window.channels.k
    for cell in shown:
        np.testing.assert_array_equal(cell.data, maps[cell.key[:2]][cell.key[2]])
    # ranked by how much each channel concentrates on the target (trackers/run/channel_rank.py)
    from trackers.run.channel_rank import channel_values

    values = np.concatenate(list(channel_values(result.channels, "target", result.box, result.search_region).values()))
    assert shown[0].value == pytest.approx(values.max())  # most target-selective first
    shown_values = [c.value for c in shown]
    assert shown_values == sorted(shown_values, reverse=True)

    # -- the heatmap blended over the video lies at the score map's true place in the frame
    window.heat_check.setChecked(True)
    assert view.heat.isVisible()
    np.testing.assert_array_equal(view.heat.image, result.score_map)
    x0, y0, x1, y1 = result.search_region.score_extent
    np.testing.assert_allclose(
        view.heat.mapRectToParent(view.heat.boundingRect()).getRect(), (x0, y0, x1 - x0, y1 - y0), rtol=1e-6, atol=1e-3
    )
    window.heat_check.setChecked(False)
    assert not view.heat.isVisible()

    # -- click a channel (the third) to enlarge it, pin it; it stays first across frames
    cell = shown[2]
    QTest.mouseClick(cell.picture, Qt.LeftButton, Qt.NoModifier, cell.picture.rect().center())
    qtbot.waitUntil(lambda: window.channels.selected == cell.key, timeout=3000)
    pinned_key = cell.key
    np.testing.assert_array_equal(window.channels.big_image.image, cell.data)
    window.channels.pin_button.click()
    assert window.channels.pinned == [pinned_key]

    # -- step one frame (the Right-arrow shortcut)
    make_active(qtbot, window)
    QTest.keyClick(window, Qt.Key_Right)
    qtbot.waitUntil(
        lambda: window.current_index == paused_at + 1 and window.drawn_packet.kind == "track", timeout=10000
    )
    assert window.channels.cells[0].key == pinned_key
    new_maps = {(c.level, c.branch): c.maps for c in window.drawn_packet.result.channels}
    np.testing.assert_array_equal(window.channels.cells[0].data, new_maps[pinned_key[:2]][pinned_key[2]])

    # -- re-draw: while paused, a new box re-initialises the tracker on the frame on screen
    here = window.current_index
    QTest.keyClick(window, Qt.Key_R)
    assert view.user_box() is None
    drag_box(qtbot, view, tuple(gt[here]))
    qtbot.waitUntil(lambda: window.drawn_packet.kind == "init" and window.current_index == here, timeout=10000)
    assert np.allclose(window.drawn_packet.result.box, gt[here], atol=tol)
    assert [r["frame"] for r in window.store.record.reinitialisations] == [0, here]

    # -- play to the end (Space)
    QTest.keyClick(window, Qt.Key_Space)
    qtbot.waitUntil(lambda: window.current_index == 195 and not window.playing, timeout=60000)
    rec = window.store.record
    assert [f.frame for f in rec.frames] == list(range(196))
    ious = [iou(f.box, gt[f.frame]) for f in rec.frames if not f.init]
    print(
        f"nanotrack-v2 in the app on bag.avi: mean IoU {np.mean(ious):.3f} over {len(ious)} tracked frames "
        f"(re-initialised at frame {here})"
    )
    assert np.mean(ious) > 0.6, np.mean(ious)

    # -- export the annotated video of the finished run (no re-tracking) and read it back
    out = tmp_path / "bag_annotated.avi"
    job = window.export_video(str(out), heatmap=False)
    assert job is not None
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=60000)
    assert job.outcome[0], job.outcome[1]
    cap = cv2.VideoCapture(str(out))
    exported = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        exported.append(f)
    cap.release()
    assert len(exported) == 196
    assert exported[0].shape == (360, 480, 3)
    original = cv2.VideoCapture(shared_path(*BAG))
    for _ in range(100):
        original.grab()
    _, frame100 = original.read()
    original.release()
    # the box's top edge at frame 100 is drawn green (MJPG blurs it: loose colour bounds)
    x, y, w, h = (int(round(v)) for v in rec.frames[100].box)
    edge = exported[100][y, x + 3 : x + w - 3].astype(int)
    assert np.median(edge[:, 1]) > 170 and np.median(edge[:, 2]) < 110, np.median(edge, 0)
    before = frame100[y, x + 3 : x + w - 3].astype(int)
    assert np.abs(np.median(edge, 0) - np.median(before, 0)).max() > 40

    # -- results files: OTB text, CSV, JSON with the provenance
    assert window.export_results(str(tmp_path / "bag.txt"))
    assert window.export_results(str(tmp_path / "bag.json"))
    assert window.export_results(str(tmp_path / "bag.csv"))
    lines = (tmp_path / "bag.txt").read_text().splitlines()
    assert len(lines) == 196
    np.testing.assert_allclose([float(v) for v in lines[150].split(",")], rec.frames[150].box, atol=1e-3)
    data = json.loads((tmp_path / "bag.json").read_text())
    assert data["tracker"] == "nanotrack-v2"
    assert data["checkpoint_sha256"] == _sha256(weights)
    assert data["source"].endswith("bag.avi")
    assert data["params"]["penalty_k"] == pytest.approx(0.15)
    assert [r["frame"] for r in data["reinitialisations"]] == [0, here]
    assert len(data["results"]) == 196 and data["results"][150]["state"] == "tracking"
    assert "network" in data["results"][150]["timings"]
    csv_rows = (tmp_path / "bag.csv").read_text().splitlines()
    assert len(csv_rows) == 197 and csv_rows[0].startswith("frame,x,y,w,h,score,state,init")

    # -- an unwritable path is a message in the window, before any work; the run stays exportable
    assert not window.export_results(str(tmp_path / "no" / "such" / "dir" / "bag.json"))
    assert window.messages.level == "error" and "results are kept" in window.messages.text
    assert window.export_video(str(tmp_path / "no" / "dir" / "x.avi")) is None
    assert window.messages.level == "error" and "does not exist" in window.messages.text
    assert len(window.store.record.frames) == 196

    # -- never over the open video, never a device: refused before a frame is written
    source = window.store.source_spec
    before = _sha256(source)
    assert window.export_video(source) is None and "is the input" in window.messages.text
    if os.path.exists("/dev/full"):
        full_json = tmp_path / "full.json"
        os.symlink("/dev/full", full_json)
        assert not window.export_results(str(full_json))
        assert "device" in window.messages.text and "results are kept" in window.messages.text
        assert os.path.islink(full_json) and os.path.exists("/dev/full")  # both left alone
    assert _sha256(source) == before

    # -- a disk that fills up mid-write (a file-size limit: writes past it fail with EFBIG, as on a
    # full disk): the export fails, the file already at the path is untouched, no partial file
    import resource
    import signal

    keep_json, keep_video = tmp_path / "keep.json", tmp_path / "keep.avi"
    keep_json.write_text("the user's old results")
    keep_video.write_bytes(b"the user's old video")
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, hard))
    try:
        assert not window.export_results(str(keep_json))
        assert "too large" in window.messages.text.lower() and "results are kept" in window.messages.text
        job = window.export_video(str(keep_video))
        qtbot.waitUntil(lambda: not job.isRunning(), timeout=60000)
        qtbot.waitUntil(lambda: "export failed" in window.messages.text, timeout=5000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert window.messages.level == "error" and "of the 196 frames" in window.messages.text
    assert keep_json.read_text() == "the user's old results"
    assert keep_video.read_bytes() == b"the user's old video"
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".keep")]  # no temporary file left
    assert len(window.store.record.frames) == 196
    assert window.export_results(str(tmp_path / "after.txt"))  # still exportable


def test_problems_are_shown_in_the_window_and_params_apply_live(qtbot, tmp_path):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    # a checkpoint of another model: the CheckpointError text, in the window
    wrong = shared_path("models", "nanotrack", "nanotrackv3.pth")
    window.select_tracker("nanotrack-v2", wrong)
    qtbot.waitUntil(lambda: "Cannot load nanotrack-v2" in window.messages.text, timeout=30000)
    assert window.messages.level == "error" and "nanotrackv3.pth" in window.messages.text
    assert window.messages.isVisible()
    # a missing file
    window.select_tracker("nanotrack-v2", str(tmp_path / "missing.pth"))
    qtbot.waitUntil(lambda: "missing.pth" in window.messages.text, timeout=10000)
    assert "does not exist" in window.messages.text
    # the right one loads and is remembered for next time
    open_bag(qtbot, window, weights)
    assert window.settings.value("weights/nanotrack-v2") == weights
    # a source that is not a video
    window.open_source(str(tmp_path / "nothing.avi"))
    assert window.messages.level == "error" and "nothing.avi" in window.messages.text
    # a box that does not fit the frame: the BoxError text
    window.video.set_user_box((600.0, 10.0, 50.0, 50.0))
    window.start_tracking()
    qtbot.waitUntil(lambda: "outside the 480x360 frame" in window.messages.text, timeout=10000)
    assert not window.tracking
    # no box at all
    window.video.set_user_box(None)
    window.start_tracking()
    assert "Drag a box" in window.messages.text

    # -- the hyper-parameter panel: one editor per dataclass field; an edit applies from the next frame
    gt = ground_truth()
    params_type = type(window.tracker_info.params)
    assert list(window.params.editors) == [f.name for f in dataclasses.fields(params_type)]
    window.video.set_user_box(tuple(gt[0]))
    window.start_tracking()
    qtbot.waitUntil(lambda: window.tracking, timeout=10000)
    window.set_playing(False)
    wait_drawn_latest(qtbot, window)
    here = window.current_index
    window.params.set_value("penalty_k", 0.3)
    window.params.set_value("window_influence", 0.2)
    window.step()
    qtbot.waitUntil(lambda: window.current_index == here + 1 and window.drawn_packet.kind == "track", timeout=10000)
    # the worker set them on the tracker between frames; the run record carries them
    assert window.worker.tracker.params.penalty_k == pytest.approx(0.3)
    assert window.worker.tracker.params.window_influence == pytest.approx(0.2)
    assert window.store.record.params["penalty_k"] == pytest.approx(0.3)
    window.params.reset_to_defaults()
    window.step()
    qtbot.waitUntil(lambda: window.current_index == here + 2, timeout=10000)
    assert window.worker.tracker.params.penalty_k == pytest.approx(params_type().penalty_k)


def test_seek_during_a_run_restarts_the_tracker_from_its_box_there(qtbot, tmp_path):
    """Seeking while a run is paused leaves the tracker's state on another frame. Playing on from a
    frame this run tracked restarts the tracker there from that frame's box (a recorded
    re-initialisation); from a frame it never reached, the window asks for a box instead."""
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    gt = ground_truth()
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.video.set_user_box(tuple(gt[0]))
    window.start_tracking()
    qtbot.waitUntil(lambda: window.current_index >= 30, timeout=60000)
    window.set_playing(False)
    wait_drawn_latest(qtbot, window)
    box10 = window.store.results[10].box

    # back to frame 10, which this run tracked; one step: restart there, then track frame 11
    window.seek(10)
    qtbot.waitUntil(lambda: window.current_index == 10, timeout=10000)
    window.step()
    qtbot.waitUntil(lambda: window.current_index == 11 and window.drawn_packet.kind == "track", timeout=10000)
    reinit = window.store.record.reinitialisations
    assert [r["frame"] for r in reinit] == [0, 10]
    np.testing.assert_allclose(reinit[1]["box"], box10, atol=1e-4)
    assert max(window.store.results) == 11  # what followed frame 10 was replaced
    assert [f.frame for f in window.store.record.frames] == list(range(12))
    assert iou(window.drawn_packet.result.box, gt[11]) > 0.5

    # forward past what the run reached: no box there, so it asks for one instead of tracking
    window.seek(150)
    qtbot.waitUntil(lambda: window.current_index == 150, timeout=10000)
    window.step()
    qtbot.waitUntil(lambda: "no box for frame 150" in window.messages.text, timeout=10000)
    wait_drawn_latest(qtbot, window)
    assert window.current_index == 150 and window.tracking and window.drawn_packet.kind == "frame"
    # the heatmap and channels still hold an earlier frame's output: they say so, dimmed
    assert window.heatmap.caption.text().endswith("frame 150 has no network output")
    assert window.heatmap.image.opacity() < 1 and window.channels.dimmed
    assert window.channels.info.text().startswith(f"frame {window.heatmap.frame}'s ")
    # a box drawn on it restarts the tracker there
    drag_box(qtbot, window.video, tuple(gt[150]))
    qtbot.waitUntil(lambda: window.drawn_packet.kind == "init" and window.current_index == 150, timeout=10000)
    window.step()
    qtbot.waitUntil(lambda: window.current_index == 151 and window.drawn_packet.kind == "track", timeout=10000)
    assert iou(window.drawn_packet.result.box, gt[151]) > 0.5
    assert window.heatmap.caption.text().startswith("frame 151: score map")
    assert window.heatmap.image.opacity() == 1 and not window.channels.dimmed
