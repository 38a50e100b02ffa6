"""The window's menus, their actions and keyboard shortcuts, and the shortcuts sheet (`?`) listed
from those same actions (app/shortcuts.py)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from trackers.core import compute


class WindowMenus(QObject):
    #: Settings ▸ Compute threads: the count picked (0 = automatic)
    threadsChosen = Signal(int)

    def __init__(self, window: QMainWindow, threads: int):
        """`window` is the MainWindow: the menus call its parts' commands."""
        super().__init__(window)
        self.window = window
        self.shortcuts_sheet = None
        w = window
        m = w.menuBar().addMenu("&File")
        self._action(m, "Open &video…", w.opener.choose_video, QKeySequence.Open)
        self._action(m, "Open image &folder…", w.opener.choose_folder)
        self._action(m, "Open &camera…", w.opener.choose_camera)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self.fill_recent_menu)
        self._action(m, "Attach &ground truth…", w.opener.choose_groundtruth, QKeySequence("Ctrl+G"))
        m.addSeparator()
        self._action(m, "Export annotated &video…", w.exports.choose_export_video)
        self._action(m, "Export &results…", w.exports.choose_export_results)
        m.addSeparator()
        self._action(m, "&Quit", w.close, QKeySequence.Quit)
        t = w.menuBar().addMenu("&Track")
        self._action(t, "Start", w.playback.start_tracking)
        self.groundtruth_start = self._action(
            t, "Start from &ground truth", w.start_from_groundtruth, QKeySequence("Ctrl+T")
        )
        self._action(t, "Play / pause", w.playback.toggle_play, Qt.Key_Space)
        self._action(t, "Step one frame", w.playback.step, Qt.Key_Right)
        self._action(t, "Redraw the box", w.playback.redraw_box, Qt.Key_R)
        self._action(t, "Stop", w.playback.stop_tracking, Qt.Key_Escape)
        v = w.menuBar().addMenu("&View")
        v.addAction(w.params_dock.toggleViewAction())
        self._action(v, "&Fit the video", w.video.fit, Qt.Key_F)
        self._action(v, "Zoom &in", lambda: self._zoom_centre(1), Qt.Key_Plus)
        self._action(v, "Zoom &out", lambda: self._zoom_centre(-1), Qt.Key_Minus)
        self.channels_action = QAction("DW-XCorr &channel grid", w, checkable=True, checked=True)
        self.channels_action.toggled.connect(w.channels.setVisible)
        self.channels_action.toggled.connect(w.display.sync_channels_shown)
        v.addAction(self.channels_action)
        settings_menu = w.menuBar().addMenu("&Settings")
        self.threads_menu = settings_menu.addMenu("Compute &threads")
        self.threads_actions = {}
        for n in [0] + list(range(1, compute.available_cores() + 1)):
            label = (
                f"Automatic ({compute.decide(0, gui=True).threads}: cores left to the window and the rest)"
                if n == 0
                else f"{n}"
            )
            a = QAction(label, w, checkable=True, checked=(n == threads))
            a.triggered.connect(lambda _=False, n=n: self.threadsChosen.emit(n))
            self.threads_menu.addAction(a)
            self.threads_actions[n] = a
        z = w.menuBar().addMenu("&Models")
        self._action(z, "Model &zoo: published checkpoints…", w.open_model_zoo)
        h = w.menuBar().addMenu("&Help")
        self._action(h, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence("?"))

    def _action(self, menu, text, slot: Callable, shortcut=None) -> QAction:
        a = QAction(text, self.window)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(lambda *_: slot())
        menu.addAction(a)
        self.window.addAction(a)
        return a

    def fill_recent_menu(self) -> None:
        self.window.opener.fill_recent_menu(self.recent_menu)

    def check_threads(self, threads: int) -> None:
        for n, a in self.threads_actions.items():
            a.setChecked(n == threads)

    def _zoom_centre(self, notches: int) -> None:
        vp = self.window.video.viewport()
        self.window.video.zoom_at(QPointF(vp.width() / 2, vp.height() / 2), notches)

    def show_shortcuts(self) -> None:
        from .shortcuts import ShortcutsSheet

        sheet = ShortcutsSheet(self.window.actions(), self.window)
        self.shortcuts_sheet = sheet
        sheet.finished.connect(lambda *_: self.window.return_focus())
        sheet.open()
