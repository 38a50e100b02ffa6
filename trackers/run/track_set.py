"""Several tracks behind the one-tracker interface: how the window's single run holds several
targets, or two trackers compared on the same frames, without a second loop.

A `TrackSet` is a Tracker whose `track(frame)` steps every track (batched where they share a
network, trackers/core/batching.py) and returns the *selected* track's result, so the score map,
channel grid and confidence plot follow the selected target as they follow a single tracker; every
track's result rides along in `result.extra["tracks"]`. `init(frame, box)` does what the user
asked last (`request_add`, `request_reinit`, `request_compare`): add a target, re-initialise one
(only it restarts), start A/B from one box; by default it re-initialises the selected track (in
A/B both, from the same box).

The GUI thread only posts requests and reads `snapshot` (replaced whole after every frame, so a
reader never sees it half-made); the worker thread that runs `init` / `track` applies them. With
one track and no request a TrackSet gives exactly its tracker's results.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable

import numpy as np

from ..core.base import BoxError, Tracker, TrackResult
from ..core.batching import BatchRunner, track_batched
from .session import Track as RunTrack
from .tracks import MAX_TRACKS, colour_of


class TrackSetFull(BoxError):
    """A target added past the limit (a BoxError: the box drawn is refused, with the reason)."""


@dataclasses.dataclass(frozen=True)
class TrackView:
    """What the GUI shows of one track on the frame last stepped."""

    id: int
    name: str
    tracker_name: str
    colour: tuple
    style: str  # "solid" | "dashed" (B of an A/B pair)
    result: TrackResult | None
    ms: float = 0.0  # its share of the frame's tracking time


@dataclasses.dataclass
class _Member:
    id: int
    name: str
    tracker_name: str
    tracker: Tracker
    style: str = "solid"
    started: bool = False
    result: TrackResult | None = None
    ms: float = 0.0
    run: RunTrack | None = None  # the session's per-target run state and step

    def __post_init__(self):
        self.run = RunTrack(self.tracker, self.id)


class TrackSet(Tracker):
    def __init__(
        self,
        primary: Tracker,
        tracker_name: str,
        build: Callable[[str, str | None], Tracker],
        weights: str | None = None,
        max_tracks: int = MAX_TRACKS,
    ):
        self.build = build  # (tracker name, weights) -> a new tracker (worker thread)
        self.weights = weights
        self.max_tracks = max_tracks
        self.members: list[_Member] = [_Member(1, "1", tracker_name, primary)]
        self.selected = 1
        self.compare: str | None = None  # B's tracker name while comparing
        self.runner = BatchRunner()
        self._requests: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._collect = True
        self.snapshot: tuple[TrackView, ...] = ()
        self._frame = 0  # frames this set was stepped on (the members' run index)
        self._next_id = 2

    def __getattr__(self, name):
        # anything else the worker or a view asks of the tracker is track 1's
        if name in ("members", "__setstate__") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.members[0].tracker, name)

    # -- the primary tracker's face (the worker, params panel and engine menu talk to it) ---------
    @property
    def primary(self) -> Tracker:
        return self.members[0].tracker

    @property
    def name(self):
        return self.primary.name

    @property
    def params(self):
        return self.primary.params

    @property
    def extra_keys(self):
        return self.primary.extra_keys

    @property
    def engine_name(self):
        return self.primary.engine_name

    @property
    def precision(self):
        return getattr(self.primary, "precision", "fp32")

    @property
    def collect_channels(self) -> bool:
        return self._collect

    @collect_channels.setter
    def collect_channels(self, on: bool) -> None:
        self._collect = bool(on)
        self._apply_channels()

    def _apply_channels(self) -> None:
        for m in self.members:
            # only what the views show copies its maps out: the selected track, and both of an A/B pair
            m.tracker.collect_channels = self._collect and (m.id == self.selected or self.compare is not None)

    def validate_box(self, box, frame_shape):
        return self.primary.validate_box(box, frame_shape)

    def set_engine(self, choice: str, policy=None) -> str:
        return [m.tracker.set_engine(choice, policy) for m in self.members][0]

    def to(self, device: str):
        for m in self.members:
            m.tracker.to(device)
        return self

    def set_precision(self, precision: str):
        for m in self.members:
            m.tracker.set_precision(precision)
        return self

    # -- requests from the GUI thread ------------------------------------------------------------
    def request_add(self) -> None:
        """The next init adds a target (same tracker and weights as track 1) with its box."""
        self._requests.append(("add",))

    def request_reinit(self, track_id: int) -> None:
        self._requests.append(("reinit", int(track_id)))

    def request_compare(self, tracker_name: str | None, weights: str | None = None) -> None:
        """The next init starts A (track 1) and B (`tracker_name`) from its box; None ends A/B."""
        self._requests.append(("compare", tracker_name, weights))

    def request_reset(self) -> None:
        """The run stopped: the next init starts target 1 alone (the other tracks are dropped)."""
        self._requests.append(("reset",))

    def remove(self, track_id: int) -> None:
        """Drop a track from the next frame on (track 1, whose tracker the panel shows, stays)."""
        self._requests.append(("remove", int(track_id)))

    def rename(self, track_id: int, name: str) -> None:
        self._requests.append(("rename", int(track_id), str(name)))

    def select(self, track_id: int) -> None:
        self.selected = int(track_id)
        self._apply_channels()

    @property
    def count(self) -> int:
        return len(self.members)

    # -- worker thread ---------------------------------------------------------------------------
    def _apply_requests(self, frame, box) -> TrackResult | None:
        """Apply what the GUI asked; the result of an init it did, else None."""
        done = None
        while self._requests:
            req = self._requests.popleft()
            kind = req[0]
            if kind == "remove":
                self.members = [m for m in self.members if m.id != req[1] or m.id == 1]
                if self.selected not in {m.id for m in self.members}:
                    self.selected = 1
            elif kind == "rename":
                for m in self.members:
                    if m.id == req[1]:
                        m.name = req[2]
            elif kind == "add" and box is not None:
                if len(self.members) >= self.max_tracks:
                    raise TrackSetFull(
                        f"at most {self.max_tracks} targets at once: each adds a search crop and a "
                        "network call to every frame, and past that the boxes and the list are "
                        "unreadable; remove a target first"
                    )
                tracker = self.build(self.members[0].tracker_name, self.weights)
                # one params object for every target of this tracker: the panel's live edits apply to all
                tracker.params = self.primary.params
                new_id = self._next_id  # ids are never reused: a removed target's stays its own
                self._next_id += 1
                m = _Member(new_id, str(new_id), self.members[0].tracker_name, tracker)
                self.members.append(m)
                self.selected = new_id
                done = self._init_member(m, frame, box)
                box = None
            elif kind == "reinit" and box is not None:
                for m in self.members:
                    if m.id == req[1]:
                        done = self._init_member(m, frame, box)
                        self.selected = m.id
                box = None
            elif kind == "reset":
                # the run stopped: the next one starts with target 1 alone
                self.members = self.members[:1]
                self.members[0].name, self.compare, self.selected = "1", None, 1
            elif kind == "compare" and req[1] is None:
                # A/B ends: B goes, A runs on as it is
                self.members = self.members[:1]
                self.members[0].name, self.compare, self.selected = "1", None, 1
            elif kind == "compare" and box is not None:
                name, weights = req[1], req[2]
                a = self.members[0]
                self.members = [a]
                self.compare = name
                if name is not None:
                    b = _Member(self._next_id, name, name, self.build(name, weights), style="dashed")
                    self._next_id += 1
                    a.name = a.tracker_name
                    self.members.append(b)
                    self._init_member(b, frame, box)
                else:
                    a.name = "1"
                done = self._init_member(a, frame, box)
                self.selected = 1
                box = None
        self._apply_channels()
        return done

    def _init_member(self, m: _Member, frame, box) -> TrackResult:
        m.run.init(frame, self._frame, box)
        m.started = True
        # marked: an export tells this frame's re-initialisations from tracked frames
        m.result = TrackResult(box=tuple(float(v) for v in box), score=1.0, extra=dict(init=True))
        m.ms = 0.0
        return m.result

    def init(self, frame: np.ndarray, box) -> None:
        with self._lock:
            if self._apply_requests(frame, box) is None:
                # a box drawn on its own: the selected track restarts (in A/B both, from the same box)
                chosen = [m for m in self.members if m.id == self.selected or self.compare is not None]
                for m in chosen or self.members[:1]:
                    self._init_member(m, frame, box)
            self._publish()

    def track(self, frame: np.ndarray) -> TrackResult:
        import time

        with self._lock:
            self._apply_requests(frame, None)
            running = [m for m in self.members if m.started]
            t0 = time.perf_counter()
            self._frame += 1
            results = track_batched(
                self.runner,
                [m.tracker for m in running],
                frame,
                lambda i: running[i].run.step(frame, self._frame, keep_box=False).result,
            )
            share = (time.perf_counter() - t0) * 1e3 / max(len(running), 1)
            for m, r in zip(running, results):
                m.result = r
                m.ms = sum(r.timings.values()) or share
                if "batch" in r.extra:  # stepped as part of a batch: recorded as step() records
                    m.run.took(frame, self._frame, r, m.ms / 1e3, keep_box=False)
            views = self._publish()
            chosen = next((m for m in running if m.id == self.selected), running[0])
            if len(self.members) == 1:
                return chosen.result  # one track: exactly its tracker's result
            return self._with_tracks(chosen.result, views, chosen.id)

    def init_result(self, result: TrackResult) -> TrackResult:
        """The result the session recorded for an init (the box drawn), with every track's view of
        that frame riding along when there are several: the run's store then keeps every target on
        the frame where one was added or re-drawn, not only the one initialised."""
        with self._lock:
            views = self.snapshot
            if len(self.members) == 1 or not views:
                return result
            return self._with_tracks(result, views, self.selected)

    def _with_tracks(self, result: TrackResult, views, selected: int) -> TrackResult:
        # every track's box, score and state ride along, kept per frame by the run's store (the
        # run's boxes live there: the members keep none, so a camera run does not grow them);
        # the score maps only in A/B, whose view shows both of a frame seen again; never the
        # channel maps or masks, which only the frame on screen needs (the snapshot has them)
        keep_map = self.compare is not None
        light = tuple(
            dataclasses.replace(
                v,
                result=dataclasses.replace(
                    v.result, channels=[], mask=None, score_map=v.result.score_map if keep_map else None
                ),
            )
            for v in views
            if v.result is not None
        )
        return dataclasses.replace(result, extra=dict(result.extra, tracks=light, selected=selected))

    def _publish(self) -> tuple:
        self.snapshot = tuple(
            TrackView(m.id, m.name, m.tracker_name, colour_of(m.id), m.style, m.result, m.ms)
            for m in self.members
            if m.started
        )
        return self.snapshot


def track_set_factory(build: Callable[..., Tracker]) -> Callable[..., Tracker]:
    """The window's tracker factory, each tracker wrapped in a TrackSet whose further tracks are built
    the same way (same device and engine)."""

    def make(name: str, weights: str | None, device: str, engine: str = "auto") -> TrackSet:
        primary = build(name, weights, device, engine)
        return TrackSet(
            primary, name, lambda n, w: build(n, w if n != name else weights, device, engine), weights=weights
        )

    return make
