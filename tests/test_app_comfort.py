"""Everyday comfort in the window (issue 14, item 4), driven by real mouse, wheel and key events:
start page and recent files, zoom / pan / fit, the confirmation before a re-draw discards frames,
the shortcuts sheet, keys that work after a dialog, Stop only when something runs, `--help` and
`--version`."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.app_support import (
    BAG,
    drag_box,
    ground_truth,
    make_window,
    open_bag,
    require_nanotrack,  # noqa: E402
    wait_drawn_latest,
)
from tests.conftest import ROOT, shared_path  # noqa: E402
from tests.test_app_instrument import answer_file_dialog  # noqa: E402


def wheel(view, pos: QPoint, notches: int) -> None:
    """A real wheel event on the video's viewport (QTest has no wheel helper)."""
    vp = view.viewport()
    ev = QWheelEvent(
        QPointF(pos),
        QPointF(vp.mapToGlobal(pos)),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.NoButton,
        Qt.NoModifier,
        Qt.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, ev)


def test_start_page_opens_a_video_and_remembers_it(qtbot, tmp_path):
    bag = shared_path(*BAG)
    window = make_window(qtbot, tmp_path)
    assert window.video_stack.currentWidget() is window.start_page
    assert not window.stop_button.isEnabled()  # nothing to stop
    assert not window.start_page.recent_buttons
    done = answer_file_dialog(qtbot, bag)
    QTest.mouseClick(window.start_page.video_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(done) and window.drawn_packet is not None, timeout=30000)
    assert window.video_stack.currentWidget() is window.video
    assert window.recent.paths() == [os.path.abspath(bag)]
    window.close()

    # a new window (same settings) lists it on its start page and in File ▸ Open recent
    again = make_window(qtbot, tmp_path)
    assert [b.toolTip() for b in again.start_page.recent_buttons] == [os.path.abspath(bag)]
    again.menus.fill_recent_menu()
    assert [a.text() for a in again.recent_menu.actions()] == [os.path.abspath(bag)]
    QTest.mouseClick(again.start_page.recent_buttons[0], Qt.LeftButton)
    qtbot.waitUntil(lambda: again.drawn_packet is not None and again.source_info is not None, timeout=30000)
    assert again.source_info.spec == os.path.abspath(bag)
    assert again.video_stack.currentWidget() is again.video


def test_zoom_with_the_wheel_pan_with_ctrl_drag_fit_with_f(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.open_source(shared_path(*BAG))
    qtbot.waitUntil(lambda: window.drawn_packet is not None, timeout=30000)
    view = window.video
    assert view.zoom() == pytest.approx(1.0, abs=0.02)
    anchor = view.frame_to_widget(300, 200)
    before = view.widget_to_frame(anchor)
    wheel(view, anchor, 3)  # three notches in, around the pointer
    assert view.zoom() == pytest.approx(1.25**3, rel=0.05)
    after = view.widget_to_frame(anchor)
    assert abs(after.x() - before.x()) < 1.0 and abs(after.y() - before.y()) < 1.0  # the point stayed put

    # Ctrl + drag pans: the frame point under the press follows the pointer
    vp = view.viewport()
    p0 = view.frame_to_widget(300, 200)
    p1 = p0 + QPoint(-80, -40)
    QTest.mousePress(vp, Qt.LeftButton, Qt.ControlModifier, p0)
    QTest.mouseMove(vp, p0 + QPoint(-40, -20))
    QTest.mouseMove(vp, p1)
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.ControlModifier, p1)
    moved = view.widget_to_frame(p1)
    assert abs(moved.x() - 300) < 2.0 and abs(moved.y() - 200) < 2.0
    assert view.user_box() is None  # panning drew no box

    # a box drawn while zoomed lands in frame pixels all the same
    drag_box(qtbot, view, (280.0, 180.0, 60.0, 50.0))
    np.testing.assert_allclose(view.user_box(), (280.0, 180.0, 60.0, 50.0), atol=1.0)

    # F fits the whole frame again; wheel out never goes below the fit
    view.setFocus()
    QTest.keyClick(QApplication.focusWidget() or window, Qt.Key_F)
    assert view.zoom() == pytest.approx(1.0, abs=0.02)
    wheel(view, anchor, -2)
    assert view.zoom() == pytest.approx(1.0, abs=0.02)


def test_redraw_that_would_discard_later_frames_asks_first(qtbot, tmp_path):
    weights = require_nanotrack()
    gt = ground_truth()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    drag_box(qtbot, window.video, tuple(gt[0]))
    QTest.mouseClick(window.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.current_index >= 30, timeout=60000)
    QTest.keyClick(QApplication.focusWidget() or window, Qt.Key_Space)
    wait_drawn_latest(qtbot, window)
    last = max(window.store.results)
    window.seek(10)
    qtbot.waitUntil(lambda: window.current_index == 10, timeout=10000)
    wait_drawn_latest(qtbot, window)

    drag_box(qtbot, window.video, tuple(gt[10]))
    wait_drawn_latest(qtbot, window)
    assert window.messages.isVisible() and f"discards frames 11–{last}" in window.messages.text
    buttons = {b.text(): b for b in window.messages.action_buttons}
    assert max(window.store.results) == last and window.drawn_packet.kind == "frame"  # nothing yet
    QTest.mouseClick(buttons["Keep the run"], Qt.LeftButton)
    wait_drawn_latest(qtbot, window)
    assert max(window.store.results) == last and window.video.user_box() is None
    assert [r["frame"] for r in window.store.record.reinitialisations] == [0]

    drag_box(qtbot, window.video, tuple(gt[10]))
    QTest.mouseClick(
        {b.text(): b for b in window.messages.action_buttons}["Discard them and restart here"], Qt.LeftButton
    )
    qtbot.waitUntil(lambda: window.drawn_packet.kind == "init" and window.current_index == 10, timeout=10000)
    assert max(window.store.results) == 10
    assert [r["frame"] for r in window.store.record.reinitialisations] == [0, 10]


def test_shortcuts_sheet_and_keys_work_after_a_dialog(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.open_source(shared_path(*BAG))
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.tracker_info is not None, timeout=60000)
    window.video.setFocus()
    QTest.keyClick(window, Qt.Key_Question)
    qtbot.waitUntil(lambda: getattr(window, "shortcuts_sheet", None) is not None and window.shortcuts_sheet.isVisible())
    rows = dict((what, key) for key, what in window.shortcuts_sheet.rows())
    assert rows["Play / pause"] == "Space" and rows["Stop"] == "Esc" and rows["Keyboard shortcuts"] == "?"
    assert rows["Fit the video"] == "F" and rows["Attach ground truth…"] == "Ctrl+G"
    assert "Wheel on the video" in [key for key, _ in window.shortcuts_sheet.rows()]
    QTest.keyClick(window.shortcuts_sheet, Qt.Key_Escape)
    qtbot.waitUntil(lambda: not window.shortcuts_sheet.isVisible())
    assert QApplication.focusWidget() is window.video

    # the model-zoo dialog: closed with Esc, the keyboard is back on the video and Space plays
    dialog = window.open_model_zoo([], str(tmp_path / "models"))
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    dialog.table.setFocus()
    QTest.keyClick(dialog.table, Qt.Key_Escape)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.video and QApplication.activeWindow() is window)
    QTest.keyClick(QApplication.focusWidget(), Qt.Key_Space)
    qtbot.waitUntil(lambda: window.playing, timeout=5000)
    QTest.keyClick(QApplication.focusWidget(), Qt.Key_Space)
    qtbot.waitUntil(lambda: not window.playing, timeout=5000)


def test_help_says_how_to_start_the_window_and_version_exits():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "main.py"), "--help"], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0
    assert "python main.py VIDEO_OR_FOLDER" in out.stdout and "--camera N" in out.stdout
    assert "track" in out.stdout
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "main.py"), "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        expected = tomllib.load(f)["project"]["version"]
    assert out.returncode == 0 and out.stdout.strip() == f"SiamScope {expected}"


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_no_cut_off_text_at_common_screen_sizes(qtbot, tmp_path, size):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    window.resize(*size)
    open_bag(qtbot, window, weights)
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.video.set_user_box(tuple(ground_truth()[0]))
    QTest.mouseClick(window.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.current_index >= 5, timeout=60000)
    window.set_playing(False)
    wait_drawn_latest(qtbot, window)
    qtbot.wait(50)  # the last layout pass

    def fits(label) -> bool:
        from app.widgets import ElidedLabel

        if isinstance(label, ElidedLabel):  # a line cut after a whole word, the whole in its tooltip
            shown, full = label.shown_text(), label.text()
            kept = shown[:-1].rstrip()
            return shown == full or (
                shown.endswith("…")
                and full.startswith(kept)
                and full[len(kept)] in " ·,;:—-("
                and bool(label.toolTip())
            )
        if label.wordWrap():
            return label.heightForWidth(label.contentsRect().width()) <= label.contentsRect().height() + 1
        return label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()

    assert fits(window.loaded_label), window.loaded_label.text()
    assert fits(window.info), window.info.text()
    assert fits(window.channels.info), window.channels.info.text()
    combo = window.tracker_combo
    assert combo.fontMetrics().horizontalAdvance(combo.currentText()) + 24 <= combo.width(), combo.currentText()
    for cell in window.channels.cells:
        if cell.key is not None and cell.isVisible():
            assert fits(cell.title) and fits(cell.value_label), cell.title.text()
    # the two numbers people compare are named apart
    assert "confidence" in window.info.text() and "peak" in window.heatmap.caption.text()
    assert fits(window.heatmap.caption), window.heatmap.caption.text()


def test_zoo_dialog_marks_manual_downloads_and_keeps_names_whole(qtbot, tmp_path):
    from trackers.run import zoo

    window = make_window(qtbot, tmp_path)
    entries = [
        zoo.ZooEntry(
            name="a",
            tracker="siamrpnpp-mobilev2",
            file="x/model.pth",
            url=None,
            page="https://example.org/drive",
            source="",
            licence="CC BY-SA 3.0 (long text)",
        ),
        zoo.ZooEntry(
            name="b",
            tracker="nanotrack-v2",
            file="n.pth",
            url="http://127.0.0.1:9/n.pth",
            page="",
            source="",
            licence="Apache-2.0",
        ),
    ]
    dialog = window.open_model_zoo(entries, str(tmp_path / "models"))
    qtbot.addWidget(dialog)
    qtbot.waitExposed(dialog)
    t = dialog.table
    assert [t.item(r, 3).text() for r in range(2)] == ["manual download", "direct"]
    assert t.item(0, 4).text() == "CC BY-SA 3.0" and t.item(0, 4).toolTip() == "CC BY-SA 3.0 (long text)"
    assert not t.wordWrap()
    for col in (0, 2, 3, 4):
        for r in range(2):
            assert t.fontMetrics().horizontalAdvance(t.item(r, col).text()) <= t.columnWidth(col), (r, col)
    t.selectRow(0)
    QTest.mouseClick(dialog.download_button, Qt.LeftButton)
    assert dialog.job is None and "https://example.org/drive" in dialog.message.text()
    assert not (tmp_path / "models").exists()
