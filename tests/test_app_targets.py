"""Several targets and A/B in the window (app/targets_panel.py, app/compare_view.py), with real mouse
events on the real widgets: add a second target by Shift+drag, select it by clicking its box, the
maps switch to it, remove it; compare mode on and off."""

import os

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.targets_panel import COLUMNS, qcolour
from tests.app_support import drag_box, ground_truth, iou, make_window, open_bag, require_nanotrack, wait_drawn_latest
from tests.conftest import shared_path
from trackers.run.tracks import colour_of

SECOND = (60.0, 60.0, 70.0, 90.0)  # a patch of the background, far from the bag


def shift_drag(qtbot, view, box) -> None:
    x, y, w, h = box
    p0, p1 = view.frame_to_widget(x, y), view.frame_to_widget(x + w, y + h)
    vp = view.viewport()
    QTest.mousePress(vp, Qt.LeftButton, Qt.ShiftModifier, p0)
    QTest.mouseMove(vp, view.frame_to_widget(x + w / 2, y + h / 2))
    QTest.mouseMove(vp, p1)
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.ShiftModifier, p1)


def start_run(qtbot, window, box, frames: int):
    if box is not None:  # None: the box drawn already
        drag_box(qtbot, window.video, box)
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.start_button.click()
    qtbot.waitUntil(lambda: window.current_index >= frames, timeout=60000)
    window.set_playing(False)
    wait_drawn_latest(qtbot, window)


def step(qtbot, window):
    before = window.current_index
    window.step()
    qtbot.waitUntil(lambda: window.current_index == before + 1, timeout=20000)
    wait_drawn_latest(qtbot, window)


def test_add_select_remove_a_second_target(qtbot, tmp_path):
    weights = require_nanotrack()
    gt = ground_truth()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    start_run(qtbot, window, tuple(gt[0]), 5)
    panel = window.targets

    shift_drag(qtbot, window.video, SECOND)
    qtbot.waitUntil(lambda: panel.track_set() is not None and panel.track_set().count == 2, timeout=20000)
    step(qtbot, window)
    qtbot.waitUntil(lambda: len(panel.views) == 2 and panel.table.rowCount() == 2, timeout=10000)
    ts = panel.track_set()
    views = {v.id: v for v in ts.snapshot}  # the frame on screen, with every target's maps
    assert [v.id for v in panel.views] == [1, 2]
    assert ts.selected == 2, "a new target is selected"
    # the maps follow the selected target: the frame's result is target 2's
    result = window.drawn_packet.result
    assert result.extra["selected"] == 2
    np.testing.assert_allclose(result.box, views[2].result.box)
    np.testing.assert_array_equal(window.heatmap.score_map, views[2].result.score_map)
    # every target's box is drawn in its colour, the selected one once (the video's own box gives way)
    assert set(panel._boxes) == {1, 2} and not window.video.result_box.isVisible()
    assert not window.timeline.curve.isVisible(), "the single-run curve gives way to every target's"
    np.testing.assert_allclose(panel._boxes[1][0].rect().getRect(), views[1].result.box, atol=1e-3)

    # click target 1's box: selected, the score map switches to it at once (paused)
    x, y, w, h = views[1].result.box
    QTest.mouseClick(
        window.video.viewport(), Qt.LeftButton, Qt.NoModifier, window.video.frame_to_widget(x + w / 2, y + h / 2)
    )
    qtbot.waitUntil(lambda: ts.selected == 1, timeout=5000)
    np.testing.assert_array_equal(window.heatmap.score_map, views[1].result.score_map)
    step(qtbot, window)
    assert window.drawn_packet.result.extra["selected"] == 1
    assert len(panel.history[2]) >= 2, "the timeline keeps every target's confidence"
    # ... each in its colour, over every frame since it was added
    for tid in (1, 2):
        assert panel._curves[tid].opts["pen"].color() == qcolour(colour_of(tid))
        xs, ys = panel._curves[tid].getData()
        assert xs[-1] == window.current_index and 0.0 <= ys[-1] <= 1.0

    # select 2 in the list, remove it: one target again
    panel.table.selectRow([i for i in range(2) if panel.table.item(i, 1).text() == "2"][0])
    qtbot.waitUntil(lambda: ts.selected == 2, timeout=5000)
    panel.remove_button.click()
    step(qtbot, window)
    qtbot.waitUntil(lambda: ts.count == 1 and "tracks" not in window.drawn_packet.result.extra, timeout=10000)
    assert panel.table.rowCount() == 1 and panel.table.item(0, 1).text() == "1" and not panel._boxes
    assert window.video.result_box.isVisible() and window.timeline.curve.isVisible()


def test_compare_on_and_off(qtbot, tmp_path, monkeypatch):
    weights = require_nanotrack()
    # B is NanoTrack v1, whose checkpoint is not bundled: the window finds it where a user would put it
    v1 = shared_path("models", "nanotrack", "nanotrackv1.pth")
    monkeypatch.setenv("SIAMSCOPE_MODELS", os.path.dirname(os.path.dirname(v1)))
    gt = ground_truth()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    assert window.attach_groundtruth(shared_path("bench", "bag", "groundtruth.txt"))
    start_run(qtbot, window, tuple(gt[0]), 3)
    panel = window.targets
    combo = panel.compare_combo
    i = combo.findText("nanotrack-v1")
    assert i > 0
    combo.activated.emit(i)
    ts = panel.track_set()
    qtbot.waitUntil(lambda: ts.compare == "nanotrack-v1" and ts.count == 2, timeout=30000)
    step(qtbot, window)
    step(qtbot, window)
    qtbot.waitUntil(lambda: window.compare_view.shown_frame == window.current_index, timeout=10000)
    a, b = panel.views
    assert (a.tracker_name, a.style, b.tracker_name, b.style) == ("nanotrack-v2", "solid", "nanotrack-v1", "dashed")
    assert window.compare_dock.isVisible()
    np.testing.assert_array_equal(window.compare_view.maps[1].score_map, b.result.score_map)
    assert panel._boxes[2][0].pen().style() == Qt.DashLine
    assert window.current_index in panel.ab_iou and "fps" in window.compare_view.speeds.text()
    # the timeline: both confidences, the IoU between A and B, and each one's IoU with the truth
    here = window.current_index
    assert set(panel._curves) == {1, 2} and panel._ab_curve.getData()[0][-1] == here
    assert panel._ab_curve.getData()[1][-1] == pytest.approx(iou(a.result.box, b.result.box), abs=1e-6)
    for v in (a, b):
        xs, ys = panel._gt_curves[v.id].getData()
        assert xs[-1] == here and ys[-1] == pytest.approx(iou(v.result.box, gt[here]), abs=1e-6)
        assert panel._gt_curves[v.id].opts["pen"].style() == Qt.DotLine
    assert not window.timeline.iou_curve.isVisible(), "the selected one's magenta IoU gives way to both"
    assert "nanotrack-v2" in panel.gt_label.text() and "nanotrack-v1" in panel.gt_label.text()
    # the export holds both tracks, named by tracker
    import json

    assert panel.export_tracks(str(tmp_path / "ab.json"))
    data = json.loads((tmp_path / "ab.json").read_text())
    assert [t["tracker"] for t in data["tracks"]] == ["nanotrack-v2", "nanotrack-v1"]
    assert [t["name"] for t in data["tracks"]] == ["nanotrack-v2", "nanotrack-v1"]
    assert data["compare"] == ["nanotrack-v2", "nanotrack-v1"] and len(data["tracks"][1]["frames"]) >= 2
    # File ▸ Export too: one results file per tracker, named by tracker
    assert window.export_results(str(tmp_path / "ab.txt")), window.messages.text
    a_boxes = (tmp_path / "ab.nanotrack-v2.txt").read_text().splitlines()
    b_boxes = (tmp_path / "ab.nanotrack-v1.txt").read_text().splitlines()
    assert len(a_boxes) == window.current_index + 1 and 2 <= len(b_boxes) < len(a_boxes)
    combo.activated.emit(combo.findText("Compare off"))
    step(qtbot, window)
    qtbot.waitUntil(lambda: ts.compare is None and ts.count == 1, timeout=10000)


def test_a_stopped_run_restarts_with_one_target(qtbot, tmp_path):
    weights = require_nanotrack()
    gt = ground_truth()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    start_run(qtbot, window, tuple(gt[0]), 3)
    panel = window.targets
    panel.add_button.click()  # the button arms the next drag as an added target
    drag_box(qtbot, window.video, SECOND)
    ts = panel.track_set()
    qtbot.waitUntil(lambda: ts.count == 2, timeout=20000)
    step(qtbot, window)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=10000)
    window.stop_button.click()
    qtbot.waitUntil(lambda: not window.tracking and panel.table.rowCount() == 0 and not panel._boxes, timeout=10000)
    start_run(qtbot, window, tuple(gt[window.current_index]), window.current_index + 2)
    assert ts.count == 1 and "tracks" not in window.drawn_packet.result.extra


def _edge_distance(frame, box, colour) -> float:
    """How far the pixels on a box's top edge are from `colour` (BGR), at the best of the rows
    around it (the video's compression blurs a 2-px line)."""
    x, y, w, h = (int(round(v)) for v in box)
    rows = [frame[r, x + 4 : x + w - 4].astype(float) for r in range(max(y - 1, 0), y + 2)]
    return min(float(np.abs(r - np.array(colour, float)).mean()) for r in rows if r.size)


def test_file_export_holds_every_track(qtbot, tmp_path):
    """File ▸ Export of a run with two targets: the video draws both boxes in their colours, the
    results are one file per target named by its name (OTB text, CSV) or one JSON with both; the
    attached ground truth is never written over, checked before any file is."""
    import csv
    import json
    import shutil

    import cv2

    from trackers.run.results import read_boxes
    from trackers.run.tracks import colour_of

    weights = require_nanotrack()
    gt = ground_truth()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    truth = tmp_path / "gt.1.txt"  # OTB's name for target 1's truth: a per-target export must not hit it
    shutil.copy(shared_path("bench", "bag", "groundtruth.txt"), truth)
    # target 2's truth beside it, as OTB's multi-target sequences have it: the background patch stays put
    (tmp_path / "gt.2.txt").write_text("".join(",".join(f"{v:g}" for v in SECOND) + "\n" for _ in gt))
    assert window.attach_groundtruth(str(truth))
    start_run(qtbot, window, tuple(gt[0]), 3)
    panel = window.targets
    added_at = window.current_index
    shift_drag(qtbot, window.video, SECOND)
    ts = panel.track_set()
    qtbot.waitUntil(lambda: ts.count == 2, timeout=20000)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=10000)
    row = [i for i in range(2) if panel.table.item(i, 1).text() == "2"][0]
    panel.table.item(row, 2).setText("bg")  # what an edit of the name cell does
    step(qtbot, window)
    step(qtbot, window)
    last = window.current_index
    assert [v.name for v in ts.snapshot] == ["1", "bg"]
    # each target against its own truth: target 1 the attached file's, target 2 its sibling gt.2.txt
    views = {v.id: v for v in panel.views}
    assert panel.gt_iou[1][last] == pytest.approx(iou(views[1].result.box, gt[last]), abs=1e-6)
    assert panel.gt_iou[2][added_at] > 0.9 and set(panel._gt_curves) == {1, 2}
    assert panel.gt_iou[2][last] == pytest.approx(iou(views[2].result.box, SECOND), abs=1e-6)

    # OTB text: one file per target, named by target
    assert window.export_results(str(tmp_path / "run.txt")), window.messages.text
    one, bg = read_boxes(str(tmp_path / "run.1.txt")), read_boxes(str(tmp_path / "run.bg.txt"))
    assert not (tmp_path / "run.txt").exists()
    assert len(one) == last + 1 and len(bg) == last - added_at + 1
    np.testing.assert_allclose(one[0], gt[0], atol=1.0)
    np.testing.assert_allclose(bg[0], SECOND, atol=2.0)
    # on the frame target 2 was added, target 1 keeps its own tracked box (not the added one's)
    assert iou(one[added_at], SECOND) < 0.1 and iou(one[added_at], gt[added_at]) > 0.5
    # JSON: both tracks, their names, the added target's init marked
    assert window.export_results(str(tmp_path / "run.json"))
    data = json.loads((tmp_path / "run.json").read_text())
    assert [(t["id"], t["name"]) for t in data["tracks"]] == [(1, "1"), (2, "bg")]
    assert data["tracks"][1]["start"] == added_at and data["tracks"][1]["frames"][0]["init"]
    assert data["tracks"][1]["reinitialisations"][0]["frame"] == added_at
    assert data["tracker"] == "nanotrack-v2" and len(data["tracks"][0]["frames"]) == last + 1
    # CSV: one per target, the single-track CSV's columns
    with open(tmp_path / "run.bg.csv" if window.export_results(str(tmp_path / "run.csv")) else "") as f:
        rows = list(csv.reader(f))
    assert rows[0][:8] == ["frame", "x", "y", "w", "h", "score", "state", "init"]
    assert [int(r[0]) for r in rows[1:]] == list(range(added_at, last + 1)) and rows[1][7] == "1"

    # never over an input: target 1's file would be the attached ground truth -> nothing written
    before = truth.read_bytes()
    assert not window.export_results(str(tmp_path / "gt.txt"))
    assert window.messages.level == "error" and "input" in window.messages.text
    assert truth.read_bytes() == before and not (tmp_path / "gt.bg.txt").exists()

    # the annotated video: every frame, both boxes in their colours on the frames both are tracked
    job = window.export_video(str(tmp_path / "run.avi"), heatmap=False)
    assert job is not None
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=60000)
    assert job.outcome[0], job.outcome[1]
    cap = cv2.VideoCapture(str(tmp_path / "run.avi"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    assert len(frames) == last + 1
    assert _edge_distance(frames[last], one[last], colour_of(1)) < 40
    assert _edge_distance(frames[last], bg[-1], colour_of(2)) < 40
    assert _edge_distance(frames[0], bg[-1], colour_of(2)) > 40, "target 2 is not drawn before it was added"


def test_one_target_listed_and_readable_at_1366x768(qtbot, tmp_path):
    """On a laptop screen the Targets list is a narrow dock: every header reads whole, nothing
    scrolls sideways; the one target is listed as soon as its box is drawn, then with its state,
    confidence and IoU once tracking."""
    weights = require_nanotrack()
    gt = ground_truth()
    window = make_window(qtbot, tmp_path)
    window.resize(1366, 768)  # not compact (the inspect panels side by side): Targets is a ~290 px dock
    qtbot.waitUntil(lambda: window.width() == 1366 and not window.compact, timeout=5000)
    open_bag(qtbot, window, weights)
    assert window.attach_groundtruth(shared_path("bench", "bag", "groundtruth.txt"))
    panel = window.targets
    qtbot.waitUntil(panel.table.isVisible, timeout=5000)
    drag_box(qtbot, window.video, tuple(gt[0]))
    assert panel.table.rowCount() == 1
    assert [panel.table.item(0, c).text() for c in (1, 2, 3)] == ["1", "1", "ready"]
    start_run(qtbot, window, None, 2)
    here = window.current_index
    cells = [panel.table.item(0, c).text() for c in range(len(COLUMNS))]
    assert cells[1:4] == ["1", "1", "tracking"]
    assert float(cells[4]) == pytest.approx(window.drawn_packet.result.score, abs=1e-3)
    assert float(cells[5]) == pytest.approx(iou(window.drawn_packet.result.box, gt[here]), abs=0.01)
    header = panel.table.horizontalHeader()
    metrics = header.fontMetrics()
    for col, text in enumerate(COLUMNS):
        assert header.sectionSize(col) >= metrics.horizontalAdvance(text) + 6, f"header {text!r} is clipped"
        assert panel.table.horizontalHeaderItem(col).toolTip()
    assert header.length() <= panel.table.viewport().width(), "the list scrolls sideways"


def test_exported_frames_draw_a_solid_and_b_dashed_with_names():
    """What File ▸ Export's video draws of an A/B frame: A's box solid, B's dashed, each in its
    colour, with its name written by it."""
    from trackers.core.base import TrackResult
    from trackers.run.multi_export import draw_tracks
    from trackers.run.track_set import TrackView

    frame = np.zeros((200, 300, 3), np.uint8)
    a_name, b_name = "siamscope-default", "nanotrack-v2"
    a = TrackView(1, a_name, a_name, colour_of(1), "solid", TrackResult((20, 40, 100, 80), 0.9))
    b = TrackView(2, b_name, b_name, colour_of(2), "dashed", TrackResult((160, 40, 100, 80), 0.8))
    out = draw_tracks(frame, (a, b), {1: a.result, 2: b.result}, 7)
    for view, x0 in ((a, 20), (b, 160)):
        edge = out[80, x0 - 1 : x0 + 2].max(axis=0)  # the left edge, 2 px wide
        assert np.abs(edge.astype(int) - np.array(view.colour)).max() < 40
        column = out[44:116, x0]
        on = (np.abs(column.astype(int) - np.array(view.colour)).max(axis=1) < 60).mean()
        assert (on > 0.95) if view.style == "solid" else (0.3 < on < 0.8), (view.style, on)
        assert out[10:38, x0 : x0 + 100].any(), "its name is written above the box"


def test_restarting_earlier_drops_the_discarded_frames_curves(qtbot, tmp_path):
    """Seek back, re-draw the box, "Discard them and restart here": the targets' curves lose the
    discarded frames (the store did), while only browsing back keeps them."""
    weights = require_nanotrack()
    gt = ground_truth()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    start_run(qtbot, window, tuple(gt[0]), 3)
    panel = window.targets
    shift_drag(qtbot, window.video, SECOND)
    qtbot.waitUntil(lambda: panel.track_set() is not None and panel.track_set().count == 2, timeout=20000)
    for _ in range(4):
        step(qtbot, window)
    last = window.current_index
    assert max(panel.history[1]) == last and max(panel.history[2]) == last

    window.seek(last - 3)  # browsing back: the run and its curves are kept
    qtbot.waitUntil(lambda: window.current_index == last - 3, timeout=10000)
    wait_drawn_latest(qtbot, window)
    assert max(panel.history[1]) == last and max(window.store.results) == last

    drag_box(qtbot, window.video, tuple(gt[last - 3]))
    wait_drawn_latest(qtbot, window)
    buttons = {b.text(): b for b in window.messages.action_buttons}
    QTest.mouseClick(buttons["Discard them and restart here"], Qt.LeftButton)
    qtbot.waitUntil(lambda: max(window.store.results) == last - 3, timeout=10000)
    wait_drawn_latest(qtbot, window)
    qtbot.waitUntil(lambda: all(max(h) <= last - 3 for h in panel.history.values() if h), timeout=10000)
    step(qtbot, window)
    assert max(panel.history[1]) == last - 2
