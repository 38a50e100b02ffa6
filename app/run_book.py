"""The run being recorded: every tracked frame kept for export (RunStore, app/export.py), a new run
whenever the tracker, its checkpoint or the source changes, and re-initialisations by a drawn box,
which ask first when they would throw later frames of the run away."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QStatusBar

from trackers.run.run_store import RunStore

from .message_bar import MessageBar
from .video_view import VideoView
from .worker_protocol import FramePacket, SourceInfo, TrackerInfo


class RunBook(QObject):
    def __init__(
        self,
        worker,
        video: VideoView,
        messages: MessageBar,
        status_bar: QStatusBar,
        show_message: Callable,
        return_focus: Callable[[], None],
        params: Callable[[], dict],
        compute: Callable[[], dict],
        parent=None,
    ):
        """`params()`: the tracker's parameter values now; `compute()`: the compute policy, described
        (both recorded with a new run)."""
        super().__init__(parent)
        self.worker, self.video, self.messages, self.status_bar = worker, video, messages, status_bar
        self._params, self._compute = params, compute
        self.show_message, self.return_focus = show_message, return_focus
        self.store = RunStore()
        self.pending_reinit: tuple | None = None  # (box, frame) awaiting "discard later frames?"

    def new_source(self) -> None:
        self.store = RunStore()

    def record(self, p: FramePacket, tracker: TrackerInfo | None, source: SourceInfo | None) -> bool:
        """Record a tracked frame; True when it began a new run (the first init of a tracker,
        checkpoint and source)."""
        if p.result is None or p.kind not in ("init", "track"):
            return False
        began = False
        if p.kind == "init":
            began = self._begin_run_if_needed(tracker, source)
            self.video.set_user_box(None)
            if self.messages.level == "info":
                self.messages.hide()  # "draw a box, press Start" is done with
                self.status_bar.clearMessage()
        self.store.add(p.index, p.frame, p.result, init=p.kind == "init", jpeg=p.jpeg)
        return began

    def _begin_run_if_needed(self, info: TrackerInfo | None, src: SourceInfo | None) -> bool:
        rec = self.store.record
        if info is None or src is None:
            return False
        if (
            rec is None
            or rec.tracker != info.name
            or self.store.source_spec != src.spec
            or rec.checkpoint != (os.path.abspath(info.checkpoint) if info.checkpoint else None)
        ):
            self.store.start(
                info.name,
                self._params(),
                info.checkpoint,
                src.spec,
                str(src.name),
                src.fps,
                src.is_live,
                checkpoint_sha256=info.checkpoint_sha256,
                compute=dict(self._compute(), engine=info.engine, engine_choice=info.engine_choice),
            )
            return True
        return False

    def set_param(self, name: str, value) -> None:
        """A parameter edited in the panel: the tracker uses it from the next frame, and the run
        records the values now."""
        self.worker.set_param(name, value)
        self.store.set_params(self._params())

    def box_drawn(self, box: tuple, tracking: bool, drawn: FramePacket | None) -> None:
        """A box was dragged on the video: while a run is paused it re-initialises the tracker on the
        frame on screen; otherwise it waits for Start."""
        if tracking and drawn is not None:
            # when the run went past this frame, re-initialising throws its later frames away: ask
            # first, in place
            index = drawn.index
            later = sorted(k for k in self.store.results if k > index)
            if later:
                self.pending_reinit = (box, index)
                self.show_message(
                    "warning",
                    f"Re-initialising on frame {index} discards frames {later[0]}–"
                    f"{later[-1]} of this run ({len(later)} frames).",
                    actions=[
                        ("Discard them and restart here", self.confirm_reinit),
                        ("Keep the run", self.cancel_reinit),
                    ],
                )
                return
            self.worker.init_box(box, index, play=False)
        else:
            self.show_message(
                "info",
                f"Box {box[0]:.0f},{box[1]:.0f} {box[2]:.0f}x{box[3]:.0f}: "
                "adjust it with its handles, then press Start",
            )

    def confirm_reinit(self) -> None:
        pending, self.pending_reinit = self.pending_reinit, None
        self.messages.hide()
        if pending is not None:
            self.worker.init_box(pending[0], pending[1], play=False)
        self.return_focus()

    def cancel_reinit(self) -> None:
        self.pending_reinit = None
        self.video.set_user_box(None)
        self.show_message("info", "Kept the run; the drawn box is dropped")
        self.return_focus()
