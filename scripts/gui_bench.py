"""The app's tracking speed, measured by driving the real window (used by `python main.py bench --gui`).

`python -m scripts.gui_bench SOURCE --tracker NAME --box x,y,w,h [--weights F] [--engine E] [--threads N]`
opens the window (offscreen with QT_QPA_PLATFORM=offscreen), loads the tracker, puts the box on the
first frame, sets speed "max", shows the heatmap on the video and the channel grid, presses Start
and waits for the end of the video. It prints one JSON line: tracked frames per second of wall time
between the first and the last tracked frame the window received (what a user sees), how many of
them were drawn, the engine and the thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from trackers.core.compute import prepare_environment

prepare_environment()


def _wait(app, condition, timeout_s: float) -> bool:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    timer = QTimer(interval=20)
    timer.timeout.connect(lambda: loop.quit() if condition() else None)
    deadline = QTimer(singleShot=True, interval=int(timeout_s * 1000))
    deadline.timeout.connect(loop.quit)
    timer.start()
    deadline.start()
    if not condition():
        loop.exec()
    timer.stop()
    deadline.stop()
    return condition()


def measure(
    source: str,
    tracker: str,
    box,
    weights=None,
    engine: str = "auto",
    threads: int = 0,
    heatmap: bool = True,
    channels: bool = True,
    timeout_s: float = 170.0,
) -> dict:
    import pyqtgraph as pg
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.transport import SPEEDS
    from app.worker_protocol import FramePacket

    pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(os.path.join(tmp, "siamscope.ini"), QSettings.IniFormat)
        settings.setValue("compute/threads", int(threads))
        settings.setValue("engine", engine)
        settings.setValue("ask_before_closing", False)  # a benchmark's run is not the user's work
        window = MainWindow(settings=settings)
        window.resize(1400, 880)
        window.show()
        arrivals: list[float] = []
        track_ms: list[float] = []

        def on_frame(p):
            if p.kind == "track":
                arrivals.append(time.perf_counter())
                track_ms.append(p.track_ms)

        window.worker.on(FramePacket, on_frame)
        try:
            window.select_tracker(tracker, weights)
            window.open_source(source)
            if not _wait(
                app,
                lambda: (
                    window.drawn_packet is not None
                    and window.tracker_info is not None
                    and window.tracker_info.name == tracker
                ),
                120,
            ):
                raise RuntimeError(f"the window did not load {tracker} and {source}: {window.messages.label.text()}")
            window.speed_combo.setCurrentIndex([v for _, v in SPEEDS].index(0.0))
            window.heat_check.setChecked(heatmap)
            window.channels_action.setChecked(channels)
            window.video.set_user_box(tuple(box))
            window.start_tracking()
            _wait(app, lambda: window.tracking, 30)
            # done: playback stopped at the end of the video, every packet drawn or superseded
            finished = _wait(
                app,
                lambda: (
                    window.tracking
                    and not window.playing
                    and arrivals
                    and window.latest is not None
                    and window.latest.kind == "track"
                    and window.draws.pending is None
                ),
                timeout_s,
            )
            if not finished or len(arrivals) < 2:
                raise RuntimeError(f"tracking did not finish ({len(arrivals)} frames): {window.messages.label.text()}")
            n = len(arrivals)
            # fps: as `track` counts it (frames / time inside tracker.track()), the figure the app
            # shows; wall_fps: tracked frames per second of wall time, decoding and drawing included
            return {
                "fps": 1000.0 * n / sum(track_ms),
                "wall_fps": (n - 1) / (arrivals[-1] - arrivals[0]),
                "frames": n,
                "drawn": window.packets_drawn,
                "engine": window.tracker_info.engine,
                "threads": window.compute_policy.threads,
                "channels_in_results": bool(window.latest.result.channels),
            }
        finally:
            window.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.gui_bench", description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("--tracker", required=True)
    p.add_argument("--box", required=True)
    p.add_argument("--weights")
    p.add_argument("--engine", default="auto", choices=["auto", "torch", "onnxruntime"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-heatmap", action="store_true", help="leave the heatmap off the video (diagnosis)")
    p.add_argument("--no-channels", action="store_true", help="hide the channel grid (diagnosis)")
    args = p.parse_args(argv)
    box = [float(v) for v in args.box.split(",")]
    try:
        result = measure(
            args.source,
            args.tracker,
            box,
            args.weights,
            args.engine,
            args.threads,
            heatmap=not args.no_heatmap,
            channels=not args.no_channels,
        )
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
