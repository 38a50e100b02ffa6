"""Headless commands: `python main.py track | trackers | bench | eval | ...`.

Same trackers, same code path as the GUI. Bad input is one line on stderr and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..core.paths import REPO_ROOT
from ..run.frame_range import add_frame_range_arguments, parse_frame_range
from . import bench, evaluate, train_cli, vot_client, zoo
from .usage import UsageError, add_compute_arguments, add_precision_argument, apply_compute

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

    specs = registry.all_trackers()
    # columns as wide as their longest entry: a long title must not push its row's checkpoint out of line
    name_w = max(len(s.name) for s in specs)
    title_w = max(len(s.title) for s in specs)
    for spec in specs:
        where = registry.find_weights(spec) if spec.needs_weights else "(built in)"
        note = registry.experimental_label(spec)
        print(
            f"{spec.name:{name_w}s}  {spec.title:{title_w}s}  "
            f"{where or 'checkpoint ' + spec.weights_file + ' not found'}" + (f"  [{note}]" if note else "")
        )
    for mod, err in registry.IMPORT_ERRORS.items():
        print(f"# {mod} failed to load: {err}", file=sys.stderr)
    return 0


class StopSignals:
    """While active, SIGINT / SIGTERM only set `signum`: the loop finishes the frame it is on,
    then keeps what was tracked. A second signal interrupts at once (KeyboardInterrupt)."""

    def __init__(self):
        self.signum: int | None = None
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
    from models.device import check_device, check_precision
    from trackers.core import registry
    from trackers.core.base import validate_box
    from trackers.run.annotate import draw_result
    from trackers.run.results import write_otb
    from trackers.run.safe_output import RESULT_EXTS, VIDEO_EXTS, OutputError, check_output, check_outputs_distinct
    from trackers.run.session import SessionError, TrackingSession
    from trackers.run.sources import SourceError
    from trackers.run.video_io import AtomicVideoWriter

    if len(args.box or []) != 1 or args.boxes or args.compare or args.mot or args.json:
        # several targets, or two trackers compared: trackers/tools/track_multi.py
        from .track_multi import cmd_track_multi

        return cmd_track_multi(args, parse_box, StopSignals, default_tracker_name)
    apply_compute(args)
    box = parse_box(args.box[0])
    first, end = parse_frame_range(args.start, args.frames)
    name = args.tracker or default_tracker_name()
    registry.get(name)  # unknown names fail before the video is opened
    # every output is checked before any work: a run is never thrown away for a bad --out
    from trackers.run.groundtruth import annotation_inputs, annotation_names

    # the source's ground truth and label files are inputs too: never written over
    inputs = (args.source, args.weights, *annotation_inputs(args.source))
    check_outputs_distinct(args.out, args.video_out)
    if args.out:
        check_output(args.out, RESULT_EXTS, inputs, what="--out")
        named_as_truth = next(
            (
                p
                for p in annotation_names(args.source)
                if os.path.exists(args.source) and os.path.abspath(args.out) == p
            ),
            None,
        )
        if named_as_truth:
            # not there yet (else refused above as an input): written, but said, since the window
            # attaches this file to the video as its ground truth and would score the run against itself
            print(
                f"warning: --out {args.out!r} is the name the window reads as {os.path.basename(args.source)!r}'s "
                "ground truth; it will be shown and scored as truth there (choose another name to avoid that)",
                file=sys.stderr,
            )
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
                    raise UsageError(
                        f"--start {first} is past the end of {args.source!r} "
                        f"({session.source.frame_count or session.index + 1} frames)"
                    )
            validate_box(box, session.frame.shape)  # a bad box fails before the checkpoint is loaded
            check_precision(args.precision, check_device(args.device))  # so does a device this machine lacks
            tracker = registry.build(name, args.weights, args.device, engine=args.engine)
            if args.precision != "fp32":
                tracker.set_precision(args.precision)
            session.set_tracker(tracker)
            steps = session.run(box, stop=end)
            step = next(steps)  # the init: what this tracker in particular cannot take
            if args.video_out:
                H, W = step.frame.shape[:2]
                writer = AtomicVideoWriter(args.video_out, session.source.fps, (W, H))
                writer.write(draw_result(step.frame, step.result, step.index))
            failure: SourceError | None = None
            try:
                while stop.signum is None and (step := next(steps, None)) is not None:
                    if writer is not None:
                        writer.write(draw_result(step.frame, step.result, step.index))
                    if args.verbose:
                        print(
                            f"{step.index} "
                            + ",".join(f"{v:.2f}" for v in step.box)
                            + f" {step.score:.4f} {step.state.value}",
                            flush=True,
                        )
            except SourceError as e:
                failure = e  # a damaged frame or a camera gone: keep what was tracked up to it
            ran_out = session.source_ended  # the source ended (not --frames, not a signal)
            # what was tracked is kept, whatever ended the loop
            boxes = list(session.boxes.values())
            if args.out:
                try:
                    write_otb(args.out, boxes)
                except OSError as e:
                    if writer is None:
                        raise
                    # the video's temporary file may be what filled the disk: the boxes matter more
                    w, writer = writer, None
                    w.abort()
                    write_otb(args.out, boxes)  # fails as before when that freed nothing
                    raise OutputError(
                        f"cannot write --video-out {args.video_out!r} as well: {e.strerror or e}; "
                        f"the video was dropped to make room and the {len(boxes)} boxes were "
                        f"written to {args.out!r}"
                    ) from None
            if writer is not None:
                w, writer = writer, None
                w.finish()  # read back whole, then renamed into place; after --out: boxes kept either way
            short = session.source.shortfall() if ran_out else None
    finally:
        if writer is not None:
            writer.abort()
    if stop.signum is not None:
        kept = [f"{len(boxes)} boxes to {args.out}"] if args.out else []
        kept += [f"the video to {args.video_out}"] if args.video_out else []
        print(
            f"interrupted by {stop.name} after {len(boxes)} frames" + (f"; wrote {' and '.join(kept)}" if kept else ""),
            file=sys.stderr,
        )
        return stop.exit_code
    if failure is not None:
        kept = f"; the {len(boxes)} boxes before it were written to {args.out}" if args.out else ""
        raise SourceError(f"{failure} after {len(boxes)} frames{kept}")
    n = session.tracked_frames
    print(
        f"tracked {n} frames with {name} ({session.tracker.engine_name})"
        + (f" (frames {first}-{first + n}; the first output line is frame {first})" if first else "")
    )
    print(f"{session.fps:.1f} fps")
    if short:
        # the boxes and video are written either way; the exit code says they do not cover the file
        print("warning: " + short + ("" if args.allow_short else "; pass --allow-short to accept it"), file=sys.stderr)
        return 0 if args.allow_short else 3
    return 0


GUI_USAGE = """the app (a window):
  {prog:34s} open the window
  {prog_video:34s} open the window on a video file or image-sequence folder
  {prog_camera:34s} open the window on camera N
In the window press ? for the keyboard shortcuts."""


def gui_usage(prog: str) -> str:
    return GUI_USAGE.format(prog=prog, prog_video=f"{prog} VIDEO_OR_FOLDER", prog_camera=f"{prog} --camera N")


def version() -> str:
    """The project's version: the installed package's, else pyproject.toml's (a plain checkout)."""
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as package_version

        return package_version("siamscope")
    except PackageNotFoundError:
        import tomllib

        with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
            return tomllib.load(f)["project"]["version"]


def build_parser() -> argparse.ArgumentParser:
    from .program import program_name

    prog = program_name()
    p = argparse.ArgumentParser(
        prog=prog,
        description="SiamScope: look inside Siamese trackers.",
        epilog=gui_usage(prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"SiamScope {version()}")
    sub = p.add_subparsers(dest="command", title="headless commands (no window)")
    t = sub.add_parser("track", help="track a video or image folder without a window")
    t.add_argument("source", help="video file, image-sequence folder, or camera:N")
    t.add_argument("--tracker", help="tracker name (see `trackers`); default: the project's default tracker")
    t.add_argument("--weights", help="checkpoint file (default: found in the model folders)")
    t.add_argument(
        "--box",
        action="append",
        help="initial box x,y,w,h in frame pixels; give it again for "
        "each further target (ids 1, 2, ... as --boxes leaves them free)",
    )
    t.add_argument(
        "--boxes",
        metavar="FILE",
        help="targets from a file: one id,x,y,w,h line each, with an optional start frame: id,x,y,w,h,start",
    )
    t.add_argument(
        "--compare",
        metavar="TRACKER",
        help="a second tracker (B) from the same box on the same "
        "frames: both result files, their IoU per frame (-v) and mean",
    )
    t.add_argument("--compare-weights", help="B's checkpoint (default: found in the model folders)")
    t.add_argument(
        "--out",
        help="write 'x,y,w,h' per frame (first line = the init box); with several tracks "
        "one file each: OUT.<id>.txt, or OUT.<tracker>.txt with --compare",
    )
    t.add_argument("--mot", help="several tracks: MOTChallenge CSV (frame,id,x,y,w,h,conf,-1,-1,-1; frames 1-based)")
    t.add_argument("--json", help="several tracks: JSON with each track's states and re-initialisations")
    t.add_argument(
        "--no-batch",
        action="store_true",
        help="several tracks: one network call per target (default: targets sharing a network run as one batch)",
    )
    t.add_argument("--video-out", help="write the annotated video (.mp4 or .avi)")
    add_frame_range_arguments(t, "initialise")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    add_precision_argument(t)
    add_compute_arguments(t)
    t.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print each frame's box and score (every target's: 'frame id box score state')",
    )
    t.add_argument(
        "--allow-short",
        action="store_true",
        help="exit 0 even when the video ends before the frame count its container announces",
    )
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


def _sigterm_is_an_interrupt() -> bool:
    """eval: SIGTERM outside its jobs (loading trackers and sequences, writing the report) ends it
    as Ctrl-C does, with a line and exit status 143, not silently (while jobs run,
    eval_jobs.SignalStop handles both). Returns whether it was installed (main restores it)."""
    import signal
    import threading

    from .eval_jobs import Interrupted

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        return False

    def stop(signum, frame):
        raise Interrupted(signum, "eval interrupted by SIGTERM")

    signal.signal(signal.SIGTERM, stop)
    return True


def main(argv=None) -> int:
    from models.checkpoint import CheckpointError
    from models.device import DeviceError
    from trackers.core.base import BoxError, EngineError, InvalidRequest
    from trackers.run.safe_output import UnsafePathError
    from trackers.run.sources import SourceError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    sigterm_set = getattr(args.func, "__name__", "") == "cmd_eval" and _sigterm_is_an_interrupt()
    try:
        return int(args.func(args) or 0)
    except (
        InvalidRequest,
        BoxError,
        EngineError,
        SourceError,
        CheckpointError,
        DeviceError,
        KeyError,
        OSError,
        UnsafePathError,
    ) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        # one line, even for a checkpoint report that lists keys on several lines
        print("error: " + " ".join(part.strip() for part in str(msg).splitlines()), file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        from .eval_jobs import Interrupted

        if isinstance(e, Interrupted):  # eval stopped its workers and kept what finished: its line
            print(str(e), file=sys.stderr)
            return e.exit_code
        # interrupted before tracking started (or a second Ctrl-C): nothing was half-written
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        if sigterm_set:
            import signal

            signal.signal(signal.SIGTERM, signal.SIG_DFL)
