"""Playback controls: the transport row (Start, Play, Step, Stop, speed, heatmap, what is loaded),
the seek bar under the video, and `Playback`, which turns their clicks into worker commands and
shows the worker's answers (playing, tracking)."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from .video_view import VideoView
from .widgets import ClickSlider, ElidedLabel
from .worker_protocol import FramePacket, SourceInfo, TrackerInfo

SPEEDS = [("0.25×", 0.25), ("0.5×", 0.5), ("1×", 1.0), ("2×", 2.0), ("4×", 4.0), ("max", 0.0)]


def provenance_text(info: TrackerInfo | None) -> tuple[str, str]:
    """(line, tooltip) naming the tracker that is loaded, its checkpoint file and sha256."""
    if info is None:
        return "Loaded: no tracker", "no tracker is loaded: Start loads the picked one"
    if info.checkpoint:
        sha = info.checkpoint_sha256 or "not a file"
        # short enough for the tracker bar at 1280 px (the device is in its own box); all in the tooltip
        line = f"Loaded: {info.name} · {os.path.basename(info.checkpoint)} · sha256 {sha[:8]}"
        tip = f"{info.name} on {info.device.upper()}\ncheckpoint: {os.path.abspath(info.checkpoint)}\nsha256: {sha}"
    else:
        line = f"Loaded: {info.name} · no checkpoint file"
        tip = f"{info.name} on {info.device.upper()}: no trained weights file (training-free, or built in code)"
    return line, tip


class TransportBar(QWidget):
    """Start / Play / Step / Stop, the speed, the heatmap switch, and the line saying what is loaded."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.start_button = QPushButton("▶ Start")
        self.start_button.setToolTip("initialise the tracker on this frame with the drawn box and play")
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("play / pause (Space)")
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("one frame (Right arrow)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("stop tracking (Esc)")
        self.speed_combo = QComboBox()
        for label, value in SPEEDS:
            self.speed_combo.addItem(label, value)
        self.speed_combo.setCurrentIndex(2)
        self.speed_combo.setToolTip("playback speed (files); tracking runs as fast as it can up to it")
        self.heat_check = QCheckBox("Heatmap on video")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 0, 6, 0)
        lay.setSpacing(2)  # as tight as the window's rows
        for w in (
            self.start_button,
            self.play_button,
            self.step_button,
            self.stop_button,
            QLabel("Speed"),
            self.speed_combo,
            self.heat_check,
        ):
            lay.addWidget(w)
        self.stop_button.setEnabled(False)  # nothing to stop until a run starts
        # clicking a transport button leaves the keyboard with the video, where Space and the
        # arrows mean play and step (a focused button would take Space as a click)
        for b in (self.start_button, self.play_button, self.step_button, self.stop_button):
            b.setFocusPolicy(Qt.NoFocus)
        # what is loaded (name, checkpoint file, sha256): the one source of "what produced this"
        self.loaded_label = ElidedLabel()
        self.loaded_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.loaded_label.setContentsMargins(8, 0, 6, 0)
        lay.addWidget(self.loaded_label, 1)
        self.show_loaded(None)

    def show_loaded(self, info: TrackerInfo | None) -> None:
        text, tip = provenance_text(info)
        self.loaded_label.setText(text)
        self.loaded_label.setToolTip(tip)


class SeekBar(QWidget):
    """The slider under the video and the frame number beside it."""

    seekRequested = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source_info: SourceInfo | None = None
        self.slider = ClickSlider(Qt.Horizontal)
        self.slider.setTracking(False)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self.seekRequested)
        self.slider.sliderMoved.connect(lambda v: self.frame_label.setText(self.frame_text(v)))
        self.frame_label = QLabel("–")
        self.frame_label.setMinimumWidth(90)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.frame_label)

    def set_source(self, info: SourceInfo) -> None:
        self.source_info = info
        self.slider.setEnabled(not info.is_live and bool(info.frame_count))
        self.slider.blockSignals(True)
        self.slider.setRange(0, max((info.frame_count or 1) - 1, 0))
        self.slider.setValue(0)
        self.slider.blockSignals(False)

    def show_frame(self, index: int) -> None:
        if self.slider.isEnabled() and not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        self.frame_label.setText(self.frame_text(index))

    def frame_text(self, index: int) -> str:
        # frame numbers start at 0 everywhere (results files, timeline); the last is frame_count - 1
        total = self.source_info.frame_count if self.source_info else None
        return f"{index} / {total - 1}" if total else f"{index}"


class Playback(QObject):
    """Start, play, pause, step, seek and stop, sent to the worker; `playing` and `tracking` are what
    the worker last answered (the buttons show that, never what was merely asked)."""

    def __init__(
        self,
        worker,
        transport: TransportBar,
        video: VideoView,
        source_info: Callable[[], SourceInfo | None],
        drawn_packet: Callable[[], FramePacket | None],
        load_tracker: Callable[[], bool],
        show_message: Callable,
        on_paused: Callable[[], None],
        parent=None,
        confirm_resume: Callable[[int], bool] = lambda index: True,
    ):
        """`load_tracker()` asks for the picked tracker: False when it cannot be loaded (the reason is
        shown); `on_paused()` runs when the worker says playback stopped; `confirm_resume(index)`
        asks before tracking on from frame `index` drops the run's later frames (True: go on)."""
        super().__init__(parent)
        self.worker, self.transport, self.video = worker, transport, video
        self._source_info, self._drawn_packet, self._load_tracker = source_info, drawn_packet, load_tracker
        self.show_message, self._on_paused = show_message, on_paused
        self._confirm_resume = confirm_resume
        self.playing = False
        self.tracking = False
        transport.start_button.clicked.connect(self.start_tracking)
        transport.play_button.clicked.connect(lambda on: self.set_playing(on))
        transport.step_button.clicked.connect(self.step)
        transport.stop_button.clicked.connect(self.stop_tracking)
        transport.speed_combo.currentIndexChanged.connect(
            lambda _: self.worker.set_speed(transport.speed_combo.currentData())
        )

    def start_tracking(self) -> None:
        """Initialise the tracker on the frame on screen with the drawn box, and play."""
        drawn = self._drawn_packet()
        if self._source_info() is None or drawn is None:
            self.show_message("warning", "Open a video, image folder or camera first")
            return
        # the tracker first: with none loadable, that is what the user must fix (the message bar
        # offers the checkpoint, and a "draw a box" hint must not replace it)
        if not self._load_tracker():
            return
        box = self.video.user_box()
        if box is None:
            self.show_message("warning", "Drag a box around the target on the video first")
            return
        self.start_from(box, drawn.index)

    def start_from(self, box: tuple, index: int) -> None:
        """Initialise on frame `index` with `box` and play (asked first where that drops later frames)."""
        if self.tracking and not self._confirm_resume(index):
            return
        self.worker.init_box(box, index, play=True)

    def redraw_box(self) -> None:
        self.set_playing(False)
        self.video.set_user_box(None)
        self.show_message(
            "info",
            "Drag a new box around the target"
            + (" — the tracker restarts on this frame" if self.tracking else ", then press Start"),
        )

    def _resume_allowed(self) -> bool:
        """Tracking on from the frame on screen restarts the run there when the run went further
        (a seek back): asked first."""
        drawn = self._drawn_packet()
        return not self.tracking or drawn is None or self._confirm_resume(drawn.index)

    def set_playing(self, playing: bool) -> None:
        if playing and not self.playing and not self._resume_allowed():
            self.transport.play_button.setChecked(False)
            return
        self.worker.play(playing)
        self.transport.play_button.setChecked(self.playing)  # the worker's answer sets the final state

    def toggle_play(self) -> None:
        self.set_playing(not self.playing)

    def step(self) -> None:
        if not self._resume_allowed():
            return
        self.worker.step()

    def seek(self, index: int) -> None:
        info = self._source_info()
        if info is None or info.is_live:
            return
        if self.playing and self.tracking and not self._confirm_resume(index):
            return  # the run plays on; its next frame puts the slider back
        self.worker.seek(index)

    def stop_tracking(self) -> None:
        self.worker.stop_tracking()

    def pause_for_drawing(self) -> None:
        """A box drag started on the video: hold the frame still under the mouse."""
        if self.playing:
            self.worker.play(False)

    def on_playing_changed(self, playing: bool) -> None:
        self.playing = playing
        if not playing:
            self._on_paused()
        self.transport.play_button.setChecked(playing)
        self.transport.play_button.setText("Pause" if playing else "Play")

    def on_tracking_changed(self, tracking: bool) -> None:
        self.tracking = tracking
        self.transport.stop_button.setEnabled(tracking)
