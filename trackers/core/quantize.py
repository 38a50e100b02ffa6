"""The opt-in int8 engine (`--precision int8`): a tracker's per-frame graph (engines.py's fp32
`_TrackGraph` export) quantised with ONNX Runtime's own tools, calibrated on real frames.

* Calibration: the tracker runs its fp32 ONNX Runtime engine on real videos from ../shared
  (`CALIBRATION`: four videos that are NOT the accuracy check's bag and cup, each started from a
  box of the validation set's keyframes, tests/data/validation), and every `CALIBRATION_STEP`-th
  frame's inputs of the graph are kept: the search crop the network really sees, and the template
  state that `template()` computed from the real exemplar. ONNX Runtime's MinMax calibrator reads
  them through a `CalibrationDataReader`.
* Quantisation: `onnxruntime.quantization.quantize_static`, weights int8 per output channel,
  activations uint8 (ONNX Runtime's U8S8, the pair its x86 int8 kernels take; VNNI where the CPU has
  it). The DW-XCorr convolutions, whose "weight" is the template's feature map fed as an input,
  stay in float: their kernel changes with every template, so no calibration fixes its range.
* Cache: the int8 graph is kept beside the fp32 one, the same way (0700 folder, sha256 sidecar,
  mkstemp + rename: engines.write_cached_graph), named by a key over the fp32 graph's key, the
  calibration set (files, boxes, frame indices), the tracker's hyper-parameters (they decide the
  crops), the quantisation settings and ONNX Runtime's version. A JSON record beside it
  (`<graph>.calibration.json`) says which frames calibrated it.
* `auto` never picks int8: it is a precision, asked for by name (`set_precision("int8")`), and
  the accuracy it gives up is the user's call (docs/speed-int8.md has the measured cost).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

import numpy as np

from .base import EngineError

#: bump when the quantisation recipe changes, so old int8 graphs are not reused
QUANT_LAYOUT = 1
#: "qdq" (QuantizeLinear / DequantizeLinear pairs, fused by ORT into int8 kernels at load) or
#: "qoperator" (QLinearConv & co. written into the graph)
FORMATS = ("qdq", "qoperator")
DEFAULT_FORMAT = "qdq"
#: (video under ../shared/data/videos, 0-based init frame, init box x, y, w, h): the validation
#: set's first keyframes (tests/data/validation/*.json); bag and cup are left out so the accuracy
#: check runs on frames the calibration never saw
CALIBRATION = (
    ("Megamind.avi", 1, (210.0, 162.0, 154.0, 154.0)),
    ("box.mp4", 0, (293.0, 25.0, 300.0, 215.0)),
    ("tree.avi", 0, (120.0, 50.0, 73.0, 47.0)),
    ("vtest.avi", 0, (502.0, 157.0, 28.0, 76.0)),
)
#: frames tracked per video after the init frame, and every how many a calibration sample is kept
CALIBRATION_FRAMES = 20
CALIBRATION_STEP = 5


class CalibrationError(EngineError):
    """No calibration frames (../shared absent, a video unreadable): one clear line."""


def calibration_plan(videos=None, frames: int | None = None, step: int | None = None) -> list:
    """[{video, init_frame, box, frames: [0-based indices whose search crops are kept]}]; the
    module's CALIBRATION, CALIBRATION_FRAMES and CALIBRATION_STEP where not given."""
    videos = CALIBRATION if videos is None else videos
    frames = CALIBRATION_FRAMES if frames is None else frames
    step = CALIBRATION_STEP if step is None else step
    return [
        dict(
            video=v,
            init_frame=int(start),
            box=[float(b) for b in box],
            frames=list(range(start + step, start + frames + 1, step)),
        )
        for v, start, box in videos
    ]


def _video_folder() -> str:
    from .paths import shared_path

    folder = shared_path("data", "videos")
    if not folder or not os.path.isdir(folder):
        raise CalibrationError(
            "int8 needs calibration frames from the shared folder's data/videos, which is not here "
            "(set SIAMSCOPE_SHARED, or run with --precision fp32)"
        )
    return folder


def _read_frames(path: str, first: int, last: int) -> list:
    import cv2

    cap = cv2.VideoCapture(path)
    frames = []
    try:
        index = 0
        while index <= last:
            ok, frame = cap.read()
            if not ok:
                break
            if index >= first:
                frames.append(frame)
            index += 1
    finally:
        cap.release()
    if len(frames) < 2:
        raise CalibrationError(f"calibration video {os.path.basename(path)!r} has fewer than 2 readable frames")
    return frames


class _Recorder:
    """The fp32 engine, keeping a copy of its inputs on the frames asked for."""

    def __init__(self, engine):
        self.engine = engine
        self.keep = False
        self.feeds: list = []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def track(self, x, with_channels: bool = True):
        out = self.engine.track(x, with_channels)
        if self.keep:
            self.feeds.append({k: np.array(v, copy=True) for k, v in self.engine._feed.items()})
        return out


def record_feeds(tracker, fp32_engine, plan: list) -> list:
    """Track each plan video with `fp32_engine` in place of the tracker's engine; the graph inputs
    of the frames in the plan, in order. The tracker's engine attributes are put back."""
    folder = _video_folder()
    recorder = _Recorder(fp32_engine)
    # (a wider search while lost runs in the tracker's own wide engines or torch: not recorded)
    saved = (tracker.onnx_engine, tracker.precision)
    tracker.onnx_engine, tracker.precision = recorder, "fp32"
    try:
        for item in plan:
            frames = _read_frames(os.path.join(folder, item["video"]), item["init_frame"], max(item["frames"]))
            tracker.init(frames[0], tuple(item["box"]))
            keep = {i - item["init_frame"] for i in item["frames"]}
            for i, frame in enumerate(frames[1:], 1):
                recorder.keep = i in keep
                tracker.track(frame)
            recorder.keep = False
    finally:
        tracker.onnx_engine, tracker.precision = saved
    if not recorder.feeds:
        raise CalibrationError("no calibration frames were recorded (the videos ended before the first sample)")
    return recorder.feeds


def _xcorr_convs(model) -> list:
    """Conv nodes whose weight is a graph value, not an initializer: the DW-XCorr of the template's
    features with the search's (kept in float)."""
    inits = {i.name for i in model.graph.initializer}
    consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] not in inits | consts]


def quantize_graph(fp32: bytes, feeds: list, fmt: str = DEFAULT_FORMAT, per_channel: bool = True) -> bytes:
    """The int8 graph of `fp32` (ONNX bytes), calibrated on `feeds` (dicts input name -> array)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if fmt not in FORMATS:
        raise EngineError(f"unknown int8 format {fmt!r}: use {' or '.join(FORMATS)}")
    model = onnx.load_from_string(fp32)
    names = [node.name or f"node_{i}" for i, node in enumerate(model.graph.node)]
    for node, name in zip(model.graph.node, names):
        node.name = name  # the exporter leaves some unnamed; exclusion goes by name
    exclude = _xcorr_convs(model)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    import logging

    root = logging.getLogger()
    level = root.level
    # its advice to pre-process goes to the root logger: the exported graph is already folded
    root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="siamscope-int8-") as tmp:
            src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
            onnx.save(model, src)
            quantize_static(
                src,
                dst,
                Reader(),
                quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=exclude,
            )
            with open(dst, "rb") as f:
                return f.read()
    finally:
        root.setLevel(level)


def int8_key(fp32_key: str, plan: list, params_repr: str, fmt: str, per_channel: bool) -> str:
    import onnxruntime

    parts = dict(
        fp32=fp32_key,
        calibration=plan,
        params=params_repr,
        format=fmt,
        per_channel=per_channel,
        onnxruntime=onnxruntime.__version__,
        layout=QUANT_LAYOUT,
    )
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def record_path(graph_path: str) -> str:
    """Where the calibration record of the int8 graph at `graph_path` is kept."""
    return graph_path + ".calibration.json"


def make_record(tracker, fp32_path: str, int8_path: str, plan: list, samples: int, fmt: str, per_channel: bool) -> dict:
    """What the calibration record says: which frames calibrated the graph, and how it was quantised."""
    import onnxruntime

    return dict(
        tracker=getattr(tracker, "name", None) or type(tracker).__name__,
        fp32_graph=os.path.basename(fp32_path),
        int8_graph=os.path.basename(int8_path),
        format=fmt,
        per_channel=per_channel,
        activations="uint8",
        weights="int8",
        calibrate_method="MinMax",
        onnxruntime=onnxruntime.__version__,
        samples=samples,
        calibration=plan,
    )
