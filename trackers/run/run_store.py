"""What a run keeps, frame by frame, for export: Qt-free, next to the session's results.

`RunStore` keeps every tracked frame's result (without the bulky per-channel maps) and the run's
`RunRecord`, so a finished run is exported without re-tracking (the window's video export,
app/export.py, re-reads the frames from the source and draws the kept results); a camera cannot be
re-read, so its frames are kept JPEG-encoded while tracking. Results files are written by
`trackers.run.results.export_results` (OTB txt / CSV / JSON by extension). `bench --soak` keeps the
same per frame, to measure what a long run costs in memory.
"""

from __future__ import annotations

import os

import numpy as np

from ..core.base import TrackResult
from .annotate import encode_jpeg
from .results import FrameLog, RunRecord, export_results, slim, with_mask

#: at most this many camera frames are kept for a video export (about 10 minutes at 30 fps)
LIVE_FRAME_LIMIT = 18000


class RunStore:
    """One tracking run: the record (tracker, params, checkpoint, source, per-frame rows) and the
    per-frame results for drawing."""

    def __init__(self):
        self.record: RunRecord | None = None
        self.results: FrameLog = FrameLog()  # frame index -> slim TrackResult
        self.masks: FrameLog = FrameLog()  # frame index -> PackedMask (trackers that give one)
        self.live_frames: FrameLog = FrameLog()  # frame index -> JPEG bytes (a camera's frames)
        self.source_spec = None
        self.source_fps = 25.0
        self.is_live = False
        self.version = 0  # bumps on every change (the timeline redraws when it moves)

    def start(
        self,
        tracker: str,
        params: dict,
        checkpoint: str | None,
        source_spec,
        source_name: str,
        fps: float,
        is_live: bool,
        checkpoint_sha256: str | None = None,
        compute: dict | None = None,
    ) -> None:
        self.record = RunRecord(tracker=tracker, params=dict(params), source=source_name, compute=dict(compute or {}))
        if checkpoint_sha256 is not None:  # hashed already where it was loaded (off the GUI thread)
            self.record.checkpoint = os.path.abspath(checkpoint) if checkpoint else None
            self.record.checkpoint_sha256 = checkpoint_sha256
        else:
            self.record.set_checkpoint(checkpoint)
        self.results = FrameLog()
        self.masks = FrameLog()
        self.live_frames = FrameLog()
        self.source_spec, self.source_fps, self.is_live = source_spec, fps, is_live
        self.version += 1

    def add(self, index: int, frame: np.ndarray, result: TrackResult, init: bool, jpeg: bytes | None = None) -> None:
        if self.record is None:
            return
        if init:
            self.record.add_init(index, result.box)
        else:
            self.record.add(index, result)
        kept, packed = slim(result)
        self.results.put(index, kept)  # re-tracking replaces what followed
        self.masks.drop_after(index)
        if packed is not None:
            self.masks[index] = packed
        else:
            self.masks.pop(index, None)
        self.live_frames.drop_after(index)
        if self.is_live and len(self.live_frames) < LIVE_FRAME_LIMIT:
            jpeg = jpeg if jpeg is not None else encode_jpeg(frame)
            if jpeg is not None:
                self.live_frames[index] = jpeg
        self.version += 1

    def result(self, index: int) -> TrackResult | None:
        """The kept result of frame `index` (mask unpacked), or None."""
        return with_mask(self.results.get(index), self.masks.get(index))

    def set_params(self, params: dict) -> None:
        if self.record is not None:
            self.record.params = dict(params)

    def frame_range(self) -> tuple[int, int] | None:
        if not self.results:
            return None
        return min(self.results), max(self.results)

    def export_results(self, path: str, inputs=()) -> None:
        """Write the results file; OSError (unwritable path, full disk, one of `inputs` such as the
        attached ground truth) propagates, the run stays."""
        if self.record is None or not self.record.frames:
            raise ValueError("nothing to export yet: track some frames first")
        export_results(path, self.record, inputs)
