"""One tracking run, Qt-free: the loop the GUI worker, `track`, `eval` and `bench` all drive.

A `TrackingSession` holds a frame source (trackers/run/sources.py: the same sources, the same frame
order everywhere) and a tracker, and knows which frame is current. `init(box)` starts (or
restarts) the tracker on the current frame, `advance()` reads the next frame and tracks it, and
each call hands back a `Step`: the frame, its index, the result and the milliseconds the tracker
took. `seek()` moves within a file; after a seek, `resync()` restarts the tracker from the box
this run gave the frame on screen (a re-initialisation), since the tracker's state belongs to the
frame it last saw. The run's boxes are a `FrameLog`, so a re-run from an earlier frame replaces
what followed.

Failures: a source that fails raises SourceError (the state stays at the last good frame, so what
was tracked is kept); a tracker that raises on a frame raises TrackingFailed, with the frame made
current and the tracker marked as having seen it, so playing on after a fix continues from there.
Pacing, threads and drawing are the caller's business.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional

import numpy as np

from ..core.base import TrackResult, Tracker, validate_box
from .results import FrameLog
from .sources import FrameSource, open_source


@dataclasses.dataclass
class Step:
    """One frame as the session saw it. `kind`: 'frame' (read, not tracked), 'init' (the tracker
    was (re-)initialised on it with `result.box`), 'track' (tracked)."""

    index: int
    frame: np.ndarray            # BGR, as decoded
    result: Optional[TrackResult]
    kind: str = "frame"
    track_ms: float = 0.0        # wall time of tracker.track() (or init)


class SessionError(Exception):
    """Something the session cannot do now (no frame yet, no tracker, no box for this frame)."""


class TrackingFailed(Exception):
    """The tracker raised on a frame. `step` is that frame (without a result); the cause is chained."""

    def __init__(self, step: Step, cause: BaseException):
        super().__init__(f"tracking failed on frame {step.index}: {cause}")
        self.step = step
        self.cause = cause


class TrackingSession:
    def __init__(self, source: Optional[FrameSource] = None, tracker: Optional[Tracker] = None):
        self.source: Optional[FrameSource] = source
        self.tracker: Optional[Tracker] = tracker
        self.frame: Optional[np.ndarray] = None   # the current frame (the one on screen)
        self.index = -1
        self.tracking = False
        # A file can be seeked while a run is paused: the tracker's state then belongs to another
        # frame. `tracker_at` is the frame whose state the tracker holds.
        self.tracker_at = -1
        self.boxes: FrameLog = FrameLog()       # frame index -> the box this run gave it
        self.reinitialisations: FrameLog = FrameLog()   # frame index -> the box it was (re-)initialised with
        self.tracked_frames = 0                 # frames passed to track() ...
        self.tracked_seconds = 0.0              # ... and the time spent in it

    # -- source ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, spec, tracker: Optional[Tracker] = None) -> "TrackingSession":
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

    def read(self) -> Optional[tuple[np.ndarray, int]]:
        """The next frame of the source and its index, or None at the end (nothing is tracked)."""
        frame = self.source.read()
        if frame is None:
            return None
        return frame, self.source.position - 1

    def seek(self, index: int) -> Optional[Step]:
        """Make frame `index` (clamped to the file) current; None when it cannot be read. The tracker
        is not touched: `resync()` restarts it there when playing on."""
        count = self.source.frame_count
        if count:
            index = min(index, count - 1)
        self.source.seek(max(0, index))
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
    def set_tracker(self, tracker: Optional[Tracker]) -> None:
        """Use another tracker; the run so far ends (a new one starts at the next init)."""
        self.stop()
        self.tracker = tracker

    def stop(self) -> None:
        self.tracking = False
        self.tracker_at = -1
        self.boxes.clear()
        self.reinitialisations.clear()

    def init(self, box) -> Step:
        """(Re-)initialise the tracker on the current frame; BoxError for a box that does not fit it.
        The run's boxes after this frame are dropped (a re-run replaces what followed)."""
        if self.frame is None:
            raise SessionError("Open a video, folder or camera first")
        if self.tracker is None:
            raise SessionError("No tracker is loaded: pick one and its checkpoint")
        # the frame's bounds, and this tracker's own limits where it has any (CSRT's minimum size)
        box = getattr(self.tracker, "validate_box", validate_box)(box, self.frame.shape)
        t0 = time.perf_counter()
        self.tracker.init(self.frame, box)
        ms = (time.perf_counter() - t0) * 1e3
        self.tracking = True
        self.tracker_at = self.index
        self.boxes.put(self.index, box)
        self.reinitialisations.put(self.index, box)
        return Step(self.index, self.frame, TrackResult(box=box, score=1.0), "init", ms)

    def resync(self) -> Optional[Step]:
        """Before tracking the frame after the current one: if the tracker last saw another frame
        (the user seeked), restart it on the current frame from this run's box for it. Returns that
        re-initialisation, None when nothing was needed; SessionError when the run has no box here."""
        if not self.tracking or self.index == self.tracker_at or self.is_live:
            return None
        box = self.boxes.get(self.index)
        if box is None:
            raise SessionError(
                f"The tracker last saw frame {self.tracker_at}; this run has no box for frame "
                f"{self.index}. Draw a box here to restart it, or go back to frame {self.tracker_at}.")
        return self.init(box)

    # -- frames ----------------------------------------------------------------------------------
    def advance(self) -> Optional[Step]:
        """Read the next frame and track it (when tracking); None at the end of the source."""
        got = self.read()
        if got is None:
            return None
        return self.process(*got)

    def process(self, frame: np.ndarray, index: int) -> Step:
        """Make `frame` (numbered `index`) current and track it when a run is on. A live source's
        frames are numbered by the caller (dropped frames count) and its boxes are not kept for
        seeking, since a camera cannot seek."""
        if not (self.tracking and self.tracker is not None):
            self.frame, self.index = frame, index
            return Step(index, frame, None, "frame")
        t0 = time.perf_counter()
        try:
            result = self.tracker.track(frame)
        except Exception as e:  # noqa: BLE001 - e.g. a hyper-parameter the network cannot take
            self.frame, self.index = frame, index
            self.tracker_at = index    # play on from here (after a fix) with the state it has
            raise TrackingFailed(Step(index, frame, None, "frame"), e) from e
        seconds = time.perf_counter() - t0
        self.tracked_frames += 1
        self.tracked_seconds += seconds
        self.frame, self.index = frame, index
        self.tracker_at = index
        if not self.is_live:
            self.boxes.put(index, tuple(result.box))
        return Step(index, frame, result, "track", seconds * 1e3)

    @property
    def fps(self) -> float:
        """Frames tracked per second spent in track() (decoding and init excluded)."""
        return self.tracked_frames / self.tracked_seconds if self.tracked_seconds > 0 else 0.0
