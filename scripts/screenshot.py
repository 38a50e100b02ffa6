"""Renew the README screenshot: start the app, open a video, set the box, track N frames, save the window.

    xvfb-run -s "-screen 0 1600x1000x24" python -m scripts.screenshot            # as a person sees it
    python -m scripts.screenshot --out /tmp/shot.png                              # offscreen also works
    xvfb-run -a -s "-screen 0 1920x1200x24" python -m scripts.screenshot --gallery  # the hero and the gallery

`--gallery` renews resources/screenshot.png and every image of resources/gallery/ from the GALLERY
table below, each in a fresh window, with paths relative to a scratch folder (no machine path in
any image), and records in resources/gallery/manifest.json, per image, the hash of its settings, the
app version and the image's sha256: tests/test_app_gallery.py fails when an image is stale.

Defaults: ../shared/data/videos/bag.avi, NanoTrack V2 with ../shared/models/nanotrack/nanotrackv2.pth,
the bag's first ground-truth box, 80 frames, resources/screenshot.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SIAMSCOPE_SHARED", os.path.join(ROOT, "..", "shared"))


#: every image of the docs: its path under resources/ and the script's arguments for it ({shared}/...
#: inside the scratch folder: never a machine path in the image)
GALLERY = {
    "screenshot.png": ["--heatmap", "--size", "1500x920"],
    "gallery/tracking_heatmap.png": ["--heatmap", "--size", "1280x800"],
    "gallery/groundtruth_iou.png": [
        "--size",
        "1280x800",
        "--groundtruth",
        "{shared}/bench/bag/groundtruth.txt",
        "--frames",
        "120",
    ],
    "gallery/channels_nanotrack.png": ["--size", "1280x800", "--part", "channels"],
    "gallery/model_zoo.png": ["--size", "1280x800", "--part", "zoo"],
    "gallery/laptop_1024x640.png": ["--heatmap", "--size", "1024x640"],
}
MANIFEST = os.path.join(ROOT, "resources", "gallery", "manifest.json")


def settings_hash(args: list) -> str:
    """What an image's look depends on besides the app: the script's arguments for it and its defaults."""
    import hashlib
    import json

    defaults = {a.dest: a.default for a in _parser()._actions if a.dest not in ("help", "out", "video", "weights")}
    return hashlib.sha256(json.dumps([args, sorted(defaults.items())], default=str).encode()).hexdigest()[:16]


def app_version() -> str:
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["version"]


def file_sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def gallery(only: list) -> int:
    """Each image in its own process (a fresh window, fresh settings), then the manifest."""
    import json
    import subprocess

    scratch = tempfile.mkdtemp(prefix="siamscope-gallery-")
    for sub in ("data", "models", "bench"):  # the shared data under short relative names
        os.symlink(os.path.abspath(os.path.join(SHARED, sub)), os.path.join(scratch, sub))
    entries = {}
    if os.path.isfile(MANIFEST):
        with open(MANIFEST) as f:
            entries = json.load(f).get("images", {})
    for name, args in GALLERY.items():
        if only and name not in only:
            continue
        out = os.path.join(ROOT, "resources", name)
        argv = [a.replace("{shared}/", "") for a in args]
        cmd = [
            sys.executable,
            "-m",
            "scripts.screenshot",
            *argv,
            "--out",
            out,
            "--video",
            "data/videos/bag.avi",
            "--weights",
            "models/nanotrack/nanotrackv2.pth",
        ]
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run(cmd, cwd=scratch, env=env)
        if done.returncode != 0:
            print(f"failed: {name}", file=sys.stderr)
            return done.returncode
        entries[name] = {
            "settings": args,
            "settings_hash": settings_hash(args),
            "app_version": app_version(),
            "png_sha256": file_sha256(out),
        }
    with open(MANIFEST, "w") as f:
        json.dump(
            {
                "about": "written by `python -m scripts.screenshot --gallery`; checked by tests/test_app_gallery.py",
                "images": entries,
            },
            f,
            indent=1,
            sort_keys=True,
        )
        f.write("\n")
    print(f"wrote {MANIFEST}")
    return 0


def parse_args(argv):
    return _parser().parse_args(argv)


def _parser():
    p = argparse.ArgumentParser(prog="python -m scripts.screenshot", description=__doc__.split("\n\n")[0])
    p.add_argument("--video", default=os.path.join(SHARED, "data", "videos", "bag.avi"))
    p.add_argument("--tracker", default="nanotrack-v2")
    p.add_argument("--weights", default=os.path.join(SHARED, "models", "nanotrack", "nanotrackv2.pth"))
    p.add_argument("--box", default="292.23,128.36,145.96,132.47", help="x,y,w,h on the first frame")
    p.add_argument("--frames", type=int, default=80, help="track this many frames, then pause and grab")
    p.add_argument(
        "--seek",
        type=int,
        default=-1,
        help="after the pause, seek to this frame and step once (shows how a seek within a run is handled)",
    )
    p.add_argument("--size", default="1500x920", help="window size WxH")
    p.add_argument("--heatmap", action="store_true", help="blend the score map over the video")
    p.add_argument("--pin", type=int, default=1, help="enlarge and pin the channel at this grid position (-1: none)")
    p.add_argument("--groundtruth", help="attach this ground-truth file (drawn beside the box, IoU on the timeline)")
    p.add_argument(
        "--part",
        choices=("window", "channels", "zoo"),
        default="window",
        help="grab the whole window, the channel view only, or the model-zoo dialog",
    )
    p.add_argument("--out", default=os.path.join(ROOT, "resources", "screenshot.png"))
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument(
        "--gallery",
        nargs="*",
        metavar="IMAGE",
        help="renew the hero and the gallery (or only these, e.g. gallery/model_zoo.png)",
    )
    return p


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.gallery is not None:
        return gallery(args.gallery)
    import pyqtgraph as pg
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    settings = QSettings(os.path.join(tempfile.mkdtemp(prefix="siamscope-shot-"), "s.ini"), QSettings.IniFormat)
    settings.setValue("ask_before_closing", False)  # a script: no one is there to answer
    window = MainWindow(settings=settings)
    w, h = (int(v) for v in args.size.lower().split("x"))
    window.resize(w, h)
    window.show()
    app.processEvents()
    # a laptop size is reached in two steps: the side-by-side minimum first, where the panels turn to
    # tabs, then the size asked (asked afresh: the same size asked again is not asked at all)
    window.resize(w + 1, h)
    window.resize(w, h)

    deadline = time.monotonic() + args.timeout

    def wait(cond, what):
        while not cond():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}; last message: {window.messages.text!r}")
            app.processEvents()
            time.sleep(0.005)

    window.select_tracker(args.tracker, args.weights)
    window.open_source(args.video)
    wait(lambda: window.drawn_packet is not None and window.tracker_info is not None, "the video and the tracker")
    window.heat_check.setChecked(args.heatmap)
    if args.groundtruth and not window.attach_groundtruth(args.groundtruth):
        raise SystemExit(window.messages.text)
    window.video.set_user_box(tuple(float(v) for v in args.box.split(",")))
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(1.0))
    window.start_tracking()
    wait(lambda: window.tracking and window.playing, "tracking to start")
    wait(lambda: window.current_index >= args.frames or not window.playing, f"frame {args.frames}")
    window.set_playing(False)

    def settle(what):
        barrier = window.worker.sync()  # every command so far handled, its packets drawn
        wait(lambda: window.synced >= barrier and not window.playing and window.drawn_packet is window.latest, what)

    settle("the pause")
    if args.seek >= 0:
        window.seek(args.seek)
        window.step()
        settle(f"the step after seeking to frame {args.seek}")
    if args.pin >= 0 and args.pin < len(window.channels.cells) and window.channels.cells[args.pin].key:
        window.channels.pin(window.channels.cells[args.pin].key)
    end = time.monotonic() + 0.5  # let the last redraw and repaint land
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    window.display.refresh_timeline(force=True)
    target = window
    if args.part == "channels":
        target = window.channels
    elif args.part == "zoo":
        target = window.open_model_zoo()
        target.show()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ok = target.grab().save(args.out)
    print(f"{'wrote' if ok else 'could not write'} {args.out} at frame {window.current_index}")
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
