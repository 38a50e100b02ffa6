"""Raw results in the layouts the official toolkits read, written so a run can resume.

- `otb` (pysot, OTB, LaSOT, UAV123, TrackingNet's server): RESULTS/<tracker>/<seq>.txt, one
  'x,y,w,h' line per frame, the first being the init box; RESULTS/<tracker>/<seq>_time.txt, seconds
  per frame.
- `got10k` (the GOT-10k toolkit and server): RESULTS/<tracker>/<seq>/<seq>_001.txt (boxes) and
  <seq>_time.txt.

Beside the boxes, <seq>_confidence.value (the VOT long-term toolkit's name) holds the tracker's
confidence per frame, which the long-term precision / recall needs.

Resuming: a (tracker, sequence) pair whose box file exists with one line per frame, every box
finite or NaN with no negative size, and the init frame's box present (equal to the init box where
the caller gives it), is finished and is read back instead of run again; anything else (a file
cut short, damaged or edited) is run again and overwritten.

Every result path is `safe_relpath`-checked inside the results folder (links followed): a sequence
name from an annotation file that is absolute, holds `..`, or meets a planted link leading out is
one EvalError before anything is tracked or written. Every file is written to a temporary name in the same folder
and moved into place with os.replace, boxes last, so an interrupted run never leaves a
half-written file and never a box file without its companions.
"""

from __future__ import annotations

import os

import numpy as np

from ..run.results import read_boxes, write_otb
from ..run.safe_output import UnsafePathError, commit, discard, safe_relpath, temp_path_for
from ..run.sequences import EvalError
from .eval_jobs import JobResult

FORMATS = ("otb", "got10k")


def paths(root: str, fmt: str, tracker: str, seq: str) -> dict[str, str]:
    """The result files of (tracker, seq) under root; EvalError when a name would lead out of root."""
    if fmt == "got10k":
        rel = {
            "boxes": f"{tracker}/{seq}/{seq}_001.txt",
            "time": f"{tracker}/{seq}/{seq}_time.txt",
            "confidence": f"{tracker}/{seq}/{seq}_confidence.value",
        }
    elif fmt == "otb":
        rel = {
            "boxes": f"{tracker}/{seq}.txt",
            "time": f"{tracker}/{seq}_time.txt",
            "confidence": f"{tracker}/{seq}_confidence.value",
        }
    else:
        raise ValueError(f"unknown result format {fmt!r} (one of {', '.join(FORMATS)})")
    try:
        safe_relpath(tracker, "tracker name")
        safe_relpath(seq, "sequence name")
        return {
            k: os.path.join(root, safe_relpath(v, f"result file of {tracker} x {seq}", root)) for k, v in rel.items()
        }
    except UnsafePathError as e:
        raise EvalError(str(e)) from None


def atomic_write(path: str, write) -> None:
    """write(tmp_path) then rename onto `path` (trackers/run/safe_output.py's temporary file and
    commit): readers see the old file or the whole new one; a failed write is one line naming it."""
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        try:
            write(tmp)
            commit(tmp, path)
        except OSError as e:
            from ..run.safe_output import OutputError, write_failed

            raise (e if isinstance(e, OutputError) else write_failed(path, e)) from None
    except BaseException:
        discard(tmp)
        raise


def _write_values(path: str, values) -> None:
    with open(path, "w") as f:
        for v in values:
            f.write("nan\n" if v != v else f"{v:.6f}\n")


def _read_values(path: str) -> np.ndarray:
    with open(path) as f:
        return np.asarray([float(line) for line in f if line.strip()], dtype=np.float64)


def write_result(root: str, fmt: str, result: JobResult) -> str:
    p = paths(root, fmt, result.tracker, result.sequence)
    atomic_write(p["time"], lambda t: _write_values(t, result.times))
    atomic_write(p["confidence"], lambda t: _write_values(t, result.scores))
    atomic_write(p["boxes"], lambda t: write_otb(t, result.boxes))  # last: its presence means finished
    return p["boxes"]


def finished(boxes: np.ndarray, n_frames: int, start: int, init_box=None) -> bool:
    """Whether boxes read back are a whole run: one row per frame, no infinity, no negative size,
    the init frame's box present (and equal to `init_box` where given, to within rounding)."""
    if boxes.shape != (n_frames, 4) or not 0 <= start < n_frames:
        return False
    if np.isinf(boxes).any() or (boxes[:, 2:] < 0).any():  # NaN compares False: absent rows pass
        return False
    if not np.isfinite(boxes[start]).all():
        return False
    return init_box is None or bool(np.allclose(boxes[start], np.asarray(init_box, np.float64), atol=0.01))


def read_result(
    root: str, fmt: str, tracker: str, seq: str, n_frames: int, start: int, init_box=None
) -> JobResult | None:
    """The finished result of (tracker, seq) under `root`, or None when there is none to reuse (no box
    file, one of another length -- a run with another --max-frames --, or one damaged: see `finished`)."""
    p = paths(root, fmt, tracker, seq)
    if not os.path.isfile(p["boxes"]):
        return None
    try:
        boxes = read_boxes(p["boxes"])
    except (OSError, ValueError):
        return None
    if not finished(boxes, n_frames, start, init_box):
        return None
    times = np.full(n_frames, np.nan)
    scores = np.full(n_frames, np.nan)
    for key, arr in (("time", times), ("confidence", scores)):
        try:
            vals = _read_values(p[key])
        except (OSError, ValueError):
            continue  # published results often come without them
        if len(vals) == n_frames:
            arr[:] = vals
    return JobResult(tracker, seq, boxes, scores, times, start)
