"""`bench --targets 1,2,4,8`: several targets of one tracker, batched (one network call per frame,
trackers/core/batching.py) against one by one (a call per target), in the same run.

Per target count N the same N trackers track the same frames both ways, in alternating rounds
(a burst of load from another process hits both alike); the fastest round of each counts. Printed
per N: frames per second of the whole step (all N targets), target-frames per second, the ratio
batched / one by one (the anchor: measured in the same run), and where the batched step's time goes
(crop, network, decode per frame), which is what limits it, and the parity: the largest difference
between a target's box batched and its box from a call of its own, over every frame and target.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

DEFAULT_COUNTS = (1, 2, 4, 8)
DEFAULT_TRACKERS = ("nanotrack-v2",)
DEFAULT_FRAMES = 31


def parse_counts(text: str) -> list[int]:
    from .usage import UsageError

    try:
        counts = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--targets takes target counts like 1,2,4,8, got {text!r}") from None
    if not counts or any(n < 1 or n > 64 for n in counts):
        raise UsageError(f"--targets: counts from 1 to 64, got {text!r}")
    return counts


def target_boxes(box, frame_shape, n: int) -> list[tuple]:
    """n boxes of the size of `box`: the first is `box`, the others on a grid over the frame (each a
    target of its own, as people in a street scene)."""
    H, W = frame_shape[:2]
    w, h = min(box[2], W / 3), min(box[3], H / 3)
    boxes = [tuple(box)]
    cols = 4
    k = 0
    while len(boxes) < n:
        col, row = k % cols, k // cols
        x = (col + 0.5) * (W - w) / cols
        y = ((row % 3) + 0.5) * (H - h) / 3
        boxes.append((round(x, 2), round(y, 2), w, h))
        k += 1
    return boxes


def _run(trackers, boxes, frames, batched: bool, runner) -> tuple[float, dict, list]:
    """Seconds of the per-frame steps over frames[1:] (after init on frames[0]), the stage totals
    and every result's box (frame by frame, target by target)."""
    from ..core.batching import track_batched
    from ..run.session import Track

    tracks = [Track(t, target_id=i) for i, t in enumerate(trackers)]
    for track, b in zip(tracks, boxes):
        track.init(frames[0], 0, b)
    stages: dict = {}
    out = []
    t0 = time.perf_counter()
    for index, frame in enumerate(frames[1:], 1):
        # one by one: each target through the session's per-frame step; batched: groups sharing a
        # network as one call (a group of one through the same step)
        if batched:
            results = track_batched(runner, trackers, frame, lambda i: tracks[i].step(frame, index).result)
        else:
            results = [track.step(frame, index).result for track in tracks]
        out.append([r.box for r in results])
        for r in results:
            for k, v in r.timings.items():
                stages[k] = stages.get(k, 0.0) + v
    return time.perf_counter() - t0, stages, out


def bench_targets(
    frames, box, names, counts, engine: str, rounds: int, fixtures_dir: str, nano_dir: str, bench_weights
) -> list:
    """`bench_weights(spec, fixtures_dir, nano_dir, tmp)` -> (weights, how): bench.py's (passed in, so
    this module does not import bench.py back)."""
    from ..core import registry
    from ..core.batching import BatchRunner, group_key

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = registry.get(name)
            weights, how = bench_weights(spec, fixtures_dir, nano_dir, tmp)
            trackers = []
            for _ in range(max(counts)):
                t = registry.build(name, weights, engine=engine) if engine != "auto" else registry.build(name, weights)
                t.collect_channels = False  # nothing draws the channel maps here
                trackers.append(t)
            batchable = group_key(trackers[0]) is not None
            n_frames = len(frames) - 1
            print(
                f"{name} ({trackers[0].engine_name}, {how}): {n_frames} frames, best of {rounds} rounds"
                + ("" if batchable else "; not batchable: both columns run one by one")
            )
            print(
                f"  {'targets':>7} {'one-by-one fps':>15} {'batched fps':>12} {'target-fps':>11} "
                f"{'ratio':>6}   batched ms/frame: crop network decode   parity: max |box diff| px"
            )
            for n in counts:
                group, boxes = trackers[:n], target_boxes(box, frames[0].shape, n)
                runner = BatchRunner()
                _run(group, boxes, frames[:3], True, runner)  # warm-up: graphs exported, sessions built
                best = {True: float("inf"), False: float("inf")}
                best_stages: dict = {}
                got: dict = {}
                for _ in range(rounds):
                    for batched in (False, True):
                        seconds, stages, got[batched] = _run(group, boxes, frames, batched, runner)
                        if seconds < best[batched]:
                            best[batched] = seconds
                            if batched:
                                best_stages = stages
                # each target's boxes batched against one call per target, every frame
                diff = float(np.abs(np.asarray(got[True], float) - np.asarray(got[False], float)).max())
                fps = {k: n_frames / v for k, v in best.items()}
                per = {k: best_stages.get(k, 0.0) / n_frames for k in ("crop", "network", "decode")}
                ratio = fps[True] / fps[False]
                print(
                    f"  {n:>7} {fps[False]:>15.1f} {fps[True]:>12.1f} {fps[True] * n:>11.1f} {ratio:>6.2f}"
                    f"   {per['crop']:.2f} {per['network']:.2f} {per['decode']:.2f}"
                    f"   {diff:.2g}"
                )
                rows.append(
                    dict(
                        tracker=name,
                        targets=n,
                        single_fps=fps[False],
                        batched_fps=fps[True],
                        ratio=ratio,
                        box_diff=diff,
                        **{f"{k}_ms": v for k, v in per.items()},
                    )
                )
    return rows


def cmd_bench_targets(
    args, video: str, frames: list, box, names: list, fixtures_dir: str, nano_dir: str, bench_weights
) -> int:
    """`bench --targets`, on what bench.py read and decided (its frames, its tracker names)."""
    counts = parse_counts(args.targets)
    print(
        f"video {os.path.basename(video)}; step = every target's crop, network and decode for one frame "
        f"(figures are this machine's now: other processes' load counts)"
    )
    bench_targets(frames, box, names, counts, args.engine, args.rounds, fixtures_dir, nano_dir, bench_weights)
    return 0
