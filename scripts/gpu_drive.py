"""Drive the real main window on a device for N tracked frames, with the score map blended over the
video and the channel grid drawing, and write what happened as JSON (.ci/gpu-check runs it on CUDA).

    QT_QPA_PLATFORM=offscreen python -m scripts.gpu_drive --device cuda --frames 300 --out gui.json

The window is the one a person uses: the device is picked in its device box, the tracker in its
picker, the box set on its video view, Start pressed through `start_tracking`. bag.avi has 195
frames to track, so when the run reaches the last frame the window seeks back to frame 0 and plays
on (the tracker restarts there from that frame's box, as a person's seek does) until N frames are
tracked. Recorded: tracked and drawn frames, how many heatmap and channel-grid redraws showed a
network output, the window's own fps figure, wall time, and torch's peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SIAMSCOPE_SHARED", os.path.join(ROOT, "..", "shared"))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m scripts.gpu_drive", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--video", default=os.path.join(SHARED, "data", "videos", "bag.avi"))
    p.add_argument("--tracker", default="nanotrack-v2")
    p.add_argument("--weights", default=os.path.join(SHARED, "models", "nanotrack", "nanotrackv2.pth"))
    p.add_argument("--box", default="292.23,128.36,145.96,132.47", help="x,y,w,h on the first frame")
    p.add_argument("--frames", type=int, default=300, help="tracked frames to reach")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--timeout", type=float, default=240.0)
    return p.parse_args(argv)


def drive(args) -> dict:
    import pyqtgraph as pg
    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.worker_protocol import FramePacket

    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    settings = QSettings(os.path.join(tempfile.mkdtemp(prefix="siamscope-gpu-"), "s.ini"), QSettings.IniFormat)
    settings.setValue("ask_before_closing", False)  # a script: no one is there to answer
    window = MainWindow(settings=settings)
    window.resize(1500, 920)
    window.show()
    deadline = time.monotonic() + args.timeout

    def wait(cond, what):
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}; last message: {window.messages.text!r}")
            app.processEvents()
            time.sleep(0.002)

    i = window.device_combo.findData(args.device)
    if i < 0:
        raise RuntimeError(
            f"the window offers no device {args.device!r} "
            f"(it offers {[window.device_combo.itemData(k) for k in range(window.device_combo.count())]})"
        )
    window.device_combo.setCurrentIndex(i)
    window.select_tracker(args.tracker, args.weights)
    window.open_source(args.video)
    wait(
        lambda: (
            window.drawn_packet is not None
            and window.tracker_info is not None
            and window.tracker_info.device == args.device
        ),
        f"the video and {args.tracker} on {args.device}",
    )
    window.heat_check.setChecked(True)
    counts = {"heatmap": 0, "channels": 0, "channel_maps": 0}
    heat_set, grid_set = window.heatmap.set_result, window.channels.set_result

    def heat_counted(result, frame=None):
        if result is not None and result.score_map is not None:
            counts["heatmap"] += 1
        heat_set(result, frame)

    def grid_counted(result, frame=None):
        if result is not None and result.channels:
            counts["channels"] += 1
            counts["channel_maps"] = max(counts["channel_maps"], sum(c.maps.shape[0] for c in result.channels))
        grid_set(result, frame)

    # count what the window hands its views (the views themselves draw as always)
    window.heatmap.set_result, window.channels.set_result = heat_counted, grid_counted
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    window.video.set_user_box(tuple(float(v) for v in args.box.split(",")))
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))  # as fast as it tracks
    tracked = {"n": 0, "fps": []}
    received = window.packets_received

    def on_packet(p):
        if p.kind == "track" and p.result is not None:
            tracked["n"] += 1

    window.worker.on(FramePacket, on_packet)  # a second handler of the worker's frame events
    t0 = time.perf_counter()
    drawn0 = window.packets_drawn
    window.start_tracking()
    wait(lambda: window.tracking and window.playing, "tracking to start")
    last = window.source_info.frame_count - 1
    loops = 0
    while tracked["n"] < args.frames:
        wait(lambda: tracked["n"] >= args.frames or not window.playing, f"{args.frames} tracked frames")
        if tracked["n"] >= args.frames:
            break
        # the video ended: back to frame 0, play on (the tracker restarts from that frame's box)
        if window.track_fps:
            tracked["fps"].append(round(window.track_fps, 1))
        loops += 1
        window.seek(0)
        window.set_playing(True)
        wait(lambda: window.playing, "playing again after the seek")
    wall = time.perf_counter() - t0
    if window.track_fps:
        tracked["fps"].append(round(window.track_fps, 1))
    window.set_playing(False)
    barrier = window.worker.sync()
    wait(lambda: window.synced >= barrier and not window.playing and window.drawn_packet is window.latest, "the pause")
    out = {
        "device": args.device,
        "tracker": window.tracker_info.name,
        "tracker_device": window.tracker_info.device,
        "tracked_frames": tracked["n"],
        "loops_back_to_frame_0": loops,
        "last_frame": last,
        "packets_received": window.packets_received - received,
        "packets_drawn": window.packets_drawn - drawn0,
        "heatmap_results_drawn": counts["heatmap"],
        "channel_grid_results_drawn": counts["channels"],
        "channel_maps_per_frame": counts["channel_maps"],
        "heatmap_blended_on_video": window.heat_check.isChecked(),
        "window_fps": tracked["fps"],
        "wall_s": round(wall, 2),
        "wall_fps": round(tracked["n"] / wall, 1) if wall > 0 else None,
        "message": window.messages.text if window.messages.isVisible() else "",
    }
    if args.device.startswith("cuda"):
        out["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out["gpu"] = torch.cuda.get_device_name(0)
    window.close()
    app.processEvents()
    return out


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = drive(args)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out))
    ok = (
        out["tracked_frames"] >= args.frames
        and out["heatmap_results_drawn"] > 0
        and out["channel_grid_results_drawn"] > 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
