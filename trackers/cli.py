"""Headless commands: `python main.py track | trackers | bench | eval | ...`.

Same trackers, same code path as the GUI. Bad input is one line on stderr and a non-zero exit,
never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

import cv2


class UsageError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


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
    from trackers import registry
    from trackers.annotate import draw_result
    from trackers.results import write_otb
    from trackers.safe_output import (RESULT_EXTS, VIDEO_EXTS, AtomicVideoWriter, check_output,
                                      check_outputs_distinct)
    from trackers.sources import SourceError, open_source

    if args.threads:
        import torch
        torch.set_num_threads(max(1, args.threads))
        cv2.setNumThreads(max(1, args.threads))
    box = parse_box(args.box)
    name = args.tracker or default_tracker_name()
    registry.get(name)  # unknown names fail before the video is opened
    # every output is checked before any work: a run is never thrown away for a bad --out
    inputs = (args.source, args.weights)
    check_outputs_distinct(args.out, args.video_out)
    if args.out:
        check_output(args.out, RESULT_EXTS, inputs, what="--out")
    if args.video_out:
        check_output(args.video_out, VIDEO_EXTS, inputs, what="--video-out")
    source = open_source(args.source)
    writer = None
    # from here a first SIGINT / SIGTERM only ends the loop: what was tracked is written (a second
    # one interrupts at once, and the temporary files are removed on the way out)
    stop = StopSignals()
    try:
        with stop:
            frame = source.read()
            if frame is None:
                raise UsageError(f"{args.source!r} has no frames")
            from trackers.base import validate_box
            validate_box(box, frame.shape)  # a bad box fails before the checkpoint is loaded
            tracker = registry.build(name, args.weights, args.device)
            tracker.validate_box(box, frame.shape)     # what this tracker in particular cannot take
            tracker.init(frame, box)
            boxes = [box]
            if args.video_out:
                H, W = frame.shape[:2]
                writer = AtomicVideoWriter(args.video_out, source.fps, (W, H))
                from trackers.base import TrackResult
                writer.write(draw_result(frame, TrackResult(box=box, score=1.0), 0))
            n, elapsed = 0, 0.0
            index = 1
            failure: Optional[SourceError] = None
            try:
                while stop.signum is None and (frame := source.read()) is not None:
                    t0 = time.perf_counter()
                    result = tracker.track(frame)
                    elapsed += time.perf_counter() - t0
                    n += 1
                    boxes.append(result.box)
                    if writer is not None:
                        writer.write(draw_result(frame, result, index))
                    if args.verbose:
                        print(f"{index} " + ",".join(f"{v:.2f}" for v in result.box) + f" {result.score:.4f}",
                              flush=True)
                    index += 1
            except SourceError as e:
                failure = e    # a damaged frame or a camera gone: keep what was tracked up to it
            # what was tracked is kept, whatever ended the loop
            if args.out:
                write_otb(args.out, boxes)
            if writer is not None:
                w, writer = writer, None
                w.finish()        # after --out: the boxes are kept either way
        if stop.signum is not None:
            kept = [f"{len(boxes)} boxes to {args.out}"] if args.out else []
            kept += [f"the video to {args.video_out}"] if args.video_out else []
            print(f"interrupted by {stop.name} after {len(boxes)} frames"
                  + (f"; wrote {' and '.join(kept)}" if kept else ""), file=sys.stderr)
            return stop.exit_code
        if failure is not None:
            kept = f"; the {len(boxes)} boxes before it were written to {args.out}" if args.out else ""
            raise SourceError(f"{failure} after {len(boxes)} frames{kept}")
        short = source.shortfall()
    finally:
        if writer is not None:
            writer.abort()
        source.close()
    print(f"tracked {n} frames with {name}")
    print(f"{n / elapsed if elapsed > 0 else 0.0:.1f} fps")
    if short:
        # the boxes and video are written either way; the exit code says they do not cover the file
        print("warning: " + short + ("" if args.allow_short else "; pass --allow-short to accept it"),
              file=sys.stderr)
        return 0 if args.allow_short else 3
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py", description="SiamScope: look inside Siamese trackers.")
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser("track", help="track a video or image folder without a window")
    t.add_argument("source", help="video file, image-sequence folder, or camera:N")
    t.add_argument("--tracker", help="tracker name (see `trackers`); default: the project's default tracker")
    t.add_argument("--weights", help="checkpoint file (default: found in the model folders)")
    t.add_argument("--box", required=True, help="initial box x,y,w,h in frame pixels")
    t.add_argument("--out", help="write 'x,y,w,h' per frame (first line = the init box)")
    t.add_argument("--video-out", help="write the annotated video (.mp4 or .avi)")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--threads", type=int,
                   help="CPU threads for torch / OpenCV (default: torch's; 1 is faster on a busy machine)")
    t.add_argument("-v", "--verbose", action="store_true", help="print each frame's box and score")
    t.add_argument("--allow-short", action="store_true",
                   help="exit 0 even when the video ends before the frame count its container announces")
    t.set_defaults(func=cmd_track)
    ls = sub.add_parser("trackers", help="list the trackers and their checkpoints")
    ls.set_defaults(func=cmd_trackers)
    for extra in ("trackers.bench", "trackers.evaluate", "trackers.zoo", "trackers.train_cli"):
        try:
            mod = __import__(extra, fromlist=["add_parser"])
        except ModuleNotFoundError as e:
            if e.name != extra:
                raise
            continue
        mod.add_parser(sub)
    return p


def main(argv=None) -> int:
    from models.checkpoint import CheckpointError
    from trackers.base import BoxError
    from trackers.sources import SourceError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, BoxError, SourceError, CheckpointError, KeyError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        # one line, even for a checkpoint report that lists keys on several lines
        print("error: " + " ".join(part.strip() for part in str(msg).splitlines()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # interrupted before tracking started (or a second Ctrl-C): nothing was half-written
        print("error: interrupted", file=sys.stderr)
        return 130
