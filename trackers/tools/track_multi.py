"""`track` with several targets (`--box` more than once, `--boxes FILE`) or two trackers compared on
the same frames (`--compare B`): one MultiTrackSession (trackers/run/tracks.py) drives them all.

Outputs, each checked before any work: `--out R.txt` one OTB file per track (`R.<id>.txt`, or
`R.<tracker>.txt` for an A/B pair), `--mot F.txt` MOTChallenge CSV, `--json F.json` every track's
states and re-initialisations, `--video-out` the frames with every box, id and colour.
"""

from __future__ import annotations

import math
import os
import sys

from .usage import UsageError

#: `track` takes at most this many targets (the window shows at most trackers/run/tracks.MAX_TRACKS)
CLI_MAX_TRACKS = 64


def parse_boxes_file(path: str) -> list[tuple[int, tuple, int | None]]:
    """`id,x,y,w,h[,start]` per line (commas, tabs or spaces; '#' starts a comment) -> (id, box, start).
    The file is untrusted: every value is checked, and a bad line is named."""
    out = []
    try:
        with open(path) as f:
            lines = f.read(1 << 20).splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--boxes {path!r} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [v for v in line.replace("\t", ",").replace(" ", ",").split(",") if v != ""]
        where = f"--boxes {os.path.basename(path)} line {n}"
        if len(fields) not in (5, 6):
            raise UsageError(f"{where}: expected id,x,y,w,h or id,x,y,w,h,start, got {line!r}")
        try:
            tid = int(fields[0])
            box = tuple(float(v) for v in fields[1:5])
            start = int(fields[5]) if len(fields) == 6 else None
        except ValueError:
            raise UsageError(f"{where}: id and start are integers, x,y,w,h numbers: {line!r}") from None
        if tid < 1 or not all(math.isfinite(v) for v in box) or (start is not None and start < 0):
            raise UsageError(f"{where}: ids are positive, boxes finite, start frames >= 0: {line!r}")
        if any(tid == o[0] for o in out):
            raise UsageError(f"{where}: id {tid} is given twice")
        out.append((tid, box, start))
        if len(out) > CLI_MAX_TRACKS:
            raise UsageError(f"--boxes {path!r}: more than {CLI_MAX_TRACKS} targets")
    if not out:
        raise UsageError(f"--boxes {path!r} holds no target (one id,x,y,w,h per line)")
    return out


def wanted_targets(args, parse_box) -> list[tuple[int, tuple, int | None]]:
    targets = parse_boxes_file(args.boxes) if args.boxes else []
    taken = {t[0] for t in targets}
    free = (i for i in range(1, 10 * CLI_MAX_TRACKS) if i not in taken)
    # each --box takes the lowest id --boxes left free
    targets += [(next(free), parse_box(text), None) for text in args.box or []]
    targets.sort(key=lambda t: t[0])
    if not targets:
        raise UsageError("give the target's box: --box x,y,w,h (several times for several targets) or --boxes FILE")
    if len(targets) > CLI_MAX_TRACKS:
        raise UsageError(f"at most {CLI_MAX_TRACKS} targets")
    return targets


def cmd_track_multi(args, parse_box, StopSignals, default_tracker_name) -> int:
    """cli.py's `track` with several targets or --compare; cli.py hands over its helpers (so this
    module does not import cli.py back)."""
    from models.device import check_device, check_precision

    from ..core import registry
    from ..core.base import validate_box
    from ..run.frame_range import parse_frame_range
    from ..run.multi_export import check_track_outputs, draw_tracks, write_mot, write_multi_json, write_track_files
    from ..run.safe_output import VIDEO_EXTS, check_output, check_outputs_distinct
    from ..run.session import SessionError
    from ..run.sources import SourceError
    from ..run.tracks import MultiTrackSession, pair_iou
    from ..run.video_io import AtomicVideoWriter
    from .usage import apply_compute

    apply_compute(args)
    targets = wanted_targets(args, parse_box)
    first, end = parse_frame_range(args.start, args.frames)
    name = args.tracker or default_tracker_name()
    registry.get(name)
    compare = args.compare
    if compare:
        registry.get(compare)
        if len(targets) != 1:
            raise UsageError("--compare runs two trackers on one target: give one --box")
        if compare == name and not args.compare_weights:
            raise UsageError(
                f"--compare {compare} is the tracker A already (give --compare-weights to compare "
                "two checkpoints of it)"
            )
    for tid, _, start in targets:
        if start is not None and start < first:
            raise UsageError(f"target {tid} starts at frame {start}, before --start {first}")
    # the tracks as (id, box, start, tracker name, weights, style)
    if compare:
        tid, box, start = targets[0]
        plan = [(1, box, start, name, args.weights, "solid"), (2, box, start, compare, args.compare_weights, "dashed")]
        labels = [name, compare if compare != name else f"{compare}-B"]
    else:
        plan = [(tid, box, start, name, args.weights, "solid") for tid, box, start in targets]
        labels = [str(tid) for tid, *_ in targets]
    from ..run.groundtruth import annotation_inputs  # the source's ground truth is an input too

    inputs = (
        args.source,
        args.weights,
        getattr(args, "compare_weights", None),
        args.boxes,
        *annotation_inputs(args.source),
    )
    check_outputs_distinct(args.video_out, args.mot, args.json)
    out_paths = []
    try:
        if args.out:
            out_paths = check_track_outputs(args.out, labels, inputs)
    except ValueError as e:
        raise UsageError(str(e)) from None
    check_outputs_distinct(*out_paths, args.video_out, args.mot, args.json)
    if args.video_out:
        check_output(args.video_out, VIDEO_EXTS, inputs, what="--video-out")
    if args.mot:
        check_output(args.mot, (".txt", ".csv"), inputs, what="--mot")
    if args.json:
        check_output(args.json, (".json",), inputs, what="--json")
    try:
        session = MultiTrackSession.open(args.source, batch=not args.no_batch, max_tracks=CLI_MAX_TRACKS)
    except SessionError:
        raise UsageError(f"{args.source!r} has no frames") from None
    writer = None
    stop = StopSignals()
    failure: SourceError | None = None
    try:
        with session, stop:
            if first:
                if session.frames.is_live:
                    raise UsageError("a camera cannot start at a later frame (--start / --frames are for files)")
                if not session.seek(first) or session.index != first:
                    raise UsageError(f"--start {first} is past the end of {args.source!r}")
            for _, box, *_ in plan:
                validate_box(box, session.frame.shape)  # every box fails before a checkpoint is loaded
            check_precision(args.precision, check_device(args.device))
            built: dict = {}
            for tid, box, start, tname, weights, style in plan:
                tracker = registry.build(tname, weights, args.device, engine=args.engine)
                if args.precision != "fp32":
                    tracker.set_precision(args.precision)
                session.add(
                    tracker,
                    box,
                    tracker_name=tname,
                    name=tname if compare else str(tid),
                    start=first if start is None else start,
                    track_id=tid,
                    style=style,
                )
                built[tid] = tracker
            ran_out = False
            try:
                for step in session.run(end=end, stop=lambda: stop.signum is not None):
                    if writer is None and args.video_out:
                        H, W = step.frame.shape[:2]
                        writer = AtomicVideoWriter(args.video_out, session.frames.source.fps, (W, H))
                    if writer is not None:
                        writer.write(draw_tracks(step.frame, session.tracks, step.results, step.index))
                    if args.verbose:
                        _print_step(step, session, compare)
                else:
                    ran_out = stop.signum is None and (end is None or session.index + 1 < end)
            except SourceError as e:
                failure = e
            tracks = list(session.tracks)
            if out_paths:
                write_track_files(out_paths, tracks)
            if args.mot:
                write_mot(args.mot, tracks)
            if args.json:
                extra = dict(compare=[name, compare]) if compare else {}
                write_multi_json(args.json, tracks, source=os.path.basename(str(args.source)), extra=extra)
            if writer is not None:
                w, writer = writer, None
                w.finish()
            short = session.frames.source.shortfall() if ran_out else None
    finally:
        if writer is not None:
            writer.abort()
    frames = max((len(t.record.rows) for t in tracks), default=0)
    if stop.signum is not None:
        print(f"interrupted by {stop.name} after {frames} frames; what was tracked is written", file=sys.stderr)
        return stop.exit_code
    if failure is not None:
        raise SourceError(f"{failure} after {frames} frames; the tracks up to it were written")
    engines = sorted({t.tracker.engine_name for t in tracks})
    print(
        f"tracked {session.tracked_frames} frames, {len(tracks)} tracks ({', '.join(engines)}"
        f"{'' if args.no_batch else ', batched where they share a network'})"
    )
    print(f"{session.fps:.1f} fps (all tracks together)")
    if compare:
        ious = pair_iou(tracks[0], tracks[1])
        tracked = [v for i, v in ious.items() if not tracks[0].record.rows[i].init]
        mean = sum(tracked) / len(tracked) if tracked else float("nan")
        below = sum(v < 0.5 for v in tracked)
        print(f"IoU {name} vs {compare}: mean {mean:.3f} over {len(tracked)} frames; {below} frames below 0.5")
    if short:
        print("warning: " + short + ("" if args.allow_short else "; pass --allow-short to accept it"), file=sys.stderr)
        return 0 if args.allow_short else 3
    return 0


def _print_step(step, session, compare) -> None:
    from ..run.metrics import iou

    for t in session.tracks:
        r = step.results.get(t.id)
        if r is None:
            continue
        print(
            f"{step.index} {t.id} "
            + ",".join(f"{v:.2f}" for v in r.box)
            + f" {r.score:.4f} {r.state.value}"
            + (f" {t.tracker_name}" if compare else ""),
            flush=True,
        )
    if compare:
        a, b = (step.results.get(t.id) for t in session.tracks[:2])
        if a is not None and b is not None:
            print(f"{step.index} iou {float(iou([a.box], [b.box])[0]):.4f}", flush=True)
