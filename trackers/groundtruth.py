"""Ground-truth annotation files, read headless (the app draws them beside the tracker's box).

Layouts read:
- OTB: `<seq>/groundtruth_rect.txt` (or `groundtruth.txt`), one `x,y,w,h` line per frame, the
  numbers separated by commas, tabs or spaces (OTB mixes them);
- GOT-10k: `<seq>/groundtruth.txt` `x,y,w,h`; `absence.label` (one 0/1 per frame) marks frames
  where the target is absent; test sequences carry the first frame's box only;
- LaSOT: `<seq>/groundtruth.txt` `x,y,w,h`; `full_occlusion.txt` and `out_of_view.txt` (one
  comma-separated 0/1 line) mark absent frames;
- VOT: 8 numbers a line (a rotated rectangle): its axis-aligned bounding box is used.

A frame without a box -- a `NaN` row, an empty line, a row with no area, a frame past the file's
end, or one marked absent -- has no ground truth, and is left out of IoU and AUC (as in
`trackers.metrics`). A line that is not numbers is an error naming the file and line.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional

import numpy as np

from . import metrics

#: file names tried in a sequence folder, in order
GT_NAMES = ("groundtruth.txt", "groundtruth_rect.txt", "groundtruth_rect.1.txt")
_SPLIT = re.compile(r"[,\s;]+")


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read; the message names the file (and line)."""


@dataclasses.dataclass
class GroundTruth:
    boxes: np.ndarray          # (N, 4) x, y, w, h; NaN rows where the target has no box
    path: str
    layout: str                # "OTB", "GOT-10k", "LaSOT", "VOT polygon"

    def __len__(self) -> int:
        return len(self.boxes)

    def box(self, frame: int) -> Optional[tuple[float, float, float, float]]:
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


def _parse_line(line: str, path: str, number: int) -> np.ndarray:
    text = line.strip()
    if not text:
        return np.full(4, np.nan)
    parts = [p for p in _SPLIT.split(text) if p]
    try:
        values = np.array([float(p) for p in parts], np.float64)
    except ValueError:
        raise GroundTruthError(f"{path}, line {number}: expected x,y,w,h numbers, got {text[:60]!r}") from None
    if len(values) == 4:
        return values
    if len(values) == 8:           # VOT rotated rectangle x1,y1,...,x4,y4: its bounding box
        xs, ys = values[0::2], values[1::2]
        return np.array([xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()])
    raise GroundTruthError(f"{path}, line {number}: expected 4 numbers (x,y,w,h) or 8 (a polygon), "
                           f"got {len(values)}")


def _flags(path: str, n: int) -> Optional[np.ndarray]:
    """0/1 flags, one per frame, as LaSOT (one comma-separated line) and GOT-10k (one a line) write them."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        text = f.read()
    try:
        values = [int(float(v)) for v in _SPLIT.split(text.strip()) if v]
    except ValueError:
        raise GroundTruthError(f"{path}: expected 0/1 flags") from None
    flags = np.zeros(n, bool)
    m = min(n, len(values))
    flags[:m] = np.asarray(values[:m]) != 0
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
    polygon = any(len([p for p in _SPLIT.split(line.strip()) if p]) == 8 for line in lines[:5])
    folder = os.path.dirname(os.path.abspath(path))
    layout = "VOT polygon" if polygon else "OTB"
    absent = np.zeros(len(boxes), bool)
    for name, lay in (("full_occlusion.txt", "LaSOT"), ("out_of_view.txt", "LaSOT"), ("absence.label", "GOT-10k")):
        flags = _flags(os.path.join(folder, name), len(boxes))
        if flags is not None:
            absent |= flags
            layout = lay
    if layout == "OTB" and os.path.basename(path) == "groundtruth.txt" and \
            os.path.isfile(os.path.join(folder, "meta_info.ini")):
        layout = "GOT-10k"
    boxes[absent] = np.nan
    return GroundTruth(boxes, os.path.abspath(path), layout)


def find_groundtruth(source: str) -> Optional[str]:
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


def iou_by_frame(pred: dict[int, tuple], gt: GroundTruth) -> dict[int, float]:
    """{frame: IoU of the tracker's box with the truth} for the frames that have both."""
    frames = [f for f in sorted(pred) if gt.box(f) is not None]
    if not frames:
        return {}
    overlaps = metrics.iou(np.array([pred[f] for f in frames], np.float64), gt.boxes[frames])
    return dict(zip(frames, (float(v) for v in overlaps)))


@dataclasses.dataclass
class RunningScore:
    frames: int            # frames scored (tracked, with a ground-truth box)
    mean_iou: float
    auc: float             # OTB success AUC over those frames (trackers.metrics)


def score_so_far(pred: dict[int, tuple], gt: GroundTruth) -> Optional[RunningScore]:
    """Mean IoU and success AUC over the frames tracked so far that have a ground-truth box."""
    frames = [f for f in sorted(pred) if gt.box(f) is not None]
    if not frames:
        return None
    p = np.array([pred[f] for f in frames], np.float64)
    g = gt.boxes[frames]
    score = metrics.score_sequence(p, g)
    return RunningScore(len(frames), float(metrics.iou(p, g).mean()), score.auc)
