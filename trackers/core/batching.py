"""Batched inference: targets that share a network go through it as one batch per frame.

Several tracks of the same tracker (same class, same weights, same crop sizes, same engine) each
crop their own search region; the crops are stacked into one (N, 3, S, S) input, the template
states of the N targets are stacked along the batch axis, and the network runs once: one
backbone call, then the per-sample correlation and head (every op of a `batchable` network is per
sample). Each target then decodes its own share (`SiameseRPNTracker.track_outputs`), so a
target's box is the box it gets when run alone, to float32 summation order.

Engines:
* torch: the first target's module runs the batch, its template attributes swapped for the
  stacked ones for the call;
* ONNX Runtime: the track graph exported with a dynamic batch axis (`BatchedOnnxEngine`), fed the
  stacked template state. A network whose graph cannot take a free batch (a grouped convolution
  whose group count is batch x channels: pysot's DW-XCorr, NanoTrack v3's depth-wise branch) gets
  one graph per target count instead; which one is used is decided once, by running a batch of
  two against two single calls on the same graph.

The default tracker batches too: its NanoTrack localiser runs in the batch, its guard (decode,
verification, state) per target in `track_outputs`' hooks. What is not batchable runs one by one,
through the caller's per-frame step (session.Track.step): trackers whose network takes no batch
(SiamFC, SiamMask, SiamAttn...), fp16, a target whose search is widened this frame (a lost
long-term target: a group of its own size), and a group of one.
"""

from __future__ import annotations

import hashlib
import os
import time
import weakref
from collections.abc import Callable

import numpy as np
import torch
import torch.utils._pytree as pytree

from models.device import check_finite

from . import compute
from .base import StageTimer, Tracker, TrackResult
from .engines import OnnxEngine, _state_attrs, _TrackGraph, export_cached
from .siamese import SiameseRPNTracker

_WEIGHTS_SHA: weakref.WeakKeyDictionary[torch.nn.Module, str] = weakref.WeakKeyDictionary()


def _weights_id(net: torch.nn.Module) -> str:
    """sha256 of the module's weights, computed once per module (modules are not retrained here)."""
    from .engines import weights_sha256

    if net not in _WEIGHTS_SHA:
        _WEIGHTS_SHA[net] = weights_sha256(net)
    return _WEIGHTS_SHA[net]


def batchable(tracker: Tracker) -> bool:
    """Whether this tracker's frame is the shared loop on a network that takes a batch."""
    return (
        isinstance(tracker, SiameseRPNTracker)
        and type(tracker).track is SiameseRPNTracker.track
        and getattr(type(tracker.network), "batchable", False)
        and getattr(tracker, "precision", "fp32") == "fp32"
    )


def group_key(tracker: Tracker) -> tuple | None:
    """Trackers with equal keys share one batch this frame; None: runs on its own."""
    if not batchable(tracker):
        return None
    p = tracker.params
    size = tracker.search_size()
    return (
        type(tracker),
        type(tracker.network),
        _weights_id(tracker.network),
        tracker.engine_name,
        str(tracker.device),
        int(p.exemplar_size),
        int(size),
        int(p.instance_size) == int(size),
    )


def template_state(net: torch.nn.Module) -> dict:
    """The template state template() left on the module (what track() reads)."""
    return _state_attrs(net)


def stack_states(states: list[dict]) -> dict:
    """One template state per target -> the batch's (every tensor leaf concatenated on axis 0)."""
    out = {}
    for attr in states[0]:
        leaves = [pytree.tree_flatten(s[attr]) for s in states]
        spec = leaves[0][1]
        stacked = [
            torch.cat([lv[0][i] for lv in leaves], 0) if isinstance(leaves[0][0][i], torch.Tensor) else leaves[0][0][i]
            for i in range(len(leaves[0][0]))
        ]
        out[attr] = pytree.tree_unflatten(stacked, spec)
    return out


def split_outputs(out: dict, n: int) -> list[dict]:
    """The batch's output dict -> one dict per target (batch slices i:i+1, the single-call layout)."""
    return [pytree.tree_map(lambda v: v[i : i + 1] if isinstance(v, torch.Tensor) else v, out) for i in range(n)]


class BatchedOnnxEngine(OnnxEngine):
    """The track graph for a batch of targets, fed the stacked template state by the caller.

    `dynamic`: one graph with a free batch axis (exported at batch 1); otherwise a graph for the
    batch of `x_shape[0]` targets."""

    def __init__(
        self,
        net: torch.nn.Module,
        z_shape: tuple,
        x_shape: tuple,
        track_kwargs: dict | None = None,
        policy: compute.ComputePolicy | None = None,
        use_cache: bool = True,
        device: str | None = None,
        dynamic: bool = True,
    ):
        self.dynamic = dynamic
        self._state_feed: dict = {}
        super().__init__(net, z_shape, x_shape, track_kwargs, policy, use_cache, device)

    def _cached_export(self, net, x, flat_inputs, use_cache: bool):
        if not self.dynamic:
            return super()._cached_export(net, x, flat_inputs, use_cache)
        self.key = hashlib.sha256((self.key + "|batch-axis").encode()).hexdigest()
        self.path = os.path.join(os.path.dirname(self.path), f"{type(net).__name__}-{self.key[:20]}-batch.onnx")
        graph = _TrackGraph(net, self.template_specs, self.track_kwargs, self.state_keys, self.plan).eval()
        axes = {name: {0: "batch"} for name in self.input_names + self.output_names}
        return export_cached(
            graph,
            (x, *flat_inputs),
            self.input_names,
            self.output_names,
            self.path,
            use_cache,
            dynamic_axes=axes,
            rewrites=self.export_rewrites(net),
        )

    def set_state(self, state: dict) -> None:
        """Feed this stacked template state (attr -> tree of (N, ...) tensors) from the next call."""
        flat = []
        for attr in self.template_attrs:
            flat += pytree.tree_leaves(state[attr])
        self._state_feed = {
            name: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
            for name, t in zip(self.input_names[1:], flat)
            if name in self._graph_inputs
        }

    def _refresh_template(self) -> None:
        self._feed = dict(self._state_feed)


def _agrees(a: dict, b: dict) -> bool:
    for x, y in zip(pytree.tree_leaves(a), pytree.tree_leaves(b)):
        if isinstance(x, torch.Tensor):
            x, y = x.numpy(), y.numpy()
            if x.shape != y.shape or not np.allclose(x, y, rtol=1e-4, atol=1e-4 * float(np.abs(x).max() + 1)):
                return False
    return True


class BatchRunner:
    """Runs groups of trackers through their shared network, one call per group and frame.

    Keeps, per group, the stacked template state (rebuilt only when a target was re-initialised or
    the group changed) and, for ONNX Runtime, the batched graphs."""

    def __init__(self, policy: compute.ComputePolicy | None = None):
        self.policy = policy
        self._stacked: dict = {}  # group key -> (ids of the per-target states, stacked state)
        self._engines: dict = {}  # group key (without size) -> {"dynamic": engine | None, n: engine}
        self.network_ms = 0.0  # wall time of the batched network calls (bench reads it)

    # -- state ----------------------------------------------------------------------------------
    def _state_for(self, key, trackers: list) -> dict:
        states = [template_state(t.network) for t in trackers]
        ids = tuple(id(v) for s in states for v in s.values())
        held = self._stacked.get(key)
        if held is None or held[0] != ids:
            held = (ids, stack_states(states), states)  # the per-target states are held: ids stay theirs
            self._stacked[key] = held
        return held[1]

    # -- engines --------------------------------------------------------------------------------
    def _onnx(self, key, lead: SiameseRPNTracker, n: int) -> OnnxEngine:
        slot = self._engines.setdefault(key, {})
        z_shape, x_shape = lead.engine_shapes()
        x_shape = (1, 3, lead.search_size(), lead.search_size())
        device = str(getattr(lead, "device", "cpu"))
        policy = self.policy or compute.current()
        if "dynamic" not in slot:
            # a network whose graph would fix the batch says so (and the exporter prints the graph
            # while failing): it gets one graph per target count
            slot["dynamic"] = (
                self._free_batch_engine(lead, z_shape, x_shape, policy, device)
                if getattr(lead.network, "free_batch_graph", False)
                else None
            )
        if slot["dynamic"] is not None:
            return slot["dynamic"]
        if n not in slot:
            slot[n] = BatchedOnnxEngine(
                lead.network,
                (n, *z_shape[1:]),
                (n, *x_shape[1:]),
                lead.engine_track_kwargs(),
                policy,
                device=device,
                dynamic=False,
            )
        return slot[n]

    def _free_batch_engine(self, lead, z_shape, x_shape, policy, device) -> BatchedOnnxEngine | None:
        try:
            engine = BatchedOnnxEngine(
                lead.network, z_shape, x_shape, lead.engine_track_kwargs(), policy, device=device, dynamic=True
            )
        except Exception:  # noqa: BLE001 - the exporter could not free the axis: graphs per count
            return None
        return engine if self._dynamic_works(engine, lead.network, z_shape, x_shape) else None

    @staticmethod
    def _dynamic_works(engine: BatchedOnnxEngine, net, z_shape, x_shape) -> bool:
        """A batch of two through the free-batch graph equals each sample through it alone."""
        from .engines import _own_attrs, _restore

        gen = torch.Generator().manual_seed(3)
        saved = _own_attrs(net)
        try:
            with torch.no_grad():
                net.template(torch.rand((2, *z_shape[1:]), generator=gen) * 255)
            state = template_state(net)
        except Exception:  # noqa: BLE001
            return False
        finally:
            _restore(net, saved)
        x = (torch.rand((2, *x_shape[1:]), generator=gen) * 255).numpy()
        try:
            engine.set_state(state)
            both = engine.track(x, with_channels=True)
            parts = []
            for i in range(2):
                engine.set_state(pytree.tree_map(lambda v: v[i : i + 1] if isinstance(v, torch.Tensor) else v, state))
                parts.append(engine.track(x[i : i + 1], with_channels=True))
        except Exception:  # noqa: BLE001 - e.g. a group count fixed at export: shapes do not fit
            return False
        return all(_agrees(s, p) for s, p in zip(split_outputs(both, 2), parts))

    # -- one frame ------------------------------------------------------------------------------
    def run(self, trackers: list, patches: list) -> list[dict]:
        """The network outputs of each tracker's search crop, from one call."""
        lead = trackers[0]
        key = group_key(lead)
        n = len(trackers)
        x = np.empty((n, 3, *patches[0].shape[:2]), np.float32)
        for i, patch in enumerate(patches):
            np.copyto(x[i], patch.transpose(2, 0, 1), casting="unsafe")
        state = self._state_for(key, trackers)
        with_channels = any(t.collect_channels for t in trackers)
        t0 = time.perf_counter()
        if lead.engine_name == "onnxruntime":
            engine = self._onnx(key, lead, n)
            engine.set_state(state)
            out = engine.track(x, with_channels=with_channels)
        else:
            out = self._torch(lead, state, torch.from_numpy(x).to(lead.device, lead.dtype))
        self.network_ms += (time.perf_counter() - t0) * 1e3
        return split_outputs(out, n)

    @staticmethod
    def _torch(lead: SiameseRPNTracker, state: dict, x: torch.Tensor) -> dict:
        net = lead.network
        saved = {k: getattr(net, k) for k in state}
        try:
            for k, v in state.items():
                setattr(net, k, v)
            with torch.inference_mode():
                return net.track(x, **lead.engine_track_kwargs())
        finally:
            for k, v in saved.items():
                setattr(net, k, v)


def group_indices(trackers: list) -> list[list[int]]:
    """The trackers' indices by shared network (group_key); an unbatchable tracker is a group of one."""
    groups: dict = {}
    for i, t in enumerate(trackers):
        key = group_key(t)
        groups.setdefault(key if key is not None else ("single", i), []).append(i)
    return list(groups.values())


def track_group(runner: BatchRunner, group: list, frame: np.ndarray) -> list[TrackResult]:
    """One frame for trackers sharing a network: their crops, one batched call, each its own
    decode. Each result's timings carry its share of the batch's network time, and its
    extra["batch"] the group's size."""
    timers = [StageTimer() for _ in group]
    crops = []
    for t, timer in zip(group, timers):
        with timer.stage("crop"):
            crops.append(t.crop_search(frame, t.search_size()))
    t0 = time.perf_counter()
    outs = runner.run(group, [c[0] for c in crops])
    share = (time.perf_counter() - t0) * 1e3 / len(group)
    results = []
    for t, timer, (patch, scale_z, s_x), out in zip(group, timers, crops, outs):
        timer.ms["network"] = share
        cls = out["cls"].float().cpu().numpy()
        loc = out["loc"].float().cpu().numpy()
        if t.precision != "fp32":
            check_finite(t, cls, loc)
        result = t.track_outputs(frame, out, cls, loc, scale_z, s_x, t.search_size(), timer)
        result.extra["batch"] = len(group)
        results.append(result)
    return results


def track_batched(
    runner: BatchRunner, trackers: list, frame: np.ndarray, single: Callable[[int], TrackResult]
) -> list[TrackResult]:
    """Track `frame` with every tracker: groups sharing a network as one batch (track_group), the
    others by `single(i)` (the caller's per-frame step: trackers/run/session.py's Track.step).
    Results in the trackers' order."""
    results: list[TrackResult | None] = [None] * len(trackers)
    for members in group_indices(trackers):
        if len(members) == 1:
            results[members[0]] = single(members[0])
            continue
        for i, r in zip(members, track_group(runner, [trackers[i] for i in members], frame)):
            results[i] = r
    return results
