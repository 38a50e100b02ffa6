"""The tracking worker: one QThread that owns the frame source and the tracker.

The GUI thread never touches either. It sends commands (open, configure, init, play, step, seek,
param, stop) through a queue; the worker applies them between frames, so a hyper-parameter edit
takes effect from the next frame and nothing is mutated while `track()` runs. Every frame the
worker shows goes back as one `FramePacket` on the `frameReady` signal; the GUI keeps only the
latest for drawing, so a slow redraw skips frames instead of queueing them.

Files are tracked frame by frame (nothing skipped), paced to the playback speed. A camera is read
by a separate grabber thread that keeps only the newest frame, so when the tracker is slower than
the camera the stale frames are dropped (and counted) and the latest one is tracked.
"""
from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
import traceback
from typing import Optional

import cv2
import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from trackers.base import BoxError, TrackResult, Tracker
from trackers.sources import FrameSource, SourceError, open_source


@dataclasses.dataclass
class SourceInfo:
    spec: object                 # what open_source() was given (path or camera index)
    name: str
    frame_count: Optional[int]
    fps: float
    is_live: bool
    width: int
    height: int


@dataclasses.dataclass
class TrackerInfo:
    name: str
    weights: Optional[str]
    device: str
    params: object               # a copy of tracker.params, for building the panel


@dataclasses.dataclass
class FramePacket:
    """One frame as the worker saw it. `kind`: 'frame' (shown, not tracked), 'init' (the tracker
    was (re-)initialised on it with `result.box`), 'track' (tracked)."""

    index: int
    frame: np.ndarray            # BGR, as decoded
    rgb: np.ndarray              # RGB copy for display, made here so the GUI thread does not
    result: Optional[TrackResult]
    kind: str = "frame"
    track_ms: float = 0.0        # wall time of tracker.track() (or init)
    dropped: int = 0             # camera frames dropped so far because the tracker was slower
    jpeg: Optional[bytes] = None  # a live frame that was tracked, encoded here for a later video export


class LatestFrameGrabber:
    """Reads a live source on its own thread and keeps only the newest frame."""

    def __init__(self, source: FrameSource):
        self.source = source
        self._lock = threading.Lock()
        self._fresh = threading.Condition(self._lock)
        self._frame: Optional[np.ndarray] = None
        self._seq = 0            # frames read so far
        self._taken_seq = 0      # sequence number of the last frame handed out
        self.dropped = 0
        self.error: Optional[str] = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="camera-grabber", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                frame = self.source.read()
            except Exception as e:  # noqa: BLE001 - reported to the GUI by the worker
                with self._lock:
                    self.error = str(e)
                    self._fresh.notify_all()
                return
            if frame is None:
                time.sleep(0.005)
                continue
            with self._lock:
                if self._frame is not None and self._seq > self._taken_seq:
                    self.dropped += 1    # the previous frame was never tracked
                self._frame = frame
                self._seq += 1
                self._fresh.notify_all()

    def latest(self, timeout: float = 0.5):
        """The newest frame not handed out yet, waiting up to `timeout`; (None, seq) if none came."""
        with self._lock:
            if self._seq == self._taken_seq and self.error is None:
                self._fresh.wait(timeout)
            if self.error is not None:
                raise SourceError(self.error)
            if self._seq == self._taken_seq:
                return None, self._seq
            self._taken_seq = self._seq
            return self._frame, self._seq

    def stop(self):
        self._stop = True
        self._thread.join(timeout=2.0)


def compute_threads() -> int:
    """Threads for the network: all cores but one, which stays free for the GUI thread (on a
    2-core machine a network that spins both cores starves the event loop)."""
    return max(1, (os.cpu_count() or 2) - 1)


def build_tracker(name: str, weights: Optional[str], device: str) -> Tracker:
    """registry.build, with the thread count the tracker's engines pick up while being built
    (e.g. NanoTrack's ONNX Runtime session) set to compute_threads(); torch's own setting is put
    back afterwards."""
    import torch

    from trackers import registry
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, compute_threads()))
    try:
        return registry.build(name, weights or None, device)
    finally:
        torch.set_num_threads(before)


class _Outbox(QObject):
    """Events for the GUI thread. Python objects go through a thread-safe queue and the signal
    carries no arguments: queued signals with Python-object arguments have shown reference-count
    crashes in PySide6 under load, and this way one wake-up can deliver many events."""

    wake = Signal()


class TrackingWorker(QThread):
    """Events (delivered on the GUI thread by `deliver()`, connected to `outbox.wake`):
    ('source', SourceInfo), ('tracker', TrackerInfo), ('frame', FramePacket), ('playing', bool),
    ('tracking', bool), ('message', level, text). Register handlers with `on(kind, callback)`."""

    def __init__(self, parent=None, tracker_factory=build_tracker):
        super().__init__(parent)
        self._commands: "queue.Queue[tuple]" = queue.Queue()
        self._events: "queue.Queue[tuple]" = queue.Queue()
        self._handlers: dict[str, list] = {}
        self.outbox = _Outbox()
        self.outbox.wake.connect(self.deliver)   # the outbox lives on the GUI thread: queued
        self._tracker_factory = tracker_factory
        self._quit = False
        self.source: Optional[FrameSource] = None
        self.source_info: Optional[SourceInfo] = None
        self._grabber: Optional[LatestFrameGrabber] = None
        self.tracker: Optional[Tracker] = None
        self._tracker_config: Optional[tuple] = None
        self._tracking = False
        self._playing = False
        self._speed = 1.0             # playback speed as a multiple of the source fps; 0 = as fast as possible
        self._frame: Optional[np.ndarray] = None
        self._index = -1
        # A file can be seeked while a run is paused: the tracker's state then belongs to another
        # frame. `_tracker_at` is the frame whose state the tracker holds; `_run_boxes` the boxes
        # this run gave each frame, so playing on from a frame it has seen restarts the tracker there.
        self._tracker_at = -1
        self._run_boxes: dict[int, tuple] = {}
        self._next_due = 0.0
        self._sync_count = 0
        # Cleared by the GUI thread while it draws a frame (and repaints): the worker then waits
        # before its next frame instead of fighting the GUI thread for the GIL, so a redraw takes
        # milliseconds rather than being stretched many times over (see MainWindow._draw_cycle).
        self.gui_idle = threading.Event()
        self.gui_idle.set()

    # -- the GUI side: thread-safe command queue, events ----------------------------------------
    def on(self, kind: str, callback) -> None:
        self._handlers.setdefault(kind, []).append(callback)

    def deliver(self) -> None:
        """Hand the waiting events to their handlers (GUI thread)."""
        while True:
            try:
                kind, *args = self._events.get_nowait()
            except queue.Empty:
                return
            for cb in self._handlers.get(kind, []):
                cb(*args)

    def _post(self, kind: str, *args) -> None:
        self._events.put((kind, *args))
        self.outbox.wake.emit()   # a wake-up that finds the queue drained costs nothing

    def send(self, *command) -> None:
        self._commands.put(command)

    def open_source(self, spec) -> None:
        self.send("open", spec)

    def configure(self, name: str, weights: Optional[str], device: str) -> None:
        self.send("configure", name, weights, device)

    def init_box(self, box, index: Optional[int] = None, play: bool = False) -> None:
        self.send("init", tuple(box), index, play)

    def play(self, playing: bool = True) -> None:
        self.send("play", bool(playing))

    def step(self) -> None:
        self.send("step")

    def seek(self, index: int) -> None:
        self.send("seek", int(index))

    def set_speed(self, speed: float) -> None:
        self.send("speed", float(speed))

    def set_param(self, name: str, value) -> None:
        self.send("param", name, value)

    def stop_tracking(self) -> None:
        self.send("stop")

    def sync(self) -> int:
        """A barrier: the worker answers with a "synced" event carrying the returned number once it
        has handled every command sent before this one (so every packet those commands produce has
        been posted ahead of the answer). The window and its tests use it to know when a pause or a
        step has really taken effect, rather than trusting a state event that may still be on its way."""
        self._sync_count += 1
        self.send("sync", self._sync_count)
        return self._sync_count

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Ask the loop to end and wait for it; True when the thread has finished."""
        self._quit = True
        self.send("quit")
        return self.wait(timeout_ms)

    # -- the worker thread ---------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self._quit:
                self._drain_commands(block=not self._playing, timeout=self._wait_time())
                if self._quit:
                    break
                if self._playing and time.perf_counter() >= self._next_due:
                    self.gui_idle.wait(0.25)
                    self._advance_safely()
                    # let the GUI thread take the GIL between frames even at full speed
                    time.sleep(0.0005)
        finally:
            self._close_source()

    def _wait_time(self) -> float:
        if not self._playing:
            return 0.1
        return max(0.0, min(0.1, self._next_due - time.perf_counter()))

    def _drain_commands(self, block: bool, timeout: float) -> None:
        try:
            cmd = self._commands.get(timeout=timeout) if (block or timeout > 0) else self._commands.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle_safely(cmd)
            if self._quit:
                return
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return

    def _handle_safely(self, cmd: tuple) -> None:
        try:
            getattr(self, "_cmd_" + cmd[0])(*cmd[1:])
        except Exception as e:  # noqa: BLE001 - a bad command must not end the worker
            self._set_playing(False)
            self._post("message", "error", _describe(e))

    def _cmd_quit(self):
        self._quit = True

    def _cmd_open(self, spec):
        self._set_playing(False)
        self._set_tracking(False)
        try:
            source = spec if isinstance(spec, FrameSource) else open_source(spec)
        except SourceError as e:     # its message names the file / camera already
            self._post("message", "error", str(e))
            return
        except (OSError, ValueError) as e:
            self._post("message", "error", f"Cannot open {spec}: {e}")
            return
        self._close_source()
        self.source = source
        if source.is_live:
            self._grabber = LatestFrameGrabber(source)
            frame, _ = self._grabber.latest(timeout=5.0)
        else:
            frame = source.read()
        if frame is None:
            self._close_source()
            self._post("message", "error", f"{spec} has no frames")
            return
        self._frame, self._index = frame, (self.source.position - 1 if not source.is_live else 0)
        H, W = frame.shape[:2]
        self.source_info = SourceInfo(spec, source.name, source.frame_count, source.fps, source.is_live, W, H)
        self._post("source", self.source_info)
        self._emit_packet(self._frame, None, "frame")
        if source.is_live:
            self._set_playing(True)      # a camera shows its live picture straight away

    def _cmd_configure(self, name, weights, device):
        config = (name, weights or None, device)
        if config == self._tracker_config and self.tracker is not None:
            return
        was_tracking = self._tracking
        self._set_playing(False)
        self._set_tracking(False)
        self.tracker = None
        self._tracker_config = None
        try:
            tracker = self._tracker_factory(name, weights or None, device)
        except Exception as e:  # noqa: BLE001 - CheckpointError, KeyError, OSError, torch errors
            self._post("message", "error", f"Cannot load {name}: {_describe(e)}")
            return
        self.tracker = tracker
        self._tracker_config = config
        params = dataclasses.replace(tracker.params) if dataclasses.is_dataclass(tracker.params) else None
        self._post("tracker", TrackerInfo(name, weights or None, device, params))
        if was_tracking:
            self._post("message", "info", f"{name} is ready: press Start (or draw a box) to track from this frame")

    def _cmd_init(self, box, index, play):
        if self._frame is None:
            self._post("message", "warning", "Open a video, folder or camera first")
            return
        if self.tracker is None:
            self._post("message", "error", "No tracker is loaded: pick one and its checkpoint")
            return
        if index is not None and index != self._index and self.source is not None and not self.source.is_live:
            self._seek_to(index, emit=False)
        try:
            box = self.tracker.validate_box(box, self._frame.shape)
        except BoxError as e:
            self._post("message", "error", str(e))
            return
        self._init_tracker(box)
        if play:
            self._set_playing(True)

    def _init_tracker(self, box) -> None:
        t0 = time.perf_counter()
        self.tracker.init(self._frame, box)
        ms = (time.perf_counter() - t0) * 1e3
        self._set_tracking(True)
        self._tracker_at = self._index
        for later in [k for k in self._run_boxes if k > self._index]:   # a re-run replaces what followed
            del self._run_boxes[later]
        self._run_boxes[self._index] = tuple(box)
        self._emit_packet(self._frame, TrackResult(box=box, score=1.0), "init", ms)

    def _resync_tracker(self) -> bool:
        """Before tracking the frame after the one on screen: if the user seeked away from the frame
        the tracker last saw, restart it on the frame on screen from this run's box for it (recorded
        as a re-initialisation). False (and paused, with a message) when this run never reached it."""
        if self._index == self._tracker_at or self._grabber is not None:
            return True
        box = self._run_boxes.get(self._index)
        if box is None:
            self._set_playing(False)
            self._post("message", "warning",
                       f"The tracker last saw frame {self._tracker_at}; this run has no box for frame "
                       f"{self._index}. Draw a box here to restart it, or go back to frame {self._tracker_at}.")
            return False
        self._init_tracker(box)
        return True

    def _cmd_play(self, playing):
        if playing and self.source is None:
            return
        self._set_playing(playing)

    def _cmd_step(self):
        self._set_playing(False)
        if self.source is not None:
            self._advance_safely()

    def _cmd_seek(self, index):
        if self.source is None or self.source.is_live:
            return
        self._seek_to(index, emit=True)

    def _cmd_speed(self, speed):
        self._speed = max(0.0, speed)
        self._next_due = time.perf_counter()

    def _cmd_param(self, name, value):
        if self.tracker is None or self.tracker.params is None:
            return
        if not hasattr(self.tracker.params, name):
            self._post("message", "error", f"{type(self.tracker.params).__name__} has no parameter {name!r}")
            return
        setattr(self.tracker.params, name, value)

    def _cmd_sync(self, number):
        self._post("synced", number)

    def _cmd_stop(self):
        self._set_playing(False)
        self._set_tracking(False)

    # -- frames --------------------------------------------------------------------------------
    def _seek_to(self, index: int, emit: bool) -> None:
        count = self.source.frame_count
        if count:
            index = min(index, count - 1)
        self.source.seek(max(0, index))
        frame = self.source.read()
        if frame is None:
            self._post("message", "warning", f"cannot seek to frame {index}")
            return
        self._frame, self._index = frame, self.source.position - 1
        if emit:
            self._emit_packet(frame, None, "frame")

    def _advance_safely(self) -> None:
        """Play one frame; a source that fails (a camera unplugged, an unreadable image in a folder,
        a broken video) pauses with a message instead of ending the worker thread. The run so far
        stays in the window, so it can still be exported."""
        try:
            self._advance()
        except Exception as e:  # noqa: BLE001 - SourceError, OSError, cv2.error
            self._set_playing(False)
            self._post("message", "error", f"{_describe(e)} — playback paused; the results so far are kept")

    def _advance(self) -> None:
        """Read the next frame, track it when a tracker is initialised, and emit it."""
        if self._tracking and self.tracker is not None and not self._resync_tracker():
            return
        if self._grabber is not None:
            frame, seq = self._grabber.latest(timeout=0.2)
            if frame is None:
                return
            index = seq - 1      # frame numbers of a camera count the dropped frames too
        else:
            frame = self.source.read()
            if frame is None:
                self._set_playing(False)
                short = self.source.shortfall()
                if short:
                    self._post("message", "warning", f"End of the video: {short}")
                else:
                    self._post("message", "info", "End of the video")
                return
            index = self.source.position - 1
        self._schedule_next()
        result, kind, ms = None, "frame", 0.0
        if self._tracking and self.tracker is not None:
            t0 = time.perf_counter()
            try:
                result = self.tracker.track(frame)
            except Exception as e:  # noqa: BLE001 - e.g. a hyper-parameter the network cannot take
                self._set_playing(False)
                self._frame, self._index = frame, index
                self._tracker_at = index    # play on from here (after a fix) with the state it has
                self._emit_packet(frame, None, "frame")
                self._post("message", "error", f"Tracking failed on frame {self._index}: {_describe(e)}")
                return
            ms = (time.perf_counter() - t0) * 1e3
            kind = "track"
            self._tracker_at = index
            if self._grabber is None:
                self._run_boxes[index] = tuple(result.box)
        self._frame, self._index = frame, index
        self._emit_packet(frame, result, kind, ms)

    def _schedule_next(self) -> None:
        now = time.perf_counter()
        if self._grabber is not None or self._speed <= 0 or self.source is None:
            self._next_due = now
            return
        period = 1.0 / (max(self.source.fps, 1.0) * self._speed)
        # keep a steady cadence, but never try to catch up on time already lost
        self._next_due = max(self._next_due + period, now) if self._next_due > now - period else now + period

    def _emit_packet(self, frame, result, kind, ms: float = 0.0) -> None:
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame
        dropped = self._grabber.dropped if self._grabber is not None else 0
        jpeg = None
        if self._grabber is not None and result is not None:
            # a camera frame cannot be read again: keep it (compressed) for exporting the run
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
            jpeg = buf.tobytes() if ok else None
        self._post("frame", FramePacket(self._index, frame, rgb, result, kind, ms, dropped, jpeg))

    def _set_playing(self, playing: bool) -> None:
        if playing != self._playing:
            self._playing = playing
            self._next_due = time.perf_counter()
            self._post("playing", playing)

    def _set_tracking(self, tracking: bool) -> None:
        if not tracking:
            self._run_boxes.clear()
            self._tracker_at = -1
        if tracking != self._tracking:
            self._tracking = tracking
            self._post("tracking", tracking)

    def _close_source(self) -> None:
        if self._grabber is not None:
            self._grabber.stop()
            self._grabber = None
        if self.source is not None:
            try:
                self.source.close()
            except Exception:  # noqa: BLE001
                pass
            self.source = None


def _describe(e: BaseException) -> str:
    """One readable message for an exception: its own text, or its type and the failing line."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if not text:
        tb = traceback.extract_tb(e.__traceback__)
        where = f" ({tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
        text = type(e).__name__ + where
    return text
