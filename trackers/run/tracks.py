"""Several tracks in one run: a track is a target with the tracker that follows it.

A `MultiTrackSession` reads one source (through a `TrackingSession` without a tracker of its own:
the same sources, the same frame order and seeking as every other run), reads each frame once and
steps every track that has started: each target's run state is the session's `Track`
(trackers/run/session.py) and each goes through its per-frame step, except that targets of the same
tracker and weights go through their network as one batch (trackers/core/batching.py), recorded
by `Track.took` as `Track.step` records its own. A track may start at a later frame
(its box is for that frame), be re-initialised on the current frame (only that track restarts),
or be removed; the others never notice.

Two trackers compared on the same frames (A/B) are two tracks from the same box: both see exactly
the frames the session reads, in one loop.

Each track keeps its rows in a `RunRecord` (trackers/run/results.py): a re-run from an earlier
frame replaces what followed, as in a single-target run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

import numpy as np

from ..core.base import Box, Tracker, TrackingState, TrackResult, validate_box
from ..core.batching import BatchRunner, track_batched
from .results import RunRecord
from .session import SessionError, TrackingSession
from .session import Track as RunTrack

#: the most tracks the window shows at once (see TrackLimitError)
MAX_TRACKS = 16

#: BGR colours of tracks 1, 2, ... (distinct on video and on a white list; repeats after 16)
PALETTE = [
    (60, 200, 60),
    (50, 120, 255),
    (255, 140, 40),
    (200, 60, 220),
    (40, 220, 240),
    (240, 200, 60),
    (120, 60, 255),
    (160, 255, 120),
    (90, 90, 220),
    (255, 90, 150),
    (30, 160, 160),
    (200, 200, 200),
    (140, 40, 140),
    (0, 110, 255),
    (200, 120, 0),
    (80, 180, 255),
]


class TrackLimitError(SessionError):
    """More tracks than the session takes (the message says why there is a limit)."""


def colour_of(track_id: int) -> tuple[int, int, int]:
    return PALETTE[(track_id - 1) % len(PALETTE)]


@dataclasses.dataclass
class Track:
    """One target and its tracker. `start`: the frame its box is for; `record`: what it gave each frame."""

    id: int
    name: str
    tracker: Tracker
    box: Box
    start: int
    colour: tuple[int, int, int]
    record: RunRecord
    started: bool = False
    at: int = -1  # the frame whose state the tracker holds
    result: TrackResult | None = None  # its result on the current frame (None before its start)
    style: str = "solid"  # how the box is drawn: "solid", or "dashed" (B of an A/B pair)
    run: RunTrack | None = None  # the session's per-target run state and per-frame step

    def __post_init__(self):
        if self.run is None and self.tracker is not None:
            self.run = RunTrack(self.tracker, self.id)

    @property
    def tracker_name(self) -> str:
        return self.record.tracker

    @property
    def state(self) -> str:
        if not self.started:
            return "waiting"
        row = self.record.rows.get(self.at)
        if self.result is None or (row is not None and row.init):
            return "init"
        return self.result.state.value

    @property
    def boxes(self) -> dict[int, Box]:
        """Frame index -> box, from its start (the first is the init box)."""
        return {i: row.box for i, row in self.record.rows.items()}

    @property
    def reinitialisations(self) -> list[dict]:
        return [dict(frame=row.frame, box=list(row.box)) for row in self.record.rows.values() if row.init]


@dataclasses.dataclass
class MultiStep:
    """One frame as the session saw it: each started track's result (`kinds`: 'init' or 'track')."""

    index: int
    frame: np.ndarray
    results: dict[int, TrackResult]
    kinds: dict[int, str]
    track_ms: float = 0.0  # wall time of the frame's inits and tracking, all tracks together


class MultiTrackSession:
    def __init__(
        self,
        frames: TrackingSession,
        batch: bool = True,
        max_tracks: int = MAX_TRACKS,
        runner: BatchRunner | None = None,
    ):
        if frames.tracker is not None:
            raise SessionError("a multi-track session reads frames through a session without a tracker")
        self.frames = frames
        self.batch = batch
        self.max_tracks = max_tracks
        self.runner = runner or BatchRunner()
        self.tracks: list[Track] = []
        self.tracked_frames = 0
        self.tracked_seconds = 0.0
        self._next_id = 1

    @classmethod
    def open(cls, spec, **kwargs) -> MultiTrackSession:
        return cls(TrackingSession.open(spec), **kwargs)

    def close(self) -> None:
        self.frames.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def index(self) -> int:
        return self.frames.index

    @property
    def frame(self) -> np.ndarray | None:
        return self.frames.frame

    # -- tracks ----------------------------------------------------------------------------------
    def add(
        self,
        tracker: Tracker,
        box,
        *,
        tracker_name: str = "",
        name: str = "",
        start: int | None = None,
        track_id: int | None = None,
        style: str = "solid",
    ) -> Track:
        """A new track whose box is for frame `start` (default: the current frame); it starts when
        the session reaches that frame (at once, at the next `step` of the current frame)."""
        if len(self.tracks) >= self.max_tracks:
            raise TrackLimitError(
                f"at most {self.max_tracks} tracks at once: every track adds a search crop and a network "
                f"call to each frame, and past {self.max_tracks} the boxes and the list are unreadable; "
                "remove a track first"
            )
        if track_id is None:
            track_id = self._next_id
        if any(t.id == track_id for t in self.tracks):
            raise SessionError(f"track id {track_id} is taken")
        if track_id < 1:
            raise SessionError(f"track ids are positive integers, got {track_id}")
        self._next_id = max(self._next_id, track_id + 1)
        start = self.index if start is None else int(start)
        box = tuple(float(v) for v in box)
        if start == self.index and self.frame is not None:
            box = getattr(tracker, "validate_box", validate_box)(box, self.frame.shape)
        tracker_name = tracker_name or getattr(tracker, "name", "") or type(tracker).__name__
        track = Track(
            track_id,
            name or f"{track_id}",
            tracker,
            box,
            start,
            colour_of(track_id),
            RunRecord(tracker=tracker_name, params=_params_dict(tracker)),
            style=style,
        )
        self.tracks.append(track)
        return track

    def get(self, track_id: int) -> Track:
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise SessionError(f"no track {track_id}")

    def remove(self, track_id: int) -> Track:
        track = self.get(track_id)
        self.tracks.remove(track)
        return track

    def reinit(self, track_id: int, box) -> TrackResult:
        """Restart one track on the current frame from `box` (the others keep their state)."""
        track = self.get(track_id)
        if self.frame is None:
            raise SessionError("Open a video, folder or camera first")
        box = getattr(track.tracker, "validate_box", validate_box)(box, self.frame.shape)
        track.box, track.start = box, self.index
        return self._init(track, self.frame, self.index)

    def _init(self, track: Track, frame: np.ndarray, index: int) -> TrackResult:
        track.run.init(frame, index, track.box)
        track.started, track.at = True, index
        track.record.add_init(index, track.box)
        track.result = TrackResult(box=track.box, score=1.0)
        return track.result

    # -- frames ----------------------------------------------------------------------------------
    def step(self) -> MultiStep:
        """Act on the current frame: start the tracks whose start it is, track the started ones that
        have not seen it."""
        frame, index = self.frame, self.index
        if frame is None:
            raise SessionError("Open a video, folder or camera first")
        results: dict[int, TrackResult] = {}
        kinds: dict[int, str] = {}
        t0 = time.perf_counter()
        for track in self.tracks:
            if track.start == index and track.at != index:
                results[track.id] = self._init(track, frame, index)
                kinds[track.id] = "init"
        running = [t for t in self.tracks if t.started and t.at != index and t.id not in kinds]
        keep = not self.frames.is_live
        if running:
            trackers = [t.tracker for t in running]
            # each target through the session's per-frame step, or its share of a batched call
            got = (
                track_batched(self.runner, trackers, frame, lambda i: running[i].run.step(frame, index, keep).result)
                if self.batch
                else [t.run.step(frame, index, keep).result for t in running]
            )
            for track, result in zip(running, got):
                if "batch" in result.extra:
                    track.run.took(frame, index, result, sum(result.timings.values()) / 1e3, keep)
                track.result, track.at = result, index
                if keep:
                    track.record.add(index, result)
                results[track.id] = result
                kinds[track.id] = "track"
            self.tracked_frames += 1
        seconds = time.perf_counter() - t0
        if running:
            self.tracked_seconds += seconds
        for track in self.tracks:
            if track.started and track.id not in results and track.at == index and track.result is not None:
                results[track.id] = track.result
        return MultiStep(index, frame, results, kinds, seconds * 1e3)

    def advance(self) -> MultiStep | None:
        """Read the next frame and step it; None at the end of the source."""
        if self.frames.advance() is None:
            return None
        return self.step()

    def seek(self, index: int) -> bool:
        """Make frame `index` current (nothing tracked); tracks re-start from their box of that
        frame when stepped on (a track without one is left waiting for its start)."""
        if self.frames.seek(index) is None:
            return False
        for track in self.tracks:
            row = track.record.rows.get(self.index)
            if track.at == self.index or (not track.started and track.start >= self.index):
                continue
            if row is not None:
                track.box, track.start, track.at = row.box, self.index, -1
            else:
                # its state belongs to another frame and this run has no box for this one: it
                # waits for a box (re-draw it here, or go back)
                track.started, track.start, track.at, track.result = False, -1, -1, None
        return True

    def run(self, end: int | None = None, stop: Callable[[], bool] = lambda: False) -> Iterator[MultiStep]:
        """Step the current frame, then every next one until `end` (exclusive), the source's end or
        `stop()`."""
        yield self.step()
        while not stop() and (end is None or self.index + 1 < end):
            step = self.advance()
            if step is None:
                return
            yield step

    @property
    def fps(self) -> float:
        """Frames stepped per second spent tracking (all tracks together)."""
        return self.tracked_frames / self.tracked_seconds if self.tracked_seconds > 0 else 0.0


def _params_dict(tracker: Tracker) -> dict:
    p = getattr(tracker, "params", None)
    return dataclasses.asdict(p) if dataclasses.is_dataclass(p) else {}


def pair_iou(a: Track, b: Track) -> dict[int, float]:
    """Per frame both tracks have a box: the IoU between them (run/metrics.py's, as eval scores)."""
    from .metrics import iou

    frames = [i for i in a.record.rows if i in b.record.rows]
    if not frames:
        return {}
    values = iou([a.record.rows[i].box for i in frames], [b.record.rows[i].box for i in frames])
    return dict(zip(frames, (float(v) for v in values)))


def is_lost(result: TrackResult | None) -> bool:
    return result is not None and result.state == TrackingState.LOST
