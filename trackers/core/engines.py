"""Engines for a tracker's per-frame network: eager torch, or ONNX Runtime on a graph exported from
the same torch module.

Any network that follows the Siamese protocol (`template(z)` keeps what it computed from the
exemplar on the module, `track(x)` returns a dict of tensors) gets an ONNX Runtime engine with no
per-network code:

* the exemplar state `template()` leaves on the module (tensors, or lists / tuples / dicts of
  them: NanoTrack's `_template_state`, pysot's `_kernels`, SiamAttn's `_zf`, ...) becomes graph
  inputs, fed from the module after every `template()`;
* `track()`'s outputs become graph outputs; the DW-XCorr channel maps (the `xcorr` entry) are
  extra outputs, fetched only while the GUI's channel grid is shown (`with_channels`);
* what `track()` leaves on the module for later calls (SiamMask's refine features, SiamAttn's
  refinement maps) becomes graph outputs too and is put back on the module, so the torch-side
  refinement that follows sees the same state either way.

Every tracker with a network runs this one engine, NanoTrack included (its former engine of its
own did the same with less generality and no faster: the per-frame cost here over a bare
`session.run` is a dict update and the outputs wrapped as tensors: 0.025 ms on NanoTrack v2's
1.4 ms call, both timed on the same bag.avi crop, 2 threads).

The graph is exported once per model and cached on disk (`cache_dir()`), named by a key over the
weights' sha256, the network class and the source file defining it, the outputs' layout, the input
shapes, torch's version, the exporter and the opset: a changed checkpoint, network code or torch
exports anew. A tracker that searches wider while the target is lost (`engine_search_sizes()`:
SiamRPN++ LT's 831 px, the default tracker's 447 px) gets a graph for that size too; other
shapes (DaSiamRPN's growing search) run in torch. Further per-frame networks beside the main one
(`engine_modules()`: the default tracker's stride-8 verification crop) run as `OnnxModule`s in
the same engine.

`auto` picks what is measured fastest: both engines run the same dummy frame a few times on this
machine, with the current thread count; the faster one is kept, and the decision is cached beside
the graph (key + thread count), so the probe runs once per model and thread count.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from typing import Optional

import numpy as np
import torch
import torch.utils._pytree as pytree

from models.device import DeviceError, check_device, check_precision, move_cached_tensors

from . import compute
from .base import EngineError

ENGINES = ("auto", "torch", "onnxruntime")
OPSET = 17
EXPORTER = "torch.onnx.export(dynamo=False)"
#: bump when the exported graph's layout changes, so old cache files are not reused
GRAPH_LAYOUT = 1
#: timed runs per engine in the `auto` probe (alternating, after one warm-up run each); the fastest counts
PROBE_RUNS = 5
#: torch must be this much slower before `auto` leaves it (ties keep the eager reference engine)
AUTO_MARGIN = 1.05

_MODULE_ATTRS = frozenset(vars(torch.nn.Module()))


def check_choice(choice: str) -> str:
    if choice not in ENGINES:
        raise EngineError(f"unknown engine {choice!r}: use {', '.join(ENGINES)}")
    return choice


def cache_dir() -> str:
    """Where exported graphs and `auto` decisions are kept: $SIAMSCOPE_CACHE, else
    $XDG_CACHE_HOME/siamscope/onnx (~/.cache/siamscope/onnx)."""
    base = os.environ.get("SIAMSCOPE_CACHE")
    if base:
        return base
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "siamscope", "onnx")


def weights_sha256(net: torch.nn.Module) -> str:
    """sha256 over the module's parameters and buffers (names, dtypes, shapes, bytes): the loaded
    checkpoint's content, whatever file (or seed, or package) it came from."""
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def model_key(net: torch.nn.Module, z_shape, x_shape, track_kwargs: dict) -> str:
    """What names an exported graph: weights sha256, network class, input shapes, torch version,
    exporter, opset and graph layout."""
    parts = dict(weights=weights_sha256(net), net=f"{type(net).__module__}.{type(net).__qualname__}",
                 code=_source_sha256(type(net)),
                 z=[int(v) for v in z_shape], x=[int(v) for v in x_shape],
                 kwargs=repr(sorted(track_kwargs.items())), torch=torch.__version__, exporter=EXPORTER,
                 opset=OPSET, layout=GRAPH_LAYOUT)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _source_sha256(cls) -> str:
    """sha256 of the file that defines the network class: a changed track() exports anew."""
    import inspect
    try:
        with open(inspect.getfile(cls), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except (OSError, TypeError):
        return ""


def _own_attrs(net: torch.nn.Module) -> dict:
    """Everything the module keeps besides nn.Module's own bookkeeping (restored after a probe)."""
    return {k: v for k, v in vars(net).items() if k not in _MODULE_ATTRS}


def _restore(net: torch.nn.Module, saved: dict) -> None:
    for k in list(_own_attrs(net)):
        if k not in saved:
            delattr(net, k)
    for k, v in saved.items():
        setattr(net, k, v)


def _has_tensor(value) -> bool:
    return any(isinstance(leaf, torch.Tensor) for leaf in pytree.tree_leaves(value))


def _state_attrs(net: torch.nn.Module) -> dict:
    """The module's own attributes that hold tensors (not its parameters, buffers or submodules)."""
    return {k: v for k, v in vars(net).items() if k not in _MODULE_ATTRS and _has_tensor(v)}


def export_cached(module: torch.nn.Module, args: tuple, input_names: list, output_names: list, path: str,
                  use_cache: bool = True, dynamic_axes: Optional[dict] = None):
    """The ONNX graph of `module(*args)`: the cached file at `path` when there is one, else exported
    (and written there atomically when `use_cache`). Returns a path or the graph's bytes.
    `dynamic_axes` (torch.onnx's) leaves axes free: the batched graph's batch (core/batching.py)."""
    if use_cache and os.path.isfile(path):
        return path
    import io
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, input_names=input_names, output_names=output_names,
                          opset_version=OPSET, dynamo=False, dynamic_axes=dynamic_axes)
    data = buf.getvalue()
    if use_cache:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)   # another process exporting the same graph races harmlessly
        except OSError:
            pass                    # a read-only cache only costs the export next time
    return data


def make_session(model, policy: Optional[compute.ComputePolicy] = None, device: Optional[str] = None):
    """An ONNX Runtime session following the compute policy. `device` "cuda": ORT's CUDA provider,
    refused with the reason where it fell back to the CPU (models.device.ort_session); otherwise the
    policy's providers (trackers/compute.py: CUDA only where a GPU is present)."""
    import onnxruntime as ort
    opts = compute.ort_session_options(policy)
    if device is not None and torch.device(device).type == "cuda":
        from models.device import ort_session
        return ort_session(model, opts, torch.device(device))
    return ort.InferenceSession(model, opts, providers=compute.ort_providers())


class OnnxModule:
    """A plain module's `forward(x)` (a tensor, or a tuple of tensors, out) on one input shape in
    ONNX Runtime: a tracker's further per-frame calls beside its main network (the default
    tracker's stride-8 verification crop), exported and cached as the main graph is."""

    def __init__(self, module: torch.nn.Module, x_shape: tuple, policy: Optional[compute.ComputePolicy] = None,
                 use_cache: bool = True, device: Optional[str] = None):
        self.module = module.eval()
        self.x_shape = tuple(int(v) for v in x_shape)
        on = next(iter(module.parameters()), torch.empty(0)).device
        x = (torch.rand(self.x_shape, generator=torch.Generator().manual_seed(0)) * 255).to(on)
        with torch.no_grad():
            out = module(x)
        self.single = isinstance(out, torch.Tensor)
        n = 1 if self.single else len(out)
        self.output_names = [f"out_{i}" for i in range(n)]
        self.key = model_key(module, (), self.x_shape, {"outputs": n})
        self.path = os.path.join(cache_dir(), f"{type(module).__name__}-{self.key[:20]}.onnx")
        model = export_cached(module, (x,), ["x"], self.output_names, self.path, use_cache)
        self.session = make_session(model, policy, device)
        self.device_type = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self._feed: dict = {}

    def __call__(self, x):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        self._feed["x"] = np.ascontiguousarray(x, dtype=np.float32)
        got = self.session.run(self.output_names, self._feed)
        return torch.from_numpy(got[0]) if self.single else tuple(torch.from_numpy(a) for a in got)


class _Plan:
    """How a flat list of graph outputs becomes track()'s dict and the module's post-track state:
    per entry a treespec and, per leaf, ('out', index) or ('const', value)."""

    def __init__(self):
        self.outputs: list[tuple[str, object, list]] = []   # (key, spec, leaves)
        self.state: list[tuple[str, object, list]] = []
        self.n_main = 0
        self.n_all = 0

    @staticmethod
    def _leaves(value, take):
        leaves, spec = pytree.tree_flatten(value)
        return spec, [take(leaf) if isinstance(leaf, torch.Tensor) else ("const", leaf) for leaf in leaves]

    @classmethod
    def from_probe(cls, out: dict, state: dict) -> "_Plan":
        """Main outputs first (always fetched), then the channel maps, then post-track state."""
        plan = cls()
        tensors: list[torch.Tensor] = []

        def take(t):
            tensors.append(t)
            return ("out", len(tensors) - 1)
        order = [k for k in out if k != "xcorr"] + (["xcorr"] if "xcorr" in out else [])
        for k in order:
            if k == "xcorr":
                plan.n_main = len(tensors)
            spec, leaves = cls._leaves(out[k], take)
            plan.outputs.append((k, spec, leaves))
        if "xcorr" not in out:
            plan.n_main = len(tensors)
        xcorr_end = len(tensors)
        for k, v in state.items():
            spec, leaves = cls._leaves(v, take)
            plan.state.append((k, spec, leaves))
        plan.n_all = len(tensors)
        plan.xcorr_range = (plan.n_main, xcorr_end)
        return plan

    def flat(self, out: dict, state: dict) -> list[torch.Tensor]:
        """The same traversal as from_probe, on a traced call: the graph's outputs in order. Which
        leaves are outputs is the probe's decision: under tracing a size read from a tensor (SiamAttn's
        `corr_size`) may come back as a tensor, and is still the constant the probe recorded."""
        flat: list[torch.Tensor] = []
        for entries, values in ((self.outputs, out), (self.state, state)):
            for k, _, leaves in entries:
                traced = pytree.tree_leaves(values[k])
                if len(traced) != len(leaves):
                    raise EngineError(f"track() output {k!r} changed structure under tracing")
                flat += [t for t, (kind, _) in zip(traced, leaves) if kind == "out"]
        return flat


class _TrackGraph(torch.nn.Module):
    """track(x) with the template state as explicit inputs: what is exported to ONNX."""

    def __init__(self, net, template_specs: list, track_kwargs: dict, state_keys: list, plan: _Plan):
        super().__init__()
        self.net = net
        self.template_specs = template_specs   # [(attr, treespec, n_leaves)]
        self.track_kwargs = track_kwargs
        self.state_keys = state_keys
        self.plan = plan

    def forward(self, x, *flat_state):
        i = 0
        saved = {}
        for attr, spec, n in self.template_specs:
            saved[attr] = getattr(self.net, attr)
            setattr(self.net, attr, pytree.tree_unflatten(list(flat_state[i:i + n]), spec))
            i += n
        try:
            out = self.net.track(x, **self.track_kwargs)
            state = {k: getattr(self.net, k) for k in self.state_keys}
            return tuple(self.plan.flat(out, state))
        finally:
            for attr, value in saved.items():
                setattr(self.net, attr, value)


class OnnxEngine:
    """One tracker network's per-frame call in ONNX Runtime (see the module doc).

    `device` "cuda" asks for ORT's CUDA provider and refuses a session that fell back to the CPU
    (models.device.ort_session); otherwise the providers follow the compute policy. Either way the
    input is a host array (ORT copies it to the GPU itself). Every tracker, NanoTrack included,
    runs this one engine (see the module doc for its cost over a bare `session.run`)."""

    def __init__(self, net: torch.nn.Module, z_shape: tuple, x_shape: tuple, track_kwargs: Optional[dict] = None,
                 policy: Optional[compute.ComputePolicy] = None, use_cache: bool = True,
                 device: Optional[str] = None):
        self.net = net
        self.x_shape = tuple(int(v) for v in x_shape)
        self.track_kwargs = dict(track_kwargs or {})
        self.policy = policy or compute.current()
        channels_flag = getattr(net, "collect_channels", None)   # DaSiamRPN switches its maps on the module
        saved = _own_attrs(net)
        gen = torch.Generator().manual_seed(0)
        # the example inputs live where the module's weights are (a module already on the GPU
        # exports from there); the exported graph itself holds no device
        on = next(iter(net.parameters()), torch.empty(0)).device
        z = (torch.rand(z_shape, generator=gen) * 255).to(on)
        x = (torch.rand(self.x_shape, generator=gen) * 255).to(on)
        try:
            if channels_flag is not None:
                net.collect_channels = True
            with torch.no_grad():
                net.template(z)
                template_state = _state_attrs(net)
                before = {k: id(v) for k, v in vars(net).items()}
                out = net.track(x, **self.track_kwargs)
                after = _state_attrs(net)
            self.template_attrs = list(template_state)
            self.state_keys = [k for k, v in after.items()
                               if k not in template_state and before.get(k) != id(v)]
            self.plan = _Plan.from_probe(out, {k: after[k] for k in self.state_keys})
            specs, flat_inputs = [], []
            for attr in self.template_attrs:
                leaves, spec = pytree.tree_flatten(template_state[attr])
                if not all(isinstance(t, torch.Tensor) for t in leaves):
                    raise EngineError(f"{type(net).__name__}.{attr} mixes tensors and other values")
                specs.append((attr, spec, len(leaves)))
                flat_inputs += leaves
            self.template_specs = specs
            self.input_names = ["x"] + [f"state_{i}" for i in range(len(flat_inputs))]
            self.output_names = [f"out_{i}" for i in range(self.plan.n_all)]
            # the outputs' layout too: a graph cached for another layout is never reused
            layout = [(k, len(leaves)) for k, _, leaves in self.plan.outputs + self.plan.state]
            self.key = hashlib.sha256((model_key(net, z_shape, self.x_shape, self.track_kwargs)
                                       + repr(layout)).encode()).hexdigest()
            self.path = os.path.join(cache_dir(), f"{type(net).__name__}-{self.key[:20]}.onnx")
            model = self._cached_export(net, x, flat_inputs, use_cache)
        finally:
            _restore(net, saved)
        self.session = self._session(model, device)
        self.provider = self.session.get_providers()[0]
        self.device_type = "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"
        self._graph_inputs = {i.name for i in self.session.get_inputs()}
        self._feed: dict = {}
        self._fed_from: list = []
        lo, hi = self.plan.xcorr_range
        self._main_names = self.output_names[:lo] + self.output_names[hi:]
        self._main_index = list(range(lo)) + list(range(hi, self.plan.n_all))
        # per frame: which outputs to fetch and how they become track()'s dict, decided once
        self._runs = {True: (self.output_names, self._assembly(range(self.plan.n_all), True)),
                      False: (self._main_names, self._assembly(self._main_index, False))}

    def _session(self, model, device: Optional[str]):
        return make_session(model, self.policy, device)

    def _assembly(self, fetched, with_channels: bool) -> tuple[list, list]:
        """(outputs, state): per entry (key, None) for a tensor fetched as is (the common case: no
        tree to rebuild per frame), else (key, (spec, leaves)) with output refs renumbered to the
        fetched list; the channel maps as [] when not fetched."""
        pos = {i: j for j, i in enumerate(fetched)}

        def entry(k, spec, leaves):
            if spec.is_leaf() and len(leaves) == 1 and leaves[0][0] == "out":
                return (k, pos[leaves[0][1]], None)
            return (k, None, (spec, [("out", pos[r]) if kind == "out" else (kind, r) for kind, r in leaves]))
        outputs = [(k, None, (pytree.tree_flatten([])[1], [])) if k == "xcorr" and not with_channels
                   else entry(k, spec, leaves) for k, spec, leaves in self.plan.outputs]
        state = [entry(k, spec, leaves) for k, spec, leaves in self.plan.state]
        return outputs, state

    def _cached_export(self, net, x, flat_inputs, use_cache: bool):
        graph = _TrackGraph(net, self.template_specs, self.track_kwargs, self.state_keys, self.plan).eval()
        return export_cached(graph, (x, *flat_inputs), self.input_names, self.output_names, self.path, use_cache)

    # -- per frame ------------------------------------------------------------------------------
    def _refresh_template(self) -> None:
        """Feed the module's current template state (re-read only when template() replaced it)."""
        values = [getattr(self.net, attr) for attr in self.template_attrs]
        if len(values) == len(self._fed_from) and all(a is b for a, b in zip(values, self._fed_from)):
            return
        if any(v is None for v in values):
            raise RuntimeError(f"{type(self.net).__name__}.track() called before template()")
        flat = []
        for v in values:
            flat += pytree.tree_leaves(v)
        self._feed = {name: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
                      for name, t in zip(self.input_names[1:], flat) if name in self._graph_inputs}
        self._fed_from = values     # holding them keeps their ids from being reused

    def track(self, x, with_channels: bool = True) -> dict:
        """Same dict as net.track(x) (x: tensor or host array); the channel maps only when with_channels."""
        self._refresh_template()
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        self._feed["x"] = x
        names, (outputs, state) = self._runs[with_channels]
        got = self.session.run(names, self._feed)
        out = {k: torch.from_numpy(got[i]) if tree is None else _rebuild(got, *tree) for k, i, tree in outputs}
        for k, i, tree in state:
            setattr(self.net, k, torch.from_numpy(got[i]) if tree is None else _rebuild(got, *tree))
        return out


def _rebuild(got: list, spec, leaves: list):
    return pytree.tree_unflatten([torch.from_numpy(got[ref]) if kind == "out" else ref for kind, ref in leaves], spec)


def _decisions_path() -> str:
    return os.path.join(cache_dir(), "auto_engine.json")


def _read_decisions() -> dict:
    try:
        with open(_decisions_path()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _write_decision(key: str, decision: dict) -> None:
    try:
        data = _read_decisions()
        data[key] = decision
        os.makedirs(cache_dir(), exist_ok=True)
        tmp = f"{_decisions_path()}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, _decisions_path())
    except OSError:
        pass


def probe(engine: OnnxEngine, net: torch.nn.Module, runs: int = PROBE_RUNS) -> dict:
    """Time one dummy frame in both engines, alternating them (a burst of load from another
    process then hits both alike), after one warm-up call each; the fastest call of each counts."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(engine.x_shape, generator=gen) * 255
    kwargs = dict(engine.track_kwargs)

    def run_torch():
        with torch.inference_mode():
            net.track(x, **kwargs)
    calls = {"torch_ms": run_torch, "onnxruntime_ms": lambda: engine.track(x, with_channels=False)}
    best = {k: float("inf") for k in calls}
    for k, fn in calls.items():
        fn()
    for _ in range(runs):
        for k, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], (time.perf_counter() - t0) * 1e3)
    return {k: round(v, 3) for k, v in best.items()}


class EngineMixin:
    """Engine choice for a tracker whose per-frame network call goes through `network_track()`.

    Subclasses say the network's input shapes (`engine_shapes`) and, where track() takes
    arguments, `engine_track_kwargs`."""

    onnx_engine: Optional[OnnxEngine] = None
    onnx_modules: dict = {}
    onnx_wide_engines: dict = {}      # search input shape -> OnnxEngine, beside the main one
    engine_choice: str = "torch"
    engine_probe: Optional[dict] = None

    def engine_shapes(self) -> tuple[tuple, tuple]:
        p = self.params
        return (1, 3, p.exemplar_size, p.exemplar_size), (1, 3, p.instance_size, p.instance_size)

    def engine_track_kwargs(self) -> dict:
        return {}

    def engine_search_sizes(self) -> list:
        """Search crop sides besides `instance_size` that the tracker feeds its network every frame
        of a phase (the wider search while the target is lost): each gets its own exported graph,
        so losing the target does not drop the tracker to eager torch (SiamRPN++ R50 at 831 px:
        seconds a frame)."""
        return []

    def engine_modules(self) -> dict:
        """Further per-frame network calls the engine runs beside the main one: name -> (module,
        input shape), each called through `run_module(name, x)`. They follow the main network's
        engine (in `auto`, its measured decision)."""
        return {}

    def run_module(self, name: str, x: torch.Tensor):
        """engine_modules()[name] on x in the engine in use (torch for another shape)."""
        onnx = self.onnx_modules.get(name) if self._usable_engine() is not None else None
        if onnx is not None and tuple(x.shape) == onnx.x_shape:
            return onnx(x)
        return self.engine_modules()[name][0](x)

    # Device and precision of the torch network (`self.network`), shared by every tracker that
    # runs one: the cached template tensors move with it.
    def to(self, device: str):
        if self.precision != "fp32":
            check_precision(self.precision, check_device(device))
        self.device = check_device(device)
        self.network.to(self.device)
        move_cached_tensors(self.network, self.device, self.dtype)
        return self

    def set_precision(self, precision: str):
        """fp16 (CUDA only): the network's weights and inputs in half precision; its outputs are
        turned back to float32 before decoding, so the decoders stay in float32 / float64."""
        self.dtype = check_precision(precision, self.device)
        self.precision = precision
        self.network.to(dtype=self.dtype)
        move_cached_tensors(self.network, self.device, self.dtype)
        return self

    @property
    def engine_name(self) -> str:
        """The engine the next frame runs in."""
        return "onnxruntime" if self._usable_engine() is not None else "torch"

    def _usable_engine(self) -> Optional[OnnxEngine]:
        """The ONNX engine where it can run this tracker's network now: fp32 only (the graph is
        fp32), and not a CPU session for a network moved to the GPU since."""
        engine = self.onnx_engine
        if engine is None or getattr(self, "precision", "fp32") != "fp32":
            return None
        device = getattr(self, "device", None)
        if device is not None and device.type != "cpu" and engine.device_type != device.type:
            return None
        return engine

    def set_engine(self, choice: str, policy: Optional[compute.ComputePolicy] = None) -> str:
        """Switch engines ("auto" measures both, see the module doc); returns the one in use."""
        check_choice(choice)
        self.engine_choice = choice
        self.onnx_engine, self.engine_probe, self.onnx_modules, self.onnx_wide_engines = None, None, {}, {}
        if choice == "torch":
            return self.engine_name
        device = getattr(self, "device", torch.device("cpu"))
        if choice == "auto" and device.type != "cpu":
            return self.engine_name          # on a GPU the torch module stays (its CUDA kernels)
        policy = policy or compute.current()
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if choice == "onnxruntime":
                raise EngineError("the onnxruntime engine needs the onnxruntime package") from None
            return self.engine_name
        z_shape, x_shape = self.engine_shapes()
        if choice == "auto":
            key = f"{model_key(self.network, z_shape, x_shape, self.engine_track_kwargs())}" \
                  f"|threads={policy.threads}"
            cached = _read_decisions().get(key)
            if cached and cached.get("engine") == "torch":
                self.engine_probe = dict(cached, cached=True)
                return self.engine_name
        try:
            engine = OnnxEngine(self.network, z_shape, x_shape, self.engine_track_kwargs(), policy,
                                device=str(device))
        except (EngineError, DeviceError):
            raise                            # a CUDA provider that cannot run says so, as in torch
        except Exception as e:  # noqa: BLE001 - an export the exporter cannot do: say which, keep torch
            if choice == "onnxruntime":
                raise EngineError(f"{getattr(self, 'name', type(self).__name__)}: ONNX export failed "
                                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
            return self.engine_name
        if choice == "auto":
            cached = _read_decisions().get(key)
            if cached and cached.get("engine") == "onnxruntime":
                self.engine_probe = dict(cached, cached=True)
            else:
                saved = _own_attrs(self.network)
                try:
                    with torch.no_grad():
                        self.network.template(torch.rand(z_shape, generator=torch.Generator().manual_seed(2)) * 255)
                    timing = probe(engine, self.network)
                finally:
                    _restore(self.network, saved)
                faster = timing["torch_ms"] > AUTO_MARGIN * timing["onnxruntime_ms"]
                decision = dict(timing, engine="onnxruntime" if faster else "torch", threads=policy.threads)
                _write_decision(key, decision)
                self.engine_probe = decision
            if self.engine_probe["engine"] == "torch":
                return self.engine_name
        modules = {}
        for name, (module, shape) in self.engine_modules().items():
            try:
                modules[name] = OnnxModule(module, shape, policy, device=str(device))
            except (EngineError, DeviceError):
                raise
            except Exception as e:  # noqa: BLE001 - as for the main network: say which, or keep torch
                if choice == "onnxruntime":
                    raise EngineError(f"{getattr(self, 'name', type(self).__name__)}: ONNX export of {name} "
                                      f"failed ({type(e).__name__})") from e
        wide = {}
        for side in self.engine_search_sizes():
            shape = (*x_shape[:2], int(side), int(side))
            if shape == engine.x_shape:
                continue
            try:
                wide[shape] = OnnxEngine(self.network, z_shape, shape, self.engine_track_kwargs(), policy,
                                         device=str(device))
            except (EngineError, DeviceError):
                raise
            except Exception:  # noqa: BLE001 - that search size alone stays in torch
                if choice == "onnxruntime":
                    raise
        self.onnx_engine, self.onnx_modules, self.onnx_wide_engines = engine, modules, wide
        return self.engine_name

    def network_track(self, x: torch.Tensor, **kwargs) -> dict:
        """The network's per-frame call in the chosen engine (torch for a shape not exported)."""
        engine = self._usable_engine()
        if engine is not None and tuple(x.shape) != engine.x_shape:
            engine = self.onnx_wide_engines.get(tuple(x.shape))
        if engine is not None:
            return engine.track(x, with_channels=getattr(self, "collect_channels", True))
        return self.network.track(x, **kwargs)
