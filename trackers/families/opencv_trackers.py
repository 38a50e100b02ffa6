"""OpenCV's own trackers behind the Tracker interface, as honest anchors for `eval`:

- 'csrt': cv2.TrackerCSRT (discriminative correlation filter with channel and spatial
  reliability; opencv-contrib), no network, no checkpoint.
- 'opencv-nanotrack': cv2.TrackerNano, OpenCV's DNN port of NanoTrack v2 running the published
  ONNX pair (nanotrackv2_backbone_sim.onnx + nanotrackv2_head_sim.onnx), an independent check on
  our own NanoTrack re-implementation.

These are black boxes: they give a box and (Nano) a score, no score map or channels.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np

from ..core.base import Box, BoxError, StageTimer, Tracker, TrackingState, TrackResult, param, validate_box
from ..core.registry import Variant, variant_specs

NANO_BACKBONE = "nanotrackv2_backbone_sim.onnx"
NANO_HEAD = "nanotrackv2_head_sim.onnx"


@dataclasses.dataclass
class CSRTParams:
    """The CSRT options most worth trying; the rest keep OpenCV's defaults."""

    use_hog: bool = param(True, "HOG features (applies at the next init)")
    use_color_names: bool = param(True, "colour-names features (applies at the next init)")
    use_segmentation: bool = param(True, "colour-histogram segmentation of the target (applies at the next init)")
    padding: float = param(
        3.0, "search area around the target, in target sizes (applies at the next init)", range=(1.0, 10.0)
    )
    template_size: float = param(
        200.0, "side the template is resized to (applies at the next init)", range=(16.0, 1000.0)
    )
    scale_step: float = param(1.02, "ratio between neighbouring scales (applies at the next init)", range=(1.0, 2.0))
    number_of_scales: int = param(33, "scales searched per frame (applies at the next init)", range=(1, 99))


@dataclasses.dataclass
class OpenCVNanoParams:
    """cv2.TrackerNano has no tunable tracking parameters (its penalty / window are built in)."""


def _int_box(box: Box) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return int(round(x)), int(round(y)), max(1, int(round(w))), max(1, int(round(h)))


class OpenCVTracker(Tracker):
    """Wraps a cv2.Tracker: init(frame, box) / update(frame) -> (ok, box)."""

    def __init__(self, name: str, params):
        self.name = name
        self.params = params
        self._tracker = None
        self._box: Box = (0.0, 0.0, 1.0, 1.0)

    def create(self):
        raise NotImplementedError

    def init(self, frame: np.ndarray, box: Box) -> None:
        box = self.validate_box(box, frame.shape)
        self._tracker = self.create()
        try:
            self._tracker.init(frame, _int_box(box))
        except cv2.error as e:
            # a limit validate_box does not know of yet: still one clear message, not cv2's trace
            raise BoxError(
                f"{self.name} cannot start on box {_int_box(box)}: {str(e).strip().splitlines()[-1]}"
            ) from None
        self._box = box

    def track(self, frame: np.ndarray) -> TrackResult:
        if self._tracker is None:
            raise RuntimeError(f"{self.name}: track() before init()")
        timer = StageTimer()
        with timer.stage("update"):
            ok, box = self._tracker.update(frame)
        score = self.score(ok)
        if ok:
            self._box = tuple(float(v) for v in box)
        # On failure OpenCV gives no box; keep the last one so the run stays one box per frame.
        return TrackResult(
            box=self._box, score=score, state=TrackingState.TRACKING if ok else TrackingState.LOST, timings=timer.ms
        )

    def score(self, ok: bool) -> float:
        return 1.0 if ok else 0.0


#: CSRT's filters fail (cv2.error) on a box under 2 px on a side or longer than about 35 times its
#: width (measured on OpenCV 4.x: 300x8 works, 300x7 and 200x5 fail); kept with a margin
CSRT_MIN_SIDE = 2
CSRT_MAX_ASPECT = 32.0


class CSRTTracker(OpenCVTracker):
    def __init__(self, params: CSRTParams | None = None):
        super().__init__("csrt", params or CSRTParams())

    def validate_box(self, box, frame_shape) -> Box:
        x, y, w, h = validate_box(box, frame_shape)
        iw, ih = _int_box((x, y, w, h))[2:]
        if min(iw, ih) < CSRT_MIN_SIDE:
            raise BoxError(f"csrt needs a box at least {CSRT_MIN_SIDE} px on each side, got {w:g}x{h:g}")
        if max(iw, ih) / min(iw, ih) > CSRT_MAX_ASPECT:
            raise BoxError(
                f"csrt cannot track a box this elongated ({w:g}x{h:g}): its longer side may be "
                f"at most {CSRT_MAX_ASPECT:g} times the shorter"
            )
        return (x, y, w, h)

    def create(self):
        p = self.params
        cp = cv2.TrackerCSRT_Params()
        cp.use_hog = bool(p.use_hog)
        cp.use_color_names = bool(p.use_color_names)
        cp.use_segmentation = bool(p.use_segmentation)
        cp.padding = float(p.padding)
        cp.template_size = float(p.template_size)
        cp.scale_step = float(p.scale_step)
        cp.number_of_scales = int(p.number_of_scales)
        return cv2.TrackerCSRT_create(cp)


def _onnx_tensors(graph):
    """Every tensor a graph holds: initializers (dense and sparse), node attributes, subgraphs'."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _onnx_tensors(attr.g)
            for sub in attr.graphs:
                yield from _onnx_tensors(sub)


def check_onnx_file(path: str, who: str = "opencv-nanotrack") -> None:
    """Read an ONNX file's structure (not its external data) and refuse, in one line, before OpenCV
    opens it: a file that is not an ONNX model, and a tensor whose external data lies outside the
    file's folder (an absolute location, or one that climbs out with '..' or a link): OpenCV would
    read whatever file that names."""
    import onnx

    from models.checkpoint import CheckpointError

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError, OSError, ... : all "not ONNX"
        raise CheckpointError(
            f"{who}: {path!r} is damaged or not an ONNX model ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
        ) from None
    if not model.graph.node:
        raise CheckpointError(f"{who}: {path!r} is damaged or not an ONNX model (it holds no graph)")
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for tensor in _onnx_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = os.path.realpath(os.path.join(folder, location))
        if not location or os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
            raise CheckpointError(
                f"{who}: {path!r} was refused: tensor {tensor.name!r} takes its data from "
                f"{location!r}, outside the model's folder"
            )


class OpenCVNanoTracker(OpenCVTracker):
    def __init__(self, backbone: str, head: str):
        super().__init__("opencv-nanotrack", OpenCVNanoParams())
        for f in (backbone, head):
            if not os.path.isfile(f):
                from models.checkpoint import CheckpointError

                raise CheckpointError(f"opencv-nanotrack needs {f!r}, which does not exist")
            check_onnx_file(f)
        self.backbone, self.head = backbone, head
        self.create()  # a file OpenCV cannot load is said now, in one line, not at the first frame

    def create(self):
        np_ = cv2.TrackerNano_Params()
        np_.backbone = self.backbone
        np_.neckhead = self.head
        # OpenCV 5's DNN engine warns on every create that targets are unsupported: noise, not news
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            return cv2.TrackerNano_create(np_)
        except cv2.error as e:
            from models.checkpoint import CheckpointError

            raise CheckpointError(
                f"opencv-nanotrack cannot load {self.backbone!r} + {self.head!r}: "
                f"{str(e).strip().splitlines()[-1][:200]}"
            ) from None
        finally:
            cv2.utils.logging.setLogLevel(level)

    def score(self, ok: bool) -> float:
        return float(self._tracker.getTrackingScore())


def nano_onnx_pair(weights: str) -> tuple[str, str]:
    """The backbone / head ONNX files: `weights` names either file or the folder holding both
    (the registry finds the backbone file in the model folders when none is given)."""
    if weights and not os.path.isdir(weights) and os.path.basename(weights) not in (NANO_BACKBONE, NANO_HEAD):
        # a .pth (or any other file) would otherwise be passed over in silence for the ONNX pair beside it
        from models.checkpoint import CheckpointError

        raise CheckpointError(
            f"opencv-nanotrack runs the ONNX pair {NANO_BACKBONE} + {NANO_HEAD}; give one of "
            f"them or their folder, not {weights!r}"
        )
    d = weights if os.path.isdir(weights) else os.path.dirname(os.path.abspath(weights))
    return os.path.join(d, NANO_BACKBONE), os.path.join(d, NANO_HEAD)


VARIANTS = (
    Variant(
        "csrt",
        "CSRT (OpenCV, correlation filter)",
        params_type=CSRTParams,
        description="OpenCV's CSRT discriminative correlation filter: a non-Siamese anchor for eval.",
    ),
    # needs a checkpoint: the two ONNX files are a download like any checkpoint (the zoo lists them)
    Variant(
        "opencv-nanotrack",
        "NanoTrack v2 (OpenCV DNN, ONNX)",
        weights=NANO_BACKBONE,
        params_type=OpenCVNanoParams,
        description="cv2.TrackerNano on the published NanoTrack v2 ONNX files: an independent NanoTrack.",
    ),
)


def build(name: str, weights: str | None = None, device: str = "cpu") -> OpenCVTracker:
    if name == "csrt":
        return CSRTTracker()
    return OpenCVNanoTracker(*nano_onnx_pair(weights))


TRACKERS = [
    *variant_specs(VARIANTS[:1], family="OpenCV", params_type=CSRTParams, build=build, needs_weights=False),
    *variant_specs(VARIANTS[1:], family="OpenCV", params_type=OpenCVNanoParams, build=build),
]
