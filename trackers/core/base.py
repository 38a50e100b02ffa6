"""The one interface every tracker implements, and the result it hands to the GUI / CLI.

Data flow: source -> worker -> tracker (crop -> network -> decode) -> TrackResult -> plots/export.
Frames are BGR uint8 arrays as OpenCV decodes them; boxes are (x, y, w, h) floats in frame pixels.
Nothing here imports Qt: trackers run headless.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

Box = tuple[float, float, float, float]


class TrackingState(str, enum.Enum):
    TRACKING = "tracking"
    LOST = "lost"
    REDETECTING = "re-detecting"


@dataclasses.dataclass
class ChannelMaps:
    """Per-channel correlation responses of one correlation layer.

    `maps` is (C, h, w) float32: channel c is the depth-wise cross-correlation of template
    channel c with search channel c (SiamRPN++ §3.4: single channels respond to single object
    categories). `level` names the feature level ("l3", "layer2", ...), `branch` the head branch
    ("cls", "loc", "xcorr", ...).
    """

    level: str
    branch: str
    maps: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.level}/{self.branch}"


@dataclasses.dataclass
class SearchRegion:
    """Where the score map lies in the frame: the square search crop, in frame pixels.

    (x, y) is the top-left corner of the crop and `size` its side (the score map covers the
    crop's centre area; see `score_extent`).
    """

    x: float
    y: float
    size: float
    # Part of the crop the score map covers, as (x0, y0, x1, y1) in frame pixels: score cell
    # (i, j) of an S x S map centres at x0 + (j + 0.5) * (x1 - x0) / S.
    score_extent: tuple[float, float, float, float]


@dataclasses.dataclass
class TrackResult:
    box: Box
    score: float
    state: TrackingState = TrackingState.TRACKING
    # Final score map (after penalty and window), (S, S) float32, max over anchors where there are several.
    score_map: np.ndarray | None = None
    search_region: SearchRegion | None = None
    channels: list[ChannelMaps] = dataclasses.field(default_factory=list)
    mask: np.ndarray | None = None  # (H, W) float32 in [0, 1], frame-sized
    # where the tracker itself cuts the mask (SiamMask: 0.15); overlays draw mask > mask_threshold
    mask_threshold: float = 0.5
    polygon: np.ndarray | None = None  # (4, 2) rotated rectangle, frame pixels
    distractors: list[Box] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # stage -> milliseconds
    extra: dict = dataclasses.field(default_factory=dict)


class StageTimer:
    """Collects per-stage wall time in milliseconds (crop, network, decode...)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1e3


class EngineError(ValueError):
    """An engine that cannot run this tracker, or an unknown engine name (one line for the user)."""


class BoxError(ValueError):
    """The initial box is empty or does not overlap the frame."""


class InvalidRequest(ValueError):
    """What was asked for cannot be done as asked (a frame range past the end, a negative thread
    count): the message says why in one line. The command line prints it as a usage error
    (trackers/tools/usage.py)."""


def validate_box(box, frame_shape) -> Box:
    """Check an init box against the frame; return it as floats or raise BoxError with a clear message."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise BoxError(f"box must be four numbers x,y,w,h, got {box!r}") from None
    if not all(np.isfinite([x, y, w, h])):
        raise BoxError(f"box has non-finite values: {box!r}")
    if w < 1 or h < 1:
        raise BoxError(f"box {x:g},{y:g},{w:g},{h:g} is empty (width and height must be at least 1 px)")
    H, W = frame_shape[:2]
    # bounded before any tracker sees it: a box far larger than the frame would make the crops
    # allocate gigabytes (a 30000-px box) or overflow (1e30)
    if w > W or h > H:
        raise BoxError(
            f"box {x:g},{y:g},{w:g},{h:g} is larger than the {W}x{H} frame (width at most {W}, height at most {H})"
        )
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise BoxError(f"box {x:g},{y:g},{w:g},{h:g} lies outside the {W}x{H} frame")
    return (x, y, w, h)


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """What a hyper-parameter means (the panel's tooltip), whether it may change during a run, and
    its sensible range. Structural values (`live=False`: crop sizes the network was built for,
    strides) are shown but not offered for editing."""

    help: str = ""
    live: bool = True
    range: tuple[float, float] | None = None


def param(default, help: str, *, live: bool = True, range: tuple[float, float] | None = None):
    """A field of a params dataclass, with its ParamInfo. A subclass that only changes the default
    (`lr: float = 0.3`) keeps the meaning declared here: see `param_info`."""
    return dataclasses.field(default=default, metadata={"param": ParamInfo(help, live, range)})


def param_info(params_type: type, name: str) -> ParamInfo:
    """The ParamInfo of field `name`, from the nearest class in the MRO that declares one."""
    for cls in getattr(params_type, "__mro__", ()):
        f = getattr(cls, "__dataclass_fields__", {}).get(name)
        if f is not None and "param" in f.metadata:
            return f.metadata["param"]
    return ParamInfo()


class Tracker(abc.ABC):
    """init(frame, box) then track(frame) -> TrackResult, frame after frame."""

    #: short stable name, as listed by `python main.py trackers`
    name: str = ""
    #: the tracker's hyper-parameters (a dataclass instance); the GUI edits it live and a change
    #: applies from the next frame.
    params: object = None
    #: whether track() fills TrackResult.channels (the GUI's channel grid); benchmarks switch it
    #: off, since copying the maps costs time and nothing draws them there.
    collect_channels: bool = True
    #: the keys this tracker puts in TrackResult.extra, with their meaning
    extra_keys: dict[str, str] = {}

    def validate_box(self, box, frame_shape) -> Box:
        """The init box checked for this tracker (BoxError with a clear message); trackers with
        limits of their own (CSRT's minimum size) add them."""
        return validate_box(box, frame_shape)

    @abc.abstractmethod
    def init(self, frame: np.ndarray, box: Box) -> None: ...

    @abc.abstractmethod
    def track(self, frame: np.ndarray) -> TrackResult: ...

    def to(self, device: str) -> Tracker:
        """Move the network to a torch device ("cpu", "cuda"); trackers without one ignore it."""
        return self

    #: what runs the per-frame network ("torch", "onnxruntime"; "opencv" for OpenCV's trackers)
    engine_name: str = "opencv"

    def set_engine(self, choice: str, policy=None) -> str:
        """Choose the engine ("auto", "torch", "onnxruntime"); returns the one in use. Trackers
        with a torch network override this (trackers/core/engines.py); OpenCV's run as they are."""
        if choice == "onnxruntime":
            raise EngineError(
                f"{self.name or type(self).__name__} runs in OpenCV: it has no ONNX Runtime engine (use --engine auto)"
            )
        if choice not in ("auto", "torch"):
            raise EngineError(f"unknown engine {choice!r}: use auto, torch or onnxruntime")
        return self.engine_name

    #: the precision the network computes in ("fp32", or "fp16" on CUDA where the tracker has it)
    precision: str = "fp32"

    def set_precision(self, precision: str) -> Tracker:
        """Run the network in `precision`; trackers without a half-precision path refuse fp16."""
        if precision != "fp32":
            from models.device import DeviceError

            raise DeviceError(f"{self.name or type(self).__name__} has no {precision} path: use fp32")
        return self
