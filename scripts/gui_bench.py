"""The app's tracking speed, measured by driving the real window (used by `python main.py bench --gui`).

`python -m scripts.gui_bench SOURCE --tracker NAME --box x,y,w,h [--weights F] [--engine E] [--threads N]`
opens the window (offscreen with QT_QPA_PLATFORM=offscreen), loads the tracker, puts the box on the
first frame, sets speed "max", shows the heatmap on the video and the channel grid, presses Start
and waits for the end of the video. It prints one JSON line: tracked frames per second of wall time
between the first and the last tracked frame the window received (what a user sees), how many of
them were drawn, the engine and the thread count.

`--boxes FILE` (`id,x,y,w,h` a line, as `track --boxes` reads it) instead of `--box`: every target
is put on the first frame before playing (the first as the drawn box, the others as a user adds
them: Shift+drag, trackers/run/track_set.py), so the window shows them all (boxes, list, curves).
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
    more_boxes=(),
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
            if more_boxes:
                # every target on the first frame, then play: the window shows them all from frame 1
                window.worker.init_box(tuple(box), window.drawn_packet.index, play=False)
                _wait(app, lambda: window.tracking, 30)
                track_set = window.targets.track_set()
                for k, extra in enumerate(more_boxes, 2):
                    # what Shift+drag does: the request, then its box; one at a time, as a user adds them
                    # (an init applies every request queued before it)
                    track_set.request_add()
                    window.worker.init_box(tuple(extra), window.drawn_packet.index, play=False)
                    if not _wait(app, lambda k=k: track_set.count == k and len(track_set.snapshot) == k, 60):
                        raise RuntimeError(f"the window took {track_set.count} of {k} targets")
                window.set_playing(True)
            else:
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
                "targets": len(window.targets.views) or 1,
            }
        finally:
            window.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.gui_bench", description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("--tracker", required=True)
    targets = p.add_mutually_exclusive_group(required=True)
    targets.add_argument("--box")
    targets.add_argument("--boxes", help="several targets: id,x,y,w,h a line (as `track --boxes`)")
    p.add_argument("--weights")
    p.add_argument("--engine", default="auto", choices=["auto", "torch", "onnxruntime"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-heatmap", action="store_true", help="leave the heatmap off the video (diagnosis)")
    p.add_argument("--no-channels", action="store_true", help="hide the channel grid (diagnosis)")
    args = p.parse_args(argv)
    if args.boxes:
        from trackers.tools.track_multi import parse_boxes_file

        boxes = [b for _, b, _ in sorted(parse_boxes_file(args.boxes))]
    else:
        boxes = [[float(v) for v in args.box.split(",")]]
    box, more = boxes[0], boxes[1:]
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
            more_boxes=more,
        )
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
