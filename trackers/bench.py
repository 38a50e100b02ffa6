"""`python main.py bench`: tracking speed on the same frames, our trackers against OpenCV's.

Runs our nanotrack-v2 and cv2.TrackerNano (OpenCV's C++ NanoTrack on the published v2 ONNX files)
over the same decoded frames in one process and prints both frame rates and their ratio; then,
where registered, the pysot trackers siamrpnpp-r50 and siamrpn-alex on seeded weights (regenerated
from the fixture manifests: speed does not depend on the weight values, and the published pysot
weights are not on this machine).

Only `tracker.track(frame)` is timed (crop + network + decode), never decoding or init. The
trackers run in alternation for several rounds and each keeps its best round, so a burst of load
from another process hurts both sides alike instead of deciding the ratio.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import cv2

from .base import Tracker
from .session import TrackingSession
from .sources import FrameListSource

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SIAMSCOPE_SHARED", os.path.join(REPO, "..", "shared"))
DEFAULT_VIDEO = os.path.join(SHARED, "data", "videos", "bag.avi")
DEFAULT_NANO_DIR = os.path.join(SHARED, "models", "nanotrack")
BAG_BOX = (292.23, 128.36, 145.96, 132.47)
# pysot trackers timed on seeded weights: registry name -> fixture folder
PYSOT_SEEDED = {"siamrpnpp-r50": "pysot_siamrpn_r50_l234_dwxcorr", "siamrpn-alex": "pysot_siamrpn_alex_dwxcorr"}
# `bench --all`: trackers whose published weights are not on this machine are timed on the
# fixtures' seeded weights (same network, same cost per frame): registry name -> fixture folder.
SEEDED_FIXTURE = {
    "siamrpn-alex": "pysot_siamrpn_alex_dwxcorr",
    "siamrpnpp-r50": "pysot_siamrpn_r50_l234_dwxcorr",
    "siamrpnpp-mobilev2": "pysot_siamrpn_mobilev2_l234_dwxcorr",
    "siamrpnpp-r50-lt": "pysot_siamrpn_r50_l234_dwxcorr_lt",
    "siammask-r50": "pysot_siammask_r50_l3",
    "siamfc": "siamfc_alexnet",
    "siamfc-res22": "siamdw_siamfcres22",
    "siamfc-incep22": "siamdw_siamfcincep22",
    "siamfc-next22": "siamdw_siamfcnext22",
    "siamrpn-res22": "siamdw_siamrpnres22",
    "dasiamrpn-big": "dasiamrpn_big",
    "dasiamrpn-vot": "dasiamrpn_vot",
}


class BenchError(OSError):
    """Missing input for the benchmark (reported as one line by the CLI)."""


def read_frames(path: str, limit: Optional[int] = None) -> list:
    from .sources import open_source
    source = open_source(path)
    frames = []
    try:
        while (limit is None or len(frames) < limit) and (frame := source.read()) is not None:
            frames.append(frame)
    finally:
        source.close()
    if len(frames) < 2:
        raise BenchError(f"{path!r} has fewer than 2 frames")
    return frames


def time_tracker(tracker: Tracker, frames: list, box) -> float:
    """Seconds spent in track() over frames[1:], after init on frames[0] (frames decoded beforehand)."""
    session = TrackingSession.open(FrameListSource(frames), tracker)
    session.init(box)
    while session.advance() is not None:
        pass
    return session.tracked_seconds


def best_fps(trackers: dict, frames: list, box, rounds: int) -> dict:
    """Alternate the trackers for `rounds` rounds; fps of each one's fastest round."""
    best = {name: float("inf") for name in trackers}
    for _ in range(rounds):
        for name, tracker in trackers.items():
            best[name] = min(best[name], time_tracker(tracker, frames, box))
    return {name: (len(frames) - 1) / t for name, t in best.items()}


def build_ours(nano_dir: str, weights: Optional[str], engine: str = "auto"):
    from . import nanotrack, registry
    path = weights or os.path.join(nano_dir, "nanotrackv2.pth")
    if not os.path.isfile(path):
        found = registry.find_weights(registry.get("nanotrack-v2"))
        if found is None:
            raise BenchError(f"nanotrackv2.pth not found in {nano_dir!r} (pass --nanotrack-dir or --weights)")
        path = found
    tracker = nanotrack.build("v2", path, engine=engine)
    tracker.collect_channels = False  # nothing draws the channel grid here
    return tracker


def build_cv2_nano(nano_dir: str):
    from .opencv_trackers import OpenCVNanoTracker
    backbone = os.path.join(nano_dir, "nanotrackv2_backbone_sim.onnx")
    head = os.path.join(nano_dir, "nanotrackv2_head_sim.onnx")
    for f in (backbone, head):
        if not os.path.isfile(f):
            raise BenchError(f"cv2.TrackerNano needs {f!r}, which does not exist (pass --nanotrack-dir)")
    return OpenCVNanoTracker(backbone, head)


def build_seeded_pysot(name: str, fixtures_dir: str):
    """A registered pysot tracker with the fixture's seeded weights, or None (with the reason)."""
    from . import registry
    try:
        registry.get(name)
        from . import siamrpn
    except (KeyError, ImportError) as e:
        return None, f"not available ({e})"
    manifest_path = os.path.join(fixtures_dir, PYSOT_SEEDED[name], "manifest.json")
    if not os.path.isfile(manifest_path):
        return None, f"skipped: {manifest_path} is absent"
    from models.checkpoint import load_into
    from models.seeded import seeded_state_dict
    with open(manifest_path) as f:
        manifest = json.load(f)
    v = siamrpn.VARIANT_BY_NAME[name]
    net = siamrpn.build_network(v.experiment)
    load_into(net, seeded_state_dict(manifest), manifest_path, f"seeded {PYSOT_SEEDED[name]}")
    tracker = siamrpn.make_tracker(v, net.eval())
    tracker.collect_channels = False
    return tracker, ""


def seeded_checkpoint(fixture_dir: str, out_dir: str) -> str:
    """Write the fixture's seeded weights as a plain state_dict checkpoint; return its path."""
    import torch
    from models.seeded import seeded_state_dict, seeded_state_dict_torch
    with open(os.path.join(fixture_dir, "manifest.json")) as f:
        manifest = json.load(f)
    # pysot / NanoTrack manifests carry `seeded_rule` (NumPy rule); the classic ones a torch.Generator rule
    state = seeded_state_dict(manifest) if "seeded_rule" in manifest else seeded_state_dict_torch(manifest)
    path = os.path.join(out_dir, os.path.basename(fixture_dir) + ".pth")
    torch.save(state, path)
    return path


def tracker_weights(spec, fixtures_dir: str, nano_dir: str, tmp: str) -> tuple[Optional[str], str]:
    """(checkpoint, how it was found) for timing a tracker: the fixture's seeded weights written into
    `tmp`, the real NanoTrack files, the project's own, or none; BenchError when a fixture is absent."""
    from . import registry
    if spec.name in SEEDED_FIXTURE:
        fixture = os.path.join(fixtures_dir, SEEDED_FIXTURE[spec.name])
        if not os.path.isdir(fixture):
            raise BenchError(f"{fixture} is absent")
        return seeded_checkpoint(fixture, tmp), "seeded"
    if spec.name.startswith("nanotrack-") or spec.name == "opencv-nanotrack":
        return os.path.join(nano_dir, spec.weights_file), "real"
    if spec.needs_weights:
        weights = registry.find_weights(spec)
        if weights is None and spec.name == "siamattn":
            return "seed:0", "seeded"
        return weights, "found"
    return None, "no checkpoint"


#: frames tracked before the soak's first RSS reading: the first frames allocate the network's
#: working buffers once (SiamMask: about 70 MB), which is not growth per frame
SOAK_WARMUP = 20


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def soak(video: str, box, n_frames: int, fixtures_dir: str, nano_dir: str, names=None) -> list[tuple]:
    """`bench --soak N`: every tracker over N frames (the video looped), keeping per frame what the
    GUI keeps for a run (the RunRecord row and the slim result with its mask packed), with the
    channel maps computed as the GUI has them. Prints RSS after init and after the N frames."""
    import gc
    import tempfile
    from . import registry
    from models.checkpoint import CheckpointError
    from .results import RunRecord, slim
    from .sources import open_source
    rows = []
    print(f"soak: {n_frames} frames per tracker on {os.path.basename(video)} (looped) after {SOAK_WARMUP} "
          "warm-up frames, keeping what the app keeps per frame; RSS in MB")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in registry.all_trackers():
            if names and spec.name not in names:
                continue
            try:
                weights, how = tracker_weights(spec, fixtures_dir, nano_dir, tmp)
            except BenchError as e:
                print(f"  {spec.name:22s} skipped: {e}")
                continue
            try:
                tracker = registry.build(spec.name, weights)
            except (CheckpointError, OSError, KeyError) as e:
                print(f"  {spec.name:22s} skipped: {str(e).splitlines()[0]}")
                continue
            source = open_source(video)
            record, kept, masks = RunRecord(tracker=spec.name), {}, {}
            tracker.init(source.read(), box)
            record.add_init(0, box)

            def step(i):
                nonlocal source
                frame = source.read()
                if frame is None:            # loop the video; the tracker goes on as on a long one
                    source.close()
                    source = open_source(video)
                    frame = source.read()
                result = tracker.track(frame)
                record.add(i, result)
                kept[i], packed = slim(result)
                if packed is not None:
                    masks[i] = packed

            for i in range(1, SOAK_WARMUP + 1):
                step(i)
            gc.collect()
            start = rss_mb()
            for i in range(SOAK_WARMUP + 1, SOAK_WARMUP + n_frames + 1):
                step(i)
            source.close()
            gc.collect()
            end = rss_mb()
            per_frame = (end - start) * 1024 / n_frames
            print(f"  {spec.name:22s} start {start:7.1f}  end {end:7.1f}  ({end - start:+7.1f} MB, "
                  f"{per_frame:+6.1f} kB/frame; {how} weights)", flush=True)
            rows.append((spec.name, start, end))
            tracker = record = kept = masks = None   # freed before the next tracker is measured
            gc.collect()
    return rows


def bench_all(frames: list, box, fixtures_dir: str, nano_dir: str, n_frames: int) -> None:
    """Time every registered tracker on the same frames (`bench --all`)."""
    import tempfile
    from . import registry
    from models.checkpoint import CheckpointError
    sub = frames[: n_frames + 1]
    print(f"all trackers, {len(sub) - 1} frames each (seeded = fixture weights, same cost per frame):")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in registry.all_trackers():
            try:
                weights, how = tracker_weights(spec, fixtures_dir, nano_dir, tmp)
            except BenchError as e:
                print(f"  {spec.name:22s} skipped: {e}")
                continue
            try:
                tracker = registry.build(spec.name, weights)
            except (CheckpointError, OSError, KeyError) as e:
                print(f"  {spec.name:22s} skipped: {str(e).splitlines()[0]}")
                continue
            tracker.collect_channels = False
            f = best_fps({spec.name: tracker}, sub, box, 1)[spec.name]
            print(f"  {spec.name:22s} {f:7.1f} fps  ({how if weights is None else how + ' weights'})")


def cmd_bench(args) -> int:
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    video = args.video or DEFAULT_VIDEO
    if not os.path.exists(video):
        raise BenchError(f"video {video!r} does not exist (pass --video)")
    box = tuple(float(v) for v in args.box.split(",")) if args.box else BAG_BOX
    if args.soak:
        names = [n.strip() for n in args.trackers.split(",")] if args.trackers else None
        soak(video, box, args.soak, os.path.join(SHARED, "fixtures"), args.nanotrack_dir or DEFAULT_NANO_DIR, names)
        return 0
    frames = read_frames(video, args.frames)
    nano_dir = args.nanotrack_dir or DEFAULT_NANO_DIR
    ours = build_ours(nano_dir, args.weights, args.engine)
    theirs = build_cv2_nano(nano_dir)
    fps = best_fps({"ours": ours, "cv2": theirs}, frames, box, args.rounds)
    n = len(frames) - 1
    engine = getattr(ours, "engine_name", "torch")
    print(f"video {os.path.basename(video)}: {n} tracked frames, best of {args.rounds} rounds, "
          f"{torch.get_num_threads()} torch threads, {cv2.getNumThreads()} OpenCV threads")
    print(f"nanotrack-v2 (ours, {engine}): {fps['ours']:.1f} fps")
    print(f"cv2.TrackerNano (OpenCV, v2 ONNX): {fps['cv2']:.1f} fps")
    print(f"ratio ours/cv2: {fps['ours'] / fps['cv2']:.2f}")
    if args.all:
        fixtures_dir = os.path.join(SHARED, "fixtures")
        bench_all(frames, box, fixtures_dir, nano_dir, args.pysot_frames)
    elif not args.no_pysot:
        fixtures_dir = os.path.join(os.path.dirname(os.path.dirname(nano_dir.rstrip(os.sep))), "fixtures") \
            if args.nanotrack_dir else os.path.join(SHARED, "fixtures")
        sub = frames[: args.pysot_frames + 1]
        for name in PYSOT_SEEDED:
            tracker, why = build_seeded_pysot(name, fixtures_dir)
            if tracker is None:
                print(f"{name}: {why}")
                continue
            f = best_fps({name: tracker}, sub, box, 1)[name]
            print(f"{name} (seeded weights): {f:.2f} fps ({len(sub) - 1} frames)")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="tracking speed: our NanoTrack v2 vs cv2.TrackerNano, pysot trackers")
    p.add_argument("--video", help="video or image folder (default ../shared/data/videos/bag.avi)")
    p.add_argument("--box", help="init box x,y,w,h (default: the bag box 292.23,128.36,145.96,132.47)")
    p.add_argument("--nanotrack-dir", help="folder with nanotrackv2.pth and the v2 ONNX files "
                                           "(default ../shared/models/nanotrack)")
    p.add_argument("--weights", help="our nanotrack-v2 checkpoint (default: in --nanotrack-dir)")
    p.add_argument("--engine", default="auto", choices=["auto", "torch", "onnxruntime"],
                   help="how our NanoTrack runs its network (default auto: ONNX Runtime on the CPU)")
    p.add_argument("--frames", type=int, help="use only the first N frames")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds, best kept (default 3)")
    p.add_argument("--threads", type=int, help="torch / OpenCV thread count (default: theirs)")
    p.add_argument("--pysot-frames", type=int, default=20, help="frames for the pysot trackers (default 20)")
    p.add_argument("--no-pysot", action="store_true", help="skip the pysot trackers")
    p.add_argument("--all", action="store_true",
                   help="time every registered tracker (seeded fixture weights where the published ones are absent)")
    p.add_argument("--soak", type=int, metavar="N",
                   help="memory instead of speed: RSS at the start and the end of N frames for every tracker")
    p.add_argument("--trackers", help="with --soak: only these trackers (comma-separated)")
    p.set_defaults(func=cmd_bench)
