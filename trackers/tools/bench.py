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

from ..core.base import Tracker
from ..core.paths import REPO_ROOT
from ..run.session import TrackingSession
from ..run.sources import FrameListSource

REPO = REPO_ROOT
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


#: `bench --all`: tracking time per tracker (at least 2 frames) before it moves on,
#: so the slowest ones (SiamRPN++ R50 long-term on seeded weights searches 831 px from frame 2 on:
#: seconds a frame) do not stretch the command to minutes; each line says how many frames it timed
ALL_BUDGET_S = 5.0
#: the targets of issue #11, printed next to the figures
TARGET_LOADED = 0.7
TARGET_GUI = 0.9
#: `bench --load` / `--gui` trackers by default: the two the app is used with most, and the pysot AlexNet
LOAD_TRACKERS = ("siamscope-default", "nanotrack-v2", "siamrpn-alex")
GUI_TRACKERS = ("nanotrack-v2", "siamscope-default")


class BenchError(OSError):
    """Missing input for the benchmark (reported as one line by the CLI)."""


def read_frames(path: str, limit: Optional[int] = None) -> list:
    from ..run.sources import open_source
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
    return time_tracker_within(tracker, frames, box)[0]


def time_tracker_within(tracker: Tracker, frames: list, box, budget_s: Optional[float] = None,
                        min_frames: int = 3) -> tuple[float, int]:
    """(seconds in track(), frames tracked) over frames[1:]; with `budget_s`, stops once that much
    tracking time is spent and at least `min_frames` are tracked."""
    session = TrackingSession.open(FrameListSource(frames), tracker)
    session.init(box)
    tracked = 0
    while session.advance() is not None:
        tracked += 1
        if budget_s is not None and tracked >= min_frames and session.tracked_seconds >= budget_s:
            break
    return session.tracked_seconds, tracked


def best_fps(trackers: dict, frames: list, box, rounds: int) -> dict:
    """Alternate the trackers for `rounds` rounds; fps of each one's fastest round."""
    best = {name: float("inf") for name in trackers}
    for _ in range(rounds):
        for name, tracker in trackers.items():
            best[name] = min(best[name], time_tracker(tracker, frames, box))
    return {name: (len(frames) - 1) / t for name, t in best.items()}


def build_ours(nano_dir: str, weights: Optional[str], engine: str = "auto"):
    from ..families import nanotrack
    from ..core import registry
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
    manifest_path = os.path.join(fixtures_dir, PYSOT_SEEDED[name], "manifest.json")
    if not os.path.isfile(manifest_path):
        return None, f"skipped: {manifest_path} is absent"
    from models.checkpoint import load_into
    from models.seeded import seeded_state_dict
    with open(manifest_path) as f:
        manifest = json.load(f)
    v = siamrpn.VARIANT_BY_NAME[name]
    net = siamrpn.build_network(v.network)
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


def bench_weights(spec, fixtures_dir: str, nano_dir: str, tmp: str):
    """(weights, how) for timing a registered tracker: the fixture's seeded weights where the
    published ones are not on this machine (same network, same cost per frame), else the real ones."""
    from ..core import registry
    if spec.name in SEEDED_FIXTURE:
        fixture = os.path.join(fixtures_dir, SEEDED_FIXTURE[spec.name])
        if not os.path.isdir(fixture):
            raise BenchError(f"{fixture} is absent")
        return seeded_checkpoint(fixture, tmp), "seeded weights"
    if spec.weights_file.startswith("nanotrack"):     # NanoTrack v1-v3, OpenCV's, and the default (v2's)
        return os.path.join(nano_dir, spec.weights_file), "real weights"
    if spec.needs_weights:
        found = registry.find_weights(spec)
        if found is None and spec.name == "siamattn":
            return "seed:0", "seeded weights"
        return found, "real weights"
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
    from ..core import registry
    from models.checkpoint import CheckpointError
    from ..run.results import RunRecord, slim
    from ..run.sources import open_source
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


#: the name issue 16's GPU bench knows it by
tracker_weights = bench_weights


def build_for_bench(name: str, engine: str, fixtures_dir: str, nano_dir: str, tmp: str):
    """(tracker, how) with channel maps off (nothing draws them here); raises BenchError when it cannot be built."""
    from ..core import registry
    from ..core.base import EngineError
    from models.checkpoint import CheckpointError
    spec = registry.get(name)
    weights, how = bench_weights(spec, fixtures_dir, nano_dir, tmp)
    try:
        tracker = registry.build(name, weights, engine=engine)
    except (CheckpointError, EngineError, OSError, KeyError) as e:
        raise BenchError(str(e).splitlines()[0]) from None
    if hasattr(tracker, "collect_channels"):
        tracker.collect_channels = False
    return tracker, how


def bench_all(frames: list, box, fixtures_dir: str, nano_dir: str, n_frames: int, engine: str = "auto") -> None:
    """Time every registered tracker on the same frames (`bench --all`); the reference code's figures
    come only from `bench --reference`, measured in the same run."""
    import tempfile
    from ..core import registry
    sub = frames[: n_frames + 1] if n_frames else frames
    print(f"all trackers, up to {len(sub) - 1} frames each or {ALL_BUDGET_S:g} s of tracking (at least 2 frames, "
          f"after a 1-frame warm-up), engine {engine} (seeded = fixture weights, same cost per frame):")
    print("  (against the reference code: `bench --reference`, both sides measured in the same run)")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in registry.all_trackers():
            try:
                tracker, how = build_for_bench(spec.name, engine, fixtures_dir, nano_dir, tmp)
            except BenchError as e:
                print(f"  {spec.name:22s} skipped: {e}")
                continue
            time_tracker_within(tracker, sub[:2], box)        # warm-up: first calls allocate
            seconds, tracked = time_tracker_within(tracker, sub, box, ALL_BUDGET_S, min_frames=2)
            f = tracked / seconds
            print(f"  {spec.name:22s} {f:7.1f} fps  {tracker.engine_name:11s} ({how}, {tracked} frames)", flush=True)


def start_busy_process():
    """One process that keeps a core busy (`while True: pass`), as a desktop's other work does."""
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class BusyCore:
    """The busy process of `bench --load`, started once and switched on and off with SIGCONT /
    SIGSTOP (a stopped process takes no CPU), so a loaded round starts loaded at once and an idle
    round is idle; killed on exit whatever happens. Each switch returns once the kernel reports the
    process stopped / continued (so on() and off() must alternate: a second SIGSTOP to a stopped
    process is never reported)."""

    def __enter__(self):
        self.process = start_busy_process()
        self.off()
        return self

    def _signal(self, sig: int, wait_for: int) -> None:
        os.kill(self.process.pid, sig)
        os.waitpid(self.process.pid, wait_for)

    def on(self) -> None:
        import signal
        self._signal(signal.SIGCONT, os.WCONTINUED)

    def off(self) -> None:
        import signal
        self._signal(signal.SIGSTOP, os.WUNTRACED)

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


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


def ping_pong(frames: list, count: int) -> list:
    """`count` frames: the video forwards, backwards, forwards... (a longer run on the same frames; the
    target moves continuously, so the tracker follows it as on a longer video)."""
    if len(frames) < 2:
        return list(frames[:count])
    cycle = frames + frames[-2:0:-1]
    return [cycle[i % len(cycle)] for i in range(count)]


def alternate_rounds(rounds: int, busy: "BusyCore", run) -> dict:
    """`run()` -> fps, `rounds` times idle and `rounds` times with the busy core on, alternating
    (idle first in even rounds, loaded first in odd ones, so a drift in the machine's own load
    over the run falls on both alike). Returns {"idle": [fps...], "loaded": [fps...]}."""
    figures = {"idle": [], "loaded": []}
    for r in range(rounds):
        for condition in (("idle", "loaded") if r % 2 == 0 else ("loaded", "idle")):
            if condition == "idle":
                figures[condition].append(run())
                continue
            busy.on()
            try:
                figures[condition].append(run())
            finally:
                busy.off()
    return figures


def median(values) -> float:
    import statistics
    return float(statistics.median(values))


def bench_load(frames: list, box, names, engine: str, rounds: int, fixtures_dir: str, nano_dir: str,
               fixed_frames: int = 0) -> list:
    """Each tracker idle and with one busy core (a process this command starts and stops), same
    frames, same process, after a warm-up: prints the median fps of each condition over `rounds`
    alternating rounds and their ratio; returns [(name, idle, loaded)]."""
    import tempfile
    print(f"load test: {LOAD_WARMUP_FRAMES} warm-up frames, then {rounds} idle and {rounds} loaded rounds "
          f"alternating, ~{LOAD_ROUND_SECONDS:g} s each (median fps per condition); 'loaded' = one extra process "
          f"spinning a core (`while True: pass`), started by this command; target >= {TARGET_LOADED}x")
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
            print(f"  {name:22s} {tracker.engine_name:11s} idle {idle:7.1f} fps   one busy core {loaded:7.1f} fps   "
                  f"ratio {loaded / idle:.2f}   ({n} frames a round; {how})", flush=True)
            tracker = None
    return rows


#: `bench --gui`: frames of the clip both `track` and the app run on (bag played back and forth):
#: long enough that a fast tracker's wall-clock figure is not a few hundred milliseconds long. At
#: 400, NanoTrack's run lasted 0.6 s and its GUI/track ratio read 0.90-0.92x on a quiet machine,
#: 0.95x over 2000 frames: the app's start-up (first draw, first hand-off) weighed on the short clip
GUI_CLIP_FRAMES = 1200


def write_clip(video: str, out_dir: str, n_frames: int) -> str:
    """The first `n_frames` of `video`'s frames played back and forth, written as an MPEG-4 AVI
    (the codec of bag.avi: decoding costs what a user's video costs); returns its path."""
    frames = ping_pong(read_frames(video), n_frames)
    path = os.path.join(out_dir, "clip.avi")
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FMP4"), 25.0, (w, h))
    if not writer.isOpened():
        raise BenchError(f"cannot write the benchmark clip {path!r} (OpenCV has no MPEG-4 encoder?)")
    for f in frames:
        writer.write(f)
    writer.release()
    return path


class _Child:
    """`python main.py track` and `python -m scripts.gui_bench` on one tracker, clip and thread count."""

    def __init__(self, clip: str, name: str, box, engine: str, threads: int, weights: Optional[str]):
        import sys
        self.python = sys.executable
        self.clip = clip
        self.args = ["--tracker", name, "--box", ",".join(f"{v:g}" for v in box), "--engine", engine,
                     "--threads", str(threads)] + (["--weights", weights] if weights else [])
        self.env = dict(os.environ, QT_QPA_PLATFORM="offscreen")

    def _run(self, argv: list) -> str:
        import subprocess
        done = subprocess.run([self.python, *argv], env=self.env, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0 or not done.stdout.strip():
            raise BenchError(" ".join((done.stderr or done.stdout).strip().splitlines()[-1:]) or "no output")
        return done.stdout.strip().splitlines()[-1]

    def track_fps(self) -> float:
        """`track`'s own figure: frames per second of time inside tracker.track()."""
        return float(self._run([os.path.join(REPO, "main.py"), "track", self.clip, *self.args]).split()[0])

    def gui(self) -> dict:
        return json.loads(self._run(["-m", "scripts.gui_bench", self.clip, *self.args]))


def bench_gui(video: str, box, names, engine: str, threads: int, n_frames: Optional[int], nano_dir: str,
              fixtures_dir: str, rounds: int = 3, load: bool = False) -> list:
    """The app against `track`, same clip, same engine, same thread count (the app's: its policy
    keeps a core for the Qt thread), `rounds` alternating runs of each, best of each kept.

    Without `load`: `track`'s fps (frames / time in tracker.track()) against the app's, driven
    offscreen at speed "max" with the heatmap on the video and the channel grid shown, and above
    all the app's WALL fps: tracked frames per wall second (decoding, hand-off, drawing and the
    event loop included). Returns [(name, track fps, GUI fps, GUI wall fps)].

    With `load`: the app's wall fps idle and with one busy core, alternating (median of each).
    Returns [(name, idle wall fps, loaded wall fps)]."""
    import tempfile
    from ..core import compute, registry
    n_frames = n_frames or GUI_CLIP_FRAMES
    app_threads = compute.decide(threads, gui=True).threads
    if load:
        print(f"GUI under load: the app (offscreen, speed max, heatmap + channel grid) on {n_frames} frames of "
              f"{os.path.basename(video)} (back and forth), {rounds} idle and {rounds} loaded runs alternating, "
              f"median wall fps (tracked frames per wall second) of each; {app_threads} compute thread(s); "
              f"target >= {TARGET_LOADED}x")
    else:
        print(f"GUI vs headless on {n_frames} frames of {os.path.basename(video)} (back and forth), {app_threads} "
              f"compute thread(s) in both (the app's policy), best of {rounds} alternating runs each: fps = frames / "
              f"time in tracker.track(); GUI wall = tracked frames per wall second in the app (offscreen, speed max, "
              f"heatmap + channel grid shown), the figure that counts; target GUI wall >= {TARGET_GUI}x `track`")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(video, tmp, n_frames)
        busy = BusyCore() if load else None
        if busy is not None:
            busy.__enter__()
        try:
            for name in names:
                try:
                    weights, how = bench_weights(registry.get(name), fixtures_dir, nano_dir, tmp)
                    child = _Child(clip, name, box, engine, app_threads, weights)
                    runs = []           # the app's JSON of every run

                    def gui_wall() -> float:
                        runs.append(child.gui())
                        return runs[-1]["wall_fps"]
                    if load:
                        figures = alternate_rounds(rounds, busy, gui_wall)
                    else:
                        cli_runs = []
                        for _ in range(rounds):
                            cli_runs.append(child.track_fps())
                            gui_wall()
                except BenchError as e:
                    print(f"  {name:22s} failed: {e}", flush=True)
                    continue
                last = runs[-1]
                details = (f"{last['frames']} frames, {last['drawn']} drawn, engine {last['engine']}, "
                           f"{last['threads']} thread(s); {how}")
                if load:
                    idle, loaded = median(figures["idle"]), median(figures["loaded"])
                    rows.append((name, idle, loaded))
                    print(f"  {name:22s} GUI wall idle {idle:7.1f} fps   one busy core {loaded:7.1f} fps   "
                          f"ratio {loaded / idle:.2f}   ({details})", flush=True)
                    continue
                cli_fps = max(cli_runs)
                gui_fps = max(r["fps"] for r in runs)
                wall = max(r["wall_fps"] for r in runs)
                rows.append((name, cli_fps, gui_fps, wall))
                print(f"  {name:22s} track {cli_fps:7.1f} fps   GUI {gui_fps:7.1f} fps ({gui_fps / cli_fps:.2f}x)   "
                      f"GUI wall {wall:7.1f} fps = {wall / cli_fps:.2f}x   ({details})", flush=True)
        finally:
            if busy is not None:
                busy.__exit__(None, None, None)
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
    fixtures_dir = os.path.join(os.path.dirname(os.path.dirname(nano_dir.rstrip(os.sep))), "fixtures") \
        if args.nanotrack_dir else os.path.join(SHARED, "fixtures")
    if getattr(args, "reference", None) is not None:
        from .bench_reference import cmd_bench_reference
        return cmd_bench_reference(args, policy, video, box, fixtures_dir, nano_dir)
    if getattr(args, "profile", False):
        from .bench_profile import cmd_bench_profile
        return cmd_bench_profile(args, policy, video, box, fixtures_dir, nano_dir)
    if getattr(args, "targets", None):
        from . import bench_targets as bt
        bt.parse_counts(args.targets)          # a bad list fails before any frame is read
        return bt.cmd_bench_targets(args, video, read_frames(video, args.frames or bt.DEFAULT_FRAMES), box,
                                    _names(args.trackers, bt.DEFAULT_TRACKERS), fixtures_dir, nano_dir, bench_weights)
    if args.gui:
        names = _names(args.trackers, GUI_TRACKERS)
        bench_gui(video, box, names, args.engine, args.threads, args.frames, nano_dir, fixtures_dir, args.rounds,
                  load=args.load)
        return 0
    names = _names(args.trackers, LOAD_TRACKERS) if args.load else []
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
        for name in PYSOT_SEEDED:
            tracker, why = build_seeded_pysot(name, fixtures_dir)
            if tracker is None:
                print(f"{name}: {why}")
                continue
            if args.engine != "torch":
                tracker.set_engine(args.engine)
            f = best_fps({name: tracker}, sub, box, 1)[name]
            print(f"{name} (seeded weights, {tracker.engine_name}): {f:.2f} fps ({len(sub) - 1} frames)")
    return 0


def _names(text: Optional[str], default) -> list:
    from ..core import registry
    if not text:
        return list(default)
    if text == "all":
        return [s.name for s in registry.all_trackers()]
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        registry.get(n)      # an unknown name fails before anything runs
    return names


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="tracking speed: our NanoTrack v2 vs cv2.TrackerNano, pysot trackers")
    p.add_argument("--video", help="video or image folder (default ../shared/data/videos/bag.avi)")
    p.add_argument("--box", help="init box x,y,w,h (default: the bag box 292.23,128.36,145.96,132.47)")
    p.add_argument("--nanotrack-dir", help="folder with nanotrackv2.pth and the v2 ONNX files "
                                           "(default ../shared/models/nanotrack)")
    p.add_argument("--weights", help="our nanotrack-v2 checkpoint (default: in --nanotrack-dir)")
    p.add_argument("--frames", type=int, help=f"use only the first N frames (--gui: a clip of N frames, the video "
                                              f"back and forth; default {GUI_CLIP_FRAMES})")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds, best kept (default 3)")
    from .usage import add_compute_arguments
    add_compute_arguments(p)
    p.add_argument("--pysot-frames", type=int, default=20,
                   help="frames for the pysot trackers (default 20); --all times each tracker on all frames or "
                        f"{ALL_BUDGET_S:g} s of tracking, whichever comes first")
    p.add_argument("--no-pysot", action="store_true", help="skip the pysot trackers")
    p.add_argument("--all", action="store_true",
                   help="time every registered tracker (seeded fixture weights where the published ones are absent)")
    p.add_argument("--load", action="store_true",
                   help="each tracker idle and with one busy core (a process this command starts): both fps, ratio")
    p.add_argument("--load-frames", type=int, default=0,
                   help=f"frames per --load round (default 0: about {LOAD_ROUND_SECONDS:g} s at the tracker's "
                        "warm-up speed)")
    p.add_argument("--gui", action="store_true",
                   help="the app (offscreen, speed max, heatmap + channel grid) vs `track` on the same frames; "
                        "with --load: the app idle vs one busy core")
    p.add_argument("--trackers", help="comma-separated trackers for --load / --gui / --soak, or 'all' (--load / --gui) "
                                      f"(default --load: {','.join(LOAD_TRACKERS)}; --gui: {','.join(GUI_TRACKERS)})")
    p.add_argument("--soak", type=int, metavar="N",
                   help="memory instead of speed: RSS at the start and the end of N frames for every tracker")
    p.add_argument("--targets", metavar="N,N,...",
                   help="several targets of one tracker (--trackers; default nanotrack-v2): fps per target count, "
                        "batched and one by one, in the same run (trackers/tools/bench_targets.py)")
    p.add_argument("--reference", nargs="?", const="", metavar="DIR",
                   help="our trackers against the reference code in DIR (default ../shared/refcode), alternating "
                        "processes, same frames, weights and threads: both fps and the ratio "
                        "(trackers/tools/bench_reference.py)")
    p.add_argument("--profile", action="store_true",
                   help="where one frame's time goes: ms per stage (crop, network split by module, decode, "
                        "mask) in torch and onnxruntime (--trackers; trackers/tools/bench_profile.py)")
    p.set_defaults(func=cmd_bench)
