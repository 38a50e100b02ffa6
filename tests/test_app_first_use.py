"""The window as a new user meets it (issue 25), driven with real mouse and key events: nothing of an
old run stays on screen after a new source, tracker or failed load; nothing tracked is dropped
without the close question (Ctrl+O, a switch of tracker or checkpoint, Space after a seek back);
the slider jumps to a click; the window fits a laptop screen (every control visible, labels cut
only at a word with the whole in the tooltip, the video never moves under the banner); exports
are suggested where they can be written, named after the sequence, with paths both ways."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QSlider,  # noqa: E402
    QSpinBox,
    QStyle,
    QStyleOptionSlider,
)

from tests.app_support import (
    BAG,
    TRACKER,
    ground_truth,
    make_active,
    make_window,
    open_bag,  # noqa: E402
    require_nanotrack,
    wait_drawn_latest,
)
from tests.conftest import shared_path  # noqa: E402

BAG_SEQUENCE = ("bench", "bag", "img")  # an OTB-style folder: bag/img + bag/groundtruth.txt


class Answerer:
    """Answers the window's question (the close question and its kin) by clicking, with the mouse,
    the button whose text contains `answer`, optionally ticking "Don't ask again" first."""

    def __init__(self, window, answer: str, dont_ask: bool = False):
        self.window, self.answer, self.dont_ask = window, answer, dont_ask
        self.titles, self.texts = [], []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self):
        box = self.window.close_box
        if box is None or not box.isVisible():
            return
        self.titles.append(box.windowTitle())
        self.texts.append(box.text())
        if self.dont_ask:
            QTest.mouseClick(box.checkBox(), Qt.LeftButton)
        QTest.mouseClick(next(b for b in box.buttons() if self.answer in b.text()), Qt.LeftButton)

    def stop(self):
        self.timer.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture
def asking_window(qtbot, tmp_path):
    """A window that asks before dropping a run, as a new user's does. Its own close (the test's
    teardown, which pytest-qt runs before fixtures end) does not ask: nobody would answer; the close
    question itself is test_app_safety.py's."""

    def make():
        window = make_window(qtbot, tmp_path, ask_before_closing=True)
        window.guard.confirm_close = lambda: True
        return window

    return make


def _track(qtbot, window, frames: int) -> None:
    """Start at full speed from the drawn box with a mouse click, pause after `frames` frames."""
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.video.set_user_box(tuple(ground_truth()[0]))
    QTest.mouseClick(window.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.current_index >= frames, timeout=90000)
    QTest.mouseClick(window.play_button, Qt.LeftButton)  # pause
    wait_drawn_latest(qtbot, window, timeout=30000)
    qtbot.waitUntil(lambda: not window.heatmap.is_empty and bool(window.channels.channels), timeout=10000)


def _old_run_on_screen(window) -> list[str]:
    """Which panels still show something of a run."""
    shown = []
    if not window.heatmap.is_empty:
        shown.append("score map")
    if not window.channels.is_empty or window.channels.channels:
        shown.append("channels")
    if len(window.timeline.frames):
        shown.append("confidence")
    if window.timeline.state_label.text():
        shown.append("badge " + window.timeline.state_label.text())
    if "confidence" in window.info.text():
        shown.append("status " + window.info.text())
    if window.video.result_box.isVisible():
        shown.append("box")
    return shown


def _ctrl_o(qtbot, window, monkeypatch, path: str) -> None:
    """Ctrl+O as a user presses it; the file dialog answers `path`."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (path, "")))
    make_active(qtbot, window)  # as the window is for a user who types (a question just closed)
    QTest.keyClick(window.video, Qt.Key_O, Qt.ControlModifier)


def _pick(qtbot, combo, data) -> None:
    """Choose an entry of a combo box as a user does: a click opens its list, the arrows move to the
    entry, Return picks it (arrowing through the closed box would ask at every tracker on the way)."""
    target = combo.findData(data)
    QTest.mouseClick(combo, Qt.LeftButton)
    view = combo.view()
    qtbot.waitUntil(lambda: view.isVisible())
    # in the open list the arrows move the highlight only; Return picks (one change, one question)
    while view.currentIndex().row() != target:
        QTest.keyClick(view, Qt.Key_Down if view.currentIndex().row() < target else Qt.Key_Up)
    QTest.keyClick(view, Qt.Key_Return)


def test_empty_panels_say_what_will_appear_there(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    qtbot.waitUntil(lambda: window.heatmap.empty.isVisible())
    assert window.heatmap.is_empty and "score map" in window.heatmap.empty.text()
    assert window.channels.is_empty and "channels" in window.channels.empty.text()
    assert window.channels.empty.isVisible()
    # no black plot, no stray scroll bar beside "no channels yet"
    assert not window.heatmap.plot.isVisible() and not window.channels.scroll.isVisible()
    assert not window.channels.scroll.verticalScrollBar().isVisible()


def test_ctrl_o_asks_then_clears_every_panel_of_the_old_run(qtbot, tmp_path, asking_window, monkeypatch):
    weights = require_nanotrack()
    window = asking_window()
    open_bag(qtbot, window, weights)
    _track(qtbot, window, 25)
    assert window.timeline.state_label.text() and window.timeline.state_label.text() != ""
    assert set(_old_run_on_screen(window)) >= {"score map", "channels", "confidence"}
    tracked = len(window.store.record.frames)

    other = shared_path(*BAG_SEQUENCE)
    with Answerer(window, "Cancel") as answerer:
        _ctrl_o(qtbot, window, monkeypatch, other)
    assert answerer.titles == ["Open another source?"] and "has not been exported" in answerer.texts[0]
    assert f"{tracked} frames" in answerer.texts[0] and "opening bag" in answerer.texts[0]
    assert len(window.store.record.frames) == tracked and window.source_info.spec == shared_path(*BAG)

    with Answerer(window, "Discard the run and open") as answerer:
        _ctrl_o(qtbot, window, monkeypatch, other)
    assert len(answerer.titles) == 1
    qtbot.waitUntil(
        lambda: window.source_info.spec == other and window.drawn_packet is not None and window.drawn_packet.index == 0,
        timeout=30000,
    )
    wait_drawn_latest(qtbot, window)
    assert _old_run_on_screen(window) == []
    assert window.heatmap.is_empty and window.channels.is_empty and window.store.record is None
    # named after the sequence, not its img/ folder; its ground truth offered as a start
    assert window.windowTitle().startswith("bag — ")
    assert "Start from ground truth" in [b.text() for b in window.messages.action_buttons]


def test_start_from_ground_truth_is_offered_and_starts_there(qtbot, tmp_path):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    window.select_tracker(TRACKER, weights)
    window.open_source(shared_path(*BAG_SEQUENCE))
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.tracker_info is not None, timeout=30000)
    assert window.groundtruth is not None
    button = next(b for b in window.messages.action_buttons if b.text() == "Start from ground truth")
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    QTest.mouseClick(button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.store.record is not None and len(window.store.record.frames) >= 5, timeout=60000)
    QTest.mouseClick(window.play_button, Qt.LeftButton)
    first = window.store.record.frames[0]
    assert first.frame == 0 and np.allclose(first.box, window.groundtruth.box(0), atol=1e-3)


def test_switching_tracker_mid_run_asks_and_a_missing_checkpoint_clears_the_old_run(
    qtbot, tmp_path, asking_window, monkeypatch
):
    weights = require_nanotrack()
    monkeypatch.setenv("SIAMSCOPE_MODELS", str(tmp_path / "no-models"))
    from trackers.core import registry

    missing = next(
        (
            s.name
            for s in registry.all_trackers()
            if s.needs_weights and registry.find_weights(s) is None and s.name != TRACKER
        ),
        None,
    )
    if missing is None:
        pytest.skip("every tracker that needs a checkpoint has one here")
    window = asking_window()
    open_bag(qtbot, window, weights)
    _track(qtbot, window, 15)
    assert window.prefs.tracker() == TRACKER

    with Answerer(window, "Cancel") as answerer:
        _pick(qtbot, window.tracker_combo, missing)
    assert answerer.titles and answerer.titles[0] == "Switch the tracker?"
    # the user kept the run: the picker is back on the tracker that made it, nothing was unloaded
    assert window.tracker_combo.currentData() == TRACKER and window.tracker_info.name == TRACKER
    assert "score map" in _old_run_on_screen(window)

    with Answerer(window, "Discard the run and switch") as answerer:
        _pick(qtbot, window.tracker_combo, missing)
    qtbot.waitUntil(lambda: window.tracker_info is None, timeout=30000)
    wait_drawn_latest(qtbot, window)
    assert _old_run_on_screen(window) == [], _old_run_on_screen(window)
    assert "no tracker" in window.loaded_label.text()
    fixes = {"Choose file…", "Open model zoo"}
    assert {b.text() for b in window.messages.action_buttons} == fixes
    # Start says what is wrong (the checkpoint), and the banner keeps its buttons
    QTest.mouseClick(window.start_button, Qt.LeftButton)
    assert {b.text() for b in window.messages.action_buttons} == fixes
    assert "checkpoint" in window.messages.text and "Drag a box" not in window.messages.text
    # only a tracker that loaded is remembered for the next launch
    assert window.prefs.tracker() == TRACKER


def test_a_different_checkpoint_mid_run_asks_first(qtbot, tmp_path, asking_window):
    weights = require_nanotrack()
    v3 = shared_path("models", "nanotrack", "nanotrackv3.pth")
    window = asking_window()
    open_bag(qtbot, window, weights)
    _track(qtbot, window, 8)
    edit = window.weights_edit
    with Answerer(window, "Cancel") as answerer:
        QTest.mouseClick(edit, Qt.LeftButton)
        edit.selectAll()
        QTest.keyClicks(edit, v3)
        QTest.keyClick(edit, Qt.Key_Return)
    assert answerer.titles == ["Switch the tracker?"] and "nanotrackv3.pth" in answerer.texts[0]
    assert edit.text() == weights and window.tracker_info.checkpoint == weights
    assert len(window.store.record.frames) >= 8


def test_slider_click_jumps_there_and_space_after_a_seek_back_asks(qtbot, tmp_path, asking_window):
    weights = require_nanotrack()
    window = asking_window()
    open_bag(qtbot, window, weights)
    _track(qtbot, window, 40)
    end = window.current_index
    slider = window.slider
    # a click on the groove, a quarter of the way along: the frame there, not 10 frames back
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    groove = slider.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderGroove, slider)
    target = 20
    handle = slider.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderHandle, slider)
    x = (
        groove.x()
        + handle.width() // 2
        + QStyle.sliderPositionFromValue(slider.minimum(), slider.maximum(), target, groove.width() - handle.width())
    )
    QTest.mouseClick(slider, Qt.LeftButton, Qt.NoModifier, QPoint(x, groove.center().y()))
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.drawn_packet.index != end, timeout=10000)
    wait_drawn_latest(qtbot, window)
    here = window.current_index
    assert abs(here - target) <= 2, (here, target)

    with Answerer(window, "Cancel") as answerer:
        QTest.keyClick(window.video, Qt.Key_Space)
    assert answerer.titles == [f"Restart the run at frame {here}?"]
    assert f"discards frames {here + 1}–{end}" in answerer.texts[0]
    wait_drawn_latest(qtbot, window)
    assert not window.playing and max(window.store.results) == end
    # Right (step) asks the same
    make_active(qtbot, window)
    with Answerer(window, "Cancel") as answerer:
        QTest.keyClick(window.video, Qt.Key_Right)
    assert len(answerer.titles) == 1 and max(window.store.results) == end

    # "Don't ask again" is the close question's: it is remembered, and the next one goes through
    make_active(qtbot, window)
    with Answerer(window, "Discard them", dont_ask=True) as answerer:
        QTest.keyClick(window.video, Qt.Key_Space)
    assert len(answerer.titles) == 1 and not window.prefs.ask_before_closing()
    qtbot.waitUntil(lambda: window.current_index > here + 3, timeout=30000)
    make_active(qtbot, window)
    QTest.keyClick(window.video, Qt.Key_Space)
    wait_drawn_latest(qtbot, window)
    assert max(window.store.results) < end or window.current_index >= end


def _in_scrolled_content(w) -> bool:
    """Inside a scroll area (the channel tiles, the hyper-parameters): reached by scrolling."""
    from PySide6.QtWidgets import QAbstractScrollArea

    parent = w.parentWidget()
    while parent is not None:
        if isinstance(parent.parentWidget(), QAbstractScrollArea) and parent is parent.parentWidget().viewport():
            return True
        parent = parent.parentWidget()
    return False


def _controls(window):
    kinds = (QAbstractButton, QComboBox, QLineEdit, QSpinBox, QSlider, QCheckBox, QLabel)
    for w in window.findChildren(kinds[0].__base__):  # every QWidget
        if isinstance(w, kinds) and w.isVisible() and w.window() is window and not _in_scrolled_content(w):
            yield w


def _whole_words_prefix(shown: str, full: str) -> bool:
    if shown == full:
        return True
    if not shown.endswith("…"):
        return False
    kept = shown[:-1].rstrip()
    return full.startswith(kept) and (len(kept) == len(full) or full[len(kept)] in " ·,;:—-(")


@pytest.mark.parametrize("size", [(1024, 640), (1280, 720)])
def test_every_control_visible_and_readable_on_a_laptop_screen(qtbot, tmp_path, size):
    from app.widgets import ElidedLabel

    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    window.resize(*size)  # clamped at the side-by-side minimum, where the panels turn to tabs...
    qtbot.waitUntil(lambda: window.compact)
    # ...and then the window goes down to the laptop's size (asked afresh: the same size asked again
    # is not asked at all)
    qtbot.waitUntil(
        lambda: (
            window.resize(size[0] + (window.width() % 2), size[1]),
            window.resize(*size),
            window.size().width() == size[0],
        )[-1]
    )
    assert window.compact and window.minimumSizeHint().width() <= size[0]
    assert window.minimumSizeHint().height() <= size[1]
    open_bag(qtbot, window, weights)
    _track(qtbot, window, 10)
    for tab in range(window.inspect_tabs.count()):
        QTest.mouseClick(
            window.inspect_tabs.tabBar(),
            Qt.LeftButton,
            Qt.NoModifier,
            window.inspect_tabs.tabBar().tabRect(tab).center(),
        )
        qtbot.waitUntil(lambda: window.inspect_tabs.currentIndex() == tab)
        wait_drawn_latest(qtbot, window)
        qtbot.wait(30)  # the tab's layout pass
        checked = 0
        for w in _controls(window):
            assert not w.visibleRegion().isEmpty(), (type(w).__name__, getattr(w, "text", lambda: "")())
            top_left = w.mapTo(window, QPoint(0, 0))
            assert top_left.x() >= 0 and top_left.x() + w.visibleRegion().boundingRect().right() <= size[0]
            if isinstance(w, ElidedLabel):
                assert _whole_words_prefix(w.shown_text(), w.text()), (w.shown_text(), w.text())
                if w.is_elided():
                    assert w.text() in w.toolTip() or w.toolTip()
            elif isinstance(w, QLabel) and w.text() and not w.wordWrap() and w.pixmap().isNull() is not False:
                assert w.fontMetrics().horizontalAdvance(w.text()) <= w.contentsRect().width() + 1, w.text()
            elif isinstance(w, QAbstractButton) and w.text():
                extra = 24 if isinstance(w, QCheckBox) else 8
                assert w.fontMetrics().horizontalAdvance(w.text().replace("&", "")) + extra <= w.width(), w.text()
            elif isinstance(w, QComboBox):
                assert w.fontMetrics().horizontalAdvance(w.currentText()) + 20 <= w.width(), w.currentText()
            checked += 1
        assert checked > 12


def test_first_size_fits_the_screen_and_the_last_one_is_restored(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow

    settings = QSettings(str(tmp_path / "geometry.ini"), QSettings.IniFormat)
    settings.setValue("ask_before_closing", False)
    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    avail = first.screen().availableGeometry()
    assert first.width() <= avail.width() and first.height() <= avail.height()
    first.show()
    qtbot.waitExposed(first)
    first.resize(760, 560)
    qtbot.waitUntil(lambda: first.width() == 760)
    first.close()
    settings.sync()
    again = MainWindow(settings=QSettings(str(tmp_path / "geometry.ini"), QSettings.IniFormat))
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (760, 560)
    again.close()


def test_banner_never_moves_the_video_and_the_status_line_is_one_line(qtbot, tmp_path):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    window.resize(1440, 900)
    open_bag(qtbot, window, weights)
    _track(qtbot, window, 5)
    window.messages.hide()
    qtbot.waitUntil(lambda: not window.messages.isVisible())
    before = (window.video.mapTo(window, QPoint(0, 0)), window.video.size())
    window.show_message("warning", "A long warning that needs a fix. " * 4, actions=[("Choose file…", lambda: None)])
    qtbot.waitUntil(lambda: window.messages.isVisible())
    assert (window.video.mapTo(window, QPoint(0, 0)), window.video.size()) == before
    assert not window.messages.visibleRegion().isEmpty()
    close = next(b for b in window.messages.findChildren(QAbstractButton) if b.text() == "✕")
    QTest.mouseClick(close, Qt.LeftButton)
    assert not window.messages.isVisible()
    assert (window.video.mapTo(window, QPoint(0, 0)), window.video.size()) == before
    line = window.info.fontMetrics().lineSpacing()
    assert window.info.height() < 2 * line and "confidence" in window.info.shown_text()


def test_export_suggests_name_and_writable_folder_and_json_paths_both_ways(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    open_bag(qtbot, window, weights)
    _track(qtbot, window, 5)
    asked = []
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        staticmethod(lambda parent, title, start, *a, **k: (asked.append(start), ("", ""))[1]),
    )
    action = next(a for a in window.actions() if a.text().replace("&", "") == "Export annotated video…")
    action.trigger()
    suggested = asked[-1]
    assert os.path.basename(suggested) == f"bag_{TRACKER}.mp4"
    folder = os.path.dirname(suggested)
    assert os.access(folder, os.W_OK) and folder != os.path.dirname(os.path.abspath(shared_path(*BAG)))

    out = tmp_path / "exports" / "run.json"
    out.parent.mkdir()
    assert window.export_results(str(out))
    data = json.loads(out.read_text())
    assert os.path.isabs(data["source"]) and os.path.samefile(data["source"], shared_path(*BAG))
    rel = data["relative_to_this_file"]
    assert os.path.samefile(os.path.join(out.parent, rel["source"]), shared_path(*BAG))
    assert os.path.samefile(os.path.join(out.parent, rel["checkpoint"]), weights)
    # the next export is suggested where the last one went
    next(a for a in window.actions() if a.text().replace("&", "") == "Export results…").trigger()
    assert os.path.dirname(asked[-1]) == str(out.parent) and asked[-1].endswith(f"bag_{TRACKER}.json")


def test_exported_heatmap_is_the_overlay_on_screen():
    """Same colour map, same opacity curve, same region: the export's pixel at the map's peak is
    the frame blended with inferno's top colour at the overlay's top opacity; at its minimum and
    outside the search region the frame is untouched."""
    import dataclasses

    from app.video_view import HEAT_LUT
    from trackers.core.base import SearchRegion, TrackingState, TrackResult
    from trackers.run.annotate import heatmap_overlay

    frame = np.full((200, 200, 3), 100, np.uint8)
    sm = np.zeros((5, 5), np.float32)
    sm[2, 2] = 1.0
    fields = {f.name for f in dataclasses.fields(SearchRegion)}
    region = SearchRegion(
        **{
            k: v
            for k, v in dict(x=40.0, y=40.0, size=100.0, scale=1.0, score_extent=(50.0, 50.0, 150.0, 150.0)).items()
            if k in fields
        }
    )
    result = TrackResult(
        box=(90, 90, 20, 20), score=1.0, state=TrackingState.TRACKING, score_map=sm, search_region=region
    )
    out = heatmap_overlay(frame, result)
    top = HEAT_LUT[-1]  # RGBA on screen at the map's maximum
    expected_bgr = np.array(top[:3][::-1], float) * (top[3] / 255) + 100 * (1 - top[3] / 255)
    assert np.allclose(out[100, 100].astype(float), expected_bgr, atol=4), (out[100, 100], expected_bgr)
    assert (out[55, 55] == 100).all()  # the minimum: transparent, as on screen
    assert (out[20, 20] == 100).all() and (out[160, 160] == 100).all()  # outside the score extent


def test_failed_download_keeps_the_zoo_table_and_says_it_in_words(qtbot, tmp_path):
    from trackers.run import zoo

    window = make_window(qtbot, tmp_path)
    entries = [
        zoo.ZooEntry(
            name="n",
            tracker="nanotrack-v2",
            file="n.pth",
            url="http://no-such-host.invalid/n.pth",
            page="",
            source="",
            licence="Apache-2.0",
        )
    ]
    dialog = window.open_model_zoo(entries, str(tmp_path / "models"))
    qtbot.addWidget(dialog)
    qtbot.waitExposed(dialog)
    t = dialog.table
    widths = [t.columnWidth(c) for c in range(t.columnCount())]
    t.selectRow(0)
    QTest.mouseClick(dialog.download_button, Qt.LeftButton)
    qtbot.waitUntil(
        lambda: dialog.job is not None and not dialog.job.isRunning() and dialog.download_button.isEnabled(),
        timeout=60000,
    )
    text = dialog.message.text()
    assert "Errno" not in text and "urlopen" not in text and text
    assert [t.columnWidth(c) for c in range(t.columnCount())] == widths
    assert sum(widths) >= t.viewport().width() - 2  # no blank band at the right
