"""What the GUI thread and the tracking worker say to each other: small dataclasses, one type per
command and per event, dispatched by type (`TrackingWorker.send` / `TrackingWorker.on`).

They travel through thread-safe queues, never as arguments of Qt signals: queued signals with
Python-object arguments have shown reference-count crashes in PySide6 under load (see
`worker._Outbox`). Commands are frozen; an event may carry frames (numpy arrays) that the GUI
only reads.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from trackers.run.session import Step


# -- commands: GUI thread -> worker ---------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OpenSource:
    spec: object  # a path, a camera index, or a FrameSource


@dataclasses.dataclass(frozen=True)
class Configure:
    name: str
    weights: str | None
    device: str
    engine: str = "auto"  # what runs the network: auto | torch | onnxruntime (trackers/core/engines.py)


@dataclasses.dataclass(frozen=True)
class SetChannelsVisible:
    """Whether the GUI shows the DW-XCorr channel maps: the tracker copies them out only then."""

    visible: bool


@dataclasses.dataclass(frozen=True)
class SetCompute:
    """A compute policy (trackers/core/compute.py) to apply between frames; the tracker is rebuilt, since
    its ONNX Runtime session fixes its thread count when created."""

    policy: object


@dataclasses.dataclass(frozen=True)
class InitBox:
    box: tuple
    index: int | None = None  # the frame to initialise on (None: the frame on screen)
    play: bool = False


@dataclasses.dataclass(frozen=True)
class Play:
    playing: bool


@dataclasses.dataclass(frozen=True)
class StepFrame:
    pass


@dataclasses.dataclass(frozen=True)
class Seek:
    index: int


@dataclasses.dataclass(frozen=True)
class SetSpeed:
    speed: float  # a multiple of the source fps; 0 = as fast as possible


@dataclasses.dataclass(frozen=True)
class SetParam:
    name: str
    value: object


@dataclasses.dataclass(frozen=True)
class StopTracking:
    pass


@dataclasses.dataclass(frozen=True)
class Unload:
    """Drop the loaded tracker: the picked one cannot be built (no checkpoint), and no earlier
    tracker may go on running under its name."""


@dataclasses.dataclass(frozen=True)
class Sync:
    number: int


@dataclasses.dataclass(frozen=True)
class Quit:
    pass


# -- events: worker -> GUI thread -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SourceInfo:
    spec: object  # what open_source() was given (path or camera index)
    name: str
    frame_count: int | None
    fps: float
    is_live: bool
    width: int
    height: int


@dataclasses.dataclass(frozen=True)
class TrackerInfo:
    name: str
    weights: str | None
    device: str
    params: object  # a copy of tracker.params, for building the panel
    defaults: object = None  # the variant's default params (the registry's), for "Reset to defaults"
    # what was actually loaded: the file (the given one, the one found in the model folders, or the
    # built-in weights in resources/) and its sha256 -- the one source of "what produced this"
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    engine: str = "torch"  # what runs the network: "torch", "onnxruntime" (or "opencv")
    engine_choice: str = "auto"  # the engine asked for


@dataclasses.dataclass(frozen=True)
class TrackerUnloaded:
    """No tracker is loaded any more (unloaded, or the picked one failed to load)."""


@dataclasses.dataclass
class FramePacket(Step):
    """One frame as the worker saw it: the session's `Step` (trackers/run/session.py: index, frame,
    result, kind, time; box, score, state, maps) with what the worker adds for the window."""

    dropped: int = 0  # camera frames dropped so far because the tracker was slower
    jpeg: bytes | None = None  # a live frame that was tracked, encoded here for a later video export
    _rgb: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, step: Step, dropped: int = 0, jpeg: bytes | None = None) -> FramePacket:
        return cls(**{f.name: getattr(step, f.name) for f in dataclasses.fields(Step)}, dropped=dropped, jpeg=jpeg)

    @property
    def rgb(self) -> np.ndarray:
        """The frame in RGB for display, converted on first use: only the packets that are drawn
        pay for it (at speed "max" most packets are superseded before a draw)."""
        if self._rgb is None:
            f = self.frame
            self._rgb = cv2.cvtColor(f, cv2.COLOR_BGR2RGB) if f.ndim == 3 else f
        return self._rgb


@dataclasses.dataclass(frozen=True)
class PlayingChanged:
    playing: bool


@dataclasses.dataclass(frozen=True)
class TrackingChanged:
    tracking: bool


@dataclasses.dataclass(frozen=True)
class Message:
    level: str  # "error", "warning", "info"
    text: str


@dataclasses.dataclass(frozen=True)
class Synced:
    number: int  # the Sync barrier the worker has reached
