"""Drawing the latest frame without falling behind or starving the event loop.

The window hands every packet to `submit()`; only the newest one waiting is drawn (a packet that
arrives while another waits replaces it). A draw runs as a few event-loop passes (the video; the
heatmap; the channel grid; the timeline), each followed by its repaint, so no single pass blocks
the event loop for long. The pause between draws adapts to what a draw (and the repaints it
causes) costs, so drawing takes at most about a third of the GUI thread on a slow machine.

The worker never waits for a draw: it tracks the next frame meanwhile (its network runs without
the GIL), and the frames it tracks while a draw runs are recorded and superseded, not queued.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

from PySide6.QtCore import QObject, QTimer

MIN_DRAW_INTERVAL_MS = 30        # at most ~33 redraws a second
MAX_DRAW_INTERVAL_MS = 500


class DrawScheduler(QObject):
    def __init__(self, passes_for: Callable[[object], list], parent=None):
        """`passes_for(packet)` gives the draw of one packet as a list of callables, run in order."""
        super().__init__(parent)
        self._passes_for = passes_for
        self._pending = None
        self._closing = False
        self._draw_started_at = 0.0
        self.draw_cost_ms = 0.0
        self.display_timer = QTimer(self, singleShot=True, interval=MIN_DRAW_INTERVAL_MS)
        self.display_timer.timeout.connect(self._draw_cycle)
        self.display_timer.start()

    def submit(self, packet) -> None:
        self._pending = packet

    def stop(self) -> None:
        self._closing = True
        self.display_timer.stop()

    def _draw_cycle(self) -> None:
        if self._closing:
            return
        p, self._pending = self._pending, None
        if p is None:
            self.display_timer.start(MIN_DRAW_INTERVAL_MS)
            return
        self._draw_started_at = time.perf_counter()
        self._run_passes(self._passes_for(p))

    def _run_passes(self, passes: list) -> None:
        if self._closing or not passes:
            self._after_draw()
            return
        try:
            passes[0]()
        finally:
            # the next pass runs once the event loop is free again, after this pass's repaint
            QTimer.singleShot(0, lambda: self._run_passes(passes[1:]))

    def _after_draw(self) -> None:
        if self._closing:
            return
        cost = (time.perf_counter() - self._draw_started_at) * 1e3
        self.draw_cost_ms = cost if self.draw_cost_ms == 0 else 0.7 * self.draw_cost_ms + 0.3 * cost
        self.display_timer.start(int(min(MAX_DRAW_INTERVAL_MS, max(MIN_DRAW_INTERVAL_MS, 2 * self.draw_cost_ms))))

    @property
    def pending(self) -> Optional[object]:
        return self._pending
