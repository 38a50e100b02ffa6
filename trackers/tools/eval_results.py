"""Raw results in the layouts the official toolkits read, written so a run can resume.

- `otb` (pysot, OTB, LaSOT, UAV123, TrackingNet's server): RESULTS/<tracker>/<seq>.txt, one
  'x,y,w,h' line per frame, the first being the init box; RESULTS/<tracker>/<seq>_time.txt, seconds
  per frame.
- `got10k` (the GOT-10k toolkit and server): RESULTS/<tracker>/<seq>/<seq>_001.txt (boxes) and
  <seq>_time.txt.

Beside the boxes, <seq>_confidence.value (the VOT long-term toolkit's name) holds the tracker's
confidence per frame, which the long-term precision / recall needs.

Resuming: a (tracker, sequence) pair whose box file exists with one line per frame is finished and
is read back instead of run again. Every file is written to a temporary name in the same folder
and moved into place with os.replace, boxes last, so an interrupted run never leaves a
half-written file and never a box file without its companions.
"""
from __future__ import annotations

import os
import tempfile
from typing import Optional

import numpy as np

from .eval_jobs import JobResult
from ..run.results import read_boxes, write_otb

FORMATS = ("otb", "got10k")


def _file_mode() -> int:
    # mkstemp creates 0600 files; a result or report gets the mode open() would have given it
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def paths(root: str, fmt: str, tracker: str, seq: str) -> dict[str, str]:
    if fmt == "got10k":
        d = os.path.join(root, tracker, seq)
        boxes = os.path.join(d, f"{seq}_001.txt")
    elif fmt == "otb":
        d = os.path.join(root, tracker)
        boxes = os.path.join(d, f"{seq}.txt")
    else:
        raise ValueError(f"unknown result format {fmt!r} (one of {', '.join(FORMATS)})")
    return {"boxes": boxes, "time": os.path.join(d, f"{seq}_time.txt"),
            "confidence": os.path.join(d, f"{seq}_confidence.value")}


def atomic_write(path: str, write) -> None:
    """write(tmp_path) then os.replace onto `path`: readers see the old file or the whole new one."""
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part", dir=d)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
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
    atomic_write(p["boxes"], lambda t: write_otb(t, result.boxes))   # last: its presence means finished
    return p["boxes"]


def read_result(root: str, fmt: str, tracker: str, seq: str, n_frames: int, start: int) -> Optional[JobResult]:
    """The finished result of (tracker, seq) under `root`, or None when there is none to reuse (no box
    file, or one of another length: a run with another --max-frames)."""
    p = paths(root, fmt, tracker, seq)
    if not os.path.isfile(p["boxes"]):
        return None
    try:
        boxes = read_boxes(p["boxes"])
    except (OSError, ValueError):
        return None
    if len(boxes) != n_frames:
        return None
    times = np.full(n_frames, np.nan)
    scores = np.full(n_frames, np.nan)
    for key, arr in (("time", times), ("confidence", scores)):
        try:
            vals = _read_values(p[key])
        except (OSError, ValueError):
            continue     # published results often come without them
        if len(vals) == n_frames:
            arr[:] = vals
    return JobResult(tracker, seq, boxes, scores, times, start)
