"""Ground-truth annotation files for one sequence, read headless (the app draws them beside the
tracker's box and scores the run against them as it goes).

The dataset loaders (trackers/tools/datasets.py) read whole benchmarks for `eval`; this module reads
the one file a person attaches to a video or finds beside a sequence folder, and its polygon and
flag readers are theirs too (here, below the tools, so the app needs nothing from `eval`). One
difference on purpose: an empty line here is a frame without a box (rows stay
aligned with frame numbers, which is what drawing per frame needs), where the loaders skip it.

Layouts read:
- OTB: `<seq>/groundtruth_rect.txt` (or `groundtruth.txt`), one `x,y,w,h` line per frame, the
  numbers separated by commas, tabs or spaces (OTB mixes them);
- GOT-10k: `<seq>/groundtruth.txt` `x,y,w,h`; `absence.label` (1 = absent) and `cover.label`
  (0 = fully covered) mark frames without a visible target; test sequences carry the first
  frame's box only;
- LaSOT: `<seq>/groundtruth.txt` `x,y,w,h`; `full_occlusion.txt` and `out_of_view.txt` (one
  comma-separated 0/1 line) mark absent frames;
- VOT: polygons (x1,y1,...,x4,y4 a line): their axis-aligned bounding boxes, as `eval` scores them.

A frame without a box -- a `NaN` row, an empty line, a row with no area, a frame past the file's
end, or one marked absent -- has no ground truth, and is left out of IoU and AUC (as in
`trackers.run.metrics`). A line that is not numbers, or a box with a negative width or height (not
"no box": a damaged file would score a perfect run), is an error naming the file and line.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from . import metrics

#: file names tried in a sequence folder, in order
GT_NAMES = ("groundtruth.txt", "groundtruth_rect.txt", "groundtruth_rect.1.txt")
_SPLIT = re.compile(r"[,\s;]+")


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read; the message names the file (and line)."""


@dataclasses.dataclass
class GroundTruth:
    boxes: np.ndarray  # (N, 4) x, y, w, h; NaN rows where the target has no box
    path: str
    layout: str  # "OTB", "GOT-10k", "LaSOT", "VOT polygon"

    def __len__(self) -> int:
        return len(self.boxes)

    def box(self, frame: int) -> tuple[float, float, float, float] | None:
        """The box of a frame, or None where there is none (absent, or past the file's end)."""
        if frame < 0 or frame >= len(self.boxes):
            return None
        b = self.boxes[frame]
        if not (np.all(np.isfinite(b)) and b[2] > 0 and b[3] > 0):
            return None
        return tuple(float(v) for v in b)

    @property
    def present(self) -> int:
        return int(metrics.valid_frames(self.boxes).sum()) if len(self.boxes) else 0


def polygon_to_rect(poly) -> tuple[float, float, float, float]:
    """A VOT polygon x1,y1,...,xk,yk as its axis-aligned bounding box x,y,w,h."""
    xs, ys = poly[0::2], poly[1::2]
    x0, y0 = min(xs), min(ys)
    return (x0, y0, max(xs) - x0, max(ys) - y0)


def read_flags(path: str) -> np.ndarray:
    """0/1 labels, one per frame: one per line (GOT-10k) or one comma-separated line (LaSOT)."""
    with open(path) as f:
        text = f.read()
    try:
        return np.asarray([int(float(v)) for v in re.split(r"[,\s]+", text.strip()) if v != ""], dtype=np.int64)
    except ValueError:
        raise GroundTruthError(f"{path}: expected 0/1 labels") from None


def _parse_line(line: str, path: str, number: int) -> np.ndarray:
    text = line.strip()
    if not text:
        return np.full(4, np.nan)
    if text.startswith("m"):
        raise GroundTruthError(
            f"{path}, line {number}: a VOT segmentation mask; only boxes and polygons can be drawn and scored"
        )
    parts = [p for p in _SPLIT.split(text) if p]
    try:
        values = np.array([float(p) for p in parts], np.float64)
    except ValueError:
        raise GroundTruthError(f"{path}, line {number}: expected x,y,w,h numbers, got {text[:60]!r}") from None
    if len(values) == 4:
        if values[2] < 0 or values[3] < 0:  # NaN compares False: an absent row stays absent
            raise GroundTruthError(
                f"{path}, line {number}: a box with a negative width or height "
                f"({text[:60]}); a box is x,y,w,h with w, h >= 0"
            )
        return values
    if len(values) >= 6 and len(values) % 2 == 0:  # VOT polygon x1,y1,...: its bounding box
        return np.array(polygon_to_rect(list(values)), np.float64)
    if len(values) == 1 and np.isnan(values[0]):  # a lone 'nan': absent
        return np.full(4, np.nan)
    raise GroundTruthError(
        f"{path}, line {number}: expected 4 numbers (x,y,w,h) or a polygon (x1,y1,...), got {len(values)}"
    )


def _flags(path: str, n: int, absent_when: int) -> np.ndarray | None:
    """(n,) bool: the frames a 0/1 label file marks absent (GOT-10k one a line, LaSOT one line)."""
    if not os.path.isfile(path):
        return None
    values = read_flags(path)
    flags = np.zeros(n, bool)
    m = min(n, len(values))
    flags[:m] = values[:m] == absent_when
    return flags


def read_groundtruth(path: str) -> GroundTruth:
    """Read a ground-truth file (or the one in a sequence folder); absent frames become NaN rows."""
    if os.path.isdir(path):
        found = find_groundtruth(path)
        if found is None:
            raise GroundTruthError(f"{path}: no {' / '.join(GT_NAMES)} in this folder or its parent")
        path = found
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise GroundTruthError(f"{path}: not a text file") from None
    except OSError as e:
        raise GroundTruthError(f"cannot read {path}: {e.strerror or e}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise GroundTruthError(f"{path}: the file is empty")
    rows = [_parse_line(line, path, i + 1) for i, line in enumerate(lines)]
    boxes = np.stack(rows)
    polygon = any(len([p for p in _SPLIT.split(line.strip()) if p]) >= 6 for line in lines[:5])
    folder = os.path.dirname(os.path.abspath(path))
    layout = "VOT polygon" if polygon else "OTB"
    absent = np.zeros(len(boxes), bool)
    # as trackers/tools/datasets.py reads them: LaSOT 1 = occluded / out of view; GOT-10k absence 1, cover 0
    for name, lay, absent_when in (
        ("full_occlusion.txt", "LaSOT", 1),
        ("out_of_view.txt", "LaSOT", 1),
        ("absence.label", "GOT-10k", 1),
        ("cover.label", "GOT-10k", 0),
    ):
        flags = _flags(os.path.join(folder, name), len(boxes), absent_when)
        if flags is not None:
            absent |= flags
            layout = lay
    if (
        layout == "OTB"
        and os.path.basename(path) == "groundtruth.txt"
        and os.path.isfile(os.path.join(folder, "meta_info.ini"))
    ):
        layout = "GOT-10k"
    boxes[absent] = np.nan
    return GroundTruth(boxes, os.path.abspath(path), layout)


def find_groundtruth(source: str) -> str | None:
    """The ground-truth file that belongs to a sequence: in the folder itself or, for an `img/`
    folder (OTB, LaSOT), in its parent; for a video file, `<name>.txt` or a ground-truth file
    beside it. None when there is none."""
    source = os.path.abspath(source)
    if os.path.isdir(source):
        folders = [source, os.path.dirname(source)]
        candidates = [os.path.join(d, n) for d in folders for n in GT_NAMES]
    else:
        stem = os.path.splitext(source)[0]
        candidates = [stem + ".txt", stem + "_groundtruth.txt"]
    return next((c for c in candidates if os.path.isfile(c)), None)


#: the label files read beside a sequence's boxes (GOT-10k, LaSOT, VOT): inputs too
LABEL_NAMES = (
    "absence.label",
    "cover.label",
    "full_occlusion.txt",
    "out_of_view.txt",
    "meta_info.ini",
    "sequence",
    "list.txt",
)


def annotation_names(source: str) -> list[str]:
    """Every ground-truth or label file name that belongs to `source`, present or not: for a folder
    its GT_NAMES and label files (and its parent's, for an `img/` folder), for a video `<name>.txt`
    and `<name>_groundtruth.txt` -- the names find_groundtruth attaches automatically."""
    source = os.path.abspath(source)
    if os.path.isdir(source):
        return [os.path.join(d, n) for d in (source, os.path.dirname(source)) for n in GT_NAMES + LABEL_NAMES]
    stem = os.path.splitext(source)[0]
    return [stem + ".txt", stem + "_groundtruth.txt"]


def annotation_inputs(source) -> list[str]:
    """The annotation files of `source` that exist: inputs, never to be written over by an output."""
    if not isinstance(source, str) or not source:
        return []
    return [p for p in annotation_names(source) if os.path.isfile(p)]


def iou_by_frame(pred: dict[int, tuple], gt: GroundTruth) -> dict[int, float]:
    """{frame: IoU of the tracker's box with the truth} for the frames that have both."""
    frames = [f for f in sorted(pred) if gt.box(f) is not None]
    if not frames:
        return {}
    overlaps = metrics.iou(np.array([pred[f] for f in frames], np.float64), gt.boxes[frames])
    return dict(zip(frames, (float(v) for v in overlaps)))


@dataclasses.dataclass
class RunningScore:
    frames: int  # frames scored (tracked, with a ground-truth box)
    mean_iou: float
    auc: float  # OTB success AUC over those frames (trackers.run.metrics)


def score_so_far(pred: dict[int, tuple], gt: GroundTruth) -> RunningScore | None:
    """Mean IoU and success AUC over the frames tracked so far that have a ground-truth box."""
    frames = [f for f in sorted(pred) if gt.box(f) is not None]
    if not frames:
        return None
    p = np.array([pred[f] for f in frames], np.float64)
    g = gt.boxes[frames]
    score = metrics.score_sequence(p, g)
    return RunningScore(len(frames), float(metrics.iou(p, g).mean()), score.auc)
