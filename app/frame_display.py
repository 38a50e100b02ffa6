"""What the window shows of each frame the worker sends: the video with its boxes and ground truth,
the status line, the seek bar, the score map, the channel grid and the timeline.

Packets arrive with `receive()`; the DrawScheduler (app/draw_scheduler.py) decides when to draw and
draws only the latest, so drawing skips frames rather than falling behind. This module says what
one draw is: `passes()`, run by the scheduler one event-loop pass at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from trackers.core.base import TrackResult
from trackers.run.groundtruth import GroundTruth, RunningScore, iou_by_frame, score_so_far
from trackers.run.run_store import RunStore

from .draw_scheduler import DrawScheduler
from .inspect_views import ChannelGrid, HeatmapView, Timeline
from .transport import SeekBar
from .video_view import VideoView
from .worker_protocol import FramePacket, SourceInfo

TIMELINE_INTERVAL_S = 0.25  # the timeline (axes re-laid out as it scrolls) redraws at most 4 times a second


class FrameDisplay(QObject):
    #: a packet was drawn (its frame index)
    drawn = Signal(int)

    def __init__(
        self,
        worker,
        video: VideoView,
        heatmap: HeatmapView,
        channels: ChannelGrid,
        timeline: Timeline,
        info: QLabel,
        seek_bar: SeekBar,
        store: Callable[[], RunStore],
        groundtruth: Callable[[], GroundTruth | None],
        source_info: Callable[[], SourceInfo | None],
        playing: Callable[[], bool],
        parent=None,
    ):
        super().__init__(parent)
        self.worker = worker
        self.video, self.heatmap, self.channels, self.timeline = video, heatmap, channels, timeline
        self.info, self.seek_bar = info, seek_bar
        self._store, self._groundtruth, self._source_info, self._playing = store, groundtruth, source_info, playing
        self.latest: FramePacket | None = None  # last packet received
        self.drawn_packet: FramePacket | None = None  # last packet drawn
        self.current_index = -1
        self.packets_received = 0
        self.packets_drawn = 0
        self.track_fps = 0.0
        self.track_ms = 0.0
        self.run_score: RunningScore | None = None  # mean IoU / AUC so far against the ground truth
        self._timeline_version = -1
        self._timeline_drawn_at = 0.0
        self._channels_shown = True
        # whether the tracker should copy the channel maps out: while the grid is on screen (the
        # window widens this to "while its tab exists" on a laptop screen, so a tab switch finds them)
        self.channels_wanted: Callable[[], bool] = lambda: (
            self.channels.isVisible() and not self.channels.visibleRegion().isEmpty()
        )
        # draws the latest packet only, at a pace that leaves the event loop responsive
        self.draws = DrawScheduler(self.passes, self)

    def receive(self, p: FramePacket) -> None:
        """Every packet counts towards the speed shown; only the latest waits to be drawn."""
        self.packets_received += 1
        self.latest = p
        if p.result is not None and p.kind == "track" and p.track_ms > 0:
            # smooth the time per frame, then invert (averaging fps would overweight fast frames)
            self.track_ms = p.track_ms if self.track_ms == 0 else 0.9 * self.track_ms + 0.1 * p.track_ms
            self.track_fps = 1000.0 / self.track_ms
        self.draws.submit(p)

    def new_run(self) -> None:
        """The run changed (a new source, a new tracker): the timeline is drawn afresh."""
        self._timeline_version = -1

    def clear_run(self) -> None:
        """A new source, a new tracker or a failed load: nothing of the old run stays on screen (its
        score map, channels, confidence curve, state badge, status line, box on the video)."""
        self.new_run()
        self.track_fps = self.track_ms = 0.0
        self.run_score = None
        self.heatmap.clear()
        self.channels.clear()
        self.timeline.clear()
        self.video.set_result(None)
        # the frame on screen (and one waiting to be drawn) stay, as frames of no run
        self.draws.forget_results(_without_result)
        if self.latest is not None and self.latest.result is not None:
            stripped = _without_result(self.latest)
            self.drawn_packet = stripped if self.drawn_packet is self.latest else self.drawn_packet
            self.latest = stripped
        if self.drawn_packet is not None and self.drawn_packet.result is not None:
            self.drawn_packet = _without_result(self.drawn_packet)
        self.info.setText(self._info_text(self.drawn_packet, None, None) if self.drawn_packet is not None else "")

    @staticmethod
    def state_of(p: FramePacket, result: TrackResult | None) -> str | None:
        """The one tracking state of a drawn frame: the badge and the status line both show it."""
        if result is None:
            return None
        return "init" if p.kind == "init" else result.state.value

    def result_for(self, p: FramePacket) -> TrackResult | None:
        if p.result is not None:
            return p.result
        return self._store().result(p.index)  # a frame of this run seen again (seek / step back)

    def passes(self, p: FramePacket) -> list:
        """The draw of one packet, as passes for the DrawScheduler."""
        result = self.result_for(p)
        passes = [lambda: self._draw_video(p, result)]
        # the views show this frame's network output, or mark what they hold as another frame's
        # (a seek, a frame played without tracking, an init, which runs no search)
        if p.result is not None and p.result.score_map is not None:
            passes.append(lambda: self.heatmap.set_result(p.result, p.index))
        else:
            passes.append(lambda: self.heatmap.mark_stale(p.index))
        if p.result is not None and (p.result.channels or p.kind == "track"):
            passes.append(lambda: self.channels.set_result(p.result, p.index))
        else:
            passes.append(lambda: self.channels.mark_stale(p.index))
        passes.append(lambda: self._finish_draw(p, result))
        return passes

    def set_heatmap_on_video(self, on: bool) -> None:
        """The score map blended over the video, or not; the frame on screen is redrawn."""
        self.video.show_heatmap = on
        if self.drawn_packet is not None:
            self.video.set_result(self.result_for(self.drawn_packet))

    def redraw_groundtruth(self) -> None:
        """The ground truth changed: its box on the frame on screen, and the timeline's IoU."""
        self._timeline_version = -1
        if self.drawn_packet is not None:
            self._draw_groundtruth(self.drawn_packet.index)
            self.refresh_timeline(force=True)

    def refresh_timeline(self, force: bool = False) -> None:
        """The timeline for the frame on screen (at once with `force`, else at most every 0.25 s)."""
        if self.drawn_packet is not None:
            self._refresh_timeline(self.drawn_packet, self.result_for(self.drawn_packet), force)

    def sync_channels_shown(self, shown: bool) -> None:
        """Hidden (View menu) or collapsed (splitter): the tracker stops copying the maps out."""
        if shown != self._channels_shown:
            self._channels_shown = shown
            self.worker.set_channels_visible(shown)

    def _draw_groundtruth(self, index: int) -> None:
        gt = self._groundtruth()
        self.video.set_groundtruth(gt.box(index) if gt is not None else None)

    def _draw_video(self, p: FramePacket, result: TrackResult | None) -> None:
        self.video.set_frame(p.rgb)
        self.video.set_result(result)
        self._draw_groundtruth(p.index)
        self.seek_bar.show_frame(p.index)
        state = self.state_of(p, result)
        self.info.setText(self._info_text(p, result, state))
        self.timeline.set_state(state)  # with the status line, not with the (slower) timeline

    def _finish_draw(self, p: FramePacket, result: TrackResult | None) -> None:
        self.sync_channels_shown(self.channels_wanted())
        self._refresh_timeline(p, result)
        self.current_index = p.index
        self.drawn_packet = p
        self.packets_drawn += 1
        self.drawn.emit(p.index)

    def _refresh_timeline(self, p: FramePacket, result: TrackResult | None, force: bool = False) -> None:
        now = time.perf_counter()
        store = self._store()
        changed = store.version != self._timeline_version or p.index != self.current_index
        if not force and not (changed and (now - self._timeline_drawn_at > TIMELINE_INTERVAL_S or not self._playing())):
            return
        self._timeline_version = store.version
        self._timeline_drawn_at = now
        frames = store.record.frames if store.record is not None else []
        state = self.state_of(p, result)
        ious, summary, self.run_score = {}, "", None
        gt = self._groundtruth()
        if gt is not None:
            pred = {f.frame: f.box for f in frames}
            ious = iou_by_frame(pred, gt)
            self.run_score = score_so_far(pred, gt)
            if self.run_score is not None:
                here = f"IoU {ious[p.index]:.2f} here · " if p.index in ious else ""
                summary = (
                    f"{here}mean IoU {self.run_score.mean_iou:.3f} · AUC {self.run_score.auc:.3f} "
                    f"over {self.run_score.frames} frames (magenta: IoU with the ground truth)"
                )
            else:
                summary = "ground truth attached: no frame scored yet"
        self.timeline.set_ious(ious, summary)
        self.timeline.set_run(frames, p.index, state)

    def _info_text(self, p: FramePacket, result: TrackResult | None, state: str | None) -> str:
        parts = [f"frame {p.index}"]
        if result is not None:
            # the state first, as the badge says it (the line is cut at its end on a narrow window)
            if state not in (None, "tracking"):
                parts.append(state.upper())
            # "confidence": the chosen cell before penalty and window (the score map's caption gives
            # the peak after them, which is a different, usually lower, number)
            parts.append(f"confidence {result.score:.3f}")
        gt = self._groundtruth()
        if result is not None and gt is not None:
            truth = gt.box(p.index)
            parts.append(
                "IoU "
                + (f"{iou_by_frame({p.index: result.box}, gt)[p.index]:.2f}" if truth is not None else "– (no truth)")
            )
        if p.kind == "track":
            parts.append(f"{self.track_fps:5.1f} fps (mean)")
            stages = " ".join(f"{k} {v:.1f}" for k, v in p.result.timings.items())
            parts.append(f"{p.track_ms:.1f} ms ({stages})" if stages else f"{p.track_ms:.1f} ms")
        source = self._source_info()
        if source is not None and source.is_live:
            parts.append(f"dropped {p.dropped}")
        return "  ·  ".join(parts)


def _without_result(p: FramePacket) -> FramePacket:
    return FramePacket(p.index, p.frame, None, dropped=p.dropped, jpeg=p.jpeg) if p.result is not None else p
