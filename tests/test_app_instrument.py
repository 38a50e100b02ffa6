"""The app as a researcher's instrument (issue 14): ground truth beside the tracker's box with IoU on
the timeline, target-selective channels with their values, the score axis -- on bag.avi with
NanoTrack v2, driven by real mouse and key events."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit  # noqa: E402

from tests.app_support import (
    BAG_GT,
    drag_box,
    ground_truth,
    make_window,
    open_bag,
    require_nanotrack,  # noqa: E402
    wait_drawn_latest,
)
from tests.conftest import shared_path  # noqa: E402
from trackers.run import metrics  # noqa: E402
from trackers.run.channel_rank import interior_mask, peak_response, target_contrast, target_mask  # noqa: E402


def answer_file_dialog(qtbot, path: str) -> list:
    """Type `path` into the next file dialog and press Enter (real key events), as a user would.
    The dialog follows a typed folder as it goes and may take the first Enter for that, so the
    path is typed again until the dialog has accepted it."""
    import os

    path = os.path.abspath(path)
    done = []

    def fill():
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            QTimer.singleShot(20, fill)
            return
        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        edit.clear()
        QTest.keyClicks(edit, path)
        QTest.keyClick(edit, Qt.Key_Return)
        if dialog.isVisible():
            QTimer.singleShot(100, fill)
        else:
            done.append(True)

    QTimer.singleShot(20, fill)
    return done


def pick_in_combo(combo, data) -> None:
    combo.setFocus()
    target = combo.findData(data)
    while combo.currentIndex() != target:
        QTest.keyClick(combo, Qt.Key_Down if combo.currentIndex() < target else Qt.Key_Up)


def _tile_rgb(cell) -> np.ndarray:
    """The tile's picture as (h, w, 3) uint8, read back from its pixmap."""
    from PySide6.QtGui import QImage

    img = cell.picture.pixmap().toImage().convertToFormat(QImage.Format_RGB32)
    w, h = img.width(), img.height()
    argb = np.frombuffer(img.constBits(), np.uint32, img.bytesPerLine() * h // 4).reshape(h, -1)[:, :w]
    return np.stack([(argb >> 16) & 255, (argb >> 8) & 255, argb & 255], -1).astype(np.uint8)


def test_ground_truth_iou_timeline_and_target_selective_channels(qtbot, tmp_path):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    gt = ground_truth()

    # -- File ▸ Attach ground truth (Ctrl+G), the path typed into the file dialog
    window.activateWindow()
    window.video.setFocus()
    done = answer_file_dialog(qtbot, shared_path(*BAG_GT))
    QTest.keyClick(window, Qt.Key_G, Qt.ControlModifier)
    qtbot.waitUntil(lambda: bool(done) and window.groundtruth is not None, timeout=10000)
    assert window.groundtruth.layout == "OTB" and len(window.groundtruth) == 196
    assert window.video.gt_box.isVisible()
    r = window.video.gt_box.rect()
    np.testing.assert_allclose([r.x(), r.y(), r.width(), r.height()], gt[0], atol=1e-6)

    # -- track 40 frames from the first truth box, pause with Space
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    drag_box(qtbot, window.video, tuple(gt[0]))
    QTest.mouseClick(window.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.current_index >= 40, timeout=60000)
    window.video.setFocus()
    QTest.keyClick(window, Qt.Key_Space)
    wait_drawn_latest(qtbot, window)
    here = window.current_index
    r = window.video.gt_box.rect()
    np.testing.assert_allclose([r.x(), r.y(), r.width(), r.height()], gt[here], atol=1e-6)

    # IoU per frame on the timeline: the run's boxes against the truth, and mean IoU / AUC so far
    window.display.refresh_timeline(force=True)
    frames = window.store.record.frames
    boxes = np.array([f.box for f in frames])
    expected = metrics.iou(boxes, gt[[f.frame for f in frames]])
    tl = window.timeline
    assert sorted(tl.ious) == [f.frame for f in frames]
    np.testing.assert_allclose([tl.ious[f.frame] for f in frames], expected)
    xs, ys = tl.iou_curve.getData()
    np.testing.assert_allclose(ys, expected)
    score = window.run_score
    assert score.frames == len(frames) and score.mean_iou == pytest.approx(float(expected.mean()))
    assert score.auc == pytest.approx(metrics.score_sequence(boxes, gt[[f.frame for f in frames]]).auc)
    assert f"mean IoU {score.mean_iou:.3f}" in tl.score_label.text() and f"AUC {score.auc:.3f}" in tl.score_label.text()
    assert score.mean_iou > 0.6
    assert f"IoU {expected[-1]:.2f}" in window.info.text()

    # the score axis fits the run (not a flat line at the top of a fixed 0-1 scale), or is 0-1 on demand
    lo, hi = tl.plot.getPlotItem().vb.viewRange()[1]
    assert lo > 0.2 and hi < 1.1
    pick_in_combo(tl.axis_combo, "unit")
    assert tl.plot.getPlotItem().vb.viewRange()[1] == pytest.approx([-0.02, 1.08])
    pick_in_combo(tl.axis_combo, "auto")
    assert tl.plot.getPlotItem().vb.viewRange()[1][0] > 0.2

    # -- the channel grid: ranked by target contrast, the value on every tile, none from the border
    grid = window.channels
    result = window.drawn_packet.result
    cells = [c for c in grid.cells if c.key is not None]
    assert len(cells) == grid.k == 12
    values = [c.value for c in cells]
    assert values == sorted(values, reverse=True) and all(c.value_label.text() == f"{c.value:.2f}" for c in cells)
    for c in cells:
        maps = next(m.maps for m in result.channels if (m.level, m.branch) == c.key[:2])
        mask = target_mask(maps.shape[1:], result.box, result.search_region)
        assert c.value == pytest.approx(target_contrast(maps, mask)[c.key[2]])
    interior = interior_mask(cells[0].data.shape)
    in_border = sum(not interior[np.unravel_index(c.data.argmax(), c.data.shape)] for c in cells)
    assert in_border <= 2, in_border
    assert "S16" not in grid.info.text() or "stride16" not in grid.info.text()
    assert "ranked by target contrast" in grid.info.text()

    # per-channel vs shared colour scale: on the shared one only the strongest tile reaches the top colour
    per_channel = [_tile_rgb(c).copy() for c in cells]
    pick_in_combo(grid.scale_combo, "shared")
    shared = [_tile_rgb(c) for c in grid.cells if c.key is not None]
    top = np.array([253, 231, 37])  # viridis at 1.0
    reaches_top = [bool((np.abs(t.astype(int) - top).sum(-1) < 30).any()) for t in shared]
    assert all(bool((np.abs(t.astype(int) - top).sum(-1) < 30).any()) for t in per_channel)
    assert 1 <= sum(reaches_top) < len(shared)
    pick_in_combo(grid.scale_combo, "channel")

    # ranked by peak instead
    pick_in_combo(grid.rank_combo, "peak")
    cells = [c for c in grid.cells if c.key is not None]
    assert "ranked by peak" in grid.info.text()
    for c in cells:
        assert c.value == pytest.approx(float(peak_response(c.data[None])[0]), rel=1e-6)
    assert [c.value for c in cells] == sorted((c.value for c in cells), reverse=True)
    pick_in_combo(grid.rank_combo, "target")

    # -- seek to a frame the run never reached: the grid is dimmed in its own pixels (no graphics
    # effect painting other widgets into it), and the truth box follows the frame
    window.seek(150)
    qtbot.waitUntil(lambda: window.current_index == 150, timeout=10000)
    wait_drawn_latest(qtbot, window)
    assert grid.dimmed and grid.scroll.graphicsEffect() is None
    for c in grid.cells:
        if c.key is not None:
            assert _tile_rgb(c).max() <= 110
    r = window.video.gt_box.rect()
    np.testing.assert_allclose([r.x(), r.y(), r.width(), r.height()], gt[150], atol=1e-6)


def test_sequence_folder_brings_its_ground_truth_and_a_bad_file_is_one_message(qtbot, tmp_path):
    import os

    folder = shared_path("bench", "bag", "img")
    window = make_window(qtbot, tmp_path)
    window.open_source(folder)
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.source_info is not None, timeout=30000)
    assert window.groundtruth is not None
    assert window.groundtruth.path == os.path.abspath(shared_path(*BAG_GT)) and len(window.groundtruth) == 196
    assert "ground truth groundtruth.txt" in window.messages.text
    r = window.video.gt_box.rect()
    np.testing.assert_allclose([r.x(), r.y(), r.width(), r.height()], ground_truth()[0], atol=1e-6)

    bad = tmp_path / "gt.txt"
    bad.write_text("1,2,3,4\nnot numbers\n")
    done = answer_file_dialog(qtbot, str(bad))
    window.video.setFocus()
    QTest.keyClick(window, Qt.Key_G, Qt.ControlModifier)
    qtbot.waitUntil(lambda: bool(done) and window.messages.level == "error", timeout=10000)
    assert "gt.txt, line 2" in window.messages.text
    assert window.groundtruth.path == os.path.abspath(shared_path(*BAG_GT))  # what was attached stays
    assert bad.read_text() == "1,2,3,4\nnot numbers\n"
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.video)  # keys work straight after the dialog
