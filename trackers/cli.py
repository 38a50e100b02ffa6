"""Headless commands: `python main.py track | trackers | bench | eval | ...`.

Same trackers, same code path as the GUI. Bad input is one line on stderr and a non-zero exit,
never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

import cv2

from . import bench, evaluate, train_cli, vot_client, zoo
from . import compute
from .base import UsageError
from .frame_range import add_frame_range_arguments, parse_frame_range

#: the commands other modules define: each module's add_parser(subparsers) adds its own
COMMAND_MODULES = (bench, evaluate, zoo, train_cli, vot_client)



def parse_box(text: str):
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise UsageError(f"--box must be x,y,w,h numbers, got {text!r}") from None
    if len(vals) != 4:
        raise UsageError(f"--box must be four numbers x,y,w,h, got {text!r}")
    return tuple(vals)


def default_tracker_name() -> str:
    """The tracker used when none is named: the project's trained default where present."""
    from trackers import registry
    names = [s.name for s in registry.all_trackers()]
    for preferred in ("siamscope-default", "nanotrack-v2"):
        if preferred in names:
            return preferred
    return names[0]


def cmd_trackers(args) -> int:
    from trackers import registry
    for spec in registry.all_trackers():
        where = registry.find_weights(spec) if spec.needs_weights else "(built in)"
        print(f"{spec.name:24s} {spec.title:44s} {where or 'checkpoint ' + spec.weights_file + ' not found'}")
    for mod, err in registry.IMPORT_ERRORS.items():
        print(f"# {mod} failed to load: {err}", file=sys.stderr)
    return 0


def cmd_track(args) -> int:
    from trackers import registry
    from trackers.annotate import draw_result
    from trackers.base import validate_box
    from trackers.results import write_otb
    from models.device import check_device, check_precision
    from trackers.session import SessionError, TrackingSession
    from trackers.sources import SourceError

    compute.apply_compute(args)
    box = parse_box(args.box)
    first, end = parse_frame_range(args.start, args.frames)
    name = args.tracker or default_tracker_name()
    registry.get(name)  # unknown names fail before the video is opened
    try:
        session = TrackingSession.open(args.source)
    except SessionError:
        raise UsageError(f"{args.source!r} has no frames") from None
    with session:
        if first:
            if session.is_live:
                raise UsageError("a camera cannot start at a later frame (--start / --frames are for files)")
            if session.seek(first) is None or session.index != first:
                raise UsageError(f"--start {first} is past the end of {args.source!r} "
                                 f"({session.source.frame_count or session.index + 1} frames)")
        validate_box(box, session.frame.shape)  # a bad box fails before the checkpoint is loaded
        check_precision(args.precision, check_device(args.device))   # so does a device this machine lacks
        tracker = registry.build(name, args.weights, args.device, engine=args.engine)
        if args.precision != "fp32":
            tracker.set_precision(args.precision)
        session.set_tracker(tracker)
        step = session.init(box)
        writer = None
        if args.video_out:
            H, W = step.frame.shape[:2]
            writer = open_video_writer(args.video_out, session.source.fps, (W, H))
            writer.write(draw_result(step.frame, step.result, step.index))
        failure: Optional[SourceError] = None
        try:
            while (end is None or session.index + 1 < end) and (step := session.advance()) is not None:
                if writer is not None:
                    writer.write(draw_result(step.frame, step.result, step.index))
                if args.verbose:
                    print(f"{step.index} " + ",".join(f"{v:.2f}" for v in step.result.box)
                          + f" {step.result.score:.4f} {step.result.state.value}")
        except SourceError as e:
            failure = e    # a damaged frame or a camera gone: keep what was tracked up to it
        boxes = list(session.boxes.values())
        if writer is not None:
            writer.release()
        if args.out:
            write_otb(args.out, boxes)
        if writer is not None:
            check_written_video(args.video_out, len(boxes))   # after --out: the boxes are kept either way
        if failure is not None:
            kept = f"; the {len(boxes)} boxes before it were written to {args.out}" if args.out else ""
            raise SourceError(f"{failure} after {len(boxes)} frames{kept}")
    n = session.tracked_frames
    print(f"tracked {n} frames with {name} ({session.tracker.engine_name})" + (f" (frames {first}-{first + n}; the first output line is frame {first})"
                                                if first else ""))
    print(f"{session.fps:.1f} fps")
    return 0


def open_video_writer(path: str, fps: float, size) -> cv2.VideoWriter:
    """An OpenCV VideoWriter for .mp4 / .avi; raises OSError when the file cannot be written."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d) or not os.access(d, os.W_OK):
        raise OSError(f"cannot write {path!r}: folder {d!r} is missing or not writable")
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.lower().endswith(".mp4") else "MJPG"))
    writer = cv2.VideoWriter(path, fourcc, fps or 25.0, size)
    if not writer.isOpened():
        raise OSError(f"cannot write video {path!r} (OpenCV could not open a writer for it)")
    return writer


def check_written_video(path: str, frames_written: int) -> None:
    """Read the finished file back and raise OSError when fewer frames come out than went in.

    OpenCV's VideoWriter.write() reports nothing (a full disk only prints FFmpeg warnings), so
    reading the file back is the one way to know the export really holds every frame."""
    cap = cv2.VideoCapture(path)
    readable = 0
    try:
        while cap.isOpened() and readable < frames_written and cap.grab():
            readable += 1
    finally:
        cap.release()
    if readable < frames_written:
        raise OSError(f"{path} holds only {readable} of the {frames_written} frames written (disk full?)")


GUI_USAGE = """the app (a window):
  python main.py                      open the window
  python main.py VIDEO_OR_FOLDER      open the window on a video file or image-sequence folder
  python main.py --camera N           open the window on camera N
In the window press ? for the keyboard shortcuts."""


def version() -> str:
    """The project's version: the installed package's, else pyproject.toml's (a plain checkout)."""
    try:
        from importlib.metadata import PackageNotFoundError, version as package_version
        return package_version("siamscope")
    except PackageNotFoundError:
        import tomllib
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "pyproject.toml"), "rb") as f:
            return tomllib.load(f)["project"]["version"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py", description="SiamScope: look inside Siamese trackers.",
                                epilog=GUI_USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"SiamScope {version()}")
    sub = p.add_subparsers(dest="command", title="headless commands (no window)")
    t = sub.add_parser("track", help="track a video or image folder without a window")
    t.add_argument("source", help="video file, image-sequence folder, or camera:N")
    t.add_argument("--tracker", help="tracker name (see `trackers`); default: the project's default tracker")
    t.add_argument("--weights", help="checkpoint file (default: found in the model folders)")
    t.add_argument("--box", required=True, help="initial box x,y,w,h in frame pixels")
    t.add_argument("--out", help="write 'x,y,w,h' per frame (first line = the init box)")
    t.add_argument("--video-out", help="write the annotated video (.mp4 or .avi)")
    add_frame_range_arguments(t, "initialise")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--precision", default="fp32", choices=["fp32", "fp16"],
                   help="the network's precision (fp16: CUDA only, faster for the larger networks)")
    compute.add_compute_arguments(t)
    t.add_argument("-v", "--verbose", action="store_true", help="print each frame's box and score")
    t.set_defaults(func=cmd_track)
    ls = sub.add_parser("trackers", help="list the trackers and their checkpoints")
    ls.set_defaults(func=cmd_trackers)
    for module in COMMAND_MODULES:
        module.add_parser(sub)
    return p


def main(argv=None) -> int:
    from models.checkpoint import CheckpointError
    from trackers.base import BoxError, EngineError
    from models.device import DeviceError
    from trackers.sources import SourceError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, BoxError, EngineError, SourceError, CheckpointError, DeviceError, KeyError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        # one line, even for a checkpoint report that lists keys on several lines
        print("error: " + " ".join(part.strip() for part in str(msg).splitlines()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
