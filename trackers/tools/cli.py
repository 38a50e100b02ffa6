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
from .usage import UsageError, add_compute_arguments, apply_compute
from ..core.paths import REPO_ROOT
from ..run.frame_range import add_frame_range_arguments, parse_frame_range

#: the commands the other tool modules define, in the order `--help` lists them (after `track` and
#: `trackers`, defined here): each module's add_parser(subparsers) adds the commands named beside it
COMMANDS = (
    (("bench",), bench),
    (("eval",), evaluate),
    (("download", "zoo"), zoo),
    (("train",), train_cli),
    (("vot-setup", "vot-serve"), vot_client),
)


def parse_box(text: str):
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise UsageError(f"--box must be x,y,w,h numbers, got {text!r}") from None
    if len(vals) != 4:
        raise UsageError(f"--box must be four numbers x,y,w,h, got {text!r}")
    return tuple(vals)


def default_tracker_name() -> str:
    """The tracker used when none is named (registry.PREFERRED_TRACKERS)."""
    from trackers.core import registry
    return registry.preferred_tracker()


def cmd_trackers(args) -> int:
    from trackers.core import registry
    for spec in registry.all_trackers():
        where = registry.find_weights(spec) if spec.needs_weights else "(built in)"
        print(f"{spec.name:24s} {spec.title:44s} {where or 'checkpoint ' + spec.weights_file + ' not found'}")
    for mod, err in registry.IMPORT_ERRORS.items():
        print(f"# {mod} failed to load: {err}", file=sys.stderr)
    return 0


class StopSignals:
    """While active, SIGINT / SIGTERM only set `signum`: the loop finishes the frame it is on,
    then keeps what was tracked. A second signal interrupts at once (KeyboardInterrupt)."""

    def __init__(self):
        self.signum: Optional[int] = None
        self._old = {}

    def __enter__(self):
        import signal
        import threading
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    @property
    def name(self) -> str:
        import signal
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or 0)

    def __exit__(self, *exc):
        import signal
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def cmd_track(args) -> int:
    from trackers.core import registry
    from trackers.run.annotate import draw_result
    from trackers.core.base import validate_box
    from trackers.run.results import write_otb
    from trackers.run.safe_output import RESULT_EXTS, VIDEO_EXTS, check_output, check_outputs_distinct
    from trackers.run.video_io import AtomicVideoWriter
    from models.device import check_device, check_precision
    from trackers.run.session import SessionError, TrackingSession
    from trackers.run.sources import SourceError

    apply_compute(args)
    box = parse_box(args.box)
    first, end = parse_frame_range(args.start, args.frames)
    name = args.tracker or default_tracker_name()
    registry.get(name)  # unknown names fail before the video is opened
    # every output is checked before any work: a run is never thrown away for a bad --out
    inputs = (args.source, args.weights)
    check_outputs_distinct(args.out, args.video_out)
    if args.out:
        check_output(args.out, RESULT_EXTS, inputs, what="--out")
    if args.video_out:
        check_output(args.video_out, VIDEO_EXTS, inputs, what="--video-out")
    try:
        session = TrackingSession.open(args.source)
    except SessionError:
        raise UsageError(f"{args.source!r} has no frames") from None
    writer = None
    # from here a first SIGINT / SIGTERM only ends the loop: what was tracked is written (a second
    # one interrupts at once, and the temporary files are removed on the way out)
    stop = StopSignals()
    try:
        with session, stop:
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
            step = session.init(box)                # and what this tracker in particular cannot take
            if args.video_out:
                H, W = step.frame.shape[:2]
                writer = AtomicVideoWriter(args.video_out, session.source.fps, (W, H))
                writer.write(draw_result(step.frame, step.result, step.index))
            failure: Optional[SourceError] = None
            ran_out = False           # the source ended (not --frames, not a signal)
            try:
                while stop.signum is None and (end is None or session.index + 1 < end):
                    step = session.advance()
                    if step is None:
                        ran_out = True
                        break
                    if writer is not None:
                        writer.write(draw_result(step.frame, step.result, step.index))
                    if args.verbose:
                        print(f"{step.index} " + ",".join(f"{v:.2f}" for v in step.result.box)
                              + f" {step.result.score:.4f} {step.result.state.value}", flush=True)
            except SourceError as e:
                failure = e    # a damaged frame or a camera gone: keep what was tracked up to it
            # what was tracked is kept, whatever ended the loop
            boxes = list(session.boxes.values())
            if args.out:
                write_otb(args.out, boxes)
            if writer is not None:
                w, writer = writer, None
                w.finish()        # read back whole, then renamed into place; after --out: boxes kept either way
            short = session.source.shortfall() if ran_out else None
    finally:
        if writer is not None:
            writer.abort()
    if stop.signum is not None:
        kept = [f"{len(boxes)} boxes to {args.out}"] if args.out else []
        kept += [f"the video to {args.video_out}"] if args.video_out else []
        print(f"interrupted by {stop.name} after {len(boxes)} frames"
              + (f"; wrote {' and '.join(kept)}" if kept else ""), file=sys.stderr)
        return stop.exit_code
    if failure is not None:
        kept = f"; the {len(boxes)} boxes before it were written to {args.out}" if args.out else ""
        raise SourceError(f"{failure} after {len(boxes)} frames{kept}")
    n = session.tracked_frames
    print(f"tracked {n} frames with {name} ({session.tracker.engine_name})" + (f" (frames {first}-{first + n}; the first output line is frame {first})"
                                                if first else ""))
    print(f"{session.fps:.1f} fps")
    if short:
        # the boxes and video are written either way; the exit code says they do not cover the file
        print("warning: " + short + ("" if args.allow_short else "; pass --allow-short to accept it"),
              file=sys.stderr)
        return 0 if args.allow_short else 3
    return 0


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
        with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
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
    add_compute_arguments(t)
    t.add_argument("-v", "--verbose", action="store_true", help="print each frame's box and score")
    t.add_argument("--allow-short", action="store_true",
                   help="exit 0 even when the video ends before the frame count its container announces")
    t.set_defaults(func=cmd_track)
    ls = sub.add_parser("trackers", help="list the trackers and their checkpoints")
    ls.set_defaults(func=cmd_trackers)
    for names, module in COMMANDS:
        before = set(sub.choices)
        module.add_parser(sub)
        # the table says what each module adds: a command renamed or added there alone fails here
        added = set(sub.choices) - before
        if added != set(names):
            raise RuntimeError(f"{module.__name__}.add_parser added {sorted(added)}, COMMANDS says {sorted(names)}")
    return p


def main(argv=None) -> int:
    from models.checkpoint import CheckpointError
    from trackers.core.base import BoxError, EngineError, InvalidRequest
    from models.device import DeviceError
    from trackers.run.sources import SourceError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (InvalidRequest, BoxError, EngineError, SourceError, CheckpointError, DeviceError, KeyError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        # one line, even for a checkpoint report that lists keys on several lines
        print("error: " + " ".join(part.strip() for part in str(msg).splitlines()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # interrupted before tracking started (or a second Ctrl-C): nothing was half-written
        print("error: interrupted", file=sys.stderr)
        return 130
