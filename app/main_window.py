"""The SiamScope window: it builds its parts, wires them to each other and to the worker, and lays
them out. Each part has one job, in its own module:

- tracker bar (tracker_bar.py) and TrackerControl (tracker_control.py): what to load, what is loaded;
- TransportBar, SeekBar and Playback (transport.py): start, play, step, seek, stop;
- SourceOpener (source_opener.py): videos, folders, cameras, recent files, dropped files, ground truth;
- RunBook (run_book.py): the run recorded for export, re-initialisations that discard frames;
- FrameDisplay (frame_display.py) with its DrawScheduler (draw_scheduler.py): what is drawn, when;
- ExportControls (export_controls.py): File ▸ Export; CloseGuard (close_guard.py): closing;
- WindowMenus (menus.py): menus and shortcuts; Preferences (preferences.py): what is remembered;
- the views (video_view.py, inspect_views.py), the parameter panel (params_panel.py), the message bar.

The GUI thread only draws. The worker (app/worker.py) owns the run and sends every frame back as a
FramePacket; events come through its queue (worker.py says why not as Qt signal arguments) to the
handlers registered below by event type.
"""

from __future__ import annotations

import sys

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QRect, QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from trackers.core import compute, registry
from trackers.run.track_set import track_set_factory

from .close_guard import CloseGuard
from .compare_view import CompareView
from .export_controls import ExportControls
from .frame_display import FrameDisplay
from .inspect_views import ChannelGrid, HeatmapView, Timeline
from .menus import WindowMenus
from .message_bar import MessageBar
from .params_panel import ParamsPanel
from .preferences import Preferences
from .recent import RecentFiles
from .run_book import RunBook
from .source_opener import SourceOpener
from .start_page import StartPage
from .targets_panel import TargetsPanel
from .tracker_bar import TrackerBar
from .tracker_control import TrackerControl
from .transport import Playback, SeekBar, TransportBar
from .video_view import VideoView
from .widgets import ElidedLabel
from .worker import TrackingWorker, build_tracker
from .worker_protocol import (
    FramePacket,
    Message,
    PlayingChanged,
    SourceInfo,
    Synced,
    TrackerInfo,
    TrackerUnloaded,
    TrackingChanged,
)


def _part(part: str, name: str) -> property:
    """A name on the window that lives in one of its parts (tests and scripts use the window's)."""
    return property(lambda self: getattr(getattr(self, part), name), doc=f"self.{part}.{name}")


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, tracker_factory=build_tracker):
        super().__init__()
        # Hand the GIL between the worker and the GUI thread every millisecond instead of every
        # five: the event loop then waits less behind the worker's Python code.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self.setWindowTitle("SiamScope")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QSettings("SiamScope", "SiamScope")
        self.compact: bool | None = None  # the inspect panels as tabs (a laptop screen), or side by side
        self.prefs = Preferences(self.settings)
        self.recent = RecentFiles(self.settings)
        self.synced = 0  # the last worker.sync() barrier the worker has answered
        # the compute policy: cores kept for this (Qt) thread and the rest of the machine, unless the user
        # chose a count
        self.compute_policy = compute.apply(compute.decide(self.prefs.threads(), gui=True))
        # each tracker comes wrapped in a TrackSet: several targets, or A/B, in the one run (targets_panel.py)
        self.worker = TrackingWorker(tracker_factory=track_set_factory(tracker_factory))
        self._build_parts()
        self._lay_out()
        self.menus = WindowMenus(self, self.prefs.threads())
        self.menus.threadsChosen.connect(self.set_threads_preference)
        self.recent_menu, self.channels_action = self.menus.recent_menu, self.menus.channels_action
        self.threads_actions = self.menus.threads_actions
        # in tabs the grid is hidden whenever another tab is chosen: its maps are kept coming (they
        # cost little) so the Channels tab shows the frame on screen at once; View ▸ off stops them
        side_by_side = self.display.channels_wanted
        self.display.channels_wanted = lambda: (
            self.channels_action.isChecked() and (bool(self.compact) or side_by_side())
        )

        self.worker.on(FramePacket, self._on_packet)
        self.worker.on(SourceInfo, self._on_source_opened)
        self.worker.on(TrackerInfo, self._on_tracker)
        self.worker.on(TrackerUnloaded, lambda e: self._on_tracker(None))
        self.worker.on(PlayingChanged, lambda e: self.playback.on_playing_changed(e.playing))
        self.worker.on(TrackingChanged, lambda e: self.playback.on_tracking_changed(e.tracking))
        self.worker.on(Message, lambda e: self.show_message(e.level, e.text))
        self.worker.on(Synced, lambda e: setattr(self, "synced", e.number))
        self.worker.start()
        self.tracker_bar.fill()
        self._first_geometry()

    # -- construction ----------------------------------------------------------------------------
    def _build_parts(self) -> None:
        self.messages = MessageBar()
        self.tracker_bar = TrackerBar(self.prefs)
        self.transport = TransportBar()
        # the bars' widgets under their old names (tests and the screenshot script drive them)
        self.tracker_combo, self.device_combo = self.tracker_bar.tracker_combo, self.tracker_bar.device_combo
        self.engine_combo, self.weights_edit = self.tracker_bar.engine_combo, self.tracker_bar.weights_edit
        t = self.transport
        self.start_button, self.play_button, self.step_button, self.stop_button = (
            t.start_button,
            t.play_button,
            t.step_button,
            t.stop_button,
        )
        self.speed_combo, self.heat_check, self.loaded_label = t.speed_combo, t.heat_check, t.loaded_label
        self.video = VideoView()
        self.video.setMinimumSize(320, 240)
        # the status line: one line always (the video never jumps), cut after a whole word when the
        # window is narrow (SiamMask's stage timings run long), the whole line in its tooltip
        self.info = ElidedLabel("")
        self.info.setFixedHeight(self.info.fontMetrics().lineSpacing() + 4)
        self.seek_bar = SeekBar()
        self.slider, self.frame_label = self.seek_bar.slider, self.seek_bar.frame_label
        self.start_page = StartPage()
        self.heatmap, self.channels, self.timeline = HeatmapView(), ChannelGrid(), Timeline()
        self.params = ParamsPanel()

        self.opener = SourceOpener(
            self,
            self.worker,
            self.video,
            self.start_page,
            self.prefs,
            self.recent,
            self.show_message,
            self.return_focus,
            lambda doing: self._confirm_discard("Open another source?", doing, "Discard the run and open"),
        )
        self.runs = RunBook(
            self.worker,
            self.video,
            self.messages,
            self.statusBar(),
            self.show_message,
            self.return_focus,
            self.params.values,
            lambda: self.compute_policy.describe(),
            self,
        )
        self.trackers = TrackerControl(
            self,
            self.worker,
            self.tracker_bar,
            self.transport,
            self.params,
            self.show_message,
            self.return_focus,
            lambda doing: self._confirm_discard("Switch the tracker?", doing, "Discard the run and switch"),
        )
        self.playback = Playback(
            self.worker,
            self.transport,
            self.video,
            lambda: self.source_info,
            lambda: self.drawn_packet,
            self.trackers.configure_tracker,
            self.show_message,
            lambda: self.display.refresh_timeline(force=True),
            self,
            confirm_resume=self._confirm_restart_at,
        )
        self.display = FrameDisplay(
            self.worker,
            self.video,
            self.heatmap,
            self.channels,
            self.timeline,
            self.info,
            self.seek_bar,
            lambda: self.store,
            lambda: self.groundtruth,
            lambda: self.source_info,
            lambda: self.playing,
            self,
        )
        self.draws = self.display.draws
        self.exports = ExportControls(
            self,
            self.statusBar(),
            lambda: self.store,
            self.heat_check.isChecked,
            self.prefs.last_dir,
            self.show_message,
            self.settings,
            lambda: self.opener.source_name(),
        )
        self.guard = CloseGuard(
            self, self.prefs, self.exports, lambda: self.store, self.draws, self.worker, self.trackers.running_download
        )

        self.compare_view = CompareView()
        # before the run's own boxDrawn handler below: an added target's request precedes its InitBox
        self.targets = TargetsPanel(self, [spec.name for spec in registry.all_trackers()])
        self.display.drawn.connect(self.targets.refresh)
        self.heat_check.toggled.connect(self.display.set_heatmap_on_video)
        self.seek_bar.seekRequested.connect(self.playback.seek)
        self.timeline.seekRequested.connect(self.playback.seek)
        self.video.boxDrawn.connect(lambda box: self.runs.box_drawn(box, self.tracking, self.drawn_packet))
        self.video.drawStarted.connect(self.playback.pause_for_drawing)
        self.opener.groundtruthChanged.connect(self.display.redraw_groundtruth)
        self.params.paramChanged.connect(self.runs.set_param)

    def _lay_out(self) -> None:
        video_panel = QWidget()
        vl = QVBoxLayout(video_panel)
        vl.setContentsMargins(0, 0, 0, 0)
        self.video_stack = QStackedWidget()  # the start page until a source is open
        self.video_stack.addWidget(self.start_page)
        self.video_stack.addWidget(self.video)
        vl.addWidget(self.video_stack, 1)
        vl.addWidget(self.info)
        vl.addWidget(self.seek_bar)
        # the score map and the channels: side by side (one over the other) on a large screen, tabs
        # (with the hyper-parameters) on a laptop's (set_compact)
        self.inspect_split = _splitter(Qt.Vertical, [self.heatmap, self.channels], sizes=[300, 420])
        self.inspect_tabs = QTabWidget()
        self.inspect_tabs.setDocumentMode(True)
        self.inspect_stack = QStackedWidget()
        self.inspect_stack.addWidget(self.inspect_split)
        self.inspect_stack.addWidget(self.inspect_tabs)
        self.inspect_stack.setMinimumWidth(260)
        top = _splitter(Qt.Horizontal, [video_panel, self.inspect_stack], stretch=[3, 2], sizes=[800, 560])
        self.timeline.setMinimumHeight(90)
        main = _splitter(Qt.Vertical, [top, self.timeline], stretch=[5, 1], sizes=[680, 150])
        self.main_area = main
        # two rows, so the picker shows its whole text at 1280 px: what to run, then how to run it
        # beside what is loaded
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        bar.addWidget(self.tracker_bar, 1)
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(2)
        cl.addLayout(bar)
        cl.addWidget(self.transport)
        cl.addWidget(main, 1)
        self.setCentralWidget(central)
        # the message bar lies over the top of the video, so nothing under it moves
        # when it comes and goes
        self.messages.setParent(central)
        self.messages.hide()
        self.video_stack.installEventFilter(self)
        self.params.setMinimumWidth(230)
        # scrolls rather than sets the window's minimum height (SiamScope default has 25 rows)
        self.params_scroll = QScrollArea()
        self.params_scroll.setWidget(self.params)
        self.params_scroll.setWidgetResizable(True)
        self.params_scroll.setFrameShape(QFrame.NoFrame)
        self.params_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.params_scroll.setMinimumWidth(250)
        dock = QDockWidget("Hyper-parameters", self)
        dock.setObjectName("params")
        dock.setWidget(self.params_scroll)
        dock.setFeatures(
            QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable | QDockWidget.DockWidgetClosable
        )
        self.addDockWidget(Qt.LeftDockWidgetArea, dock)
        self.params_dock = dock
        self.targets_dock = _dock(self, "Targets", "targets", self.targets, Qt.RightDockWidgetArea)
        self.compare_dock = _dock(self, "Compare A/B", "compare", self.compare_view, Qt.BottomDockWidgetArea)
        self.compare_dock.hide()
        self.resizeDocks([self.targets_dock], [290], Qt.Horizontal)

    # -- the parts' state and commands that tests and scripts (scripts/screenshot.py, gpu_drive.py,
    # gui_bench.py) reach through the window ------------------------------------------------------
    playing, tracking = _part("playback", "playing"), _part("playback", "tracking")
    set_playing, step, seek = _part("playback", "set_playing"), _part("playback", "step"), _part("playback", "seek")
    start_tracking, stop_tracking = _part("playback", "start_tracking"), _part("playback", "stop_tracking")
    source_info, groundtruth = _part("opener", "source_info"), _part("opener", "groundtruth")
    open_source, attach_groundtruth = _part("opener", "open_source"), _part("opener", "attach_groundtruth")
    store = _part("runs", "store")
    latest, drawn_packet = _part("display", "latest"), _part("display", "drawn_packet")
    current_index, run_score = _part("display", "current_index"), _part("display", "run_score")
    packets_received, packets_drawn = _part("display", "packets_received"), _part("display", "packets_drawn")
    track_fps = _part("display", "track_fps")
    tracker_info, zoo_dialog = _part("trackers", "tracker_info"), _part("trackers", "zoo_dialog")
    open_model_zoo = _part("trackers", "open_model_zoo")
    select_tracker, engine_choice = _part("tracker_bar", "select_tracker"), _part("tracker_bar", "engine")
    export_video, export_results = _part("exports", "export_video"), _part("exports", "export_results")
    close_box, shortcuts_sheet = _part("guard", "close_box"), _part("menus", "shortcuts_sheet")

    # -- wiring ----------------------------------------------------------------------------------
    def show_message(self, level: str, text: str, actions=()) -> None:
        self.messages.show_message(level, text, actions)
        self._place_banner()
        self.statusBar().showMessage(text.splitlines()[0] if text else "", 8000)

    def _place_banner(self) -> None:
        """Over the top of the video (not the panels' tabs, which stay clickable)."""
        central = self.centralWidget()
        if central is None:
            return
        r = QRect(self.video_stack.mapTo(central, QPoint(0, 0)), self.video_stack.size())
        bar = self.messages
        # its height for this width (a wrapping label's plain size hint assumes a narrow, tall box)
        height = bar.layout().totalHeightForWidth(r.width()) if bar.layout().hasHeightForWidth() else -1
        bar.setGeometry(r.x(), r.y(), r.width(), height if height > 0 else bar.sizeHint().height())
        # the text's own width is known once laid out (the buttons take their share): as tall as it needs
        bar.layout().activate()
        needed = bar.label.heightForWidth(bar.label.width()) + 8
        if needed > bar.height():
            bar.setGeometry(r.x(), r.y(), r.width(), needed)
        bar.raise_()

    def eventFilter(self, obj, ev) -> bool:
        if obj is self.video_stack and ev.type() in (QEvent.Resize, QEvent.Move):
            self._place_banner()
        return super().eventFilter(obj, ev)

    # -- laptop screens --------------------------------------------------------------------------
    # narrower or shorter than this: the inspect panels become tabs (side by side with both docks the
    # window needs ~1290 px, so a window narrowed from there turns compact before it reaches its minimum)
    COMPACT_BELOW = (1300, 760)

    def _first_geometry(self) -> None:
        """The last session's geometry, else a size that fits the screen's available area."""
        saved = self.settings.value("window/geometry")
        if saved is not None and self.restoreGeometry(saved):
            return
        screen = self.screen() or QGuiApplication.primaryScreen()
        avail = screen.availableGeometry()
        w, h = min(1440, avail.width()), min(900, avail.height())
        self.resize(w, h)
        self.move(avail.x() + (avail.width() - w) // 2, avail.y() + (avail.height() - h) // 2)
        self.set_compact(w < self.COMPACT_BELOW[0] or h < self.COMPACT_BELOW[1])

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        size = ev.size()
        self.set_compact(size.width() < self.COMPACT_BELOW[0] or size.height() < self.COMPACT_BELOW[1])

    def set_compact(self, compact: bool) -> None:
        """Tabs for the score map, the channels and the hyper-parameters (a laptop screen), or the
        score map over the channels with the hyper-parameters docked at the left."""
        if compact == self.compact:
            return
        self.compact = compact
        while self.inspect_tabs.count():
            self.inspect_tabs.removeTab(0)
        if compact:
            self.inspect_tabs.addTab(self.heatmap, "Score map")
            self.inspect_tabs.addTab(self.channels, "Channels")
            self.inspect_tabs.addTab(self.params_scroll, "Hyper-parameters")
            for dock, title in self._tabbed_docks():
                self.inspect_tabs.addTab(dock.widget(), title)
                dock.hide()
                dock.toggleViewAction().setVisible(False)
            self.params_dock.hide()
            self.params_dock.toggleViewAction().setVisible(False)
            self.inspect_stack.setCurrentWidget(self.inspect_tabs)
        else:
            self.inspect_split.insertWidget(0, self.heatmap)
            self.inspect_split.insertWidget(1, self.channels)
            self.params_dock.setWidget(self.params_scroll)
            self.params_dock.toggleViewAction().setVisible(True)
            self.params_dock.show()
            for dock, _title in self._tabbed_docks():
                dock.setWidget(self._dock_pages[dock])
                dock.toggleViewAction().setVisible(True)
                dock.show()
                self._dock_pages[dock].show()
            self.inspect_stack.setCurrentWidget(self.inspect_split)
            # pages taken out of the tabs come back hidden (the tabs show one page at a time)
            self.heatmap.show()
            self.channels.setVisible(self.channels_action.isChecked() if hasattr(self, "menus") else True)
            self.params_scroll.show()

    def _tabbed_docks(self) -> list:
        """Docks that become tabs on a laptop screen (a 290-px side dock leaves the video no room)."""
        docks = [(getattr(self, "targets_dock", None), "Targets")]
        self._dock_pages = getattr(self, "_dock_pages", {})
        out = []
        for dock, title in docks:
            if dock is not None:
                self._dock_pages.setdefault(dock, dock.widget())
                out.append((dock, title))
        return out

    # -- one state for what is on screen, and no run dropped without a question ------------------
    def _on_tracker(self, info) -> None:
        """A tracker loaded (or none is, or one failed to load): when it is not the one the run on
        screen belongs to, nothing of that run stays on screen."""
        old = self.tracker_info
        self.trackers.on_tracker_ready(info)
        if info is None or old is None or (old.name, old.checkpoint) != (info.name, info.checkpoint):
            self.runs.new_source()
            self.display.clear_run()

    def _confirm_discard(self, title: str, doing: str, go: str) -> bool:
        return self._asked(self.guard.confirm_discard(title, self.guard.unexported_warning(doing), go))

    def _asked(self, answer: bool) -> bool:
        """After a question the keyboard is the video's again (Space, arrows, Ctrl+O work at once)."""
        if self.guard.close_box is None and QApplication.activeModalWidget() is None:
            self.return_focus()
        return answer

    def _confirm_restart_at(self, index: int) -> bool:
        """Tracking on from frame `index` re-initialises there and drops the run's later frames: asked."""
        later = sorted(k for k in self.store.results if k > index)
        if not later:
            return True
        return self._asked(
            self.guard.confirm_discard(
                f"Restart the run at frame {index}?",
                [
                    f"Tracking on from frame {index} re-initialises the tracker there and discards frames "
                    f"{later[0]}–{later[-1]} of this run ({len(later)} frames)."
                ],
                "Discard them and track on",
            )
        )

    def start_from_groundtruth(self) -> None:
        """Initialise on the frame on screen with the ground truth's box there, and play."""
        gt, drawn = self.groundtruth, self.drawn_packet
        if gt is None or drawn is None:
            self.show_message("warning", "Open a sequence with ground truth first (or attach one with Ctrl+G)")
            return
        box = gt.box(drawn.index)
        if box is None:
            self.show_message("warning", f"The ground truth has no box for frame {drawn.index}")
            return
        if not self.trackers.configure_tracker():
            return
        self.video.set_user_box(tuple(box))
        self.playback.start_from(tuple(box), drawn.index)

    def return_focus(self) -> None:
        """After a dialog: the window active and the video holding the keyboard, so Space, the
        arrows and Esc work without a click first."""
        if self.guard.closing:
            return
        self.activateWindow()
        self.raise_()
        target = self.video if self.video_stack.currentWidget() is self.video else self.start_page
        target.setFocus(Qt.OtherFocusReason)

    def _on_packet(self, p: FramePacket) -> None:
        """Every packet is recorded (export needs them all); only the latest is kept for drawing."""
        if self.runs.record(p, self.tracker_info, self.source_info):
            self.display.new_run()
        self.display.receive(p)

    def _on_source_opened(self, info: SourceInfo) -> None:
        opened = self.opener.source_opened(info)
        self.video_stack.setCurrentWidget(self.video)
        self.video.setFocus(Qt.OtherFocusReason)
        self.runs.new_source()
        self.display.clear_run()
        self.setWindowTitle(f"{self.opener.source_name()} — SiamScope")
        self.seek_bar.set_source(info)
        actions = [("Start from ground truth", self.start_from_groundtruth)] if self.groundtruth is not None else []
        self.show_message("info", opened, actions)

    def set_threads_preference(self, threads: int) -> None:
        """Remember the thread count and apply it (the worker rebuilds the tracker between frames)."""
        self.prefs.set_threads(threads)
        self.menus.check_threads(threads)
        self.compute_policy = compute.decide(threads, gui=True)
        self.worker.set_compute(self.compute_policy)
        self.show_message("info", f"Compute threads: {self.compute_policy.threads}")

    def dragEnterEvent(self, ev) -> None:
        self.opener.drag_enter(ev)

    def dropEvent(self, ev) -> None:
        self.opener.drop(ev)

    def closeEvent(self, ev) -> None:
        if not self.guard.closing and not self.guard.confirm_close():
            ev.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.guard.shutdown()
        super().closeEvent(ev)


def _dock(window, title: str, name: str, widget, area) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable | QDockWidget.DockWidgetClosable)
    window.addDockWidget(area, dock)
    return dock


def _splitter(orientation, widgets, stretch=(), sizes=()) -> QSplitter:
    s = QSplitter(orientation)
    for w in widgets:
        s.addWidget(w)
    for i, f in enumerate(stretch):
        s.setStretchFactor(i, f)
    s.setSizes(list(sizes))
    return s


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
