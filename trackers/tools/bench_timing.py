"""What every `bench` job shares: where the inputs are, the frames (decoded once, before any
timing), the timed loop (the session's, so a figure is the time inside the tracker's per-frame
step: crop + network + decode, never decoding or init) and the weights a tracker is timed with.
"""

from __future__ import annotations

import os

from ..core.base import Tracker
from ..core.paths import REPO_ROOT
from ..run.fixtures import SEEDED_FIXTURE, seeded_checkpoint
from ..run.session import TrackingSession
from ..run.sources import FrameListSource

REPO = REPO_ROOT
SHARED = os.environ.get("SIAMSCOPE_SHARED", os.path.join(REPO, "..", "shared"))
DEFAULT_VIDEO = os.path.join(SHARED, "data", "videos", "bag.avi")
DEFAULT_NANO_DIR = os.path.join(SHARED, "models", "nanotrack")
BAG_BOX = (292.23, 128.36, 145.96, 132.47)


class BenchError(OSError):
    """Missing input for the benchmark (reported as one line by the CLI)."""


def read_frames(path: str, limit: int | None = None) -> list:
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


def time_tracker_within(
    tracker: Tracker, frames: list, box, budget_s: float | None = None, min_frames: int = 3
) -> tuple[float, int]:
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


def bench_weights(spec, fixtures_dir: str, nano_dir: str, tmp: str):
    """(weights, how) for timing a registered tracker: the fixture's seeded weights where the
    published ones are not on this machine (same network, same cost per frame), else the real ones."""
    from ..core import registry

    if spec.name in SEEDED_FIXTURE:
        fixture = os.path.join(fixtures_dir, SEEDED_FIXTURE[spec.name])
        if not os.path.isdir(fixture):
            raise BenchError(f"{fixture} is absent")
        return seeded_checkpoint(fixture, tmp), "seeded weights"
    if spec.weights_file.startswith("nanotrack"):  # NanoTrack v1-v3, OpenCV's, and the default (v2's)
        return os.path.join(nano_dir, spec.weights_file), "real weights"
    if spec.needs_weights:
        found = registry.find_weights(spec)
        if found is None and spec.name == "siamattn":
            return "seed:0", "seeded weights"
        return found, "real weights"
    return None, "no checkpoint"


def build_for_bench(
    name: str,
    engine: str | None,
    fixtures_dir: str,
    nano_dir: str,
    tmp: str,
    maps: bool = False,
    precision: str = "fp32",
):
    """(tracker, how) with channel maps off unless `maps` (nothing draws them for a speed figure);
    raises BenchError when it cannot be built. `engine` None: the tracker's own default; `precision`
    int8: the quantised graph (trackers/core/quantize.py)."""
    from models.checkpoint import CheckpointError
    from models.device import DeviceError

    from ..core import registry
    from ..core.base import EngineError

    spec = registry.get(name)
    weights, how = bench_weights(spec, fixtures_dir, nano_dir, tmp)
    try:
        tracker = registry.build(name, weights, engine=engine, precision=precision)
    except (CheckpointError, EngineError, DeviceError, OSError, KeyError) as e:
        raise BenchError(str(e).splitlines()[0]) from None
    if hasattr(tracker, "collect_channels"):
        tracker.collect_channels = maps
    return tracker, how


def ping_pong(frames: list, count: int) -> list:
    """`count` frames: the video forwards, backwards, forwards... (a longer run on the same frames; the
    target moves continuously, so the tracker follows it as on a longer video)."""
    if len(frames) < 2:
        return list(frames[:count])
    cycle = frames + frames[-2:0:-1]
    return [cycle[i % len(cycle)] for i in range(count)]


def median(values) -> float:
    import statistics

    return float(statistics.median(values))


def tracker_names(text: str | None, default) -> list:
    """`--trackers`: comma-separated registry names, 'all', or `default` when not given."""
    from ..core import registry

    if not text:
        return list(default)
    if text == "all":
        return [s.name for s in registry.all_trackers()]
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        registry.get(n)  # an unknown name fails before anything runs
    return names


#: issue 11's targets for `bench --load` (loaded / idle) and `bench --gui` (the app's wall fps /
#: `track`'s), printed next to the figures
TARGET_LOADED = 0.7
TARGET_GUI = 0.9
