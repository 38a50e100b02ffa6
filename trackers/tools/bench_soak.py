"""`bench --soak N`: memory instead of speed. Every tracker runs N frames (the video looped) keeping
per frame what the app keeps for a run (trackers/run/run_store.py: the RunRecord row, the slim
result, the mask packed), with the channel maps computed as the app has them; RSS is printed after a
warm-up and after the N frames, so growth per frame shows."""

from __future__ import annotations

import itertools
import os

from ..run.run_store import RunStore
from ..run.session import TrackingSession
from ..run.sources import FrameSource, open_source
from .bench_timing import BenchError, build_for_bench

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


class LoopedSource(FrameSource):
    """A video's frames over and over (reopened at its end), numbered on: the tracker goes on as on
    a long video."""

    def __init__(self, video: str):
        self.video = self.name = video
        self.source = open_source(video)

    def read(self):
        frame = self.source.read()
        if frame is None:
            self.source.close()
            self.source = open_source(self.video)
            frame = self.source.read()
        self.position += 1
        return frame

    def close(self):
        self.source.close()


def soak(video: str, box, n_frames: int, fixtures_dir: str, nano_dir: str, names=None) -> list[tuple]:
    """Prints and returns [(tracker, RSS at the start, RSS at the end)] in MB."""
    import gc
    import tempfile

    from ..core import registry

    rows = []
    print(
        f"soak: {n_frames} frames per tracker on {os.path.basename(video)} (looped) after {SOAK_WARMUP} "
        "warm-up frames, keeping what the app keeps per frame; RSS in MB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for spec in registry.all_trackers():
            if names and spec.name not in names:
                continue
            try:  # with the channel maps, as the app computes them while its grid is shown
                tracker, how = build_for_bench(spec.name, None, fixtures_dir, nano_dir, tmp, maps=True)
            except BenchError as e:
                print(f"  {spec.name:22s} skipped: {e}")
                continue
            store = RunStore()
            store.start(spec.name, {}, None, video, os.path.basename(video), 25.0, is_live=False)
            session = TrackingSession.open(LoopedSource(video), tracker)
            steps = session.run(box)

            def keep(count):
                for step in itertools.islice(steps, count):
                    store.add(step.index, step.frame, step.result, init=step.kind == "init")

            keep(1 + SOAK_WARMUP)
            gc.collect()
            start = rss_mb()
            keep(n_frames)
            session.close()
            gc.collect()
            end = rss_mb()
            per_frame = (end - start) * 1024 / n_frames
            print(
                f"  {spec.name:22s} start {start:7.1f}  end {end:7.1f}  ({end - start:+7.1f} MB, "
                f"{per_frame:+6.1f} kB/frame; {how} weights)",
                flush=True,
            )
            rows.append((spec.name, start, end))
            tracker = session = steps = store = None  # freed before the next tracker is measured
            gc.collect()
    return rows
