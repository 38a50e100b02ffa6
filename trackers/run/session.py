"""One tracking run, Qt-free: the loop every run drives (the GUI worker, `track`, `eval`, `bench`,
the GPU bench, calibration, the LOVO labels and table, the channel ranking, the TraX server).

Three pieces (docs/architecture-loop.md draws them):

- `Step`: one frame as the run saw it, with everything a caller keeps: the frame index, the box,
  the score, the state (tracking / LOST), the wall time, the tracker's per-stage times and, when
  asked for, the maps (score map, per-channel responses). The app's `FramePacket` is a `Step` with
  the worker's additions (app/worker_protocol.py).
- `Track`: one target and the tracker that follows it, with all of that tracker's run state (which
  frame its state belongs to, the boxes it gave, its re-initialisations, its time). `Track.step(frame,
  index)` is THE per-frame step: the one place in the project that calls `tracker.track()`
  (tests/test_architecture.py keeps it so). It does not read frames, so a caller can drive several
  tracks on one frame read once.
- `TrackingSession`: a frame source (trackers/run/sources.py: the same sources, the same frame order
  everywhere) and its track, with the frame that is current. `run(box, start, stop)` is the
  iterator for "run this source from this box": it yields the init step, then one step per frame.
  The app drives the same session a command at a time: `init(box)` starts (or restarts) the
  tracker on the current frame, `advance()` reads the next frame and tracks it, `seek()` moves
  within a file and `resync()` then restarts the tracker from the box this run gave the frame on
  screen (the tracker's state belongs to the frame it last saw). The run's boxes are a `FrameLog`,
  so a re-run from an earlier frame replaces what followed.

Several targets, or two trackers on the same frames: build one `Track` per target (each with its
own tracker), read each frame once and hand it to every track::

    session = TrackingSession.open(source, tracker_a)        # session.track is the first track
    other = Track(tracker_b, target_id=1)
    session.init(box)
    other.init(session.frame, session.index, box)
    while (got := session.read()) is not None:
        frame, index = got
        steps = [session.process(frame, index), other.step(frame, index)]

Failures: a source that fails raises SourceError (the state stays at the last good frame, so what
was tracked is kept); a tracker that raises on a frame raises TrackingFailed, with the frame made
current and the tracker marked as having seen it, so playing on after a fix continues from there.
Pacing, threads and drawing are the caller's business.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import numpy as np

from ..core.base import ChannelMaps, Tracker, TrackingState, TrackResult, validate_box
from .results import FrameLog
from .sources import FrameSource, open_source


@dataclasses.dataclass
class Step:
    """One frame as the run saw it. `kind`: 'frame' (read, not tracked), 'init' (the tracker was
    (re-)initialised on it with `result.box`, score 1), 'track' (tracked). The properties read the
    result; they are None on a 'frame' step."""

    index: int
    frame: np.ndarray  # BGR, as decoded
    result: TrackResult | None
    kind: str = "frame"
    track_ms: float = 0.0  # wall time of tracker.track() (or init)
    target_id: int = 0  # the track that made it (Track.target_id)

    @property
    def box(self) -> tuple | None:
        return None if self.result is None else tuple(self.result.box)

    @property
    def score(self) -> float | None:
        return None if self.result is None else float(self.result.score)

    @property
    def state(self) -> TrackingState | None:
        return None if self.result is None else self.result.state

    @property
    def seconds(self) -> float:
        return self.track_ms / 1e3

    @property
    def timings(self) -> dict:
        """Milliseconds per stage (crop, network, decode...) where the tracker measures them."""
        return {} if self.result is None else self.result.timings

    @property
    def score_map(self) -> np.ndarray | None:
        return None if self.result is None else self.result.score_map

    @property
    def channels(self) -> list[ChannelMaps]:
        """Per-channel responses: filled only while the track's `maps` are on."""
        return [] if self.result is None else self.result.channels


class SessionError(Exception):
    """Something the session cannot do now (no frame yet, no tracker, no box for this frame)."""


class TrackingFailed(Exception):
    """The tracker raised on a frame. `step` is that frame (without a result); the cause is chained."""

    def __init__(self, step: Step, cause: BaseException):
        super().__init__(f"tracking failed on frame {step.index}: {cause}")
        self.step = step
        self.cause = cause


class Track:
    """A target and the tracker that follows it: every piece of per-tracker run state lives here,
    so a session (or a caller with several targets) holds one of these per target."""

    def __init__(self, tracker: Tracker | None = None, target_id: int = 0):
        self.tracker: Tracker | None = tracker
        self.target_id = target_id
        self.tracking = False
        # A file can be seeked while a run is paused: the tracker's state then belongs to another
        # frame. `tracker_at` is the frame whose state the tracker holds.
        self.tracker_at = -1
        self.boxes: FrameLog = FrameLog()  # frame index -> the box this run gave it
        self.reinitialisations: FrameLog = FrameLog()  # frame index -> the box it was (re-)initialised with
        self.tracked_frames = 0  # frames passed to track() ...
        self.tracked_seconds = 0.0  # ... and the time spent in it

    @property
    def maps(self) -> bool:
        """Whether each step carries the per-channel responses (the GUI's channel grid); the score
        map comes with every step of a tracker that makes one. Off for speed figures."""
        return bool(getattr(self.tracker, "collect_channels", False))

    @maps.setter
    def maps(self, on: bool) -> None:
        if self.tracker is not None and hasattr(self.tracker, "collect_channels"):
            self.tracker.collect_channels = bool(on)

    def stop(self) -> None:
        self.tracking = False
        self.tracker_at = -1
        self.boxes.clear()
        self.reinitialisations.clear()

    def init(self, frame: np.ndarray, index: int, box) -> Step:
        """(Re-)initialise the tracker on `frame` (numbered `index`); BoxError for a box that does
        not fit it. The boxes after this frame are dropped (a re-run replaces what followed)."""
        if self.tracker is None:
            raise SessionError("No tracker is loaded: pick one and its checkpoint")
        # the frame's bounds, and this tracker's own limits where it has any (CSRT's minimum size)
        box = getattr(self.tracker, "validate_box", validate_box)(box, frame.shape)
        t0 = time.perf_counter()
        self.tracker.init(frame, box)
        ms = (time.perf_counter() - t0) * 1e3
        self.tracking = True
        self.tracker_at = index
        self.boxes.put(index, box)
        self.reinitialisations.put(index, box)
        return Step(index, frame, TrackResult(box=box, score=1.0), "init", ms, self.target_id)

    def step(self, frame: np.ndarray, index: int, keep_box: bool = True) -> Step:
        """THE per-frame step: track `frame` (numbered `index`, the frame after the one the tracker
        last saw). `keep_box=False` for a live source, whose boxes are not kept for seeking.
        TrackingFailed when the tracker raises (its state then belongs to this frame)."""
        t0 = time.perf_counter()
        try:
            result = self.tracker.track(frame)
        except Exception as e:  # noqa: BLE001 - e.g. a hyper-parameter the network cannot take
            self.tracker_at = index  # play on from here (after a fix) with the state it has
            raise TrackingFailed(Step(index, frame, None, "frame", 0.0, self.target_id), e) from e
        return self.took(frame, index, result, time.perf_counter() - t0, keep_box)

    def took(self, frame: np.ndarray, index: int, result: TrackResult, seconds: float, keep_box: bool = True) -> Step:
        """Record a frame this track's tracker was stepped on: by step(), or by the batched step
        (trackers/core/batching.py: its share of one network call for several targets)."""
        self.tracked_frames += 1
        self.tracked_seconds += seconds
        self.tracker_at = index
        if keep_box:
            self.boxes.put(index, tuple(result.box))
        return Step(index, frame, result, "track", seconds * 1e3, self.target_id)

    @property
    def fps(self) -> float:
        """Frames tracked per second spent in track() (decoding and init excluded)."""
        return self.tracked_frames / self.tracked_seconds if self.tracked_seconds > 0 else 0.0


def _of_track(name: str, doc: str) -> property:
    """A session attribute that is its track's (the session's run state is the track's)."""

    def get(self):
        return getattr(self.track, name)

    def put(self, value):
        setattr(self.track, name, value)

    return property(get, put, doc=doc)


class TrackingSession:
    tracker = _of_track("tracker", "The tracker of the session's track.")
    tracking = _of_track("tracking", "Whether a run is on (the track was initialised).")
    tracker_at = _of_track("tracker_at", "The frame whose state the tracker holds.")
    boxes = _of_track("boxes", "Frame index -> the box this run gave it.")
    reinitialisations = _of_track("reinitialisations", "Frame index -> the box it was (re-)initialised with.")
    tracked_frames = _of_track("tracked_frames", "Frames passed to track().")
    tracked_seconds = _of_track("tracked_seconds", "Seconds spent in track().")

    def __init__(self, source: FrameSource | None = None, tracker: Tracker | None = None):
        self.source: FrameSource | None = source
        self.track = Track(tracker)
        self.frame: np.ndarray | None = None  # the current frame (the one on screen)
        self.index = -1
        self.source_ended = False  # advance() found the end of the source

    # -- source ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, spec, tracker: Tracker | None = None) -> TrackingSession:
        """A session on `spec` (a path, a camera, or a FrameSource) with its first frame current."""
        source = spec if isinstance(spec, FrameSource) else open_source(spec)
        session = cls(source, tracker)
        try:
            if session.advance() is None:
                raise SessionError(f"{source.name} has no frames")
        except BaseException:
            source.close()
            raise
        return session

    @property
    def is_live(self) -> bool:
        return self.source is not None and self.source.is_live

    def read(self) -> tuple[np.ndarray, int] | None:
        """The next frame of the source and its index, or None at the end (nothing is tracked)."""
        frame = self.source.read()
        if frame is None:
            return None
        return frame, self.source.position - 1

    def seek(self, index: int) -> Step | None:
        """Make frame `index` (clamped to the file) current; None when it cannot be read. The tracker
        is not touched: `resync()` restarts it there when playing on."""
        count = self.source.frame_count
        if count:
            index = min(index, count - 1)
        self.source.seek(max(0, index))
        self.source_ended = False
        got = self.read()
        if got is None:
            return None
        self.frame, self.index = got
        return Step(self.index, self.frame, None, "frame")

    def close(self) -> None:
        if self.source is not None:
            self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- tracker ---------------------------------------------------------------------------------
    def set_tracker(self, tracker: Tracker | None) -> None:
        """Use another tracker; the run so far ends (a new one starts at the next init)."""
        self.stop()
        self.track.tracker = tracker

    def stop(self) -> None:
        self.track.stop()

    def init(self, box) -> Step:
        """(Re-)initialise the tracker on the current frame; BoxError for a box that does not fit it.
        The run's boxes after this frame are dropped (a re-run replaces what followed)."""
        if self.frame is None:
            raise SessionError("Open a video, folder or camera first")
        return self.track.init(self.frame, self.index, box)

    def resync(self) -> Step | None:
        """Before tracking the frame after the current one: if the tracker last saw another frame
        (the user seeked), restart it on the current frame from this run's box for it. Returns that
        re-initialisation, None when nothing was needed; SessionError when the run has no box here."""
        if not self.tracking or self.index == self.tracker_at or self.is_live:
            return None
        box = self.boxes.get(self.index)
        if box is None:
            raise SessionError(
                f"The tracker last saw frame {self.tracker_at}; this run has no box for frame "
                f"{self.index}. Draw a box here to restart it, or go back to frame {self.tracker_at}."
            )
        return self.init(box)

    # -- frames ----------------------------------------------------------------------------------
    def run(self, box, start: int | None = None, stop: int | None = None, maps: bool | None = None) -> Iterator[Step]:
        """Run this source from this box: initialise on frame `start` (default: the current one),
        yield that init step, then track each following frame and yield its step, up to (not
        including) frame `stop` or the end of the source (then `source_ended` is set). `maps`
        switches the per-channel responses on or off for the run (None: as the tracker has them).
        SessionError when `start` cannot be read; BoxError when the box does not fit."""
        if maps is not None:
            self.track.maps = maps
        if start is not None and start != self.index:
            if self.is_live:
                raise SessionError("a camera cannot start at a later frame")
            if self.seek(start) is None or self.index != start:
                raise SessionError(f"frame {start} is past the end of {self.source.name}")
        yield self.init(box)
        while stop is None or self.index + 1 < stop:
            step = self.advance()
            if step is None:
                return
            yield step

    def advance(self) -> Step | None:
        """Read the next frame and track it (when tracking); None at the end of the source."""
        got = self.read()
        if got is None:
            self.source_ended = True
            return None
        return self.process(*got)

    def process(self, frame: np.ndarray, index: int) -> Step:
        """Make `frame` (numbered `index`) current and track it when a run is on. A live source's
        frames are numbered by the caller (dropped frames count) and its boxes are not kept for
        seeking, since a camera cannot seek."""
        if not (self.tracking and self.tracker is not None):
            self.frame, self.index = frame, index
            return Step(index, frame, None, "frame")
        try:
            return self.track.step(frame, index, keep_box=not self.is_live)
        finally:  # tracked or failed, this frame is now the current one
            self.frame, self.index = frame, index

    @property
    def fps(self) -> float:
        """Frames tracked per second spent in track() (decoding and init excluded)."""
        return self.track.fps
