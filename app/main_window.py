"""The SiamScope window: menus, the tracker bar, the views, and the wiring to the worker.

The GUI thread only draws. The worker (app/worker.py) owns the source and the tracker and sends
every frame back as a FramePacket; `_on_packet` records it for export and keeps it as the latest,
and a display timer draws the latest one, so drawing skips frames rather than falling behind.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDockWidget, QFileDialog, QHBoxLayout,
                               QInputDialog, QLabel, QLineEdit, QMainWindow, QMessageBox, QProgressBar, QPushButton,
                               QSizePolicy, QSlider, QSplitter, QToolButton, QVBoxLayout, QWidget)

from trackers import registry
from trackers.base import TrackResult

from .export import RunStore, VideoExportJob
from .inspect_views import ChannelGrid, HeatmapView, Timeline
from .params_panel import ParamsPanel
from .video_view import VideoView
from .worker import FramePacket, SourceInfo, TrackerInfo, TrackingWorker, build_tracker

SPEEDS = [("0.25×", 0.25), ("0.5×", 0.5), ("1×", 1.0), ("2×", 2.0), ("4×", 4.0), ("max", 0.0)]
MESSAGE_STYLES = {"error": "background:#b71c1c; color:white;", "warning": "background:#f9a825; color:black;",
                  "info": "background:#1565c0; color:white;"}
# the project's own default needs no download: it is what a new user starts with (issue: works out of the box)
PREFERRED_TRACKERS = ("siamscope-default", "nanotrack-v2")
MIN_DRAW_INTERVAL_MS = 30        # at most ~33 redraws a second
MAX_DRAW_INTERVAL_MS = 500
TIMELINE_INTERVAL_S = 0.25       # the timeline (axes re-laid out as it scrolls) redraws at most 4 times a second
# Threads that did not end in time when their window closed; kept referenced so Python does not
# destroy a running QThread (which would abort the process).
_ORPHANS: list = []
#: QSettings key: ask before a close discards an unexported run or cancels an export
ASK_BEFORE_CLOSING = "ask_before_closing"


def available_devices() -> list[str]:
    devices = ["cpu"]
    try:
        import torch
        if torch.cuda.is_available():
            devices.append("cuda")
    except Exception:  # noqa: BLE001 - a broken CUDA setup still leaves the CPU
        pass
    return devices


class MessageBar(QWidget):
    """Problems and hints shown inside the window (never a dialog that blocks, never a traceback)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 3, 4, 3)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.setAttribute(Qt.WA_StyledBackground, True)
        self.level = ""
        self.text = ""
        self._timer = QTimer(self, singleShot=True, interval=8000)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, level: str, text: str) -> None:
        self.level, self.text = level, text
        self.label.setText(text)
        self.setStyleSheet(MESSAGE_STYLES.get(level, MESSAGE_STYLES["info"]))
        self.show()
        if level == "info":
            self._timer.start()
        else:
            self._timer.stop()


class MainWindow(QMainWindow):
    #: emitted after a packet is drawn (tests wait on it)
    drawn = Signal(int)

    def __init__(self, settings: Optional[QSettings] = None, tracker_factory=build_tracker):
        super().__init__()
        # Hand the GIL between the worker and the GUI thread every millisecond instead of every
        # five: the event loop then waits less behind the worker's Python code.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self.setWindowTitle("SiamScope")
        self.resize(1440, 900)
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QSettings("SiamScope", "SiamScope")
        self.store = RunStore()
        self.source_info: Optional[SourceInfo] = None
        self.tracker_info: Optional[TrackerInfo] = None
        self.playing = False
        self.tracking = False
        self.current_index = -1
        self.latest: Optional[FramePacket] = None       # last packet received
        self.drawn_packet: Optional[FramePacket] = None  # last packet drawn
        self._pending: Optional[FramePacket] = None
        self.synced = 0                # the last worker.sync() barrier the worker has answered
        self._timeline_version = -1
        self.packets_received = 0
        self.packets_drawn = 0
        self.track_fps = 0.0
        self.track_ms = 0.0
        self.export_job: Optional[VideoExportJob] = None
        self.exported_version = -1          # the store's version at the last successful export
        self.close_box: Optional[QMessageBox] = None   # the "close without exporting?" question, while open
        self._closing = False

        self._build_widgets()
        self._build_menus()

        self.worker = TrackingWorker(tracker_factory=tracker_factory)
        self.worker.on("frame", self._on_packet)
        self.worker.on("source", self._on_source_opened)
        self.worker.on("tracker", self._on_tracker_ready)
        self.worker.on("playing", self._on_playing_changed)
        self.worker.on("tracking", self._on_tracking_changed)
        self.worker.on("message", self.show_message)
        self.worker.on("synced", self._on_synced)
        self.worker.start()

        # Draws the latest packet; a packet that arrives while another waits replaces it. The pause
        # between draws adapts to what a draw (and the repaint it causes) costs, so drawing takes at
        # most about a third of the GUI thread and the event loop stays responsive on a slow machine.
        self.display_timer = QTimer(self, singleShot=True, interval=MIN_DRAW_INTERVAL_MS)
        self.display_timer.timeout.connect(self._draw_cycle)
        self.display_timer.start()
        self._draw_started_at = 0.0
        self.draw_cost_ms = 0.0
        self._timeline_drawn_at = 0.0
        self._fill_trackers()

    # -- construction ----------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.messages = MessageBar()
        self.tracker_combo = QComboBox()
        self.tracker_combo.setMinimumWidth(160)
        self.tracker_combo.setToolTip("tracker")
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("checkpoint file")
        self.weights_edit.setMinimumWidth(160)
        self.weights_edit.editingFinished.connect(self._weights_edited)
        self.weights_button = QPushButton("Checkpoint…")
        self.weights_button.clicked.connect(self.choose_weights)
        self.device_combo = QComboBox()
        for d in available_devices():
            self.device_combo.addItem(d.upper(), d)
        self.device_combo.setToolTip("where the network runs")
        self.start_button = QPushButton("▶ Start")
        self.start_button.setToolTip("initialise the tracker on this frame with the drawn box and play")
        self.start_button.clicked.connect(self.start_tracking)
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("play / pause (Space)")
        self.play_button.clicked.connect(lambda on: self.set_playing(on))
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("one frame (Right arrow)")
        self.step_button.clicked.connect(self.step)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("stop tracking (Esc)")
        self.stop_button.clicked.connect(self.stop_tracking)
        self.speed_combo = QComboBox()
        for label, value in SPEEDS:
            self.speed_combo.addItem(label, value)
        self.speed_combo.setCurrentIndex(2)
        self.speed_combo.setToolTip("playback speed (files); tracking runs as fast as it can up to it")
        self.speed_combo.currentIndexChanged.connect(lambda _: self.worker.set_speed(self.speed_combo.currentData()))
        self.heat_check = QCheckBox("Heatmap on video")
        self.heat_check.toggled.connect(self._heat_toggled)

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        for w in (QLabel("Tracker"), self.tracker_combo, self.weights_edit, self.weights_button, self.device_combo):
            bar.addWidget(w)
        bar.addSpacing(12)
        for w in (self.start_button, self.play_button, self.step_button, self.stop_button, QLabel("Speed"),
                  self.speed_combo, self.heat_check):
            bar.addWidget(w)
        bar.setStretch(2, 1)

        self.video = VideoView()
        self.video.setMinimumSize(320, 240)
        self.video.boxDrawn.connect(self._box_drawn)
        self.video.drawStarted.connect(self._draw_started)
        self.info = QLabel("Open a video (File ▸ Open, or drop a file here)")
        self.info.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.info.setStyleSheet("font-family: monospace;")
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setTracking(False)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self.seek)
        self.slider.sliderMoved.connect(lambda v: self.frame_label.setText(self._frame_text(v)))
        self.frame_label = QLabel("–")
        self.frame_label.setMinimumWidth(90)
        slider_row = QHBoxLayout()
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.frame_label)
        video_panel = QWidget()
        vl = QVBoxLayout(video_panel)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.addWidget(self.video, 1)
        vl.addWidget(self.info)
        vl.addLayout(slider_row)

        self.heatmap = HeatmapView()
        self.channels = ChannelGrid()
        inspect = QSplitter(Qt.Vertical)
        inspect.addWidget(self.heatmap)
        inspect.addWidget(self.channels)
        inspect.setSizes([300, 420])
        top = QSplitter(Qt.Horizontal)
        top.addWidget(video_panel)
        top.addWidget(inspect)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        top.setSizes([800, 560])
        self.timeline = Timeline()
        self.timeline.seekRequested.connect(self.seek)
        self.timeline.setMinimumHeight(110)
        main = QSplitter(Qt.Vertical)
        main.addWidget(top)
        main.addWidget(self.timeline)
        main.setStretchFactor(0, 5)
        main.setStretchFactor(1, 1)
        main.setSizes([680, 150])

        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(2)
        cl.addLayout(bar)
        cl.addWidget(self.messages)
        cl.addWidget(main, 1)
        self.setCentralWidget(central)

        self.params = ParamsPanel()
        self.params.setMinimumWidth(230)
        self.params.paramChanged.connect(self._param_changed)
        dock = QDockWidget("Hyper-parameters", self)
        dock.setObjectName("params")
        dock.setWidget(self.params)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable
                         | QDockWidget.DockWidgetClosable)
        self.addDockWidget(Qt.LeftDockWidgetArea, dock)
        self.params_dock = dock

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.cancel_export_button = QPushButton("Cancel export")
        self.cancel_export_button.hide()
        self.cancel_export_button.clicked.connect(self.cancel_export)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_export_button)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "Open &video…", self.choose_video, QKeySequence.Open)
        self._action(m, "Open image &folder…", self.choose_folder)
        self._action(m, "Open &camera…", self.choose_camera)
        m.addSeparator()
        self._action(m, "Export annotated &video…", self.choose_export_video)
        self._action(m, "Export &results…", self.choose_export_results)
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.Quit)
        t = self.menuBar().addMenu("&Track")
        self._action(t, "Start", self.start_tracking)
        self._action(t, "Play / pause", self.toggle_play, Qt.Key_Space)
        self._action(t, "Step one frame", self.step, Qt.Key_Right)
        self._action(t, "Redraw the box", self.redraw_box, Qt.Key_R)
        self._action(t, "Stop", self.stop_tracking, Qt.Key_Escape)
        v = self.menuBar().addMenu("&View")
        v.addAction(self.params_dock.toggleViewAction())
        z = self.menuBar().addMenu("&Models")
        self._action(z, "Model &zoo: published checkpoints…", self.open_model_zoo)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(lambda *_: slot())
        menu.addAction(a)
        self.addAction(a)
        return a

    # -- messages --------------------------------------------------------------------------------
    def show_message(self, level: str, text: str) -> None:
        self.messages.show_message(level, text)
        self.statusBar().showMessage(text.splitlines()[0] if text else "", 8000)

    # -- sources ---------------------------------------------------------------------------------
    def open_source(self, spec) -> None:
        """A video file, an image folder, a camera index (int), or a FrameSource object."""
        if isinstance(spec, str) and not spec.startswith("camera:"):
            if not os.path.exists(spec):
                self.show_message("error", f"Cannot open {spec}: no such file or folder")
                return
            self.settings.setValue("last_dir", os.path.dirname(os.path.abspath(spec)))
        self.video.set_user_box(None)
        self.video.set_result(None)
        self.worker.open_source(spec)

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self._last_dir(),
                                              "Videos (*.avi *.mp4 *.mov *.mkv *.webm *.mpg);;All files (*)")
        if path:
            self.open_source(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image-sequence folder", self._last_dir())
        if path:
            self.open_source(path)

    def choose_camera(self) -> None:
        index, ok = QInputDialog.getInt(self, "Open camera", "Camera index:", 0, 0, 16)
        if ok:
            self.open_source(index)

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", os.getcwd()))

    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        for url in ev.mimeData().urls():
            if url.isLocalFile():
                self.open_source(url.toLocalFile())
                ev.acceptProposedAction()
                return

    def _on_source_opened(self, info: SourceInfo) -> None:
        self.source_info = info
        self.store = RunStore()
        self._timeline_version = -1
        self.timeline.set_run([], 0, None)
        name = os.path.basename(str(info.name).rstrip("/")) or str(info.name)
        self.setWindowTitle(f"SiamScope — {name}")
        seekable = not info.is_live and bool(info.frame_count)
        self.slider.setEnabled(seekable)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max((info.frame_count or 1) - 1, 0))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.show_message("info", f"Opened {name} ({info.width}x{info.height}"
                          + (f", {info.frame_count} frames" if info.frame_count else "")
                          + "). Drag a box around the target, then press Start.")

    # -- trackers --------------------------------------------------------------------------------
    def _fill_trackers(self) -> None:
        specs = registry.all_trackers()
        self.tracker_combo.blockSignals(True)
        self.tracker_combo.clear()
        for spec in specs:
            self.tracker_combo.addItem(self._tracker_label(spec), spec.name)
        self.tracker_combo.blockSignals(False)
        if not specs:
            problems = "; ".join(f"{m}: {e}" for m, e in registry.IMPORT_ERRORS.items())
            self.show_message("error", "No trackers are available." + (f" ({problems})" if problems else ""))
            return
        names = [s.name for s in specs]
        last = self.settings.value("tracker", "")
        choice = last if last in names else next((n for n in PREFERRED_TRACKERS if n in names), names[0])
        self.tracker_combo.setCurrentIndex(names.index(choice))
        self.tracker_combo.currentIndexChanged.connect(self._tracker_changed)
        self.device_combo.currentIndexChanged.connect(lambda _: self.configure_tracker())
        self._tracker_changed()

    @staticmethod
    def _tracker_label(spec) -> str:
        """The picker's text: the title, marked where the checkpoint is not in a model folder."""
        title = spec.title or spec.name
        if spec.needs_weights and registry.find_weights(spec) is None:
            return f"{title}  — no checkpoint"
        return title

    def _refresh_tracker_labels(self) -> None:
        for i in range(self.tracker_combo.count()):
            self.tracker_combo.setItemText(i, self._tracker_label(registry.get(self.tracker_combo.itemData(i))))

    def open_model_zoo(self, entries=None, dest_dir=None):
        """The model-zoo dialog (non-modal); a finished download refreshes the picker."""
        from .zoo_dialog import ModelZooDialog
        dialog = ModelZooDialog(self, entries, dest_dir)
        dialog.downloaded.connect(lambda _path: (self._refresh_tracker_labels(),
                                                 self._fill_weights(self.tracker_name())))
        dialog.show()
        self.zoo_dialog = dialog
        return dialog

    def tracker_name(self) -> str:
        return self.tracker_combo.currentData() or ""

    def select_tracker(self, name: str, weights: Optional[str] = None) -> None:
        """Pick a tracker (and optionally its checkpoint) as a user would."""
        i = self.tracker_combo.findData(name)
        if i < 0:
            self.show_message("error", f"Unknown tracker {name!r}")
            return
        self.tracker_combo.blockSignals(True)
        self.tracker_combo.setCurrentIndex(i)
        self.tracker_combo.blockSignals(False)
        if weights is not None:
            self.weights_edit.setText(weights)
            self.settings.setValue(f"weights/{name}", weights)
        else:
            self._fill_weights(name)
        self.settings.setValue("tracker", name)
        self.configure_tracker()

    def _tracker_changed(self) -> None:
        name = self.tracker_name()
        self.settings.setValue("tracker", name)
        self._fill_weights(name)
        self.configure_tracker()

    def _fill_weights(self, name: str) -> None:
        spec = registry.get(name)
        remembered = str(self.settings.value(f"weights/{name}", "") or "")
        path = remembered if remembered and os.path.isfile(remembered) else (registry.find_weights(spec) or "")
        self.weights_edit.setText(path)
        self.weights_edit.setEnabled(spec.needs_weights)
        self.weights_button.setEnabled(spec.needs_weights)
        if spec.needs_weights and not path:
            self.weights_edit.setPlaceholderText(f"{spec.weights_file or 'checkpoint'} not found — choose it")

    def choose_weights(self) -> None:
        name = self.tracker_name()
        start = self.weights_edit.text() or self._last_dir()
        path, _ = QFileDialog.getOpenFileName(self, f"Checkpoint for {name}", start,
                                              "Checkpoints (*.pth *.pt *.pkl *.model *.tar);;All files (*)")
        if path:
            self.weights_edit.setText(path)
            self._weights_edited()

    def _weights_edited(self) -> None:
        name = self.tracker_name()
        if name:
            self.settings.setValue(f"weights/{name}", self.weights_edit.text().strip())
            self.configure_tracker()

    def configure_tracker(self) -> None:
        name = self.tracker_name()
        if not name:
            return
        spec = registry.get(name)
        weights = self.weights_edit.text().strip() or None
        if spec.needs_weights and weights is None:
            self.show_message("warning", f"{spec.title or name} needs its checkpoint ({spec.weights_file or 'a .pth file'}): "
                              "choose it with the Checkpoint… button")
            return
        weights = weights if spec.needs_weights else None
        device = self.device_combo.currentData()
        info = self.tracker_info
        if info is None or (info.name, info.weights, info.device) != (name, weights, device):
            self.show_message("info", f"Loading {spec.title or name} on {device.upper()}…")
        self.worker.configure(name, weights, device)

    def _on_tracker_ready(self, info: TrackerInfo) -> None:
        self.tracker_info = info
        self.params.set_params(info.params, title=info.name)
        where = f" from {os.path.basename(info.weights)}" if info.weights else ""
        self.show_message("info", f"{info.name} loaded{where} on {info.device.upper()}")

    def _param_changed(self, name: str, value) -> None:
        self.worker.set_param(name, value)
        self.store.set_params(self.params.values())

    # -- tracking control ------------------------------------------------------------------------
    def start_tracking(self) -> None:
        if self.source_info is None or self.drawn_packet is None:
            self.show_message("warning", "Open a video, image folder or camera first")
            return
        box = self.video.user_box()
        if box is None:
            self.show_message("warning", "Drag a box around the target on the video first")
            return
        self.configure_tracker()
        self.worker.init_box(box, self.drawn_packet.index, play=True)

    def set_playing(self, playing: bool) -> None:
        self.worker.play(playing)
        self.play_button.setChecked(self.playing)   # the worker's answer sets the final state

    def toggle_play(self) -> None:
        self.set_playing(not self.playing)

    def step(self) -> None:
        self.worker.step()

    def seek(self, index: int) -> None:
        if self.source_info is None or self.source_info.is_live:
            return
        self.worker.seek(index)

    def stop_tracking(self) -> None:
        self.worker.stop_tracking()

    def redraw_box(self) -> None:
        self.set_playing(False)
        self.video.set_user_box(None)
        self.show_message("info", "Drag a new box around the target"
                          + (" — the tracker restarts on this frame" if self.tracking else ", then press Start"))

    def _draw_started(self) -> None:
        if self.playing:
            self.worker.play(False)

    def _box_drawn(self, box: tuple) -> None:
        if self.tracking and self.drawn_packet is not None:
            # paused mid-run: a new box re-initialises the tracker on the frame on screen
            self.worker.init_box(box, self.drawn_packet.index, play=False)
        else:
            self.show_message("info", f"Box {box[0]:.0f},{box[1]:.0f} {box[2]:.0f}x{box[3]:.0f}: "
                              "adjust it with its handles, then press Start")

    def _heat_toggled(self, on: bool) -> None:
        self.video.show_heatmap = on
        if self.drawn_packet is not None:
            self.video.set_result(self._result_for(self.drawn_packet))

    def _on_playing_changed(self, playing: bool) -> None:
        self.playing = playing
        if not playing and self.drawn_packet is not None:
            self._refresh_timeline(self.drawn_packet, self._result_for(self.drawn_packet), force=True)
        self.play_button.setChecked(playing)
        self.play_button.setText("Pause" if playing else "Play")

    def _on_synced(self, number: int) -> None:
        self.synced = number

    def _on_tracking_changed(self, tracking: bool) -> None:
        self.tracking = tracking
        self.stop_button.setEnabled(tracking)

    # -- results ---------------------------------------------------------------------------------
    def _on_packet(self, p: FramePacket) -> None:
        """Every packet is recorded (export needs them all); only the latest is kept for drawing."""
        self.packets_received += 1
        self.latest = p
        if p.result is not None and p.kind in ("init", "track"):
            if p.kind == "init":
                self._begin_run_if_needed()
                self.video.set_user_box(None)
                if self.messages.level == "info":
                    self.messages.hide()     # "draw a box, press Start" is done with
                    self.statusBar().clearMessage()
            self.store.add(p.index, p.frame, p.result, init=p.kind == "init", jpeg=p.jpeg)
            if p.kind == "track" and p.track_ms > 0:
                # smooth the time per frame, then invert (averaging fps would overweight fast frames)
                self.track_ms = p.track_ms if self.track_ms == 0 else 0.9 * self.track_ms + 0.1 * p.track_ms
                self.track_fps = 1000.0 / self.track_ms
        self._pending = p

    def _begin_run_if_needed(self) -> None:
        info, src = self.tracker_info, self.source_info
        rec = self.store.record
        if info is None or src is None:
            return
        if rec is None or rec.tracker != info.name or self.store.source_spec != src.spec or \
                rec.checkpoint != (os.path.abspath(info.weights) if info.weights else None):
            self.store.start(info.name, self.params.values(), info.weights, src.spec, str(src.name), src.fps,
                             src.is_live)
            self._timeline_version = -1

    def _result_for(self, p: FramePacket) -> Optional[TrackResult]:
        if p.result is not None:
            return p.result
        return self.store.result(p.index)   # a frame of this run seen again (seek / step back)

    def _draw_cycle(self) -> None:
        """Draw the latest packet in a few event-loop passes (the video; the heatmap; the channel
        grid; the timeline), each followed by its repaint, so no single pass blocks the event loop
        for long. The worker holds back its next frame meanwhile (gui_idle)."""
        if self._closing:
            return
        p, self._pending = self._pending, None
        if p is None:
            self.display_timer.start(MIN_DRAW_INTERVAL_MS)
            return
        self._draw_started_at = time.perf_counter()
        self.worker.gui_idle.clear()
        result = self._result_for(p)
        passes = [lambda: self._draw_video(p, result)]
        # the views show this frame's network output, or mark what they hold as another frame's
        # (a seek, a frame played without tracking, an init, which runs no search)
        if p.result is not None and p.result.score_map is not None:
            passes.append(lambda: self.heatmap.set_result(p.result, p.index))
        else:
            passes.append(lambda: self.heatmap.mark_stale(p.index))
        if p.result is not None and (p.result.channels or p.kind == "track"):
            passes.append(lambda: self.channels.set_result(p.result, p.index))
        else:
            passes.append(lambda: self.channels.mark_stale(p.index))
        passes.append(lambda: self._finish_draw(p, result))
        self._run_passes(passes)

    def _run_passes(self, passes: list) -> None:
        if self._closing or not passes:
            self._after_draw()
            return
        try:
            passes[0]()
        finally:
            # the next pass runs once the event loop is free again, after this pass's repaint
            QTimer.singleShot(0, lambda: self._run_passes(passes[1:]))

    def _after_draw(self) -> None:
        self.worker.gui_idle.set()
        if self._closing:
            return
        cost = (time.perf_counter() - self._draw_started_at) * 1e3
        self.draw_cost_ms = cost if self.draw_cost_ms == 0 else 0.7 * self.draw_cost_ms + 0.3 * cost
        self.display_timer.start(int(min(MAX_DRAW_INTERVAL_MS, max(MIN_DRAW_INTERVAL_MS, 2 * self.draw_cost_ms))))

    def _draw_video(self, p: FramePacket, result: Optional[TrackResult]) -> None:
        self.video.set_frame(p.rgb)
        self.video.set_result(result)
        if self.slider.isEnabled() and not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(p.index)
            self.slider.blockSignals(False)
        self.frame_label.setText(self._frame_text(p.index))
        self.info.setText(self._info_text(p, result))

    def _finish_draw(self, p: FramePacket, result: Optional[TrackResult]) -> None:
        self._refresh_timeline(p, result)
        self.current_index = p.index
        self.drawn_packet = p
        self.packets_drawn += 1
        self.drawn.emit(p.index)

    def _refresh_timeline(self, p: FramePacket, result: Optional[TrackResult], force: bool = False) -> None:
        now = time.perf_counter()
        changed = self.store.version != self._timeline_version or p.index != self.current_index
        if not force and not (changed and (now - self._timeline_drawn_at > TIMELINE_INTERVAL_S or not self.playing)):
            return
        self._timeline_version = self.store.version
        self._timeline_drawn_at = now
        frames = self.store.record.frames if self.store.record is not None else []
        state = None
        if result is not None:
            state = "init" if p.kind == "init" else result.state.value
        self.timeline.set_run(frames, p.index, state)

    def _frame_text(self, index: int) -> str:
        # frame numbers start at 0 everywhere (results files, timeline); the last is frame_count - 1
        total = self.source_info.frame_count if self.source_info else None
        return f"{index} / {total - 1}" if total else f"{index}"

    def _info_text(self, p: FramePacket, result: Optional[TrackResult]) -> str:
        parts = [f"frame {p.index}"]
        if result is not None:
            parts.append(f"score {result.score:.3f}")
            if result.state.value != "tracking":
                parts.append(result.state.value.upper())
        if p.kind == "track":
            parts.append(f"{self.track_fps:5.1f} fps (mean)")
            stages = " ".join(f"{k} {v:.1f}" for k, v in p.result.timings.items())
            parts.append(f"{p.track_ms:.1f} ms ({stages})" if stages else f"{p.track_ms:.1f} ms")
        if self.source_info is not None and self.source_info.is_live:
            parts.append(f"dropped {p.dropped}")
        return "  ·  ".join(parts)

    # -- export ----------------------------------------------------------------------------------
    def choose_export_video(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export annotated video", self._last_dir(),
                                              "MPEG-4 (*.mp4);;AVI / MJPG (*.avi)")
        if path:
            if not os.path.splitext(path)[1]:
                path += ".mp4"
            self.export_video(path)

    def export_video(self, path: str, heatmap: Optional[bool] = None) -> Optional[VideoExportJob]:
        if self.export_job is not None and self.export_job.isRunning():
            self.show_message("warning", "A video export is already running")
            return None
        try:
            job = VideoExportJob(self.store, path, self.heat_check.isChecked() if heatmap is None else heatmap)
        except ValueError as e:
            self.show_message("warning", str(e))
            return None
        except OSError as e:     # checked before any frame is read: the source, a device, a folder...
            self.show_message("error", f"Cannot export the video: {e} — the run's results are kept")
            return None
        job.run_version = self.store.version
        job.progress.connect(self._export_progress)
        job.done.connect(self._export_done)
        self.export_job = job
        self.progress.setRange(0, job.last - job.first + 1)
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_export_button.show()
        job.start()
        return job

    def _export_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _export_done(self, ok: bool, message: str) -> None:
        self.progress.hide()
        self.cancel_export_button.hide()
        if ok and self.export_job is not None:
            self.exported_version = self.export_job.run_version
        self.show_message("info" if ok else "error", message + ("" if ok else " — the run's results are kept"))

    def cancel_export(self) -> None:
        if self.export_job is not None:
            self.export_job.cancel()

    def choose_export_results(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Export results", self._last_dir(),
                                                   "JSON with scores, timings and provenance (*.json);;"
                                                   "CSV (*.csv);;OTB text x,y,w,h (*.txt)")
        if path:
            if not os.path.splitext(path)[1]:    # the format is the filter chosen
                path += ".csv" if "*.csv" in chosen else ".txt" if "*.txt" in chosen else ".json"
            self.export_results(path)

    def export_results(self, path: str) -> bool:
        try:
            self.store.export_results(path)
        except (OSError, ValueError) as e:
            self.show_message("error", f"Cannot write {path}: {e} — the run's results are kept")
            return False
        self.exported_version = self.store.version
        self.show_message("info", f"Wrote {len(self.store.record.frames)} frames' results to {path}")
        return True

    # -- closing ---------------------------------------------------------------------------------
    def unexported_run(self) -> bool:
        """A run with tracked frames that changed since its last export (results or video)."""
        rec = self.store.record
        return rec is not None and bool(rec.frames) and self.store.version != self.exported_version

    def close_warnings(self) -> list[str]:
        out = []
        if self.export_job is not None and self.export_job.isRunning():
            out.append(f"A video export to {os.path.basename(self.export_job.path)} is running; closing cancels it "
                       "(the file already there is kept).")
        if self.unexported_run():
            out.append(f"The run ({len(self.store.record.frames)} frames tracked with {self.store.record.tracker}) "
                       "has not been exported; closing discards it.")
        return out

    def confirm_close(self) -> bool:
        """Ask before a close throws work away; True to close. 'Don't ask again' is remembered."""
        warnings = self.close_warnings()
        if not warnings or not _setting_bool(self.settings.value(ASK_BEFORE_CLOSING, True)):
            return True
        box = QMessageBox(QMessageBox.Warning, "Close SiamScope?", "\n\n".join(warnings), parent=self)
        close = box.addButton("Close without exporting", QMessageBox.DestructiveRole)
        box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(QMessageBox.Cancel)
        dont_ask = QCheckBox("Don't ask again")
        box.setCheckBox(dont_ask)
        self.close_box = box
        box.exec()
        self.close_box = None
        if box.clickedButton() is not close:
            return False
        if dont_ask.isChecked():
            self.settings.setValue(ASK_BEFORE_CLOSING, False)
        return True

    def closeEvent(self, ev) -> None:
        if not self._closing and not self.confirm_close():
            ev.ignore()
            return
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.display_timer.stop()
        self.worker.gui_idle.set()
        try:
            self.worker.outbox.wake.disconnect()
        except (RuntimeError, TypeError):
            pass
        if self.export_job is not None and self.export_job.isRunning():
            self.export_job.cancel()
            if not self.export_job.wait(10000):
                _ORPHANS.append(self.export_job)
        zoo_job = getattr(getattr(self, "zoo_dialog", None), "job", None)
        if zoo_job is not None and zoo_job.isRunning():
            zoo_job.cancel()
            if not zoo_job.wait(10000):
                _ORPHANS.append(zoo_job)
        if not self.worker.shutdown():
            _ORPHANS.append(self.worker)


def _setting_bool(value) -> bool:
    # QSettings' INI files give booleans back as the strings "true" / "false"
    return value if isinstance(value, bool) else str(value).lower() not in ("false", "0", "")


def parse_app_args(argv: list[str]):
    """[] | [VIDEO_OR_FOLDER] | ['--camera', N] -> the source to open (or None)."""
    if not argv:
        return None
    if argv[0] == "--camera":
        try:
            return int(argv[1]) if len(argv) > 1 else 0
        except ValueError:
            raise SystemExit(f"--camera takes a camera index, got {argv[1]!r}") from None
    return argv[0]


def run_app(argv: list[str]) -> int:
    source = parse_app_args(list(argv))
    pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("SiamScope")
    app.setOrganizationName("SiamScope")
    window = MainWindow()
    window.show()
    if source is not None:
        window.open_source(source)
    return app.exec()
