"""What a run keeps for export, and the exports themselves.

`RunStore` keeps every tracked frame's result (without the bulky per-channel maps) and the run's
`RunRecord`, so a finished run is exported without re-tracking: the annotated video re-reads the
frames from the source and draws the kept results (`trackers.annotate.draw_result`); a camera
cannot be re-read, so its frames are kept JPEG-encoded while tracking. Results files are written
by `trackers.results.export_results` (OTB txt / CSV / JSON by extension).
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import Optional

import cv2
import numpy as np
from PySide6.QtCore import QThread, Signal

from trackers.annotate import decode_jpeg, draw_result, encode_jpeg
from trackers.base import TrackResult
from trackers.cli import check_written_video, open_video_writer
from trackers.results import FrameLog, RunRecord, export_results
from trackers.sources import SourceError, open_source

#: at most this many camera frames are kept for a video export (about 10 minutes at 30 fps)
LIVE_FRAME_LIMIT = 18000


def slim(result: TrackResult) -> TrackResult:
    """The parts of a result an export draws: no channel maps, the mask as booleans."""
    mask = None if result.mask is None else (np.asarray(result.mask) > 0.5)
    return dataclasses.replace(result, channels=[], mask=mask)


class RunStore:
    """One tracking run: the record (tracker, params, checkpoint, source, per-frame rows) and the
    per-frame results for drawing."""

    def __init__(self):
        self.record: Optional[RunRecord] = None
        self.results: FrameLog = FrameLog()        # frame index -> slim TrackResult
        self.live_frames: FrameLog = FrameLog()    # frame index -> JPEG bytes (a camera's frames)
        self.source_spec = None
        self.source_fps = 25.0
        self.is_live = False
        self.version = 0          # bumps on every change (the timeline redraws when it moves)

    def start(self, tracker: str, params: dict, checkpoint: Optional[str], source_spec, source_name: str,
              fps: float, is_live: bool, checkpoint_sha256: Optional[str] = None) -> None:
        self.record = RunRecord(tracker=tracker, params=dict(params), source=source_name)
        if checkpoint_sha256 is not None:    # hashed already where it was loaded (off the GUI thread)
            self.record.checkpoint = os.path.abspath(checkpoint) if checkpoint else None
            self.record.checkpoint_sha256 = checkpoint_sha256
        else:
            self.record.set_checkpoint(checkpoint)
        self.results = FrameLog()
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
        self.results.put(index, slim(result))       # re-tracking replaces what followed
        self.live_frames.drop_after(index)
        if self.is_live and len(self.live_frames) < LIVE_FRAME_LIMIT:
            jpeg = jpeg if jpeg is not None else encode_jpeg(frame)
            if jpeg is not None:
                self.live_frames[index] = jpeg
        self.version += 1

    def set_params(self, params: dict) -> None:
        if self.record is not None:
            self.record.params = dict(params)

    def frame_range(self) -> Optional[tuple[int, int]]:
        if not self.results:
            return None
        return min(self.results), max(self.results)

    def export_results(self, path: str) -> None:
        """Write the results file; OSError (unwritable path, full disk) propagates, the run stays."""
        if self.record is None or not self.record.frames:
            raise ValueError("nothing to export yet: track some frames first")
        export_results(path, self.record)


class VideoExportJob(QThread):
    """Writes the annotated video of a finished (or running) run on its own thread."""

    progress = Signal(int, int)          # frames written, frames in all
    done = Signal(bool, str)             # ok, message

    def __init__(self, store: RunStore, path: str, heatmap: bool = False, parent=None):
        super().__init__(parent)
        rng = store.frame_range()
        if rng is None:
            raise ValueError("nothing to export yet: track some frames first")
        self.path = path
        self.heatmap = heatmap
        self.first, self.last = rng
        self.results = dict(store.results)        # a snapshot: tracking may go on meanwhile
        self.live_frames = dict(store.live_frames)
        self.source_spec = store.source_spec
        self.fps = store.source_fps
        self.is_live = store.is_live
        self._cancel = threading.Event()
        self.written = 0

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
        writer = None
        try:
            for i, frame in self._frames():
                if self._cancel.is_set():
                    break
                if writer is None:
                    H, W = frame.shape[:2]
                    writer = open_video_writer(self.path, self.fps, (W, H))
                writer.write(draw_result(frame, self.results.get(i), i, heatmap=self.heatmap))
                self.written += 1
                self.progress.emit(self.written, total)
        except (OSError, SourceError, cv2.error) as e:
            self._finish(writer, False, f"Video export failed: {e}")
            return
        if self._cancel.is_set():
            self._finish(writer, False, "Video export cancelled")
            return
        self._finish(writer, True, f"Wrote {self.written} frames to {self.path}")

    def _finish(self, writer, ok: bool, message: str) -> None:
        if writer is not None:
            writer.release()
        if ok:
            try:
                check_written_video(self.path, self.written)
            except OSError as e:
                ok, message = False, f"Video export failed: {e}; the run's results are kept"
        if not ok:
            self._remove_partial()
        self.done.emit(ok, message)

    def _remove_partial(self) -> None:
        if os.path.lexists(self.path):
            try:
                os.remove(self.path)    # no half-written file left behind
            except OSError:
                pass
