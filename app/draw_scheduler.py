"""Drawing the latest frame without falling behind or starving the event loop.

The window hands every packet to `submit()`; only the newest one waiting is drawn (a packet that
arrives while another waits replaces it). A draw runs as a few event-loop passes (the video; the
heatmap; the channel grid; the timeline), each followed by its repaint, so no single pass blocks
the event loop for long. The pause between draws adapts to what a draw (and the repaints it
causes) costs, so drawing takes at most a set share of the GUI thread:

* a third (DRAW_SHARE) while the display keeps up with the packets (playback at the video's
  speed, stepping, seeking): every frame of a 25 fps video is drawn;
* a tenth (OUTPACED_DRAW_SHARE) while the worker outpaces the display (speed "max": several
  packets superseded per draw). Drawing holds the GIL for most of its time (pyqtgraph paints in
  Python), and every millisecond of it is one the tracker's own Python waits for; at a third,
  NanoTrack (then ~430 fps) tracked 0.72x as fast in the app as in `track` (`bench --gui`), at a
  tenth 0.87x-0.94x, with some four to eight redraws a second on the 2-core machine.

The worker never waits for a draw: it tracks the next frame meanwhile (its network runs without
the GIL), and the frames it tracks while a draw runs are recorded and superseded, not queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

MIN_DRAW_INTERVAL_MS = 30  # at most ~33 redraws a second
MAX_DRAW_INTERVAL_MS = 500
DRAW_SHARE = 1 / 3  # of the GUI thread's time, while the display keeps up
OUTPACED_DRAW_SHARE = 0.1  # ... while the worker outpaces it (see the module's docstring)
#: packets superseded before a draw from which the worker counts as outpacing the display
OUTPACED_SUPERSEDED = 2


class DrawScheduler(QObject):
    def __init__(self, passes_for: Callable[[object], list], parent=None):
        """`passes_for(packet)` gives the draw of one packet as a list of callables, run in order."""
        super().__init__(parent)
        self._passes_for = passes_for
        self._pending = None
        self._closing = False
        self._draw_started_at = 0.0
        self.draw_cost_ms = 0.0  # wall time of a draw's passes (smoothed)
        # GUI-thread CPU time from one draw's start to the next one's (smoothed): the draw, the
        # repaints it causes (pyqtgraph paints after the passes have run) and the packets handled
        # meanwhile; None while nothing was drawn just before (an idle gap is not a draw's cost)
        self.cycle_cpu_ms = 0.0
        self._cycle_cpu_at: float | None = None
        self.superseded = 0  # packets replaced unseen since the last draw started
        self.outpaced = False  # whether the last draw found the worker outpacing the display
        self.display_timer = QTimer(self, singleShot=True, interval=MIN_DRAW_INTERVAL_MS)
        self.display_timer.timeout.connect(self._draw_cycle)
        self.display_timer.start()

    def submit(self, packet) -> None:
        if self._pending is not None:
            self.superseded += 1
        self._pending = packet

    def forget_results(self, strip: Callable[[object], object]) -> None:
        """The run changed: the packet waiting to be drawn is drawn as `strip(packet)` (its frame
        without the old run's result)."""
        if self._pending is not None:
            self._pending = strip(self._pending)

    def stop(self) -> None:
        self._closing = True
        self.display_timer.stop()

    def _draw_cycle(self) -> None:
        if self._closing:
            return
        p, self._pending = self._pending, None
        if p is None:
            self._cycle_cpu_at = None
            self.display_timer.start(MIN_DRAW_INTERVAL_MS)
            return
        self._draw_started_at = time.perf_counter()
        cpu = time.thread_time()
        if self._cycle_cpu_at is not None:
            cycle = (cpu - self._cycle_cpu_at) * 1e3
            self.cycle_cpu_ms = cycle if self.cycle_cpu_ms == 0 else 0.7 * self.cycle_cpu_ms + 0.3 * cycle
        self._cycle_cpu_at = cpu
        self.outpaced, self.superseded = self.superseded >= OUTPACED_SUPERSEDED, 0
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
        self.display_timer.start(int(min(MAX_DRAW_INTERVAL_MS, max(MIN_DRAW_INTERVAL_MS, self.pause_after_draw_ms()))))

    def pause_after_draw_ms(self) -> float:
        """The pause after a draw that keeps drawing to its share of the GUI thread's time: a draw
        cycle's GUI CPU (or, before one is measured, the draw's own wall time) over the share, less
        the time the draw itself took."""
        share = OUTPACED_DRAW_SHARE if self.outpaced else DRAW_SHARE
        cost = max(self.cycle_cpu_ms, self.draw_cost_ms) if self.outpaced else self.draw_cost_ms
        return cost / share - self.draw_cost_ms

    @property
    def pending(self) -> object | None:
        return self._pending
