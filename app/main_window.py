"""The SiamScope window: menus, the views, and the wiring between its parts and the worker.

Parts: the tracker bar (app/tracker_bar.py), the message bar (app/message_bar.py), the draw
scheduler (app/draw_scheduler.py), the export controls (app/export_controls.py), the views
(app/video_view.py, app/inspect_views.py) and the parameter panel (app/params_panel.py).

The GUI thread only draws. The worker (app/worker.py) owns the run and sends every frame back as a
FramePacket; `_on_packet` records it for export and hands it to the draw scheduler, which draws
only the latest one, so drawing skips frames rather than falling behind.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDockWidget, QFileDialog, QHBoxLayout,
                               QInputDialog, QLabel, QMainWindow, QMessageBox, QPushButton, QSizePolicy, QSlider,
                               QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from trackers.core import compute, registry
from trackers.core.base import TrackResult
from trackers.run.groundtruth import (GroundTruth, GroundTruthError, RunningScore, find_groundtruth, iou_by_frame,
                                  read_groundtruth, score_so_far)

from .draw_scheduler import DrawScheduler
from .export import RunStore, VideoExportJob
from .export_controls import ExportControls
from .inspect_views import ChannelGrid, HeatmapView, Timeline
from .message_bar import MessageBar
from .params_panel import ParamsPanel
from .recent import RecentFiles
from .start_page import StartPage
from .tracker_bar import TrackerBar
from .video_view import VideoView
from .worker import TrackingWorker, build_tracker
from .worker_protocol import (FramePacket, Message, PlayingChanged, SourceInfo, Synced, TrackerInfo,
                              TrackerUnloaded, TrackingChanged)

SPEEDS = [("0.25×", 0.25), ("0.5×", 0.5), ("1×", 1.0), ("2×", 2.0), ("4×", 4.0), ("max", 0.0)]
TIMELINE_INTERVAL_S = 0.25       # the timeline (axes re-laid out as it scrolls) redraws at most 4 times a second
# Threads that did not end in time when their window closed; kept referenced so Python does not
# destroy a running QThread (which would abort the process).
_ORPHANS: list = []
#: QSettings key: ask before a close discards an unexported run or cancels an export
ASK_BEFORE_CLOSING = "ask_before_closing"


def provenance_text(info: Optional[TrackerInfo]) -> tuple[str, str]:
    """(line, tooltip) naming the tracker that is loaded, its checkpoint file and sha256."""
    if info is None:
        return "Loaded: no tracker", "no tracker is loaded: Start loads the picked one"
    if info.checkpoint:
        sha = info.checkpoint_sha256 or "not a file"
        # short enough for the tracker bar at 1280 px (the device is in its own box); all in the tooltip
        line = f"Loaded: {info.name} · {os.path.basename(info.checkpoint)} · sha256 {sha[:8]}"
        tip = (f"{info.name} on {info.device.upper()}\ncheckpoint: {os.path.abspath(info.checkpoint)}\n"
               f"sha256: {sha}")
    else:
        line = f"Loaded: {info.name} · no checkpoint file"
        tip = f"{info.name} on {info.device.upper()}: no trained weights file (training-free, or built in code)"
    return line, tip


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
        self.recent = RecentFiles(self.settings)
        self.groundtruth: Optional[GroundTruth] = None
        self.run_score: Optional[RunningScore] = None     # mean IoU / AUC so far against it
        self._pending_reinit: Optional[tuple] = None     # (box, frame) awaiting "discard later frames?"
        self.store = RunStore()
        self.source_info: Optional[SourceInfo] = None
        self.tracker_info: Optional[TrackerInfo] = None
        self.playing = False
        self.tracking = False
        self.current_index = -1
        self.latest: Optional[FramePacket] = None       # last packet received
        self.drawn_packet: Optional[FramePacket] = None  # last packet drawn
        self.synced = 0                # the last worker.sync() barrier the worker has answered
        self._timeline_version = -1
        self.packets_received = 0
        self.packets_drawn = 0
        self.track_fps = 0.0
        self.track_ms = 0.0
        self.close_box: Optional[QMessageBox] = None   # the "close without exporting?" question, while open
        self._closing = False
        # the compute policy: one core kept for this (the Qt) thread, unless the user chose a count
        self.compute_policy = compute.apply(compute.decide(self.threads_preference(), gui=True))
        self._channels_shown = True

        self._build_widgets()
        self._build_menus()
        self.start_page.set_recent(self.recent.paths())

        self.worker = TrackingWorker(tracker_factory=tracker_factory)
        self.worker.on(FramePacket, self._on_packet)
        self.worker.on(SourceInfo, self._on_source_opened)
        self.worker.on(TrackerInfo, self._on_tracker_ready)
        self.worker.on(TrackerUnloaded, lambda e: self._on_tracker_ready(None))
        self.worker.on(PlayingChanged, lambda e: self._on_playing_changed(e.playing))
        self.worker.on(TrackingChanged, lambda e: self._on_tracking_changed(e.tracking))
        self.worker.on(Message, lambda e: self.show_message(e.level, e.text))
        self.worker.on(Synced, lambda e: self._on_synced(e.number))
        self.worker.start()

        # draws the latest packet only, at a pace that leaves the event loop responsive
        self.draws = DrawScheduler(self.worker.gui_idle, self._draw_passes, self)
        self._timeline_drawn_at = 0.0
        self.tracker_bar.fill()

    # -- construction ----------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.messages = MessageBar()
        self.tracker_bar = TrackerBar(self.settings, self._last_dir)
        self.tracker_bar.configChanged.connect(self.configure_tracker)
        self.tracker_bar.message.connect(self.show_message)
        self.tracker_bar.after_dialog = self.return_focus
        # the bar's widgets under their old names (tests and the screenshot script drive them)
        self.tracker_combo, self.device_combo = self.tracker_bar.tracker_combo, self.tracker_bar.device_combo
        self.engine_combo = self.tracker_bar.engine_combo
        self.weights_edit = self.tracker_bar.weights_edit
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

        # two rows, so the picker shows its whole text at 1280 px: what to run, then how to run it
        # beside what is loaded
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        bar.addWidget(self.tracker_bar, 1)
        transport = QHBoxLayout()
        transport.setContentsMargins(6, 0, 6, 0)
        for w in (self.start_button, self.play_button, self.step_button, self.stop_button, QLabel("Speed"),
                  self.speed_combo, self.heat_check):
            transport.addWidget(w)
        self.stop_button.setEnabled(False)       # nothing to stop until a run starts
        # clicking a transport button leaves the keyboard with the video, where Space and the
        # arrows mean play and step (a focused button would take Space as a click)
        for b in (self.start_button, self.play_button, self.step_button, self.stop_button):
            b.setFocusPolicy(Qt.NoFocus)
        # what is loaded (name, checkpoint file, sha256): the one source of "what produced this"
        self.loaded_label = QLabel()
        self.loaded_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.loaded_label.setContentsMargins(8, 0, 6, 0)
        self.loaded_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.loaded_label.setText(provenance_text(None)[0])
        transport.addWidget(self.loaded_label, 1)

        self.video = VideoView()
        self.video.setMinimumSize(320, 240)
        self.video.boxDrawn.connect(self._box_drawn)
        self.video.drawStarted.connect(self._draw_started)
        self.info = QLabel("")
        # wraps rather than cuts (SiamMask's stage timings run long); two lines tall always, so
        # the video does not jump when a line wraps
        self.info.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.info.setWordWrap(True)
        self.info.setFixedHeight(2 * self.info.fontMetrics().lineSpacing() + 4)
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
        self.start_page = StartPage()
        self.start_page.openVideo.connect(self.choose_video)
        self.start_page.openFolder.connect(self.choose_folder)
        self.start_page.openCamera.connect(self.choose_camera)
        self.start_page.openRecent.connect(self.open_source)
        self.video_stack = QStackedWidget()       # the start page until a source is open
        self.video_stack.addWidget(self.start_page)
        self.video_stack.addWidget(self.video)
        vl.addWidget(self.video_stack, 1)
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
        cl.addLayout(transport)
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

        self.exports = ExportControls(self, self.statusBar(), lambda: self.store, self.heat_check.isChecked,
                                      self._last_dir, self.show_message)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "Open &video…", self.choose_video, QKeySequence.Open)
        self._action(m, "Open image &folder…", self.choose_folder)
        self._action(m, "Open &camera…", self.choose_camera)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._action(m, "Attach &ground truth…", self.choose_groundtruth, QKeySequence("Ctrl+G"))
        m.addSeparator()
        self._action(m, "Export annotated &video…", self.exports.choose_export_video)
        self._action(m, "Export &results…", self.exports.choose_export_results)
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
        self._action(v, "&Fit the video", self.video.fit, Qt.Key_F)
        self._action(v, "Zoom &in", lambda: self._zoom_centre(1), Qt.Key_Plus)
        self._action(v, "Zoom &out", lambda: self._zoom_centre(-1), Qt.Key_Minus)
        self.channels_action = QAction("DW-XCorr &channel grid", self, checkable=True, checked=True)
        self.channels_action.toggled.connect(self.channels.setVisible)
        self.channels_action.toggled.connect(self._sync_channels_shown)
        v.addAction(self.channels_action)
        settings_menu = self.menuBar().addMenu("&Settings")
        self.threads_menu = settings_menu.addMenu("Compute &threads")
        self.threads_actions = {}
        for n in [0] + list(range(1, compute.available_cores() + 1)):
            label = f"Automatic ({compute.decide(0, gui=True).threads}: one core kept for the window)" if n == 0 \
                else f"{n}"
            a = QAction(label, self, checkable=True, checked=(n == self.threads_preference()))
            a.triggered.connect(lambda _=False, n=n: self.set_threads_preference(n))
            self.threads_menu.addAction(a)
            self.threads_actions[n] = a
        z = self.menuBar().addMenu("&Models")
        self._action(z, "Model &zoo: published checkpoints…", self.open_model_zoo)
        h = self.menuBar().addMenu("&Help")
        self._action(h, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence("?"))

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(lambda *_: slot())
        menu.addAction(a)
        self.addAction(a)
        return a

    # -- comfort: zoom, recent files, shortcuts, focus -------------------------------------------
    def _zoom_centre(self, notches: int) -> None:
        vp = self.video.viewport()
        self.video.zoom_at(QPointF(vp.width() / 2, vp.height() / 2), notches)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        for path in paths:
            a = self.recent_menu.addAction(path)
            a.triggered.connect(lambda *_, p=path: self.open_source(p))
        if not paths:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def show_shortcuts(self) -> None:
        from .shortcuts import ShortcutsSheet
        sheet = ShortcutsSheet(self.actions(), self)
        self.shortcuts_sheet = sheet
        sheet.finished.connect(lambda *_: self.return_focus())
        sheet.open()

    def return_focus(self) -> None:
        """After a dialog: the window active and the video holding the keyboard, so Space, the
        arrows and Esc work without a click first."""
        if self._closing:
            return
        self.activateWindow()
        self.raise_()
        target = self.video if self.video_stack.currentWidget() is self.video else self.start_page
        target.setFocus(Qt.OtherFocusReason)

    # -- messages --------------------------------------------------------------------------------
    def show_message(self, level: str, text: str, actions=()) -> None:
        self.messages.show_message(level, text, actions)
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
        self.return_focus()
        if path:
            self.open_source(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image-sequence folder", self._last_dir())
        self.return_focus()
        if path:
            self.open_source(path)

    def choose_camera(self) -> None:
        index, ok = QInputDialog.getInt(self, "Open camera", "Camera index:", 0, 0, 16)
        self.return_focus()
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

    # -- ground truth ----------------------------------------------------------------------------
    def choose_groundtruth(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Attach ground truth", self._last_dir(),
                                              "Ground truth (*.txt *.label);;All files (*)")
        self.return_focus()
        if path:
            self.attach_groundtruth(path)

    def attach_groundtruth(self, path: Optional[str]) -> bool:
        """Read a ground-truth file (OTB / GOT-10k / LaSOT / VOT) for the open sequence; None
        detaches it. A file that cannot be read is one message; what was attached stays."""
        if path is None:
            self.groundtruth = None
        else:
            try:
                gt = read_groundtruth(path)
            except GroundTruthError as e:
                self.show_message("error", str(e))
                return False
            self.groundtruth = gt
            count = self.source_info.frame_count if self.source_info else None
            note = ""
            if count and len(gt) != count:
                note = f" — it has {len(gt)} rows for {count} frames; frames without a row have no truth"
            self.show_message("warning" if note else "info",
                              f"Ground truth {gt.path} ({gt.layout}, {gt.present} boxes){note}")
        self._timeline_version = -1
        if self.drawn_packet is not None:
            self._draw_groundtruth(self.drawn_packet.index)
            self._refresh_timeline(self.drawn_packet, self._result_for(self.drawn_packet), force=True)
        return True

    def _draw_groundtruth(self, index: int) -> None:
        self.video.set_groundtruth(self.groundtruth.box(index) if self.groundtruth is not None else None)

    def _on_source_opened(self, info: SourceInfo) -> None:
        self.source_info = info
        self.video_stack.setCurrentWidget(self.video)
        self.video.setFocus(Qt.OtherFocusReason)
        self.groundtruth = None
        self.video.set_groundtruth(None)
        if isinstance(info.spec, str) and os.path.exists(info.spec):
            self.recent.add(info.spec)
            self.start_page.set_recent(self.recent.paths())
            found = find_groundtruth(info.spec)      # a sequence folder brings its own
            if found is not None:
                try:
                    self.groundtruth = read_groundtruth(found)
                except GroundTruthError as e:
                    self.show_message("warning", f"{e} — open the sequence without ground truth")
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
        gt = f", ground truth {os.path.basename(self.groundtruth.path)}" if self.groundtruth is not None else ""
        self.show_message("info", f"Opened {name} ({info.width}x{info.height}"
                          + (f", {info.frame_count} frames" if info.frame_count else "") + gt
                          + "). Drag a box around the target, then press Start.")

    # -- trackers (the bar: app/tracker_bar.py) ----------------------------------------------------
    def open_model_zoo(self, entries=None, dest_dir=None):
        """The model-zoo dialog (non-modal); a finished download refreshes the picker."""
        from .zoo_dialog import ModelZooDialog
        dialog = ModelZooDialog(self, entries, dest_dir)
        dialog.downloaded.connect(lambda _path: self.tracker_bar.refresh_labels())
        dialog.finished.connect(lambda *_: self.return_focus())
        dialog.show()
        self.zoo_dialog = dialog
        return dialog

    def tracker_name(self) -> str:
        return self.tracker_bar.tracker_name()

    def select_tracker(self, name: str, weights: Optional[str] = None) -> None:
        """Pick a tracker (and optionally its checkpoint) as a user would."""
        self.tracker_bar.select_tracker(name, weights)

    def threads_preference(self) -> int:
        """Remembered compute-thread count; 0 = automatic (every core but one)."""
        try:
            return max(0, int(self.settings.value("compute/threads", 0) or 0))
        except (TypeError, ValueError):
            return 0

    def set_threads_preference(self, threads: int) -> None:
        """Remember the thread count and apply it (the worker rebuilds the tracker between frames)."""
        self.settings.setValue("compute/threads", int(threads))
        for n, a in self.threads_actions.items():
            a.setChecked(n == threads)
        self.compute_policy = compute.decide(threads, gui=True)
        self.worker.set_compute(self.compute_policy)
        self.show_message("info", f"Compute threads: {self.compute_policy.threads}")

    def engine_choice(self) -> str:
        return self.tracker_bar.engine()

    def _sync_channels_shown(self, shown: bool) -> None:
        """Hidden (View menu) or collapsed (splitter): the tracker stops copying the maps out."""
        if shown != self._channels_shown:
            self._channels_shown = shown
            self.worker.set_channels_visible(shown)

    def configure_tracker(self) -> bool:
        """Ask the worker for the picked tracker; False (the loaded one dropped, the fix offered in
        place) when it needs a checkpoint that nobody has chosen."""
        name = self.tracker_name()
        if not name:
            return False
        spec = registry.get(name)
        weights = self.tracker_bar.weights()
        if spec.needs_weights and weights is None:
            # never leave the previous tracker running under this one's name
            self.worker.unload()
            self._show_tracker(None)
            self.show_message("warning", f"{spec.title or name} needs its checkpoint "
                              f"({spec.weights_file or 'a .pth file'}). Choose the file, or download it "
                              "from the model zoo.",
                              actions=[("Choose file…", self.tracker_bar.choose_weights),
                                       ("Open model zoo", self.open_model_zoo)])
            return False
        weights = weights if spec.needs_weights else None
        device = self.tracker_bar.device()
        info = self.tracker_info
        engine = self.engine_choice()
        if info is None or (info.name, info.weights, info.device, info.engine_choice) != (name, weights, device, engine):
            self.show_message("info", f"Loading {spec.title or name} on {device.upper()}…")
        self.worker.configure(name, weights, device, engine)
        return True

    def _on_tracker_ready(self, info: Optional[TrackerInfo]) -> None:
        self._show_tracker(info)
        # a load overtaken by a later pick (arrowing through the picker) is not news: the message
        # bar keeps what concerns the picked tracker (e.g. its missing checkpoint)
        if info is not None and info.name == self.tracker_name():
            where = f" from {os.path.basename(info.checkpoint)}" if info.checkpoint else ""
            self.show_message("info", f"{info.name} loaded{where} on {info.device.upper()} ({info.engine})")

    def _show_tracker(self, info: Optional[TrackerInfo]) -> None:
        """Tracker bar and panel say what is loaded (never what is merely picked)."""
        self.tracker_info = info
        text, tip = provenance_text(info)
        self.loaded_label.setText(text)
        self.loaded_label.setToolTip(tip)
        if info is None:
            self.params.set_params(None)
            return
        ckpt = f" ({os.path.basename(info.checkpoint)})" if info.checkpoint else ""
        self.params.set_params(info.params, title=info.name + ckpt, defaults=info.defaults)

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
        if not self.configure_tracker():
            return      # refused in place: the message bar offers the checkpoint
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
            # paused mid-run: a new box re-initialises the tracker on the frame on screen; when the
            # run went past this frame, that throws its later frames away: ask first, in place
            index = self.drawn_packet.index
            later = sorted(k for k in self.store.results if k > index)
            if later:
                self._pending_reinit = (box, index)
                self.show_message("warning", f"Re-initialising on frame {index} discards frames {later[0]}–"
                                  f"{later[-1]} of this run ({len(later)} frames).",
                                  actions=[("Discard them and restart here", self.confirm_reinit),
                                           ("Keep the run", self.cancel_reinit)])
                return
            self.worker.init_box(box, index, play=False)
        else:
            self.show_message("info", f"Box {box[0]:.0f},{box[1]:.0f} {box[2]:.0f}x{box[3]:.0f}: "
                              "adjust it with its handles, then press Start")

    def confirm_reinit(self) -> None:
        pending, self._pending_reinit = self._pending_reinit, None
        self.messages.hide()
        if pending is not None:
            self.worker.init_box(pending[0], pending[1], play=False)
        self.return_focus()

    def cancel_reinit(self) -> None:
        self._pending_reinit = None
        self.video.set_user_box(None)
        self.show_message("info", "Kept the run; the drawn box is dropped")
        self.return_focus()

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
        self.draws.submit(p)

    def _begin_run_if_needed(self) -> None:
        info, src = self.tracker_info, self.source_info
        rec = self.store.record
        if info is None or src is None:
            return
        if rec is None or rec.tracker != info.name or self.store.source_spec != src.spec or \
                rec.checkpoint != (os.path.abspath(info.checkpoint) if info.checkpoint else None):
            self.store.start(info.name, self.params.values(), info.checkpoint, src.spec, str(src.name), src.fps,
                             src.is_live, checkpoint_sha256=info.checkpoint_sha256,
                             compute=dict(self.compute_policy.describe(), engine=info.engine,
                                          engine_choice=info.engine_choice))
            self._timeline_version = -1

    def _result_for(self, p: FramePacket) -> Optional[TrackResult]:
        if p.result is not None:
            return p.result
        return self.store.result(p.index)   # a frame of this run seen again (seek / step back)

    def _draw_passes(self, p: FramePacket) -> list:
        """The draw of one packet, as passes for the DrawScheduler (app/draw_scheduler.py)."""
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
        return passes

    def _draw_video(self, p: FramePacket, result: Optional[TrackResult]) -> None:
        self.video.set_frame(p.rgb)
        self.video.set_result(result)
        self._draw_groundtruth(p.index)
        if self.slider.isEnabled() and not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(p.index)
            self.slider.blockSignals(False)
        self.frame_label.setText(self._frame_text(p.index))
        self.info.setText(self._info_text(p, result))

    def _finish_draw(self, p: FramePacket, result: Optional[TrackResult]) -> None:
        self._sync_channels_shown(self.channels.isVisible() and not self.channels.visibleRegion().isEmpty())
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
        ious, summary, self.run_score = {}, "", None
        if self.groundtruth is not None:
            pred = {f.frame: f.box for f in frames}
            ious = iou_by_frame(pred, self.groundtruth)
            self.run_score = score_so_far(pred, self.groundtruth)
            if self.run_score is not None:
                here = f"IoU {ious[p.index]:.2f} here · " if p.index in ious else ""
                summary = (f"{here}mean IoU {self.run_score.mean_iou:.3f} · AUC {self.run_score.auc:.3f} "
                           f"over {self.run_score.frames} frames (magenta: IoU with the ground truth)")
            else:
                summary = "ground truth attached: no frame scored yet"
        self.timeline.set_ious(ious, summary)
        self.timeline.set_run(frames, p.index, state)

    def _frame_text(self, index: int) -> str:
        # frame numbers start at 0 everywhere (results files, timeline); the last is frame_count - 1
        total = self.source_info.frame_count if self.source_info else None
        return f"{index} / {total - 1}" if total else f"{index}"

    def _info_text(self, p: FramePacket, result: Optional[TrackResult]) -> str:
        parts = [f"frame {p.index}"]
        if result is not None:
            # "confidence": the chosen cell before penalty and window (the score map's caption gives
            # the peak after them, which is a different, usually lower, number)
            parts.append(f"confidence {result.score:.3f}")
            if result.state.value != "tracking":
                parts.append(result.state.value.upper())
        if result is not None and self.groundtruth is not None:
            truth = self.groundtruth.box(p.index)
            parts.append("IoU " + (f"{iou_by_frame({p.index: result.box}, self.groundtruth)[p.index]:.2f}"
                                   if truth is not None else "– (no truth)"))
        if p.kind == "track":
            parts.append(f"{self.track_fps:5.1f} fps (mean)")
            stages = " ".join(f"{k} {v:.1f}" for k, v in p.result.timings.items())
            parts.append(f"{p.track_ms:.1f} ms ({stages})" if stages else f"{p.track_ms:.1f} ms")
        if self.source_info is not None and self.source_info.is_live:
            parts.append(f"dropped {p.dropped}")
        return "  ·  ".join(parts)

    # -- export (app/export_controls.py) ---------------------------------------------------------
    def export_video(self, path: str, heatmap: Optional[bool] = None) -> Optional[VideoExportJob]:
        return self.exports.export_video(path, heatmap)

    def export_results(self, path: str) -> bool:
        return self.exports.export_results(path)

    @property
    def export_job(self) -> Optional[VideoExportJob]:
        return self.exports.export_job

    # -- closing ---------------------------------------------------------------------------------
    def unexported_run(self) -> bool:
        return self.exports.unexported_run()

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
        self.draws.stop()
        try:
            self.worker.outbox.wake.disconnect()
        except (RuntimeError, TypeError):
            pass
        export_job = self.exports.running_job()
        if export_job is not None:
            export_job.cancel()
            if not export_job.wait(10000):
                _ORPHANS.append(export_job)
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
