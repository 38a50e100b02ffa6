"""`python main.py bench`: tracking speed on the same frames, our trackers against OpenCV's.

Runs our nanotrack-v2 and cv2.TrackerNano (OpenCV's C++ NanoTrack on the published v2 ONNX files)
over the same decoded frames in one process and prints both frame rates and their ratio; then,
where registered, the pysot trackers siamrpnpp-r50 and siamrpn-alex on seeded weights (regenerated
from the fixture manifests: speed does not depend on the weight values, and the published pysot
weights are not on this machine).

Only the session's per-frame step is timed (the tracker's track(): crop + network + decode), never
decoding or init. The trackers run in alternation for several rounds and each keeps its best round,
so a burst of load from another process hurts both sides alike instead of deciding the ratio.

This module is the command and the speed comparisons (the default run, `--all`, `--load`). The rest
of `bench` sits beside it, one job a module: bench_timing.py (inputs, frames, the timed loop, the
weights a tracker is timed with), bench_reference.py (`--reference`: the reference code timed beside
ours in the same run), bench_profile.py (`--profile`), busy_core.py (the busy core of `--load`),
bench_gui.py (`--gui`), bench_soak.py (`--soak`); the fixture table the tests also read is trackers/run/fixtures.py.
"""

from __future__ import annotations

import os

from ..run.fixtures import SEEDED_FIXTURE, read_manifest, seeded_state_dict_of
from .bench_gui import GUI_CLIP_FRAMES, GUI_TRACKERS, bench_gui
from .bench_soak import soak
from .bench_timing import (
    BAG_BOX,
    DEFAULT_NANO_DIR,
    DEFAULT_VIDEO,
    SHARED,
    TARGET_LOADED,
    BenchError,
    bench_weights,
    best_fps,
    build_for_bench,
    median,
    ping_pong,
    read_frames,
    time_tracker,
    time_tracker_within,
    tracker_names,
)
from .busy_core import BusyCore, alternate_rounds

#: the pysot trackers `bench` times by default on their fixtures' seeded weights (the published
#: pysot weights are not on this machine)
PYSOT_TIMED = ("siamrpnpp-r50", "siamrpn-alex")
#: `bench --all`: tracking time per tracker (at least 2 frames) before it moves on,
#: so the slowest ones (SiamRPN++ R50 long-term on seeded weights searches 831 px from frame 2 on:
#: seconds a frame) do not stretch the command to minutes; each line says how many frames it timed
ALL_BUDGET_S = 5.0
#: `bench --load` trackers by default: the two the app is used with most, and the pysot AlexNet
LOAD_TRACKERS = ("siamscope-default", "nanotrack-v2", "siamrpn-alex")


def build_ours(nano_dir: str, weights: str | None, engine: str = "auto"):
    from ..core import registry
    from ..families import nanotrack

    path = weights or os.path.join(nano_dir, "nanotrackv2.pth")
    if not os.path.isfile(path):
        found = registry.find_weights(registry.get("nanotrack-v2"))
        if found is None:
            raise BenchError(f"nanotrackv2.pth not found in {nano_dir!r} (pass --nanotrack-dir or --weights)")
        path = found
    tracker = nanotrack.build("nanotrack-v2", path, engine=engine)
    tracker.collect_channels = False  # nothing draws the channel grid here
    return tracker


def build_cv2_nano(nano_dir: str):
    from ..families.opencv_trackers import OpenCVNanoTracker

    backbone = os.path.join(nano_dir, "nanotrackv2_backbone_sim.onnx")
    head = os.path.join(nano_dir, "nanotrackv2_head_sim.onnx")
    for f in (backbone, head):
        if not os.path.isfile(f):
            raise BenchError(f"cv2.TrackerNano needs {f!r}, which does not exist (pass --nanotrack-dir)")
    return OpenCVNanoTracker(backbone, head)


def build_seeded_pysot(name: str, fixtures_dir: str):
    """A registered pysot tracker with the fixture's seeded weights, or None (with the reason)."""
    from ..core import registry

    try:
        registry.get(name)
        from ..families import siamrpn
    except (KeyError, ImportError) as e:
        return None, f"not available ({e})"
    fixture = os.path.join(fixtures_dir, SEEDED_FIXTURE[name])
    manifest_path = os.path.join(fixture, "manifest.json")
    if not os.path.isfile(manifest_path):
        return None, f"skipped: {manifest_path} is absent"
    from models.checkpoint import load_into

    manifest = read_manifest(fixture)
    v = siamrpn.VARIANT_BY_NAME[name]
    net = siamrpn.build_network(v.network)
    load_into(net, seeded_state_dict_of(manifest), manifest_path, f"seeded {SEEDED_FIXTURE[name]}")
    tracker = siamrpn.make_tracker(v, net.eval())
    tracker.collect_channels = False
    return tracker, ""


def bench_all(frames: list, box, fixtures_dir: str, nano_dir: str, n_frames: int, engine: str = "auto") -> None:
    """Time every registered tracker on the same frames (`bench --all`); the reference code's figures
    come only from `bench --reference`, measured in the same run."""
    import tempfile

    from ..core import registry

    sub = frames[: n_frames + 1] if n_frames else frames
    print(
        f"all trackers, up to {len(sub) - 1} frames each or {ALL_BUDGET_S:g} s of tracking (at least 2 frames, "
        f"after a 1-frame warm-up), engine {engine} (seeded = fixture weights, same cost per frame):"
    )
    print("  (against the reference code: `bench --reference`, both sides measured in the same run)")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in registry.all_trackers():
            try:
                tracker, how = build_for_bench(spec.name, engine, fixtures_dir, nano_dir, tmp)
            except BenchError as e:
                print(f"  {spec.name:22s} skipped: {e}")
                continue
            time_tracker_within(tracker, sub[:2], box)  # warm-up: first calls allocate
            seconds, tracked = time_tracker_within(tracker, sub, box, ALL_BUDGET_S, min_frames=2)
            f = tracked / seconds
            print(f"  {spec.name:22s} {f:7.1f} fps  {tracker.engine_name:11s} ({how}, {tracked} frames)", flush=True)


#: `bench --load`: frames tracked (and not timed) before the first round: the first frames pay for
#: ONNX Runtime's and torch's first-run allocations, which put siamscope-default's idle figure
#: below its loaded one (1.38x) when they were inside it
LOAD_WARMUP_FRAMES = 10
#: `bench --load`: each round lasts about this long (frames chosen from the warm-up speed), so a fast
#: tracker's figure is not a few milliseconds long and a slow one's not minutes
LOAD_ROUND_SECONDS = 1.5
LOAD_MIN_FRAMES = 6


def load_frame_count(warm_fps: float, fixed: int = 0) -> int:
    """Frames per `--load` round: `fixed` when given, else about LOAD_ROUND_SECONDS at the warm-up speed."""
    return fixed if fixed > 0 else max(LOAD_MIN_FRAMES, int(round(LOAD_ROUND_SECONDS * warm_fps)))


def bench_load(
    frames: list, box, names, engine: str, rounds: int, fixtures_dir: str, nano_dir: str, fixed_frames: int = 0
) -> list:
    """Each tracker idle and with one busy core (a process this command starts and stops), same
    frames, same process, after a warm-up: prints the median fps of each condition over `rounds`
    alternating rounds and their ratio; returns [(name, idle, loaded)]."""
    import tempfile

    print(
        f"load test: {LOAD_WARMUP_FRAMES} warm-up frames, then {rounds} idle and {rounds} loaded rounds "
        f"alternating, ~{LOAD_ROUND_SECONDS:g} s each (median fps per condition); 'loaded' = one extra process "
        f"spinning a core (`while True: pass`), started by this command; target >= {TARGET_LOADED}x"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp, BusyCore() as busy:
        for name in names:
            try:
                tracker, how = build_for_bench(name, engine, fixtures_dir, nano_dir, tmp)
            except BenchError as e:
                print(f"  {name:22s} skipped: {e}", flush=True)
                continue
            warm = frames[: LOAD_WARMUP_FRAMES + 1]
            warm_fps = (len(warm) - 1) / time_tracker(tracker, warm, box)
            n = load_frame_count(warm_fps, fixed_frames)
            sub = ping_pong(frames, n + 1)
            figures = alternate_rounds(rounds, busy, lambda: n / time_tracker(tracker, sub, box))
            idle, loaded = median(figures["idle"]), median(figures["loaded"])
            rows.append((name, idle, loaded))
            print(
                f"  {name:22s} {tracker.engine_name:11s} idle {idle:7.1f} fps   one busy core {loaded:7.1f} fps   "
                f"ratio {loaded / idle:.2f}   ({n} frames a round; {how})",
                flush=True,
            )
            tracker = None
    return rows


def cmd_bench(args) -> int:
    from .usage import apply_compute

    policy = apply_compute(args)
    print(policy.summary())
    video = args.video or DEFAULT_VIDEO
    if not os.path.exists(video):
        raise BenchError(f"video {video!r} does not exist (pass --video)")
    box = tuple(float(v) for v in args.box.split(",")) if args.box else BAG_BOX
    if args.soak:
        names = [n.strip() for n in args.trackers.split(",")] if args.trackers else None
        soak(video, box, args.soak, os.path.join(SHARED, "fixtures"), args.nanotrack_dir or DEFAULT_NANO_DIR, names)
        return 0
    nano_dir = args.nanotrack_dir or DEFAULT_NANO_DIR
    fixtures_dir = (
        os.path.join(os.path.dirname(os.path.dirname(nano_dir.rstrip(os.sep))), "fixtures")
        if args.nanotrack_dir
        else os.path.join(SHARED, "fixtures")
    )
    if getattr(args, "reference", None) is not None:
        from .bench_reference import cmd_bench_reference

        return cmd_bench_reference(args, policy, video, box, fixtures_dir, nano_dir)
    precision = getattr(args, "precision", "fp32")
    if precision != "fp32":
        raise BenchError(
            f"--precision {precision} is timed by bench --reference (the reference, ours fp32 and ours "
            f"{precision} in one run)"
        )
    if getattr(args, "profile", False):
        from .bench_profile import cmd_bench_profile

        return cmd_bench_profile(args, policy, video, box, fixtures_dir, nano_dir)
    if getattr(args, "targets", None) and args.gui:
        # the window showing N targets against `track --boxes` (trackers/tools/bench_gui.py)
        from . import bench_targets as bt
        from .bench_gui import GUI_TARGETS_TRACKERS, bench_gui_targets

        boxes = None
        if getattr(args, "boxes", None):
            from .track_multi import parse_boxes_file

            boxes = [b for _, b, _ in sorted(parse_boxes_file(args.boxes))]
        bench_gui_targets(
            video,
            box,
            bt.parse_counts(args.targets),
            tracker_names(args.trackers, GUI_TARGETS_TRACKERS),
            args.engine,
            args.threads,
            args.frames,
            nano_dir,
            fixtures_dir,
            args.rounds,
            boxes=boxes,
        )
        return 0
    if getattr(args, "targets", None):
        from . import bench_targets as bt

        bt.parse_counts(args.targets)  # a bad list fails before any frame is read
        return bt.cmd_bench_targets(
            args,
            video,
            read_frames(video, args.frames or bt.DEFAULT_FRAMES),
            box,
            tracker_names(args.trackers, bt.DEFAULT_TRACKERS),
            fixtures_dir,
            nano_dir,
            bench_weights,
        )
    if args.gui:
        names = tracker_names(args.trackers, GUI_TRACKERS)
        bench_gui(
            video,
            box,
            names,
            args.engine,
            args.threads,
            args.frames,
            nano_dir,
            fixtures_dir,
            args.rounds,
            load=args.load,
        )
        return 0
    names = tracker_names(args.trackers, LOAD_TRACKERS) if args.load else []
    frames = read_frames(video, args.frames)
    if args.load:
        bench_load(frames, box, names, args.engine, args.rounds, fixtures_dir, nano_dir, args.load_frames)
        return 0
    ours = build_ours(nano_dir, args.weights, args.engine)
    theirs = build_cv2_nano(nano_dir)
    fps = best_fps({"ours": ours, "cv2": theirs}, frames, box, args.rounds)
    n = len(frames) - 1
    print(f"video {os.path.basename(video)}: {n} tracked frames, best of {args.rounds} rounds")
    print(f"nanotrack-v2 (ours, {ours.engine_name}): {fps['ours']:.1f} fps")
    print(f"cv2.TrackerNano (OpenCV, v2 ONNX): {fps['cv2']:.1f} fps")
    print(f"ratio ours/cv2: {fps['ours'] / fps['cv2']:.2f} (target >= 1.2)")
    if args.all:
        bench_all(frames, box, fixtures_dir, nano_dir, None, args.engine)
    elif not args.no_pysot:
        sub = frames[: args.pysot_frames + 1]
        for name in PYSOT_TIMED:
            tracker, why = build_seeded_pysot(name, fixtures_dir)
            if tracker is None:
                print(f"{name}: {why}")
                continue
            if args.engine != "torch":
                tracker.set_engine(args.engine)
            f = best_fps({name: tracker}, sub, box, 1)[name]
            print(f"{name} (seeded weights, {tracker.engine_name}): {f:.2f} fps ({len(sub) - 1} frames)")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="tracking speed: our NanoTrack v2 vs cv2.TrackerNano, pysot trackers")
    p.add_argument("--video", help="video or image folder (default ../shared/data/videos/bag.avi)")
    p.add_argument("--box", help="init box x,y,w,h (default: the bag box 292.23,128.36,145.96,132.47)")
    p.add_argument(
        "--nanotrack-dir", help="folder with nanotrackv2.pth and the v2 ONNX files (default ../shared/models/nanotrack)"
    )
    p.add_argument("--weights", help="our nanotrack-v2 checkpoint (default: in --nanotrack-dir)")
    p.add_argument(
        "--frames",
        type=int,
        help=f"use only the first N frames (--gui: a clip of N frames, the video "
        f"back and forth; default {GUI_CLIP_FRAMES})",
    )
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds, best kept (default 3)")
    from .usage import add_compute_arguments

    add_compute_arguments(p, precision=True)
    p.add_argument(
        "--pysot-frames",
        type=int,
        default=20,
        help="frames for the pysot trackers (default 20); --all times each tracker on all frames or "
        f"{ALL_BUDGET_S:g} s of tracking, whichever comes first",
    )
    p.add_argument("--no-pysot", action="store_true", help="skip the pysot trackers")
    p.add_argument(
        "--all",
        action="store_true",
        help="time every registered tracker (seeded fixture weights where the published ones are absent)",
    )
    p.add_argument(
        "--load",
        action="store_true",
        help="each tracker idle and with one busy core (a process this command starts): both fps, ratio",
    )
    p.add_argument(
        "--load-frames",
        type=int,
        default=0,
        help=f"frames per --load round (default 0: about {LOAD_ROUND_SECONDS:g} s at the tracker's warm-up speed)",
    )
    p.add_argument(
        "--gui",
        action="store_true",
        help="the app (offscreen, speed max, heatmap + channel grid) vs `track` on the same frames; "
        "with --load: the app idle vs one busy core",
    )
    p.add_argument(
        "--trackers",
        help="comma-separated trackers for --load / --gui / --soak, or 'all' (--load / --gui) "
        f"(default --load: {','.join(LOAD_TRACKERS)}; --gui: {','.join(GUI_TRACKERS)})",
    )
    p.add_argument(
        "--soak",
        type=int,
        metavar="N",
        help="memory instead of speed: RSS at the start and the end of N frames for every tracker",
    )
    p.add_argument(
        "--targets",
        metavar="N,N,...",
        help="several targets of one tracker (--trackers; default nanotrack-v2): fps per target count, "
        "batched and one by one, in the same run (trackers/tools/bench_targets.py)",
    )
    p.add_argument(
        "--boxes",
        metavar="FILE",
        help="--gui --targets: the targets' boxes, id,x,y,w,h a line (default: the bench box and the "
        "others spread over the frame)",
    )
    p.add_argument(
        "--reference",
        nargs="?",
        const="",
        metavar="DIR",
        help="our trackers against the reference code in DIR (default ../shared/refcode), alternating "
        "processes, same frames, weights and threads: both fps and the ratio "
        "(trackers/tools/bench_reference.py)",
    )
    p.add_argument(
        "--child-timeout",
        type=float,
        metavar="S",
        help="--reference: seconds one side's child process may run before it is killed (default 600)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="where one frame's time goes: ms per stage (crop, network split by module, decode, "
        "mask) in torch and onnxruntime (--trackers; trackers/tools/bench_profile.py)",
    )
    p.set_defaults(func=cmd_bench)
