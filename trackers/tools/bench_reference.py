"""`python main.py bench --reference DIR`: our trackers against the reference code, measured in the same run.

DIR (default ../shared/refcode) holds the reference implementations unchanged: pysot (`DIR/pysot`)
and HonglinChu's NanoTrack (`DIR/NanoTrack`). They are never copied into the project: a child
process puts DIR/pysot or DIR/NanoTrack on sys.path at run time and applies the three shims today's
libraries need (`_shim_numpy`, `_shim_opencv_version`, `_register_nanotrack_v2_head`), and leaves
out of pysot's long-term config the two keys of an older format its cfg refuses (`known_keys_only`);
`yacs` must be installed (the `bench` extra).

Each side runs in its own process (the references keep a global cfg, and a fresh process per
round keeps one side's allocator state out of the other's), alternating sides for `rounds` rounds;
both read the same decoded frames of the same video, load the same weights (the fixtures' seeded
weights for pysot networks, the published nanotrackv2.pth for NanoTrack) and run with the same
compute policy (torch, OpenCV and ONNX Runtime threads). Only `track()` is timed, after `init()`.
Each side keeps its fastest round, so a burst of load from another process hurts both alike
instead of deciding the ratio. The header prints the date and the machine's load average: a
figure measured under load says so.

A child that does not finish within `child_timeout` seconds (`--child-timeout`, default
CHILD_TIMEOUT_S) is killed with its whole process group; that tracker's line says which side timed
out and the run goes on with the next tracker.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import subprocess
import sys
import time

#: our tracker -> (pysot experiment folder under DIR/pysot/experiments, fixture with its seeded weights)
PYSOT_EXPERIMENT = {
    "siamrpn-alex": ("siamrpn_alex_dwxcorr", "pysot_siamrpn_alex_dwxcorr"),
    "siamrpnpp-mobilev2": ("siamrpn_mobilev2_l234_dwxcorr", "pysot_siamrpn_mobilev2_l234_dwxcorr"),
    "siamrpnpp-r50": ("siamrpn_r50_l234_dwxcorr", "pysot_siamrpn_r50_l234_dwxcorr"),
    "siamrpnpp-r50-lt": ("siamrpn_r50_l234_dwxcorr_lt", "pysot_siamrpn_r50_l234_dwxcorr_lt"),
    "siammask-r50": ("siammask_r50_l3", "pysot_siammask_r50_l3"),
}
#: our tracker -> NanoTrack config under DIR/NanoTrack/models/config and its checkpoint (in the nanotrack dir)
NANOTRACK_CONFIG = {"nanotrack-v2": ("configv2.yaml", "nanotrackv2.pth")}
REFERENCE_TRACKERS = tuple(PYSOT_EXPERIMENT) + tuple(NANOTRACK_CONFIG)
#: what `bench --reference` runs without --trackers: the networks issue 26 sets targets for
DEFAULT_TRACKERS = ("siamrpn-alex", "siamrpnpp-mobilev2", "siamrpnpp-r50", "siammask-r50", "nanotrack-v2")
DEFAULT_FRAMES = 30
#: issue 26's target for the pysot networks at equal threads
TARGET = 1.5
#: seconds one child (one side, one tracker, one round) may take before it is killed: import,
#: build and 30 frames of SiamRPN++ R50 take well under a minute on two loaded cores, the
#: long-term tracker's 831-px search a few minutes
CHILD_TIMEOUT_S = 600.0


class ChildFailed(RuntimeError):
    """One side's child process failed or was killed for taking too long (the message says which)."""


def default_reference_dir() -> str | None:
    """../shared/refcode where the shared folder has it, else None."""
    from ..core.paths import shared_path

    path = shared_path("refcode")
    return path if path and os.path.isdir(path) else None


def load_average() -> str:
    try:
        return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def when_and_load() -> str:
    """'2026-12-03 11:30 UTC, load average 1.0 0.9 0.8 on 2 cores': what every figure is quoted with."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}, {load_average()} on {os.cpu_count()} cores"


# --- the child process: one side, one tracker, prints its fps ---------------------------------------


def _shim_numpy() -> None:
    """NumPy 2 removed the aliases the reference code uses (np.float, np.int)."""
    import numpy as np

    for alias, builtin in (("float", float), ("int", int), ("bool", bool)):
        if alias not in np.__dict__:
            setattr(np, alias, builtin)


def _shim_opencv_version() -> None:
    """pysot's SiamMask picks findContours' return arity from one character of the version string
    (`cv2.__version__[-5] == '4'`: two values, else three). OpenCV 4 and later return two, but
    "4.10.0" or "5.1.0" fail that test; so where this OpenCV returns two values, the string is set
    to one that passes it (in the reference's child process only)."""
    import cv2
    import numpy as np

    two_values = len(cv2.findContours(np.zeros((4, 4), np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)) == 2
    if two_values and cv2.__version__[-5:-4] != "4":
        cv2.__version__ = "4.5.0"


def known_keys_only(node, known) -> list:
    """Drop from yacs CfgNode `node`, in place, the keys `known` (the reference's own cfg) does not
    have, where that part of `known` takes no new keys; returns the dotted names dropped. pysot's
    long-term config (siamrpn_r50_l234_dwxcorr_lt) still carries BACKBONE.CHANNELS and
    ADJUST.ADJUST_CHANNEL from an older config format, which pysot's cfg refuses and its code never
    reads (the network is built from the KWARGS beside them)."""
    dropped = []

    def walk(mine, theirs, prefix):
        for key in list(mine):
            if key not in theirs:
                if not theirs.is_new_allowed():
                    dropped.append(prefix + key)
                    del mine[key]
            elif isinstance(mine[key], dict) and isinstance(theirs[key], dict):
                walk(mine[key], theirs[key], f"{prefix}{key}.")

    walk(node, known, "")
    return dropped


def _merge_config(cfg, path: str) -> None:
    """cfg.merge_from_file(path), less the keys the reference's cfg does not know (`known_keys_only`)."""
    with open(path) as f:
        loaded = cfg.load_cfg(f)
    known_keys_only(loaded, cfg)
    cfg.merge_from_other_cfg(loaded)


def _register_nanotrack_v2_head() -> None:
    """NanoTrack v2's config names heads that only ban_v2 defines; register them under those names."""
    import nanotrack.models.head as heads
    import nanotrack.models.head.ban_v2 as ban_v2

    heads.BANS.update(UPChannelBAN=ban_v2.UPChannelBAN, DepthwiseBAN=ban_v2.DepthwiseBAN)


def read_video_frames(video: str, n: int) -> list:
    """The first n + 1 frames of `video` (init frame + n tracked), decoded with OpenCV on both sides."""
    import cv2

    cap = cv2.VideoCapture(video)
    frames = []
    while len(frames) < n + 1:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if len(frames) < 2:
        raise SystemExit(f"{video!r} has fewer than 2 frames")
    return frames


def _reference_tracker(name: str, refs: str, fixtures_dir: str, nano_dir: str):
    import json

    import torch

    _shim_numpy()
    if name in PYSOT_EXPERIMENT:
        sys.path.insert(0, os.path.join(refs, "pysot"))
        _shim_opencv_version()
        from pysot.core.config import cfg
        from pysot.models.model_builder import ModelBuilder
        from pysot.tracker.tracker_builder import build_tracker

        from models.seeded import seeded_state_dict

        experiment, fixture = PYSOT_EXPERIMENT[name]
        _merge_config(cfg, os.path.join(refs, "pysot", "experiments", experiment, "config.yaml"))
        cfg.CUDA = False
        model = ModelBuilder()
        with open(os.path.join(fixtures_dir, fixture, "manifest.json")) as f:
            model.load_state_dict(seeded_state_dict(json.load(f)))
        return build_tracker(model.eval())
    config, weights = NANOTRACK_CONFIG[name]
    sys.path.insert(0, os.path.join(refs, "NanoTrack"))
    _register_nanotrack_v2_head()
    from nanotrack.core.config import cfg
    from nanotrack.models.model_builder import ModelBuilder
    from nanotrack.tracker.tracker_builder import build_tracker

    cfg.merge_from_file(os.path.join(refs, "NanoTrack", "models", "config", config))
    cfg.CUDA = False
    model = ModelBuilder()
    state = torch.load(os.path.join(nano_dir, weights), map_location="cpu", weights_only=False)
    model.load_state_dict(state.get("state_dict", state))
    return build_tracker(model.eval())


def _our_tracker(name: str, engine: str, fixtures_dir: str, nano_dir: str, tmp: str, precision: str = "fp32"):
    from .bench_timing import build_for_bench

    tracker, _how = build_for_bench(name, engine, fixtures_dir, nano_dir, tmp, precision=precision)
    return tracker


def child_main(argv: list) -> int:
    """One timing run: `python -m trackers.tools.bench_reference SIDE NAME ...`; prints fps and engine."""
    import tempfile

    ap = argparse.ArgumentParser()
    ap.add_argument("side", choices=["ref", "ours"])
    ap.add_argument("name")
    ap.add_argument("--refs", required=True)
    ap.add_argument("--video", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--nanotrack-dir", required=True)
    ap.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--box", required=True)
    ap.add_argument("--precision", default="fp32")
    a = ap.parse_args(argv)
    import torch

    from ..core import compute

    compute.apply(compute.decide(a.threads))  # the same pools on both sides
    box = tuple(float(v) for v in a.box.split(","))
    frames = read_video_frames(a.video, a.frames)
    with tempfile.TemporaryDirectory() as tmp:
        if a.side == "ref":
            # the reference code's own tracker (not a SiamScope Tracker): its init/track as it is
            reference, engine = _reference_tracker(a.name, a.refs, a.fixtures, a.nanotrack_dir), "torch"
            with torch.no_grad():
                reference.init(frames[0], box)
                start = time.perf_counter()
                for frame in frames[1:]:
                    reference.track(frame)
                seconds = time.perf_counter() - start
        else:
            # ours through the session's per-frame step, as `track` runs it (keeps no boxes: nothing seeks)
            from ..run.session import Track

            tracker = _our_tracker(a.name, a.engine, a.fixtures, a.nanotrack_dir, tmp, a.precision)
            engine = tracker.engine_name
            track = Track(tracker)
            with torch.no_grad():
                track.init(frames[0], 0, box)
                start = time.perf_counter()
                for index, frame in enumerate(frames[1:], 1):
                    track.step(frame, index, keep_box=False)
                seconds = time.perf_counter() - start
    print(f"{(len(frames) - 1) / seconds:.6f} {engine}")
    return 0


# --- the parent: alternate the sides, print one line per tracker -----------------------------------


def run_child(cmd: list, env: dict, timeout: float) -> str:
    """The child's stdout; ChildFailed when it exits non-zero or prints nothing, and when it runs
    past `timeout` seconds, after killing it and anything it started (its own process group)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.communicate()  # reap it and close its pipes
        raise ChildFailed(f"timed out after {timeout:g} s (killed)") from None
    if proc.returncode != 0 or not out.strip():
        tail = (err or out).strip().splitlines()[-1:] or ["no output"]
        raise ChildFailed(tail[0])
    return out


def _run_child(side: str, name: str, common: list, timeout: float = CHILD_TIMEOUT_S) -> tuple[float, str]:
    # the "int8" side is ours with the quantised graph (--precision int8)
    int8 = ["--precision", "int8"] if side == "int8" else []
    cmd = [sys.executable, "-m", "trackers.tools.bench_reference", "ours" if int8 else side, name, *common, *int8]
    # the folder that holds this checkout's (or install's) trackers/ and models/ packages comes first
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    try:
        out = run_child(cmd, env, timeout)
    except ChildFailed as e:
        raise ChildFailed(f"{'reference' if side == 'ref' else 'our'} side {e}") from None
    fps, engine = out.strip().splitlines()[-1].split()
    return float(fps), engine


def bench_reference(
    refs: str,
    names,
    video: str,
    box,
    fixtures_dir: str,
    nano_dir: str,
    threads: int,
    engine: str = "auto",
    frames: int = DEFAULT_FRAMES,
    rounds: int = 2,
    precision: str = "fp32",
    child_timeout: float = CHILD_TIMEOUT_S,
) -> list:
    """Print and return [(name, reference fps, our fps, ratio)]; a tracker whose side fails (or is
    killed after `child_timeout` seconds) prints why, and the next tracker runs. `precision` int8:
    ours runs twice per round, fp32 and int8 (a third alternating side), and each row has the int8
    fps and its ratios to the reference and to our fp32 appended."""
    for sub in ("pysot", "NanoTrack"):
        if not os.path.isdir(os.path.join(refs, sub)):
            raise FileNotFoundError(f"reference folder {refs!r} has no {sub}/ (pass --reference DIR)")
    try:
        import yacs  # noqa: F401  (the reference code's config system)
    except ImportError:
        raise ImportError(
            "the reference code needs yacs: pip install 'siamscope[bench]' (or pip install yacs)"
        ) from None
    print(
        f"reference vs ours, {when_and_load()}: {os.path.basename(video)}, "
        f"{frames} tracked frames, {threads} thread(s) on both sides, engine {engine} for ours, "
        f"alternating processes, best of {rounds} round(s) each, a child killed after {child_timeout:g} s; "
        f"only track() timed; target >= {TARGET}x (pysot networks)",
        flush=True,
    )
    common = [
        "--refs",
        refs,
        "--video",
        video,
        "--fixtures",
        fixtures_dir,
        "--nanotrack-dir",
        nano_dir,
        "--frames",
        str(frames),
        "--threads",
        str(threads),
        "--engine",
        engine,
        "--box",
        ",".join(f"{v:g}" for v in box),
    ]
    rows = []
    for name in names:
        sides = ("ref", "ours", "int8") if precision == "int8" else ("ref", "ours")
        best = dict.fromkeys(sides, 0.0)
        our_engine = "?"
        try:
            for r in range(rounds):
                # who goes first alternates too, so a drift in the machine's load falls on both alike
                for side in sides if r % 2 == 0 else sides[::-1]:
                    fps, eng = _run_child(side, name, common, child_timeout)
                    best[side] = max(best[side], fps)
                    if side == "ours":
                        our_engine = eng
        except ChildFailed as e:
            print(f"  {name:20s} failed: {e}", flush=True)
            continue
        ratio = best["ours"] / best["ref"]
        rows.append((name, best["ref"], best["ours"], ratio))
        int8 = ""
        if "int8" in best:
            rows[-1] += (best["int8"], best["int8"] / best["ref"], best["int8"] / best["ours"])
            int8 = (
                f"   ours int8 {best['int8']:8.2f} fps   int8/reference {rows[-1][5]:.2f}   int8/fp32 {rows[-1][6]:.2f}"
            )
        print(
            f"  {name:20s} reference {best['ref']:8.2f} fps   ours ({our_engine}) {best['ours']:8.2f} fps   "
            f"ratio {ratio:.2f}{int8}",
            flush=True,
        )
    return rows


def check_names(names) -> list:
    unknown = [n for n in names if n not in REFERENCE_TRACKERS]
    if unknown:
        raise ValueError(f"no reference code for {', '.join(unknown)} (known: {', '.join(REFERENCE_TRACKERS)})")
    return list(names)


def cmd_bench_reference(args, policy, video: str, box, fixtures_dir: str, nano_dir: str) -> int:
    """`bench --reference [DIR]` (the bench CLI's arguments: --trackers, --frames, --rounds, --threads, --engine)."""
    from .bench_timing import BenchError

    refs = args.reference or default_reference_dir()
    if not refs:
        raise BenchError("no reference code: ../shared/refcode is absent (pass --reference DIR)")
    names = [n.strip() for n in args.trackers.split(",") if n.strip()] if args.trackers else list(DEFAULT_TRACKERS)
    try:
        names = check_names(names)
        rows = bench_reference(
            refs,
            names,
            video,
            box,
            fixtures_dir,
            nano_dir,
            policy.threads,
            args.engine,
            args.frames or DEFAULT_FRAMES,
            args.rounds,
            precision=getattr(args, "precision", "fp32"),
            child_timeout=getattr(args, "child_timeout", None) or CHILD_TIMEOUT_S,
        )
    except (ValueError, ImportError, FileNotFoundError) as e:
        raise BenchError(str(e)) from None
    return 0 if len(rows) == len(names) else 1


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
