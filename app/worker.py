"""The tracking worker: one QThread that owns the run (a `trackers.run.session.TrackingSession`: the
frame source, the tracker, the boxes), so the GUI runs the very loop `track`, `eval` and `bench` run.

The GUI thread never touches the session. It sends commands (app/worker_protocol.py: open,
configure, init, play, step, seek, param, stop) through a queue; the worker applies them between
frames, so a hyper-parameter edit takes effect from the next frame and nothing is mutated while
`track()` runs. Every frame the worker shows goes back as one `FramePacket` event; the GUI keeps
only the latest for drawing, so a slow redraw skips frames instead of queueing them.

Files are tracked frame by frame (nothing skipped), paced to the playback speed. A camera is read
by a separate grabber thread that keeps only the newest frame, so when the tracker is slower than
the camera the stale frames are dropped (and counted) and the latest one is tracked.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
import traceback
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal

from trackers.core.base import BoxError, Tracker
from trackers.run.annotate import encode_jpeg
from trackers.run.results import file_sha256
from trackers.run.session import SessionError, Step, TrackingFailed, TrackingSession
from trackers.run.sources import FrameSource, ReadAheadSource, SourceError, open_source

from .worker_protocol import (
    Configure,
    FramePacket,
    InitBox,
    Message,
    OpenSource,
    Play,
    PlayingChanged,
    Quit,
    Seek,
    SetChannelsVisible,
    SetCompute,
    SetParam,
    SetSpeed,
    SourceInfo,
    StepFrame,
    StopTracking,
    Sync,
    Synced,
    TrackerInfo,
    TrackerUnloaded,
    TrackingChanged,
    Unload,
)

#: how long after a wake-up the GUI thread takes the worker's events (see TrackingWorker.__init__):
#: far below a redraw's interval (30 ms and more), so nothing on screen comes later for it
DELIVERY_DELAY_MS = 10

__all__ = ["FramePacket", "SourceInfo", "TrackerInfo", "TrackingWorker", "LatestFrameGrabber", "build_tracker"]


class LatestFrameGrabber:
    """Reads a live source on its own thread and keeps only the newest frame."""

    def __init__(self, source: FrameSource):
        self.source = source
        self._lock = threading.Lock()
        self._fresh = threading.Condition(self._lock)
        self._frame: np.ndarray | None = None
        self._seq = 0  # frames read so far
        self._taken_seq = 0  # sequence number of the last frame handed out
        self.dropped = 0
        self.error: str | None = None
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
                    self.dropped += 1  # the previous frame was never tracked
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


def build_tracker(name: str, weights: str | None, device: str, engine: str = "auto") -> Tracker:
    """registry.build with the engine asked for. Threads follow the process's compute policy
    (trackers/core/compute.py), which the window applies with a core kept for the GUI thread
    (and one for the rest of the machine)."""
    from trackers.core import registry

    return registry.build(name, weights or None, device, engine=engine)


class _Outbox(QObject):
    """Events for the GUI thread. Python objects (app/worker_protocol.py) go through a thread-safe
    queue and the signal carries no arguments: queued signals with Python-object arguments have shown reference-count
    crashes in PySide6 under load, and this way one wake-up can deliver many events."""

    wake = Signal()


class TrackingWorker(QThread):
    """Commands and events are the dataclasses of app/worker_protocol.py. Events are delivered on
    the GUI thread by `deliver()` (connected to `outbox.wake`) to the handlers registered for
    their type with `on(EventType, callback)`; each callback receives the event."""

    def __init__(self, parent=None, tracker_factory=build_tracker):
        super().__init__(parent)
        self._commands: queue.Queue[object] = queue.Queue()
        self._events: queue.Queue[object] = queue.Queue()
        self._handlers: dict[type, list[Callable]] = {}
        self.outbox = _Outbox()
        # the outbox lives on the GUI thread: queued. A wake-up is handled DELIVERY_DELAY_MS later,
        # so at full speed the GUI thread takes a batch of packets per wake-up instead of waking for
        # each one: every wake-up is a turn at the GIL, and the tracker's Python waits out the turns
        # (bench --gui, NanoTrack at ~690 fps: its track() stalled ~0.3 ms a frame, half that with this)
        self._delivery = QTimer(self.outbox, singleShot=True, interval=DELIVERY_DELAY_MS)
        self._delivery.timeout.connect(self.deliver)
        self.outbox.wake.connect(self._delivery.start)
        self._tracker_factory = tracker_factory
        self._quit = False
        # the run: source, tracker, current frame, boxes (trackers/run/session.py, shared with the CLI)
        self.session = TrackingSession()
        self.source_info: SourceInfo | None = None
        self._grabber: LatestFrameGrabber | None = None
        self._tracker_config: tuple | None = None
        self._tracking = False  # what the GUI was last told
        self._playing = False
        self._speed = 1.0  # playback speed as a multiple of the source fps; 0 = as fast as possible
        self._next_due = 0.0
        self._sync_count = 0
        # set when a wake-up signal is on its way to the GUI thread and not yet handled: events
        # posted meanwhile ride on it (at speed "max" the worker posts hundreds of packets a second,
        # and each wake-up takes the GIL on the GUI thread)
        self._wake_pending = threading.Event()
        self._dispatch = {
            OpenSource: self._cmd_open,
            Configure: self._cmd_configure,
            InitBox: self._cmd_init,
            Play: self._cmd_play,
            StepFrame: self._cmd_step,
            Seek: self._cmd_seek,
            SetSpeed: self._cmd_speed,
            SetParam: self._cmd_param,
            StopTracking: self._cmd_stop,
            Sync: self._cmd_sync,
            Quit: self._cmd_quit,
            Unload: self._cmd_unload,
            SetChannelsVisible: self._cmd_channels,
            SetCompute: self._cmd_compute,
        }
        self._channels_visible = True

    @property
    def source(self) -> FrameSource | None:
        return self.session.source

    @property
    def tracker(self) -> Tracker | None:
        return self.session.tracker

    # -- the GUI side: thread-safe command queue, events ----------------------------------------
    def on(self, event_type: type, callback: Callable) -> None:
        self._handlers.setdefault(event_type, []).append(callback)

    def deliver(self) -> None:
        """Hand the waiting events to their handlers (GUI thread)."""
        self._wake_pending.clear()  # before draining: an event posted from now on wakes us again
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            for cb in self._handlers.get(type(event), []):
                cb(event)

    def _post(self, event) -> None:
        self._events.put(event)
        if not self._wake_pending.is_set():  # else the wake-up on its way delivers this one too
            self._wake_pending.set()
            self.outbox.wake.emit()

    def _message(self, level: str, text: str) -> None:
        self._post(Message(level, text))

    def send(self, command) -> None:
        self._commands.put(command)

    def open_source(self, spec) -> None:
        self.send(OpenSource(spec))

    def configure(self, name: str, weights: str | None, device: str, engine: str = "auto") -> None:
        self.send(Configure(name, weights, device, engine))

    def set_channels_visible(self, visible: bool) -> None:
        """Collect the DW-XCorr channel maps only while the GUI shows them (extra network outputs,
        copied out and packed per frame)."""
        self.send(SetChannelsVisible(bool(visible)))

    def set_compute(self, policy) -> None:
        self.send(SetCompute(policy))

    def init_box(self, box, index: int | None = None, play: bool = False) -> None:
        self.send(InitBox(tuple(box), index, play))

    def play(self, playing: bool = True) -> None:
        self.send(Play(bool(playing)))

    def step(self) -> None:
        self.send(StepFrame())

    def seek(self, index: int) -> None:
        self.send(Seek(int(index)))

    def set_speed(self, speed: float) -> None:
        self.send(SetSpeed(float(speed)))

    def set_param(self, name: str, value) -> None:
        self.send(SetParam(name, value))

    def stop_tracking(self) -> None:
        self.send(StopTracking())

    def unload(self) -> None:
        """Drop the loaded tracker (the picked one cannot be built): nothing runs a stale one."""
        self.send(Unload())

    def sync(self) -> int:
        """A barrier: the worker answers with a Synced event carrying the returned number once it
        has handled every command sent before this one (so every packet those commands produce has
        been posted ahead of the answer). The window and its tests use it to know when a pause or a
        step has really taken effect, rather than trusting a state event that may still be on its way."""
        self._sync_count += 1
        self.send(Sync(self._sync_count))
        return self._sync_count

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Ask the loop to end and wait for it; True when the thread has finished."""
        self._quit = True
        self.send(Quit())
        return self.wait(timeout_ms)

    # -- the worker thread ---------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self._quit:
                self._drain_commands(block=not self._playing, timeout=self._wait_time())
                if self._quit:
                    break
                if self._playing and time.perf_counter() >= self._next_due:
                    self._advance_safely()
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

    def _handle_safely(self, cmd) -> None:
        try:
            self._dispatch[type(cmd)](cmd)
        except Exception as e:  # noqa: BLE001 - a bad command must not end the worker
            self._set_playing(False)
            self._message("error", _describe(e))

    def _cmd_quit(self, cmd: Quit):
        self._quit = True

    def _cmd_open(self, cmd: OpenSource):
        spec = cmd.spec
        self._set_playing(False)
        self._stop_run()
        try:
            # a file is decoded ahead on its own thread (decoding overlaps tracking); a FrameSource
            # handed in is read as it is, on this thread
            source = spec if isinstance(spec, FrameSource) else open_source(spec)
            if not isinstance(spec, FrameSource) and not source.is_live:
                source = ReadAheadSource(source)
        except SourceError as e:  # its message names the file / camera already
            self._message("error", str(e))
            return
        except (OSError, ValueError) as e:
            self._message("error", f"Cannot open {spec}: {e}")
            return
        self._close_source()
        self.session = TrackingSession(source, self.session.tracker)
        if source.is_live:
            self._grabber = LatestFrameGrabber(source)
            frame, _ = self._grabber.latest(timeout=5.0)
            step = self.session.process(frame, 0) if frame is not None else None
        else:
            step = self.session.advance()
        if step is None:
            self._close_source()
            self._message("error", f"{spec} has no frames")
            return
        H, W = step.frame.shape[:2]
        self.source_info = SourceInfo(spec, source.name, source.frame_count, source.fps, source.is_live, W, H)
        self._post(self.source_info)
        self._emit(step)
        if source.is_live:
            self._set_playing(True)  # a camera shows its live picture straight away

    def _cmd_channels(self, cmd: SetChannelsVisible):
        # While the grid is shown the maps come with every frame, not only with the frames that
        # get drawn: whichever frame playback stops on must show its own maps (a pause, the end),
        # and which one that is is known only after it is tracked. They cost little: extra outputs
        # of the same network run (bag, 1 thread: nanotrack-v2 396 vs 393 fps, siamscope-default
        # 70 vs 73 with and without them); the costly display work (the RGB copy, the drawing)
        # is done only for the packets that are drawn.
        self._channels_visible = cmd.visible
        if self.session.tracker is not None:
            self.session.tracker.collect_channels = cmd.visible

    def _cmd_compute(self, cmd: SetCompute):
        from trackers.core import compute

        compute.apply(cmd.policy)
        if self._tracker_config is not None:  # rebuild: ONNX Runtime fixed its threads at creation
            name, weights, device, engine = self._tracker_config
            self._tracker_config = None
            self._cmd_configure(Configure(name, weights, device, engine))

    def _cmd_configure(self, cmd: Configure):
        name, weights, device, engine = cmd.name, cmd.weights or None, cmd.device, cmd.engine
        config = (name, weights, device, engine)
        if config == self._tracker_config and self.session.tracker is not None:
            return
        was_tracking = self._tracking
        self._set_playing(False)
        self.session.set_tracker(None)
        self._report_tracking()
        self._tracker_config = None
        from trackers.core import engines

        said = len(engines.notices())
        try:
            tracker = self._tracker_factory(name, weights, device, engine)
        except Exception as e:  # noqa: BLE001 - CheckpointError, KeyError, OSError, torch errors
            self._post(TrackerUnloaded())  # the window must not go on showing the previous tracker
            self._message("error", f"Cannot load {name}: {_describe(e)}")
            return
        tracker.collect_channels = self._channels_visible
        self.session.set_tracker(tracker)
        self._tracker_config = config
        params = dataclasses.replace(tracker.params) if dataclasses.is_dataclass(tracker.params) else None
        checkpoint = _loaded_checkpoint(name, weights)
        self._post(
            TrackerInfo(
                name,
                weights,
                device,
                params,
                _default_params(name),
                checkpoint,
                file_sha256(checkpoint),
                getattr(tracker, "engine_name", "torch"),
                engine,
            )
        )
        if was_tracking:
            self._message("info", f"{name} is ready: press Start (or draw a box) to track from this frame")
        for notice in engines.notices()[said:]:  # the ONNX cache's lines (a file moved aside...), last: not hidden
            self._message("warning", notice)

    def _cmd_init(self, cmd: InitBox):
        if self.session.frame is None:
            self._message("warning", "Open a video, folder or camera first")
            return
        if self.session.tracker is None:
            self._message("error", "No tracker is loaded: pick one and its checkpoint")
            return
        if cmd.index is not None and cmd.index != self.session.index and not self.session.is_live:
            self._seek_to(cmd.index, emit=False)
        try:
            step = self.session.init(cmd.box)
        except BoxError as e:
            self._message("error", str(e))
            return
        self._report_tracking()
        self._emit(step)
        if cmd.play:
            self._set_playing(True)

    def _cmd_play(self, cmd: Play):
        if cmd.playing and self.session.source is None:
            return
        self._set_playing(cmd.playing)

    def _cmd_step(self, cmd: StepFrame):
        self._set_playing(False)
        if self.session.source is not None:
            self._advance_safely()

    def _cmd_seek(self, cmd: Seek):
        if self.session.source is None or self.session.is_live:
            return
        self._seek_to(cmd.index, emit=True)

    def _cmd_speed(self, cmd: SetSpeed):
        self._speed = max(0.0, cmd.speed)
        self._next_due = time.perf_counter()

    def _cmd_param(self, cmd: SetParam):
        tracker = self.session.tracker
        if tracker is None or tracker.params is None:
            return
        if not hasattr(tracker.params, cmd.name):
            self._message("error", f"{type(tracker.params).__name__} has no parameter {cmd.name!r}")
            return
        setattr(tracker.params, cmd.name, cmd.value)

    def _cmd_sync(self, cmd: Sync):
        self._post(Synced(cmd.number))

    def _cmd_stop(self, cmd: StopTracking):
        self._set_playing(False)
        self._stop_run()

    def _cmd_unload(self, cmd: Unload):
        self._set_playing(False)
        had = self.session.tracker is not None
        self.session.set_tracker(None)
        self._report_tracking()
        self._tracker_config = None
        if had:
            self._post(TrackerUnloaded())

    # -- frames --------------------------------------------------------------------------------
    def _seek_to(self, index: int, emit: bool) -> None:
        step = self.session.seek(index)
        if step is None:
            self._message("warning", f"cannot seek to frame {index}")
            return
        if emit:
            self._emit(step)

    def _advance_safely(self) -> None:
        """Play one frame; a source that fails (a camera unplugged, an unreadable image in a folder,
        a broken video) pauses with a message instead of ending the worker thread. The run so far
        stays in the window, so it can still be exported."""
        try:
            self._advance()
        except Exception as e:  # noqa: BLE001 - SourceError, OSError, cv2.error
            self._set_playing(False)
            self._message("error", f"{_describe(e)} — playback paused; the results so far are kept")

    def _advance(self) -> None:
        """Read the next frame, track it when a tracker is initialised, and emit it."""
        if self.session.tracker is not None:
            try:
                restarted = self.session.resync()  # the user seeked: restart from this run's box here
            except SessionError as e:
                self._set_playing(False)
                self._message("warning", str(e))
                return
            if restarted is not None:
                self._emit(restarted)
        if self._grabber is not None:
            frame, seq = self._grabber.latest(timeout=0.2)
            if frame is None:
                return
            index = seq - 1  # frame numbers of a camera count the dropped frames too
        else:
            got = self.session.read()
            if got is None:
                self._set_playing(False)
                short = self.session.source.shortfall()
                if short:
                    self._message("warning", f"End of the video: {short}")
                else:
                    self._message("info", "End of the video")
                return
            frame, index = got
        self._schedule_next()
        try:
            step = self.session.process(frame, index)
        except TrackingFailed as e:
            self._set_playing(False)
            self._emit(e.step)
            self._message("error", f"Tracking failed on frame {e.step.index}: {_describe(e.cause)}")
            return
        self._emit(step)

    def _schedule_next(self) -> None:
        now = time.perf_counter()
        if self._grabber is not None or self._speed <= 0 or self.session.source is None:
            self._next_due = now
            return
        period = 1.0 / (max(self.session.source.fps, 1.0) * self._speed)
        # keep a steady cadence, but never try to catch up on time already lost
        self._next_due = max(self._next_due + period, now) if self._next_due > now - period else now + period

    def _emit(self, step: Step) -> None:
        frame = step.frame
        # an init of one of several targets (trackers/run/track_set.py): every target's box of this
        # frame rides along, so the run's store keeps them all there (the export draws every track)
        with_tracks = getattr(self.session.tracker, "init_result", None) if step.kind == "init" else None
        if with_tracks is not None and step.result is not None:
            step = dataclasses.replace(step, result=with_tracks(step.result))
        dropped = self._grabber.dropped if self._grabber is not None else 0
        # a camera frame cannot be read again: keep it (compressed) for exporting the run
        jpeg = encode_jpeg(frame) if self._grabber is not None and step.result is not None else None
        self._post(FramePacket.of(step, dropped, jpeg))

    def _set_playing(self, playing: bool) -> None:
        if playing != self._playing:
            self._playing = playing
            self._next_due = time.perf_counter()
            self._post(PlayingChanged(playing))

    def _stop_run(self) -> None:
        self.session.stop()
        self._report_tracking()

    def _report_tracking(self) -> None:
        if self.session.tracking != self._tracking:
            self._tracking = self.session.tracking
            self._post(TrackingChanged(self._tracking))

    def _close_source(self) -> None:
        if self._grabber is not None:
            self._grabber.stop()
            self._grabber = None
        try:
            self.session.close()
        except Exception:  # noqa: BLE001
            pass
        self.session = TrackingSession(None, self.session.tracker)


def _loaded_checkpoint(name: str, weights: str | None) -> str | None:
    from trackers.core import registry

    try:
        return registry.loaded_checkpoint(registry.get(name), weights)
    except KeyError:  # a tracker built by a test's factory under a name the registry lacks
        return weights


def _default_params(name: str):
    """The registry's default parameters for tracker `name` (None for a tracker it does not know)."""
    from trackers.core import registry

    try:
        return registry.get(name).make_params()
    except KeyError:
        return None


def _describe(e: BaseException) -> str:
    """One readable message for an exception: its own text, or its type and the failing line."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if not text:
        tb = traceback.extract_tb(e.__traceback__)
        where = f" ({tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
        text = type(e).__name__ + where
    return text
