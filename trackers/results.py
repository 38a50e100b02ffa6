"""A tracking run's per-frame results and how they are written: OTB text, CSV, JSON.

The run record carries what produced it (tracker, hyper-parameters, checkpoint and its sha256,
source, re-initialisations) so an exported file can be traced back. Export works on a finished
run without re-tracking.
"""
from __future__ import annotations

import csv
import dataclasses
import errno
import hashlib
import json
import os
from typing import Optional

from .base import Box, TrackResult


def file_sha256(path: Optional[str]) -> Optional[str]:
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
    init: bool = False   # this frame (re-)initialised the tracker with a user box


@dataclasses.dataclass
class RunRecord:
    tracker: str = ""
    params: dict = dataclasses.field(default_factory=dict)
    checkpoint: Optional[str] = None
    checkpoint_sha256: Optional[str] = None
    source: str = ""
    rows: FrameLog = dataclasses.field(default_factory=FrameLog)   # frame index -> FrameRecord

    @property
    def frames(self) -> list[FrameRecord]:
        return list(self.rows.values())

    def add_init(self, frame_index: int, box: Box) -> None:
        self.rows.put(frame_index, FrameRecord(frame_index, tuple(float(v) for v in box), 1.0, "init", {}, True))

    def add(self, frame_index: int, result: TrackResult) -> None:
        self.rows.put(frame_index, FrameRecord(frame_index, tuple(float(v) for v in result.box), float(result.score),
                                               result.state.value,
                                               {k: round(v, 3) for k, v in result.timings.items()}))

    @property
    def reinitialisations(self) -> list[dict]:
        return [{"frame": f.frame, "box": list(f.box)} for f in self.frames if f.init]

    def set_checkpoint(self, path: Optional[str]) -> None:
        self.checkpoint = os.path.abspath(path) if path else None
        self.checkpoint_sha256 = file_sha256(path)

    def metadata(self) -> dict:
        return {"tracker": self.tracker, "params": self.params, "checkpoint": self.checkpoint,
                "checkpoint_sha256": self.checkpoint_sha256, "source": self.source,
                "reinitialisations": self.reinitialisations, "frames": len(self.frames)}


def write_otb(path: str, boxes) -> None:
    """One 'x,y,w,h' line per frame (OTB results convention: the first line is the init box)."""
    with open(path, "w") as f:
        for b in boxes:
            # NaN (no box: target absent / tracker not started) is written as 'nan', as OTB/GOT files do
            f.write(",".join("nan" if v != v else f"{v:.4f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))
                             for v in b) + "\n")


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
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "x", "y", "w", "h", "score", "state", "init"] + [f"{s}_ms" for s in stages])
        for r in run.frames:
            w.writerow([r.frame, *(f"{v:.4f}" for v in r.box), f"{r.score:.6f}", r.state, int(r.init)]
                       + [r.timings.get(s, "") for s in stages])


def write_json(path: str, run: RunRecord) -> None:
    data = run.metadata()
    data["results"] = [dataclasses.asdict(r) for r in run.frames]
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def export_results(path: str, run: RunRecord) -> None:
    """Write by extension: .txt -> OTB boxes, .csv, .json. Raises OSError on an unwritable path."""
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".csv":
            write_csv(path, run)
        elif ext == ".json":
            write_json(path, run)
        else:
            write_otb(path, [r.box for r in run.frames])
    except OSError as e:
        # a disk that filled up mid-write leaves a truncated file: remove it (the run is still in
        # memory). Other errors (no such folder, permission denied) happen at open(): nothing to remove.
        if e.errno in _OUT_OF_SPACE and os.path.lexists(path):
            try:
                os.remove(path)
            except OSError:
                pass
        raise
