"""`python -m trackers.tools.bench_options`: the fp32 engine options study (issue 26).

For each tracker it builds the network as `bench` does (seeded fixture weights for the pysot
networks), inits it on frame 0 of the video and catches the search crop (HxWx3 uint8) its first
tracked frame feeds the network. Then every variant runs that same crop, with the same template
state and the same thread count, one call each in turn for `rounds` rounds after a warm-up call
each (a burst of load from another process falls on all of them alike):

* `ort ALL` — what `auto` runs today: the exported graph (its big 3x3 convolutions as Winograd
  F(4, 3), models/winograd.py), ORT_ENABLE_ALL (NCHWc layout transform on x86), memory pattern and
  arena on, the crop's HWC uint8 -> NCHW float copy in NumPy;
* `ort direct convs` — for a network with such convolutions, the same graph with all of them
  direct (what `auto` ran before the Winograd rewrite);
* `ort EXTENDED` / `ort BASIC` — lower graph optimisation levels (EXTENDED: no NCHWc transform);
* `ort no mem pattern` / `ort no arena` — ORT's memory planning off;
* `ort spinning` — intra-op threads spin-wait between ops (the compute policy turns it off);
* `ort uint8 HWC in graph` — the layout copy inside the graph: a uint8 NHWC input cast and
  transposed by ORT (exact: a cast of small integers and a transpose);
* `torch eager` — the network's own `track()` (NCHW float input);
* `torch channels_last` — the network and the input in channels-last memory format;
* `torch jit.freeze` — traced, frozen (conv+BN folded, constants propagated) and
  `optimize_for_inference` (oneDNN layouts and fusions).

It prints, per variant, the median ms per call, the median of its per-round ratio against
`ort ALL` (the baseline's call divided by the variant's call in the same round: above 1 is
faster) and the largest difference of its outputs from eager torch's, as tests/test_engines.py
measures it (max |a - b| over NET_RTOL * max |torch| + NET_ATOL: at most 1 keeps parity).

    python -m trackers.tools.bench_options --trackers siamrpn-alex,siamrpnpp-r50 --threads 2

A study, not a product path: only the network call is timed (crop and decode are under 1 ms for
these networks, `bench --profile`), and the adopted options are in trackers/core/compute.py.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time

import numpy as np

#: the parity tolerance of tests/test_engines.py (network outputs against eager torch)
NET_RTOL = 1e-4
NET_ATOL = 1e-5


def _catch_crop(tracker, frames, box):
    """(HxWx3 uint8 crop, NCHW float32 tensor) the tracker feeds its network on frames[1]."""
    from ..core import siamese
    from ..run.session import Track

    caught = {}
    real = siamese.to_tensor_layout

    def catching(patch):
        caught.setdefault("patch", patch.copy())
        return real(patch)

    siamese.to_tensor_layout = catching
    try:
        track = Track(tracker)
        track.init(frames[0], 0, box)
        caught.clear()  # the exemplar's crop went through the same function: keep the search crop
        track.step(frames[1], 1, keep_box=False)
    finally:
        siamese.to_tensor_layout = real
    patch = caught["patch"]
    return patch, real(patch)


def _uint8_hwc_graph(graph: bytes) -> bytes:
    """The same graph with its `x` input as (1, H, W, 3) uint8, cast and transposed inside."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(graph)
    g = model.graph
    x = next(i for i in g.input if i.name == "x")
    n, c, h, w = (d.dim_value for d in x.type.tensor_type.shape.dim)
    for node in g.node:
        node.input[:] = ["x_nchw" if name == "x" else name for name in node.input]
    g.input.remove(x)
    g.input.insert(0, helper.make_tensor_value_info("x", TensorProto.UINT8, [n, h, w, c]))
    g.node.insert(0, helper.make_node("Transpose", ["x_float"], ["x_nchw"], perm=[0, 3, 1, 2]))
    g.node.insert(0, helper.make_node("Cast", ["x"], ["x_float"], to=TensorProto.FLOAT))
    return model.SerializeToString()


def _direct_graph(tracker) -> bytes | None:
    """The tracker's graph with every convolution direct, where its engine's has Winograd ones (None
    otherwise). Made before the tracker runs: a network that has tracked keeps per-frame state, and
    an engine probed on it would take that state for template inputs."""
    from ..core.engines import OnnxEngine

    if not tracker.onnx_engine.winograd:
        return None
    z_shape, x_shape = tracker.engine_shapes()
    kwargs = tracker.engine_track_kwargs()
    return OnnxEngine(tracker.network, z_shape, x_shape, kwargs, keep_graph=True, fast_convolutions=False).graph


def _variants(tracker, patch, x, threads: int, direct: bytes | None = None) -> dict:
    """name -> callable() returning the main outputs as NumPy arrays, in the graph's output order."""
    import onnxruntime as ort
    import torch

    from ..core import compute
    from ..core.crop import to_tensor_layout
    from ..core.engines import cpu_session, read_cached_graph

    net = tracker.network
    engine = tracker.onnx_engine
    graph = read_cached_graph(engine.path)
    names = engine._main_names
    feed = dict(engine._feed)
    main_keys = [k for k, i, tree in engine._runs[False][1][0] if tree is None]

    def ort_call(opts_change=None, model=graph, uint8=False):
        opts = compute.ort_session_options(compute.decide(threads))
        if opts_change:
            opts_change(opts)
        session = cpu_session(model, options=opts)
        own = dict(feed)

        def call():
            own["x"] = patch[None] if uint8 else to_tensor_layout(patch)
            return session.run(names, own)

        return call

    def level(name):
        def change(opts):
            opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, name)

        return change

    def setattr_change(attr, value):
        return lambda opts: setattr(opts, attr, value)

    def spinning(opts):
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1")

    def torch_outputs(out: dict) -> list:
        return [out[k].numpy() for k in main_keys]

    def eager(network, memory_format=None):
        def call():
            t = torch.from_numpy(to_tensor_layout(patch))
            if memory_format is not None:
                t = t.contiguous(memory_format=memory_format)
            with torch.inference_mode():
                return torch_outputs(network.track(t))

        return call

    cl = copy.deepcopy(net).to(memory_format=torch.channels_last)

    class Main(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network

        def forward(self, t):
            out = self.network.track(t)
            return tuple(out[k] for k in main_keys)

    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(Main(net).eval(), x, strict=False)))

    def jit_call():
        with torch.no_grad():
            return [t.numpy() for t in frozen(torch.from_numpy(to_tensor_layout(patch)))]

    variants = {"ort ALL": ort_call()}
    if direct is not None:
        variants["ort direct convs"] = ort_call(model=direct)
    return {
        **variants,
        "ort EXTENDED": ort_call(level("ORT_ENABLE_EXTENDED")),
        "ort BASIC": ort_call(level("ORT_ENABLE_BASIC")),
        "ort no mem pattern": ort_call(setattr_change("enable_mem_pattern", False)),
        "ort no arena": ort_call(setattr_change("enable_cpu_mem_arena", False)),
        "ort spinning": ort_call(spinning),
        "ort uint8 HWC in graph": ort_call(model=_uint8_hwc_graph(graph), uint8=True),
        "torch eager": eager(net),
        "torch channels_last": eager(cl, torch.channels_last),
        "torch jit.freeze": jit_call,
    }


def conv_flops(net, x) -> float:
    """Floating-point operations of the convolutions in one `net.track(x)` (2 per multiply-add,
    counted by hooks on every Conv2d: the backbone, neck and head; the depth-wise correlation, a
    functional conv on a few thousand outputs, is left out)."""
    import torch

    total = [0.0]

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total[0] += 2.0 * output.numel() * k

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.inference_mode():
            net.track(x)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def _sgemm(n: int = 1536):
    """One n x n x n float32 matrix product in torch (MKL) at the process's threads: what this CPU
    does at best in fp32 (2 n^3 operations), timed in the same rounds as the variants."""
    import torch

    a, b = torch.rand(n, n), torch.rand(n, n)
    return (lambda: torch.mm(a, b)), 2.0 * n**3


def _parity(outputs: list, reference: list) -> float:
    """Largest err / bound over the outputs (tests/test_engines.py's measure): <= 1 keeps parity."""
    worst = 0.0
    for a, b in zip(outputs, reference):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        bound = NET_RTOL * float(np.abs(b).max()) + NET_ATOL
        worst = max(worst, float(np.abs(a - b).max()) / bound)
    return worst


def study(name: str, frames: list, box, fixtures_dir: str, nano_dir: str, threads: int, rounds: int) -> list:
    """Print and return [(variant, median ms, median ratio vs `ort ALL`, parity measure)]."""
    import torch

    from .bench_timing import build_for_bench

    with tempfile.TemporaryDirectory() as tmp:
        tracker, _how = build_for_bench(name, "onnxruntime", fixtures_dir, nano_dir, tmp)
        direct = _direct_graph(tracker)
        patch, x = _catch_crop(tracker, frames, box)
        x = torch.from_numpy(x)
        variants = _variants(tracker, patch, x, threads, direct)
        reference = variants["torch eager"]()
        flops = conv_flops(tracker.network, x)
        sgemm, sgemm_flops = _sgemm()
        sgemm()
        sgemm_ms = []
        parity = {}
        for v, call in variants.items():  # warm-up call each, outputs checked once
            parity[v] = _parity(call(), reference)
        ms = {v: [] for v in variants}
        for r in range(rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for v in order:
                t0 = time.perf_counter()
                variants[v]()
                ms[v].append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            sgemm()
            sgemm_ms.append((time.perf_counter() - t0) * 1e3)
    base = ms["ort ALL"]
    peak = sgemm_flops / statistics.median(sgemm_ms) / 1e6
    rows = []
    print(
        f"{name}: {flops / 1e9:.2f} GFLOP of convolutions per call; torch.mm sgemm in the same rounds: "
        f"{peak:.1f} GFLOP/s"
    )
    print(f"  {'variant':26s} {'median ms':>10s} {'ratio vs ort ALL':>17s} {'parity (<=1)':>13s} {'GFLOP/s':>8s}")
    for v in variants:
        ratio = statistics.median(b / t for b, t in zip(base, ms[v]))
        med = statistics.median(ms[v])
        rows.append((v, med, ratio, parity[v]))
        print(
            f"  {v:26s} {med:10.2f} {ratio:17.3f} {parity[v]:13.3f} {flops / med / 1e6:8.1f}",
            flush=True,
        )
    return rows


def closed_loop_boxes(name: str, frames: list, box, fixtures_dir: str, nano_dir: str) -> dict:
    """variant -> (len(frames) - 1, 4) boxes, tracked closed loop from frames[0]'s box (each crop cut
    around the last box, as a user's run): eager torch, ONNX Runtime as `auto` runs it, and ONNX
    Runtime with every convolution direct (models/winograd.py's switch off)."""
    from models import winograd

    from ..run.session import Track
    from .bench_timing import build_for_bench

    def run(engine: str, direct: bool = False):
        saved = os.environ.get(winograd.ENV_SWITCH)
        os.environ[winograd.ENV_SWITCH] = "0" if direct else "1"
        try:
            with tempfile.TemporaryDirectory() as tmp:
                tracker, _how = build_for_bench(name, engine, fixtures_dir, nano_dir, tmp)
                track = Track(tracker)
                track.init(frames[0], 0, box)
                boxes = [track.step(f, i, keep_box=False).box for i, f in enumerate(frames[1:], 1)]
        finally:
            if saved is None:
                os.environ.pop(winograd.ENV_SWITCH)
            else:
                os.environ[winograd.ENV_SWITCH] = saved
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    return {"torch eager": run("torch"), "ort ALL": run("onnxruntime"), "ort direct convs": run("onnxruntime", True)}


def box_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(largest |coordinate difference| px, mean |difference| px, smallest IoU) of two (N, 4) x,y,w,h
    box arrays, frame by frame."""
    from ..run.metrics import iou

    diff = np.abs(a - b)
    ious = iou(a, b) if len(a) else np.ones(1)
    return float(diff.max(initial=0.0)), float(diff.mean()) if diff.size else 0.0, float(np.min(ious))


def main(argv=None) -> int:
    from ..core import compute

    compute.prepare_environment()
    from .bench_reference import when_and_load
    from .bench_timing import BAG_BOX, DEFAULT_NANO_DIR, DEFAULT_VIDEO, SHARED, read_frames

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trackers", default="siamrpn-alex,siamrpnpp-r50")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--video", default=DEFAULT_VIDEO)
    ap.add_argument(
        "--boxes",
        type=int,
        default=0,
        metavar="N",
        help="instead of timing: N frames tracked closed loop in eager torch, ONNX Runtime and ONNX "
        "Runtime with every convolution direct; how far apart their boxes are",
    )
    a = ap.parse_args(argv)
    compute.apply(compute.decide(a.threads))
    if a.boxes:
        return _print_boxes(a, read_frames(a.video, a.boxes + 1))
    frames = read_frames(a.video, 2)
    print(
        f"engine options study, {when_and_load()}, {a.threads} thread(s), "
        f"{os.path.basename(a.video)} frame 1's search crop, {a.rounds} alternating rounds after a warm-up "
        f"call each; ratio = median over rounds of (ort ALL ms / variant ms), above 1 is faster",
        flush=True,
    )
    for name in [n.strip() for n in a.trackers.split(",") if n.strip()]:
        study(name, frames, BAG_BOX, os.path.join(SHARED, "fixtures"), DEFAULT_NANO_DIR, a.threads, a.rounds)
    return 0


def _print_boxes(a, frames: list) -> int:
    from .bench_reference import when_and_load
    from .bench_timing import BAG_BOX, DEFAULT_NANO_DIR, SHARED

    print(
        f"closed-loop boxes, {when_and_load()}, {os.path.basename(a.video)}, {len(frames) - 1} tracked frames "
        f"from frame 0's box, {a.threads} thread(s)",
        flush=True,
    )
    for name in [n.strip() for n in a.trackers.split(",") if n.strip()]:
        runs = closed_loop_boxes(name, frames, BAG_BOX, os.path.join(SHARED, "fixtures"), DEFAULT_NANO_DIR)
        for x, y in (("ort ALL", "torch eager"), ("ort direct convs", "torch eager"), ("ort ALL", "ort direct convs")):
            most, mean, low = box_agreement(runs[x], runs[y])
            print(f"  {name:20s} {x:17s} vs {y:17s} max |diff| {most:.4f} px  mean {mean:.5f} px  min IoU {low:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
