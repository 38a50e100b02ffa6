"""Helpers for the GUI tests: a window with NanoTrack V2 on bag.avi, real mouse drags, IoU."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import box_iou as iou  # noqa: F401  (the app tests import it from here)
from tests.conftest import shared_path

TRACKER = "nanotrack-v2"
BAG = ("data", "videos", "bag.avi")
BAG_GT = ("bench", "bag", "groundtruth.txt")
NANO_WEIGHTS = ("models", "nanotrack", "nanotrackv2.pth")


def require_nanotrack() -> str:
    from trackers.core import registry

    names = [s.name for s in registry.all_trackers()]
    if TRACKER not in names:
        err = registry.IMPORT_ERRORS.get("trackers.families.nanotrack", "not registered")
        pytest.skip(f"tracker {TRACKER!r} is not available ({err})")
    return shared_path(*NANO_WEIGHTS)


def ground_truth() -> np.ndarray:
    from trackers.run.results import read_boxes

    return read_boxes(shared_path(*BAG_GT))


def make_window(qtbot, tmp_path, ask_before_closing: bool = False):
    """A shown MainWindow with its own settings file (the user's QSettings stay untouched)."""
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow

    settings = QSettings(str(tmp_path / "siamscope.ini"), QSettings.IniFormat)
    # the window's own teardown closes it with its run unexported: the question that close asks
    # is answered by test_app_safety.py, here it would wait for a person (a user's "don't ask")
    settings.setValue("ask_before_closing", ask_before_closing)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.resize(1400, 880)
    window.show()
    qtbot.waitExposed(window)
    make_active(qtbot, window)
    return window


def make_active(qtbot, window) -> None:
    """Make `window` the active window, as it is for a user who types into it: its keyboard
    shortcuts (Right = step, R = re-draw, Space = play) are window shortcuts and do nothing while
    another top-level window (another test's, a dialog) is active, which `show()` alone does not
    settle on a busy machine."""
    from PySide6.QtWidgets import QApplication

    window.activateWindow()
    window.raise_()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=10000)


def open_bag(qtbot, window, weights: str):
    """Open bag.avi and load NanoTrack V2; returns when the first frame is on screen."""
    window.select_tracker(TRACKER, weights)
    window.open_source(shared_path(*BAG))
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.tracker_info is not None, timeout=30000)
    assert window.tracker_info.name == TRACKER


def drag_box(qtbot, view, box) -> None:
    """Draw a box with real mouse press / move / release events on the video view's viewport."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    x, y, w, h = box
    p0 = view.frame_to_widget(x, y)
    p1 = view.frame_to_widget(x + w, y + h)
    mid = view.frame_to_widget(x + w / 2, y + h / 2)
    vp = view.viewport()
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, p0)
    QTest.mouseMove(vp, mid)
    QTest.mouseMove(vp, p1)
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, p1)
    qtbot.wait(20)


def frame_pixel_size(view) -> float:
    """Frame pixels per widget pixel (how precisely a mouse drag can place a box)."""
    a = view.frame_to_widget(0, 0)
    b = view.frame_to_widget(100, 0)
    return 100.0 / max(b.x() - a.x(), 1)


def wait_drawn_latest(qtbot, window, timeout=10000) -> None:
    """Wait until the worker has handled every command sent so far (a pause, a step: the
    worker.sync() barrier, so a "playing" event still on its way cannot fool us) and the last
    packet it sent is the one on screen."""
    barrier = window.worker.sync()
    qtbot.waitUntil(
        lambda: (
            window.synced >= barrier
            and not window.playing
            and window.latest is not None
            and window.drawn_packet is window.latest
        ),
        timeout=timeout,
    )
