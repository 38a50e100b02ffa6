"""What a run keeps for export, and the exports themselves.

`RunStore` keeps every tracked frame's result (without the bulky per-channel maps) and the run's
`RunRecord`, so a finished run is exported without re-tracking: the annotated video re-reads the
frames from the source and draws the kept results (`trackers.run.annotate.draw_result`); a camera
cannot be re-read, so its frames are kept JPEG-encoded while tracking. Results files are written
by `trackers.run.results.export_results` (OTB txt / CSV / JSON by extension).
"""
from __future__ import annotations

import os
import threading
from typing import Optional

import cv2
import numpy as np
from PySide6.QtCore import QThread, Signal

from trackers.run.annotate import decode_jpeg, draw_result, encode_jpeg
from trackers.core.base import TrackResult
from trackers.run.results import FrameLog, RunRecord, export_results, slim, with_mask
from trackers.run.safe_output import VIDEO_EXTS, check_output
from trackers.run.video_io import AtomicVideoWriter
from trackers.run.sources import SourceError, open_source

#: at most this many camera frames are kept for a video export (about 10 minutes at 30 fps)
LIVE_FRAME_LIMIT = 18000


class RunStore:
    """One tracking run: the record (tracker, params, checkpoint, source, per-frame rows) and the
    per-frame results for drawing."""

    def __init__(self):
        self.record: Optional[RunRecord] = None
        self.results: FrameLog = FrameLog()        # frame index -> slim TrackResult
        self.masks: FrameLog = FrameLog()          # frame index -> PackedMask (trackers that give one)
        self.live_frames: FrameLog = FrameLog()    # frame index -> JPEG bytes (a camera's frames)
        self.source_spec = None
        self.source_fps = 25.0
        self.is_live = False
        self.version = 0          # bumps on every change (the timeline redraws when it moves)

    def start(self, tracker: str, params: dict, checkpoint: Optional[str], source_spec, source_name: str,
              fps: float, is_live: bool, checkpoint_sha256: Optional[str] = None,
              compute: Optional[dict] = None) -> None:
        self.record = RunRecord(tracker=tracker, params=dict(params), source=source_name, compute=dict(compute or {}))
        if checkpoint_sha256 is not None:    # hashed already where it was loaded (off the GUI thread)
            self.record.checkpoint = os.path.abspath(checkpoint) if checkpoint else None
            self.record.checkpoint_sha256 = checkpoint_sha256
        else:
            self.record.set_checkpoint(checkpoint)
        self.results = FrameLog()
        self.masks = FrameLog()
        self.live_frames = FrameLog()
        self.source_spec, self.source_fps, self.is_live = source_spec, fps, is_live
        self.version += 1

    def add(self, index: int, frame: np.ndarray, result: TrackResult, init: bool,
            jpeg: Optional[bytes] = None) -> None:
        if self.record is None:
            return
        if init:
            self.record.add_init(index, result.box)
        else:
            self.record.add(index, result)
        kept, packed = slim(result)
        self.results.put(index, kept)               # re-tracking replaces what followed
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

    def result(self, index: int) -> Optional[TrackResult]:
        """The kept result of frame `index` (mask unpacked), or None."""
        return with_mask(self.results.get(index), self.masks.get(index))

    def set_params(self, params: dict) -> None:
        if self.record is not None:
            self.record.params = dict(params)

    def frame_range(self) -> Optional[tuple[int, int]]:
        if not self.results:
            return None
        return min(self.results), max(self.results)

    def export_results(self, path: str, inputs=()) -> None:
        """Write the results file; OSError (unwritable path, full disk, one of `inputs` such as the
        attached ground truth) propagates, the run stays."""
        if self.record is None or not self.record.frames:
            raise ValueError("nothing to export yet: track some frames first")
        export_results(path, self.record, inputs)


class VideoExportJob(QThread):
    """Writes the annotated video of a finished (or running) run on its own thread.

    The path is checked when the job is made (OSError: never the source or the checkpoint, never
    a device or a folder); frames go to a temporary file renamed over the path only once the whole
    video reads back, so a failed or cancelled export leaves whatever was at the path untouched."""

    progress = Signal(int, int)          # frames written, frames in all
    done = Signal(bool, str)             # ok, message

    def __init__(self, store: RunStore, path: str, heatmap: bool = False, parent=None):
        super().__init__(parent)
        rng = store.frame_range()
        if rng is None:
            raise ValueError("nothing to export yet: track some frames first")
        record = store.record
        check_output(path, VIDEO_EXTS, inputs=(store.source_spec if isinstance(store.source_spec, str) else None,
                                               record.checkpoint if record else None), what="video")
        self.path = path
        self.heatmap = heatmap
        self.first, self.last = rng
        self.results = dict(store.results)        # a snapshot: tracking may go on meanwhile
        self.masks = dict(store.masks)
        self.live_frames = dict(store.live_frames)
        self.source_spec = store.source_spec
        self.fps = store.source_fps
        self.is_live = store.is_live
        self._cancel = threading.Event()
        self.written = 0
        # (ok, message) once the job has ended, set before `done` is emitted: whoever started the
        # job can read it after the fact (a failing job may end before anyone waits on `done`)
        self.outcome: Optional[tuple[bool, str]] = None

    def cancel(self) -> None:
        self._cancel.set()

    def _frames(self):
        if self.is_live:
            for i in range(self.first, self.last + 1):
                if i in self.live_frames:
                    yield i, decode_jpeg(self.live_frames[i])
            return
        source = open_source(self.source_spec)
        try:
            if self.first:
                source.seek(self.first)
            for i in range(self.first, self.last + 1):
                frame = source.read()
                if frame is None:
                    return
                yield i, frame
        finally:
            source.close()

    def run(self) -> None:
        total = (len(self.live_frames) if self.is_live else self.last - self.first + 1)
        writer: Optional[AtomicVideoWriter] = None
        try:
            for i, frame in self._frames():
                if self._cancel.is_set():
                    break
                if writer is None:
                    H, W = frame.shape[:2]
                    writer = AtomicVideoWriter(self.path, self.fps, (W, H))
                writer.write(draw_result(frame, with_mask(self.results.get(i), self.masks.get(i)), i,
                                         heatmap=self.heatmap))
                self.written += 1
                self.progress.emit(self.written, total)
            if self._cancel.is_set():
                raise _Cancelled
            if writer is None:
                raise SourceError("the source gave no frames to export")
            if self.written < total:
                raise SourceError(f"the source gave only {self.written} of the run's {total} frames "
                                  "(moved, changed or truncated since tracking?)")
            writer.finish()           # read back whole, then renamed over the path
            writer = None
        except _Cancelled:
            self._fail(writer, "Video export cancelled; nothing was written")
            return
        except (OSError, SourceError, cv2.error) as e:
            self._fail(writer, f"Video export failed: {e}")
            return
        self._end(True, f"Wrote {self.written} frames to {self.path}")

    def _fail(self, writer: Optional[AtomicVideoWriter], message: str) -> None:
        if writer is not None:
            writer.abort()            # only its own temporary file goes; the path is untouched
        self._end(False, message)

    def _end(self, ok: bool, message: str) -> None:
        self.outcome = (ok, message)
        self.done.emit(ok, message)


class _Cancelled(Exception):
    pass
