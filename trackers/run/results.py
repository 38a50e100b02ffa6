"""A tracking run's per-frame results and how they are written: OTB text, CSV, JSON.

The run record carries what produced it (tracker, hyper-parameters, checkpoint and its sha256,
source, re-initialisations) so an exported file can be traced back. Export works on a finished
run without re-tracking.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os

import cv2
import numpy as np

from ..core.base import Box, TrackResult
from .safe_output import RESULT_EXTS, atomic_write, check_output


def file_sha256(path: str | None) -> str | None:
    if not path or not os.path.isfile(path):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FrameLog(dict):
    """Per-frame values of one run, keyed by frame index in ascending order.

    The one place the rule "a re-run replaces the later frames" lives: putting frame i (after a
    seek back, a re-initialisation) drops every frame after i. Keys stay in insertion order, which
    this rule keeps ascending, so dropping the tail is a few pops, not a scan."""

    def put(self, index: int, value) -> None:
        self.drop_after(index)
        self[index] = value

    def drop_after(self, index: int) -> None:
        while self and next(reversed(self)) > index:
            self.popitem()


@dataclasses.dataclass
class FrameRecord:
    frame: int
    box: Box
    score: float
    state: str
    timings: dict
    init: bool = False  # this frame (re-)initialised the tracker with a user box


@dataclasses.dataclass
class RunRecord:
    tracker: str = ""
    params: dict = dataclasses.field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    source: str = ""
    rows: FrameLog = dataclasses.field(default_factory=FrameLog)  # frame index -> FrameRecord

    @property
    def frames(self) -> list[FrameRecord]:
        return list(self.rows.values())

    # how the run was computed: the compute policy's thread pools (trackers/core/compute.py) and the engine
    compute: dict = dataclasses.field(default_factory=dict)

    def add_init(self, frame_index: int, box: Box) -> None:
        self.rows.put(frame_index, FrameRecord(frame_index, tuple(float(v) for v in box), 1.0, "init", {}, True))

    def add(self, frame_index: int, result: TrackResult) -> None:
        self.rows.put(
            frame_index,
            FrameRecord(
                frame_index,
                tuple(float(v) for v in result.box),
                float(result.score),
                result.state.value,
                {k: round(v, 3) for k, v in result.timings.items()},
            ),
        )

    @property
    def reinitialisations(self) -> list[dict]:
        return [{"frame": f.frame, "box": list(f.box)} for f in self.frames if f.init]

    def set_checkpoint(self, path: str | None) -> None:
        self.checkpoint = os.path.abspath(path) if path else None
        self.checkpoint_sha256 = file_sha256(path)

    def metadata(self) -> dict:
        return {
            "tracker": self.tracker,
            "params": self.params,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "source": self.source,
            "reinitialisations": self.reinitialisations,
            "frames": len(self.frames),
            "compute": self.compute,
        }


@dataclasses.dataclass(frozen=True)
class PackedMask:
    """A frame-sized mask kept for a run as the PNG of its cut (mask > threshold) inside its
    bounding box: a few kB a frame instead of a frame of floats (0.57 MB at 768x576), so a
    SiamMask run's memory stays flat however long it runs."""

    shape: tuple[int, int]
    x: int = 0
    y: int = 0
    png: bytes | None = None  # None: nothing above the threshold

    @classmethod
    def pack(cls, mask: np.ndarray, threshold: float) -> PackedMask:
        cut = np.asarray(mask) > threshold
        shape = cut.shape[:2]
        ys, xs = np.nonzero(cut)
        if len(xs) == 0:
            return cls(shape)
        x0, y0 = int(xs.min()), int(ys.min())
        crop = cut[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1].astype(np.uint8) * 255
        ok, buf = cv2.imencode(".png", crop, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ValueError("cannot encode a mask")
        return cls(shape, x0, y0, buf.tobytes())

    def unpack(self) -> np.ndarray:
        """The cut mask, frame-sized, as booleans."""
        out = np.zeros(self.shape, bool)
        if self.png is not None:
            crop = cv2.imdecode(np.frombuffer(self.png, np.uint8), cv2.IMREAD_GRAYSCALE) > 127
            out[self.y : self.y + crop.shape[0], self.x : self.x + crop.shape[1]] = crop
        return out

    @property
    def nbytes(self) -> int:
        return len(self.png or b"")


#: a kept score map is at most this many cells a side (a redraw or an export needs no more)
KEPT_SCORE_MAP_SIDE = 64


def slim(result: TrackResult) -> tuple[TrackResult, PackedMask | None]:
    """The parts of a result an export or a redraw needs, kept per frame for a run: no channel
    maps, no intermediate arrays; the mask packed (see PackedMask)."""
    packed = None if result.mask is None else PackedMask.pack(result.mask, result.mask_threshold)
    # arrays in `extra` are the tracker's intermediates (SiamMask's 127x127 float mask crop): not drawn
    extra = {k: v for k, v in result.extra.items() if not isinstance(v, np.ndarray)}
    score_map = result.score_map
    if score_map is not None and max(score_map.shape[:2]) > KEPT_SCORE_MAP_SIDE:
        # SiamFC-type maps are their 17x17 response upsampled to 272x272 (290 kB a frame); a smaller
        # copy draws over the same score extent (the overlays place a map by its extent, not its size)
        h, w = score_map.shape[:2]
        f = KEPT_SCORE_MAP_SIDE / max(h, w)
        score_map = cv2.resize(
            np.asarray(score_map, np.float32),
            (max(1, round(w * f)), max(1, round(h * f))),
            interpolation=cv2.INTER_AREA,
        )
    return dataclasses.replace(result, channels=[], mask=None, extra=extra, score_map=score_map), packed


def with_mask(result: TrackResult | None, packed: PackedMask | None) -> TrackResult | None:
    """A kept result with its mask unpacked again (booleans: drawn where > 0.5)."""
    if result is None or packed is None:
        return result
    return dataclasses.replace(result, mask=packed.unpack(), mask_threshold=0.5)


def write_otb(path: str, boxes) -> None:
    """One 'x,y,w,h' line per frame (OTB results convention: the first line is the init box).
    Written to a temporary file renamed into place: a failed write leaves `path` as it was."""
    with atomic_write(path) as f:
        for b in boxes:
            # NaN (no box: target absent / tracker not started) is written as 'nan', as OTB/GOT files do
            f.write(
                ",".join(
                    "nan" if v != v else f"{v:.4f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v)) for v in b
                )
                + "\n"
            )


def read_boxes(path: str):
    """Read 'x,y,w,h' lines (commas, tabs or spaces); 'nan' lines are kept as NaN."""
    import numpy as np

    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append([float(v) for v in line.replace("\t", ",").replace(" ", ",").split(",") if v != ""][:4])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def write_csv(path: str, run: RunRecord) -> None:
    stages = sorted({k for f in run.frames for k in f.timings})
    with atomic_write(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "x", "y", "w", "h", "score", "state", "init"] + [f"{s}_ms" for s in stages])
        for r in run.frames:
            w.writerow(
                [r.frame, *(f"{v:.4f}" for v in r.box), f"{r.score:.6f}", r.state, int(r.init)]
                + [r.timings.get(s, "") for s in stages]
            )


def _paths_both_ways(path: str, data: dict) -> None:
    """The source and checkpoint as absolute paths, and relative to the results file (what still
    finds them when the folder holding both is moved); names that are not files stay as they are."""
    base = os.path.dirname(os.path.abspath(path))
    relative = {}
    for key in ("source", "checkpoint"):
        value = data.get(key)
        if isinstance(value, str) and value and os.path.exists(value):
            data[key] = os.path.abspath(value)
            try:
                relative[key] = os.path.relpath(data[key], base)
            except ValueError:  # another drive (Windows): no relative path
                pass
    data["relative_to_this_file"] = relative


def write_json(path: str, run: RunRecord) -> None:
    data = run.metadata()
    _paths_both_ways(path, data)
    data["results"] = [dataclasses.asdict(r) for r in run.frames]
    with atomic_write(path) as f:
        json.dump(data, f, indent=1)


def export_results(path: str, run: RunRecord, inputs=()) -> None:
    """Write by extension: .txt -> OTB boxes, .csv, .json. Raises OSError on a path that cannot or
    must not be written (checked first: never the run's source or checkpoint, never its ground truth
    -- the files found beside the source and any in `inputs` --, never a device) and on a failed
    write, which leaves whatever was at `path` untouched."""
    from .groundtruth import annotation_inputs

    check_output(
        path,
        RESULT_EXTS,
        inputs=(run.source, run.checkpoint, *annotation_inputs(run.source), *inputs),
        what="results file",
    )
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        write_csv(path, run)
    elif ext == ".json":
        write_json(path, run)
    else:
        write_otb(path, [r.box for r in run.frames])
