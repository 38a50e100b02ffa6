"""The exports of a run the window kept (`trackers.run.run_store.RunStore`): the annotated video,
written on its own thread. The video re-reads the frames from the source and draws the kept results
(`trackers.run.annotate.draw_result`); a camera cannot be re-read, so its frames were kept
JPEG-encoded while tracking. Results files are written by `RunStore.export_results`
(`trackers.run.results.export_results`: OTB txt / CSV / JSON by extension).

A run that held several targets (or A/B) is drawn with every track on every frame: each box in its
colour with its id and name, B dashed (`trackers.run.multi_export.draw_tracks`).
"""

from __future__ import annotations

import threading

import cv2
from PySide6.QtCore import QThread, Signal

from trackers.run.annotate import decode_jpeg, draw_result, heatmap_overlay
from trackers.run.multi_export import draw_tracks, is_multi_track
from trackers.run.results import with_mask
from trackers.run.run_store import RunStore
from trackers.run.safe_output import VIDEO_EXTS, check_output
from trackers.run.sources import SourceError, open_source
from trackers.run.track_set import TrackView
from trackers.run.tracks import colour_of
from trackers.run.video_io import AtomicVideoWriter


class VideoExportJob(QThread):
    """Writes the annotated video of a finished (or running) run on its own thread.

    The path is checked when the job is made (OSError: never the source or the checkpoint, never
    a device or a folder); frames go to a temporary file renamed over the path only once the whole
    video reads back, so a failed or cancelled export leaves whatever was at the path untouched."""

    progress = Signal(int, int)  # frames written, frames in all
    done = Signal(bool, str)  # ok, message

    def __init__(self, store: RunStore, path: str, heatmap: bool = False, parent=None, inputs=()):
        super().__init__(parent)
        rng = store.frame_range()
        if rng is None:
            raise ValueError("nothing to export yet: track some frames first")
        record = store.record
        check_output(
            path,
            VIDEO_EXTS,
            inputs=(
                store.source_spec if isinstance(store.source_spec, str) else None,
                record.checkpoint if record else None,
                *inputs,  # the attached ground truth
            ),
            what="video",
        )
        self.path = path
        self.heatmap = heatmap
        self.first, self.last = rng
        self.results = dict(store.results)  # a snapshot: tracking may go on meanwhile
        self.masks = dict(store.masks)
        self.live_frames = dict(store.live_frames)
        self.source_spec = store.source_spec
        self.fps = store.source_fps
        self.is_live = store.is_live
        # several targets on some frame: every frame is drawn with every track it has
        self.multi = is_multi_track(self.results)
        self.tracker_name = record.tracker if record is not None else ""
        self._cancel = threading.Event()
        self.written = 0
        # (ok, message) once the job has ended, set before `done` is emitted: whoever started the
        # job can read it after the fact (a failing job may end before anyone waits on `done`)
        self.outcome: tuple[bool, str] | None = None

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

    def annotate(self, frame, i: int):
        result = with_mask(self.results.get(i), self.masks.get(i))
        if not self.multi:
            return draw_result(frame, result, i, heatmap=self.heatmap)
        if result is None:
            return draw_tracks(frame, (), {}, i)
        views = result.extra.get("tracks") or (
            TrackView(1, "1", self.tracker_name, colour_of(1), "solid", result),  # target 1 alone on this frame
        )
        base = heatmap_overlay(frame, result) if self.heatmap else frame  # the selected target's map
        return draw_tracks(base, views, {v.id: v.result for v in views}, i)

    def run(self) -> None:
        total = len(self.live_frames) if self.is_live else self.last - self.first + 1
        writer: AtomicVideoWriter | None = None
        try:
            for i, frame in self._frames():
                if self._cancel.is_set():
                    break
                if writer is None:
                    H, W = frame.shape[:2]
                    writer = AtomicVideoWriter(self.path, self.fps, (W, H))
                writer.write(self.annotate(frame, i))
                self.written += 1
                self.progress.emit(self.written, total)
            if self._cancel.is_set():
                raise _Cancelled
            if writer is None:
                raise SourceError("the source gave no frames to export")
            if self.written < total:
                raise SourceError(
                    f"the source gave only {self.written} of the run's {total} frames "
                    "(moved, changed or truncated since tracking?)"
                )
            writer.finish()  # read back whole, then renamed over the path
            writer = None
        except _Cancelled:
            self._fail(writer, "Video export cancelled; nothing was written")
            return
        except (OSError, SourceError, cv2.error) as e:
            self._fail(writer, f"Video export failed: {e}")
            return
        self._end(True, f"Wrote {self.written} frames to {self.path}")

    def _fail(self, writer: AtomicVideoWriter | None, message: str) -> None:
        if writer is not None:
            writer.abort()  # only its own temporary file goes; the path is untouched
        self._end(False, message)

    def _end(self, ok: bool, message: str) -> None:
        self.outcome = (ok, message)
        self.done.emit(ok, message)


class _Cancelled(Exception):
    pass
