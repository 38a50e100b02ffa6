"""`bench --gui`: the app against `track` on the same clip, same engine, same thread count, each run
in a child process (`python main.py track`, `python -m scripts.gui_bench`); with `--load`, the app idle
and with one busy core; with `--targets N,...`, N targets in both (`track --boxes FILE` and the window
showing every target), the same N boxes on the same frames (`bench_gui_targets`)."""

from __future__ import annotations

import json
import os

import cv2

from .bench_timing import REPO, TARGET_GUI, TARGET_LOADED, BenchError, bench_weights, median, ping_pong, read_frames
from .busy_core import BusyCore, alternate_rounds

#: `bench --gui` trackers by default: the two the app is used with most
GUI_TRACKERS = ("nanotrack-v2", "siamscope-default")
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
    """`python main.py track` and `python -m scripts.gui_bench` on one tracker, clip and thread count;
    `boxes_file`: the targets (`--boxes FILE`) instead of the one `box`."""

    def __init__(
        self, clip: str, name: str, box, engine: str, threads: int, weights: str | None, boxes_file: str | None = None
    ):
        import sys

        self.python = sys.executable
        self.clip = clip
        targets = ["--boxes", boxes_file] if boxes_file else ["--box", ",".join(f"{v:g}" for v in box)]
        self.args = [
            "--tracker",
            name,
            *targets,
            "--engine",
            engine,
            "--threads",
            str(threads),
        ] + (["--weights", weights] if weights else [])
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


def bench_gui(
    video: str,
    box,
    names,
    engine: str,
    threads: int,
    n_frames: int | None,
    nano_dir: str,
    fixtures_dir: str,
    rounds: int = 3,
    load: bool = False,
) -> list:
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
        print(
            f"GUI under load: the app (offscreen, speed max, heatmap + channel grid) on {n_frames} frames of "
            f"{os.path.basename(video)} (back and forth), {rounds} idle and {rounds} loaded runs alternating, "
            f"median wall fps (tracked frames per wall second) of each; {app_threads} compute thread(s); "
            f"target >= {TARGET_LOADED}x"
        )
    else:
        print(
            f"GUI vs headless on {n_frames} frames of {os.path.basename(video)} (back and forth), {app_threads} "
            f"compute thread(s) in both (the app's policy), best of {rounds} alternating runs each: fps = frames / "
            f"time in tracker.track(); GUI wall = tracked frames per wall second in the app (offscreen, speed max, "
            f"heatmap + channel grid shown), the figure that counts; target GUI wall >= {TARGET_GUI}x `track`"
        )
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
                    runs = []  # the app's JSON of every run

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
                details = (
                    f"{last['frames']} frames, {last['drawn']} drawn, engine {last['engine']}, "
                    f"{last['threads']} thread(s); {how}"
                )
                if load:
                    idle, loaded = median(figures["idle"]), median(figures["loaded"])
                    rows.append((name, idle, loaded))
                    print(
                        f"  {name:22s} GUI wall idle {idle:7.1f} fps   one busy core {loaded:7.1f} fps   "
                        f"ratio {loaded / idle:.2f}   ({details})",
                        flush=True,
                    )
                    continue
                cli_fps = max(cli_runs)
                gui_fps = max(r["fps"] for r in runs)
                wall = max(r["wall_fps"] for r in runs)
                rows.append((name, cli_fps, gui_fps, wall))
                print(
                    f"  {name:22s} track {cli_fps:7.1f} fps   GUI {gui_fps:7.1f} fps ({gui_fps / cli_fps:.2f}x)   "
                    f"GUI wall {wall:7.1f} fps = {wall / cli_fps:.2f}x   ({details})",
                    flush=True,
                )
        finally:
            if busy is not None:
                busy.__exit__(None, None, None)
    return rows


#: `bench --gui --targets`: the tracker by default (the one the issue's window goal is about)
GUI_TARGETS_TRACKERS = ("nanotrack-v2",)


def spread_boxes(box, n: int, size: tuple[int, int]) -> list[tuple[float, float, float, float]]:
    """`box` and n-1 more, each half its width and height, on a grid over the frame (`size` = W, H):
    distinct patches, every one inside the frame, the same for every run."""
    W, H = size
    x, y, w, h = box
    w2, h2 = max(16.0, w / 2), max(16.0, h / 2)
    cols = max(1, int(W // (w2 * 1.25)))
    rows = max(1, int(H // (h2 * 1.25)))
    out = [tuple(float(v) for v in box)]
    for k in range(n - 1):
        c, r = k % cols, (k // cols) % rows
        bx = min(W - w2 - 1, (c + 0.125) * W / cols)
        by = min(H - h2 - 1, (r + 0.125) * H / rows)
        out.append((round(bx, 2), round(by, 2), round(w2, 2), round(h2, 2)))
    return out


def write_boxes_file(path: str, boxes) -> str:
    """`id,x,y,w,h` a line, ids from 1: what `track --boxes` and `scripts.gui_bench --boxes` read."""
    with open(path, "w") as f:
        for i, b in enumerate(boxes, 1):
            f.write(f"{i}," + ",".join(f"{v:g}" for v in b) + "\n")
    return path


def bench_gui_targets(
    video: str,
    box,
    counts,
    names,
    engine: str,
    threads: int,
    n_frames: int | None,
    nano_dir: str,
    fixtures_dir: str,
    rounds: int = 3,
    boxes=None,
) -> list:
    """N targets: `track --boxes FILE` against the window showing every target (its boxes, list and
    timeline curves; offscreen, speed max, heatmap on the video, channel grid shown), the same N boxes
    on the same frames, same engine and thread count, `rounds` runs of each alternating, best of each.
    `boxes`: the targets (default: the bench box and N-1 spread over the frame, `spread_boxes`); N
    takes the first N. Returns [(name, N, track fps, GUI wall fps)]; prints each with the ratio."""
    import tempfile

    from ..core import compute, registry

    n_frames = n_frames or GUI_CLIP_FRAMES
    app_threads = compute.decide(threads, gui=True).threads
    print(
        f"GUI vs headless with several targets, on {n_frames} frames of {os.path.basename(video)} (back and forth), "
        f"{app_threads} compute thread(s) in both, the same boxes (`track --boxes FILE`; the window adds the "
        f"targets on the first frame), best of {rounds} alternating runs each: track = frames / time tracking "
        f"(all targets), GUI wall = tracked frames per wall second in the app showing every target; "
        f"target GUI wall >= {TARGET_GUI}x `track`"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(video, tmp, n_frames)
        cap = cv2.VideoCapture(clip)
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        cap.release()
        every = list(boxes) if boxes else spread_boxes(box, max(counts), size)
        for name in names:
            try:
                weights, how = bench_weights(registry.get(name), fixtures_dir, nano_dir, tmp)
            except BenchError as e:
                print(f"  {name:22s} failed: {e}", flush=True)
                continue
            for n in counts:
                if n > len(every):
                    print(f"  {name:22s} {n} targets: only {len(every)} boxes given", flush=True)
                    continue
                boxes_file = write_boxes_file(os.path.join(tmp, f"boxes{n}.txt"), every[:n])
                child = _Child(clip, name, None, engine, app_threads, weights, boxes_file)
                cli_runs, runs = [], []
                try:
                    for _ in range(rounds):
                        cli_runs.append(child.track_fps())
                        runs.append(child.gui())
                except BenchError as e:
                    print(f"  {name:22s} {n} targets failed: {e}", flush=True)
                    continue
                cli_fps, wall = max(cli_runs), max(r["wall_fps"] for r in runs)
                walls = " ".join(f"{r['wall_fps']:.1f}" for r in runs)
                last = runs[-1]
                rows.append((name, n, cli_fps, wall))
                print(
                    f"  {name:22s} {n:2d} targets   track {cli_fps:7.1f} fps   GUI wall {wall:7.1f} fps = "
                    f"{wall / cli_fps:.2f}x   (runs: track {' '.join(f'{v:.1f}' for v in cli_runs)}, GUI wall "
                    f"{walls}; {last['frames']} frames, {last['drawn']} "
                    f"drawn, {last['targets']} targets shown, engine {last['engine']}, {last['threads']} "
                    f"thread(s); {how})",
                    flush=True,
                )
    return rows
