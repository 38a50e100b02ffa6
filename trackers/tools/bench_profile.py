"""`python main.py bench --profile`: where one frame's time goes, per stage and per engine.

For each tracker and engine (torch, onnxruntime) it builds the tracker as `bench` does (seeded
fixture weights for the pysot networks, the published NanoTrack weights), tracks a few warm-up
frames, then times `frames` more and prints the mean milliseconds per frame of each stage:

- crop, decode, mask / refine (SiamMask's mask branch and its refinement): the tracker's own stage
  timer (TrackResult.timings), whatever stages the tracker reports;
- network, split into the network's top-level modules (backbone, neck, rpn_head / head, the
  mask branch ...): in torch by forward hooks on those modules and every module under them; in
  ONNX Runtime by the session's own profiler (a second session on the same exported graph and
  options, with profiling on), whose node names carry the module path they were exported from
  ("/net/backbone/..."); a node
  no module name can be read from (the depth-wise correlation outside any module, reorders
  ONNX Runtime added) counts as "other".
  "network: other" is the network stage less those modules (the engine's feeds and fetches, the
  crop's layout copy, torch's Python between modules, ops outside any module).

Only means, one process, no reference side: the figures are for finding the big stage, not for
ratios (`bench --reference` gives those).
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
import time

DEFAULT_TRACKERS = ("siamrpn-alex", "siamrpnpp-r50", "siammask-r50", "nanotrack-v2")
ENGINES = ("torch", "onnxruntime")
WARMUP = 2
DEFAULT_FRAMES = 5


def _top_modules(net) -> dict:
    """The network's direct submodules by attribute name (backbone, neck, rpn_head, ...)."""
    return dict(net.named_children())


class _TorchModuleTimer:
    """Milliseconds spent in each top-level module (hooks, removed on close). The hooks sit on the
    top module and on every module under it: pysot's head is called through a method
    (`rpn_head.match`), not its forward, so only its submodules' forwards fire. Per top module
    only the outermost call running is timed, so nested calls are not counted twice."""

    def __init__(self, net):
        self.ms = collections.Counter()
        self._start, self._depth = {}, collections.Counter()
        self._handles = []
        for name, top in _top_modules(net).items():
            for module in top.modules():
                self._handles.append(module.register_forward_pre_hook(self._pre(name)))
                self._handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(_module, _inputs):
            if self._depth[name] == 0:
                self._start[name] = time.perf_counter()
            self._depth[name] += 1

        return hook

    def _post(self, name):
        def hook(_module, _inputs, _output):
            self._depth[name] -= 1
            if self._depth[name] == 0:
                self.ms[name] += (time.perf_counter() - self._start.pop(name)) * 1e3

        return hook

    def close(self):
        for h in self._handles:
            h.remove()


def _module_index(net) -> dict:
    """Attribute name -> the top-level module it is under, for every submodule name that only one
    top module has (the exporter names a scope by the module's name relative to the module that
    called it, so a head called through a method shows its submodules' names, not its own)."""
    owners = collections.defaultdict(set)
    for top_name, top in _top_modules(net).items():
        owners[top_name].add(top_name)
        for qualified, _ in top.named_modules():
            for part in qualified.split("."):
                if part and not part.isdigit():
                    owners[part].add(top_name)
    return {part: next(iter(tops)) for part, tops in owners.items() if len(tops) == 1}


def _ort_module_of(node_name: str, index: dict) -> str:
    """'/net/backbone/layer1/conv/Conv' -> 'backbone' (the first scope naming a known module);
    'other' where none does (ops outside any module, nodes ONNX Runtime added)."""
    for scope in node_name.strip("/").split("/"):
        top = index.get(scope.split(".")[0])
        if top is not None:
            return top
    return "other"


class _CountingSession:
    """An ONNX Runtime session that counts its runs (to leave the warm-up runs out of the split)."""

    def __init__(self, session):
        self.session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.session.run(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.session, name)


class _OrtProfiler:
    """Swaps each of the tracker's ONNX sessions (the main search size and any wider one, SiamRPN++
    LT's 831 px while the target is lost) for a profiling one on the same graph and options;
    `mark_warm()` notes the runs so far, `module_ms()` reads the node times of the runs after it
    back, per top-level module, over every session."""

    def __init__(self, engines: list, modules, tmp: str):
        from ..core import compute
        from ..core.engines import cpu_session, read_cached_graph

        self.modules, self.saved, self.skip = modules, [], {}
        for i, engine in enumerate(engines):
            opts = compute.ort_session_options(engine.policy)
            opts.enable_profiling = True
            opts.profile_file_prefix = os.path.join(tmp, f"ort-profile-{i}")
            # the cached graph's bytes as the engine checks them (sha256), never the file reopened unchecked
            graph = read_cached_graph(engine.path)
            if graph is None:  # a cache that could not be written: nothing to reopen
                self.restore()
                raise FileNotFoundError(f"the exported graph {engine.path} is not in the cache")
            self.saved.append((engine, engine.session))
            engine.session = _CountingSession(cpu_session(graph, options=opts))

    def mark_warm(self) -> None:
        self.skip = {id(engine): engine.session.runs for engine, _ in self.saved}

    def restore(self) -> list:
        profiled = []
        for engine, session in self.saved:
            profiled.append((engine.session, self.skip.get(id(engine), 0)))
            engine.session = session
        self.saved = []
        return profiled

    def module_ms(self) -> tuple[dict, int]:
        """({module: total ms}, runs counted) over the runs after `mark_warm()`, every session."""
        ms, counted = collections.Counter(), 0
        for session, skip in self.restore():
            path = session.end_profiling()
            with open(path) as f:
                events = json.load(f)
            runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
            if len(runs) <= skip:
                continue
            since = runs[skip]["ts"]
            counted += len(runs) - skip
            for e in events:
                if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= since:
                    node = e["name"][: -len("_kernel_time")]
                    ms[_ort_module_of(node, self.modules)] += e["dur"] / 1e3
        return dict(ms), counted


def profile_tracker(
    name: str, engine: str, frames: list, box, fixtures_dir: str, nano_dir: str, n_frames: int = DEFAULT_FRAMES
) -> dict | None:
    """{stage: mean ms per frame} for one tracker in one engine (None where it cannot be built)."""
    import torch

    from ..run.session import Track
    from .bench_timing import BenchError, build_for_bench

    with tempfile.TemporaryDirectory() as tmp:
        try:
            tracker, _how = build_for_bench(name, engine, fixtures_dir, nano_dir, tmp)
        except BenchError as e:
            print(f"  {name:16s} {engine:11s} skipped: {e}", flush=True)
            return None
        if tracker.engine_name != engine:
            print(f"  {name:16s} {engine:11s} skipped: runs in {tracker.engine_name}", flush=True)
            return None
        net = tracker.network
        modules = _module_index(net)
        timed = frames[1 : 1 + WARMUP + n_frames]
        stages = collections.Counter()
        track = Track(tracker)  # the session's per-frame step, as every run drives a tracker
        with torch.no_grad():
            track.init(frames[0], 0, box)
            if engine == "torch":
                for i, f in enumerate(timed[:WARMUP], 1):
                    track.step(f, i, keep_box=False)
                hooks = _TorchModuleTimer(net)
                try:
                    for i, f in enumerate(timed[WARMUP:], WARMUP + 1):
                        stages.update(track.step(f, i, keep_box=False).timings)
                finally:
                    hooks.close()
                module_ms, runs = dict(hooks.ms), len(timed) - WARMUP
            else:
                sessions = [tracker.onnx_engine, *tracker.onnx_wide_engines.values()]
                try:
                    profiler = _OrtProfiler(sessions, modules, tmp)
                except FileNotFoundError as e:
                    print(f"  {name:16s} {engine:11s} no module split: {e}", flush=True)
                    profiler = None
                for i, f in enumerate(timed[:WARMUP], 1):
                    track.step(f, i, keep_box=False)
                if profiler:
                    profiler.mark_warm()
                for i, f in enumerate(timed[WARMUP:], WARMUP + 1):
                    stages.update(track.step(f, i, keep_box=False).timings)
                module_ms, runs = profiler.module_ms() if profiler else ({}, 0)
    n = len(timed) - WARMUP
    row = {k: v / n for k, v in stages.items()}
    if runs:
        # "other" is the network stage less the named modules: ORT's nodes no module name could be
        # read from (SiamMask's two heads share their submodules' names) stay in it
        split = {f"network: {m}": v / runs for m, v in module_ms.items() if m != "other"}
        split["network: other"] = max(0.0, row.get("network", 0.0) - sum(split.values()))
        row.update(split)
    row["total"] = sum(stages.values()) / n
    return row


def bench_profile(
    names, frames: list, box, fixtures_dir: str, nano_dir: str, threads: int, n_frames: int = DEFAULT_FRAMES
) -> list:
    """Print one table per tracker: stage -> ms per frame in torch and onnxruntime; return rows."""
    from .bench_reference import when_and_load

    print(
        f"per-stage profile, {when_and_load()}, {threads} thread(s): mean ms per "
        f"frame over {n_frames} frames after {WARMUP} warm-up frames (means, one process: for finding the big "
        f"stage, not for ratios)",
        flush=True,
    )
    out = []
    for name in names:
        rows = {e: profile_tracker(name, e, frames, box, fixtures_dir, nano_dir, n_frames) for e in ENGINES}
        keys = []
        for r in rows.values():
            for k in r or {}:
                if k not in keys and k != "total":
                    keys.append(k)
        keys.append("total")
        print(f"{name}:")
        print(f"  {'stage':28s} {'torch ms':>10s} {'onnxruntime ms':>15s}")
        for k in keys:
            cells = [f"{rows[e][k]:.2f}" if rows[e] and k in rows[e] else "-" for e in ENGINES]
            print(f"  {k:28s} {cells[0]:>10s} {cells[1]:>15s}", flush=True)
        out.append((name, rows))
    return out


def cmd_bench_profile(args, policy, video: str, box, fixtures_dir: str, nano_dir: str) -> int:
    """`bench --profile` (the bench CLI's --trackers, --frames, --threads)."""
    from .bench_timing import read_frames
    from .bench_timing import tracker_names as _names

    names = _names(args.trackers, DEFAULT_TRACKERS)
    n = args.frames or DEFAULT_FRAMES
    frames = read_frames(video, n + WARMUP + 1)
    bench_profile(names, frames, box, fixtures_dir, nano_dir, policy.threads, n)
    return 0
