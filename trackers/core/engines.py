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
weights' sha256, the network class, the source of every module the network's code comes from
(`source_files()`: each submodule's class hierarchy and the project modules their code refers
to, so an edit to models/heads.py exports anew), the outputs' layout, the input shapes, torch's
version, the exporter and the opset. The cache is not trusted blindly: its folder is created 0700
and is not used when another user owns it or others may write to it; every file in it is written
to a new temporary file (O_EXCL, never through a link) and renamed into place; each graph has its
sha256 beside it (`<graph>.onnx.sha256`, checked before ONNX Runtime sees the bytes), and a graph
or decision file that is damaged, edited or not a plain file is moved aside (`*.bad-<time>`) and
rebuilt, with one line saying so (`notices()`). A tracker that searches wider while the target is
lost (`engine_search_sizes()`:
SiamRPN++ LT's 831 px, the default tracker's 447 px) gets a graph for that size too; other
shapes (DaSiamRPN's growing search) run in torch. Further per-frame networks beside the main one
(`engine_modules()`: the default tracker's stride-8 verification crop) run as `OnnxModule`s in
the same engine.

`auto` picks what is measured fastest: both engines run the same dummy frame on this machine, with
the current thread count, one call each in turn for PROBE_RUNS rounds; each round gives the ratio
torch ms / ONNX Runtime ms of two calls made back to back, and the median of those ratios decides
(a burst of load from another process spoils a round or two, not the median). The decision is
cached beside the graph (`decision_key`: the graph's key, the thread count, ONNX Runtime's version
and the session options, so a change to any of them decides again), with the machine's load per
core when it was taken: a decision taken on an oversubscribed machine (LOADED_PER_CORE) is
provisional and is measured again by the first build that finds the machine quieter. Decisions
of the earlier probe (fastest call of each engine, no load recorded: it cached `torch` for
SiamMask under load) lack DECISION_METHOD and are measured again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.utils._pytree as pytree

from models import winograd
from models.device import DeviceError, check_device, check_precision, move_cached_tensors

from . import compute
from .base import EngineError

ENGINES = ("auto", "torch", "onnxruntime")
OPSET = 17
EXPORTER = "torch.onnx.export(dynamo=False)"
#: bump when the exported graph's layout changes, so old cache files are not reused
#: (2: the key hashes every source module, and graphs carry a sha256 sidecar)
GRAPH_LAYOUT = 2
#: rounds of the `auto` probe (one call per engine each, alternating, after one warm-up call each);
#: the median of the rounds' torch / ONNX Runtime ratios decides
PROBE_RUNS = 7
#: torch must be this much slower before `auto` leaves it (ties keep the eager reference engine)
AUTO_MARGIN = 1.05
#: what a cached decision must carry to be used: 2 = median of paired ratios, load recorded
DECISION_METHOD = 2
#: 1-minute load average per available core above which a decision is provisional (more runnable
#: threads than cores: both engines' timings are the scheduler's as much as theirs)
LOADED_PER_CORE = 1.0

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


_said: list = []


def _say(message: str) -> None:
    """One line on stderr, once per process per message; kept for the app (`notices()`)."""
    if message not in _said:
        _said.append(message)
        print(f"# {message}", file=sys.stderr, flush=True)


def notices() -> list:
    """What the cache said in this process (a folder not used, a file moved aside), oldest first:
    for a window, which has no stderr to read."""
    return list(_said)


def usable_cache_dir() -> str | None:
    """cache_dir(), created 0700 where it is absent; None (said once) where it cannot be made, is
    not a folder, belongs to another user, or others may write to it: then everything is exported
    in memory and nothing is read from or written to it."""
    path = cache_dir()
    try:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.stat(path)
    except OSError as e:
        _say(f"ONNX cache {path} cannot be made ({e.strerror or e}): running without the cache")
        return None
    why = None
    if not stat.S_ISDIR(st.st_mode):
        why = "is not a folder"
    elif hasattr(os, "getuid") and st.st_uid != os.getuid():
        why = f"belongs to user id {st.st_uid}, not to you"
    elif st.st_mode & 0o022:
        why = f"may be written by others (mode {stat.S_IMODE(st.st_mode):04o}; chmod 700 it to use it)"
    if why:
        _say(f"ONNX cache {path} {why}: not used, running without the cache")
        return None
    return path


def _move_aside(path: str, why: str) -> None:
    """Rename a damaged cache file (or a link planted in its place: the link, not its target) to
    `<name>.bad-<time>`, and say so."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = f"{path}.bad-{stamp}"
    n = 1
    while os.path.lexists(aside):
        n += 1
        aside = f"{path}.bad-{stamp}-{n}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another process moved it aside first
    except OSError as e:
        _say(f"ONNX cache: {path} {why}, and it cannot be moved aside ({e.strerror or e}): not used")
        return
    _say(f"ONNX cache: {os.path.basename(path)} {why}: moved aside to {os.path.basename(aside)}, rebuilt")


def _read_plain(path: str) -> bytes | None:
    """The bytes of a regular file, opened without following a link; None where there is no file.
    Raises ValueError for a link or anything else that is not a plain file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        if os.path.islink(path):
            raise ValueError("is a link, not a file") from None
        raise ValueError(f"cannot be read ({e.strerror or e})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("is not a plain file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)


def _write_atomic(path: str, data: bytes) -> None:
    """data into a new temporary file beside `path` (mkstemp: O_EXCL, mode 0600, an unpredictable
    name, so a planted link is never opened), then renamed over `path` (a link there is replaced,
    its target untouched). Raises OSError; the temporary file never outlives a failure."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _sha256_line(data: bytes, name: str) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()  # sha256sum's format: `sha256sum -c` reads it


def read_cached_graph(path: str) -> bytes | None:
    """The graph at `path` when it and its sha256 sidecar agree; None where there is none, or where
    it was damaged, edited or replaced (then moved aside, said once, to be exported anew)."""
    try:
        data = _read_plain(path)
        if data is None:
            return None
        side = _read_plain(path + ".sha256")
    except ValueError as e:
        _move_aside(path, str(e))
        return None
    if side is None or side != _sha256_line(data, os.path.basename(path)):
        # (its stale sidecar stays: the export that follows writes the new one before the graph)
        _move_aside(
            path, "does not match its sha256 (damaged or edited)" if side is not None else "has no sha256 beside it"
        )
        return None
    return data


def write_cached_graph(path: str, data: bytes) -> None:
    """The graph and its sha256 sidecar, each written atomically; the sidecar first, so a reader
    that sees the new graph sees its hash too. A cache that cannot be written only costs the
    export next time."""
    try:
        _write_atomic(path + ".sha256", _sha256_line(data, os.path.basename(path)))
        _write_atomic(path, data)
    except OSError as e:
        _say(f"ONNX cache: cannot write {os.path.basename(path)} ({e.strerror or e}): exported again next time")


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
    """What names an exported graph: weights sha256, network class, the source of every module its
    code comes from, input shapes, torch version, exporter, opset and graph layout."""
    parts = dict(
        weights=weights_sha256(net),
        net=f"{type(net).__module__}.{type(net).__qualname__}",
        code=source_sha256(net),
        z=[int(v) for v in z_shape],
        x=[int(v) for v in x_shape],
        kwargs=repr(sorted(track_kwargs.items())),
        torch=torch.__version__,
        exporter=EXPORTER,
        opset=OPSET,
        layout=GRAPH_LAYOUT,
    )
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


#: packages whose code is the runtime's, not the network's: torch's version is in the key already
_RUNTIME_PACKAGES = frozenset(
    {
        "torch",
        "builtins",
        "numpy",
        "torchvision",
        "typing",
        "collections",
        "functools",
        "math",
        "dataclasses",
        "abc",
        "enum",
    }
)


def source_files(net: torch.nn.Module) -> list:
    """The source files the network's exported code comes from: the module of every class in each
    submodule's class hierarchy (net.modules()), this engine's own module, and, followed to a fixed
    point, the modules those refer to by name (a function imported from models/heads.py, a
    submodule's module), within the same top-level packages. Sorted paths."""
    import inspect
    import types

    names = {__name__}
    for m in net.modules():
        for cls in type(m).__mro__:
            names.add(cls.__module__)
    names = {n for n in names if n and n.split(".")[0] not in _RUNTIME_PACKAGES}
    tops = {n.split(".")[0] for n in names}
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        mod = sys.modules.get(name)
        if mod is None:
            continue
        for value in list(vars(mod).values()):
            if isinstance(value, types.ModuleType):
                # a package's attributes are whatever of it was imported so far: not followed, so
                # the key is the same in every process
                ref = None if hasattr(value, "__path__") else value.__name__
            elif isinstance(value, (type, types.FunctionType)):
                ref = getattr(value, "__module__", None)
            else:
                continue
            if ref and ref.split(".")[0] in tops and ref not in seen:
                todo.append(ref)
    files = set()
    for name in seen:
        mod = sys.modules.get(name)
        try:
            files.add(os.path.abspath(inspect.getsourcefile(mod) or inspect.getfile(mod)))
        except (TypeError, OSError):
            pass  # a built-in or namespace module has no source of its own
    return sorted(files)


def source_sha256(net: torch.nn.Module) -> str:
    """sha256 over the bytes of every file in source_files(net), each with its name: any edit to
    code the network runs exports anew."""
    h = hashlib.sha256()
    for path in source_files(net):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        h.update(f"{os.path.basename(path)}|{len(data)}|".encode())
        h.update(data)
    return h.hexdigest()


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


def export_cached(
    module: torch.nn.Module,
    args: tuple,
    input_names: list,
    output_names: list,
    path: str,
    use_cache: bool = True,
    dynamic_axes: dict | None = None,
    rewrites=contextlib.nullcontext,
) -> bytes:
    """The ONNX graph of `module(*args)`, as bytes: the cached file at `path` where it is there and
    matches its sha256 (read_cached_graph), else exported (and, when `use_cache` and the cache
    folder is usable, written there with its sha256). The bytes checked are the bytes ONNX
    Runtime gets: the file is never reopened after its check. `dynamic_axes` (torch.onnx's) leaves
    axes free: the batched graph's batch (core/batching.py). `rewrites()`: the context the export
    itself runs in (the Winograd rewrite), entered only when there is no cached graph."""
    if use_cache and os.path.dirname(os.path.abspath(path)) == os.path.abspath(cache_dir()):
        use_cache = usable_cache_dir() is not None  # (a caller's own folder is the caller's to check)
    if use_cache:
        data = read_cached_graph(path)
        if data is not None:
            return data
    import io

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), rewrites():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buf,
            input_names=input_names,
            output_names=output_names,
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes=dynamic_axes,
        )
    data = buf.getvalue()
    if use_cache:
        write_cached_graph(path, data)  # another process exporting the same graph races harmlessly
    return data


def _cpu_graph(device: str | None) -> bool:
    """Whether a graph for `device` (None: the compute policy's providers) runs on the CPU provider."""
    if device is not None:
        return torch.device(device).type == "cpu"
    return compute.ort_providers()[0] == "CPUExecutionProvider"


def make_session(model, policy: compute.ComputePolicy | None = None, device: str | None = None):
    """An ONNX Runtime session following the compute policy. `device` "cuda": ORT's CUDA provider,
    refused with the reason where it fell back to the CPU (models.device.ort_session); otherwise the
    policy's providers (trackers/compute.py: CUDA only where a GPU is present)."""
    import onnxruntime as ort

    opts = compute.ort_session_options(policy)
    if device is not None and torch.device(device).type == "cuda":
        from models.device import ort_session

        return ort_session(model, opts, torch.device(device))
    return ort.InferenceSession(model, opts, providers=compute.ort_providers())


def cpu_session(model, policy: compute.ComputePolicy | None = None, options=None):
    """An ONNX Runtime session on the CPU provider alone, following the compute policy (for work that
    stays on the CPU whatever the machine has: the floor's trunk, the trainers' feature extraction).
    `options`: session options made from the policy and amended by the caller (`bench --profile`
    turns profiling on), instead of the policy's own."""
    import onnxruntime as ort

    opts = options if options is not None else compute.ort_session_options(policy)
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


class FeatureGraph:
    """A frozen feature module's `forward(x)` (a tensor, or a tuple of tensors, out) on ONNX Runtime's
    CPU provider, for any batch size and, with `any_size`, any crop size: the floor's trunk and the
    trainers' feature extractors. Exported in memory once per instance (`graph`: the ONNX bytes,
    reusable for another session) and run with the compute policy's session options; `(B, 3, H, W)`
    float32 arrays in, float32 arrays out."""

    def __init__(
        self,
        module: torch.nn.Module,
        example_shape: tuple,
        output_names: list,
        any_size: bool = False,
        policy: compute.ComputePolicy | None = None,
        graph: bytes | None = None,
    ):
        self.output_names = list(output_names)
        if graph is None:
            graph = self.export(module, example_shape, self.output_names, any_size)
        self.graph = graph
        self.session = cpu_session(graph, policy)

    @staticmethod
    def export(module: torch.nn.Module, example_shape: tuple, output_names: list, any_size: bool = False) -> bytes:
        import io

        axes = {0: "b", 2: "h", 3: "w"} if any_size else {0: "b"}
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on padding arithmetic, constant per size
            torch.onnx.export(
                module.cpu().eval(),
                torch.zeros(*example_shape),
                buf,
                input_names=["x"],
                output_names=list(output_names),
                opset_version=OPSET,
                dynamo=False,
                dynamic_axes={"x": axes, **{n: axes for n in output_names}},
            )
        return buf.getvalue()

    def __call__(self, x: np.ndarray) -> list:
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})


class OnnxModule:
    """A plain module's `forward(*inputs)` (a tensor, or a tuple of tensors, out) on fixed input
    shapes in ONNX Runtime: a tracker's further per-frame calls beside its main network (the default
    tracker's stride-8 verification crop, SiamMask's refinement), exported and cached as the main
    graph is. `x_shape`: one input's shape, or a tuple of shapes for several inputs."""

    def __init__(
        self,
        module: torch.nn.Module,
        x_shape: tuple,
        policy: compute.ComputePolicy | None = None,
        use_cache: bool = True,
        device: str | None = None,
    ):
        self.module = module.eval()
        several = len(x_shape) > 0 and not isinstance(x_shape[0], int)
        self.x_shapes = tuple(tuple(int(v) for v in shape) for shape in (x_shape if several else [x_shape]))
        self.x_shape = self.x_shapes[0] if not several else None  # one input: its shape
        self.input_names = ["x"] if not several else [f"x{i}" for i in range(len(self.x_shapes))]
        on = next(iter(module.parameters()), torch.empty(0)).device
        gen = torch.Generator().manual_seed(0)
        xs = tuple((torch.rand(shape, generator=gen) * 255).to(on) for shape in self.x_shapes)
        with torch.no_grad():
            out = module(*xs)
        self.single = isinstance(out, torch.Tensor)
        n = 1 if self.single else len(out)
        self.output_names = [f"out_{i}" for i in range(n)]
        shape_key = self.x_shape if not several else [v for shape in self.x_shapes for v in (-1, *shape)]
        self.key = model_key(module, (), shape_key, {"outputs": n})
        self.path = os.path.join(cache_dir(), f"{type(module).__name__}-{self.key[:20]}.onnx")
        model = export_cached(module, xs, self.input_names, self.output_names, self.path, use_cache)
        self.session = make_session(model, policy, device)
        self.device_type = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self._feed: dict = {}

    def fits(self, xs) -> bool:
        """Whether these inputs have the shapes the graph was exported for."""
        return len(xs) == len(self.x_shapes) and all(tuple(x.shape) == s for x, s in zip(xs, self.x_shapes))

    def __call__(self, *xs):
        for name, x in zip(self.input_names, xs):
            if isinstance(x, torch.Tensor):
                x = x.detach().cpu().numpy()
            self._feed[name] = np.ascontiguousarray(x, dtype=np.float32)
        got = self.session.run(self.output_names, self._feed)
        return torch.from_numpy(got[0]) if self.single else tuple(torch.from_numpy(a) for a in got)


class _Plan:
    """How a flat list of graph outputs becomes track()'s dict and the module's post-track state:
    per entry a treespec and, per leaf, ('out', index) or ('const', value)."""

    def __init__(self):
        self.outputs: list[tuple[str, object, list]] = []  # (key, spec, leaves)
        self.state: list[tuple[str, object, list]] = []
        self.n_main = 0
        self.n_all = 0

    @staticmethod
    def _leaves(value, take):
        leaves, spec = pytree.tree_flatten(value)
        return spec, [take(leaf) if isinstance(leaf, torch.Tensor) else ("const", leaf) for leaf in leaves]

    @classmethod
    def from_probe(cls, out: dict, state: dict) -> _Plan:
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
        self.template_specs = template_specs  # [(attr, treespec, n_leaves)]
        self.track_kwargs = track_kwargs
        self.state_keys = state_keys
        self.plan = plan

    def forward(self, x, *flat_state):
        i = 0
        saved = {}
        for attr, spec, n in self.template_specs:
            saved[attr] = getattr(self.net, attr)
            setattr(self.net, attr, pytree.tree_unflatten(list(flat_state[i : i + n]), spec))
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

    def __init__(
        self,
        net: torch.nn.Module,
        z_shape: tuple,
        x_shape: tuple,
        track_kwargs: dict | None = None,
        policy: compute.ComputePolicy | None = None,
        use_cache: bool = True,
        device: str | None = None,
        keep_graph: bool = False,
        fast_convolutions: bool = True,
    ):
        self.net = net
        self.x_shape = tuple(int(v) for v in x_shape)
        self.track_kwargs = dict(track_kwargs or {})
        self.policy = policy or compute.current()
        channels_flag = getattr(net, "collect_channels", None)  # DaSiamRPN switches its maps on the module
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
            self.state_keys = [k for k, v in after.items() if k not in template_state and before.get(k) != id(v)]
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
            # the big 3x3 convolutions as Winograd F(4, 3) in a graph for the CPU (models/winograd.py):
            # not on the GPU (cuDNN picks its own algorithms), not for int8 (its convolutions are
            # integer GEMMs already, and a Winograd transform would be quantised too)
            self.winograd = (
                fast_convolutions and winograd.enabled() and _cpu_graph(device) and winograd.rewrites(net) > 0
            )
            rewrite = f"|winograd F({winograd.TILE},3) >={winograd.QUALIFYING_CHANNEL_PRODUCT}" if self.winograd else ""
            self.key = hashlib.sha256(
                (model_key(net, z_shape, self.x_shape, self.track_kwargs) + repr(layout) + rewrite).encode()
            ).hexdigest()
            self.path = os.path.join(cache_dir(), f"{type(net).__name__}-{self.key[:20]}.onnx")
            model = self._cached_export(net, x, flat_inputs, use_cache)
        finally:
            _restore(net, saved)
        #: the fp32 ONNX bytes, kept only when asked (the int8 engine quantises them: core/quantize.py)
        self.graph = model if keep_graph else None
        self.precision = "fp32"
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
        self._runs = {
            True: (self.output_names, self._assembly(range(self.plan.n_all), True)),
            False: (self._main_names, self._assembly(self._main_index, False)),
        }

    def _session(self, model, device: str | None):
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

        outputs = [
            (k, None, (pytree.tree_flatten([])[1], []))
            if k == "xcorr" and not with_channels
            else entry(k, spec, leaves)
            for k, spec, leaves in self.plan.outputs
        ]
        state = [entry(k, spec, leaves) for k, spec, leaves in self.plan.state]
        return outputs, state

    def _cached_export(self, net, x, flat_inputs, use_cache: bool):
        graph = _TrackGraph(net, self.template_specs, self.track_kwargs, self.state_keys, self.plan).eval()
        return export_cached(
            graph,
            (x, *flat_inputs),
            self.input_names,
            self.output_names,
            self.path,
            use_cache,
            rewrites=self.export_rewrites(net),
        )

    def export_rewrites(self, net):
        """What export_cached enters around an export (not on a cache hit: the transformed filters
        take about 2 s for ResNet-50's two shortcuts): the network's big convolutions as Winograd ones where
        `self.winograd` (put back afterwards), else nothing."""
        if not self.winograd:
            return contextlib.nullcontext
        return lambda: winograd.fast_convolutions(net)

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
        self._feed = {
            name: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
            for name, t in zip(self.input_names[1:], flat)
            if name in self._graph_inputs
        }
        self._fed_from = values  # holding them keeps their ids from being reused

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


def int8_engine(
    tracker, policy: compute.ComputePolicy | None = None, plan: list | None = None, fmt: str | None = None
) -> OnnxEngine:
    """The tracker's main network as an int8 OnnxEngine on the CPU (core/quantize.py): the fp32
    graph exported (or read from the cache), calibrated on real frames and quantised, or the cached
    int8 graph. The engine's `calibration` is the record of which frames calibrated it."""
    from . import quantize

    policy = policy or compute.current()
    fmt = fmt or quantize.DEFAULT_FORMAT
    plan = quantize.calibration_plan() if plan is None else plan
    z_shape, x_shape = tracker.engine_shapes()
    kwargs = tracker.engine_track_kwargs()
    fp32 = OnnxEngine(tracker.network, z_shape, x_shape, kwargs, policy, keep_graph=True, fast_convolutions=False)
    # named by the fp32 graph's key, the calibration set, the hyper-parameters that cut the crops
    # and the recipe; cached as the fp32 graph is (sha256 sidecar, atomic writes)
    key = quantize.int8_key(fp32.key, plan, repr(getattr(tracker, "params", None)), fmt, True)
    path = os.path.join(cache_dir(), f"{type(tracker.network).__name__}-{key[:20]}.int8.onnx")
    use_cache = usable_cache_dir() is not None
    data = read_cached_graph(path) if use_cache else None
    if data is not None:
        record = _read_record(quantize.record_path(path))
    else:
        feeds = quantize.record_feeds(tracker, fp32, plan)
        data = quantize.quantize_graph(fp32.graph, feeds, fmt)
        record = quantize.make_record(tracker, fp32.path, path, plan, len(feeds), fmt, True)
        if use_cache:
            write_cached_graph(path, data)
            try:
                _write_atomic(quantize.record_path(path), json.dumps(record, indent=1).encode())
            except OSError as e:
                _say(f"ONNX cache: cannot write {os.path.basename(path)}'s calibration record ({e.strerror or e})")
    fp32.graph = None
    engine = fp32  # same plan, inputs and outputs; only the session's graph differs
    engine.session = cpu_session(data, policy)  # int8 is a CPU precision, whatever GPU the machine has
    engine.provider, engine.device_type = engine.session.get_providers()[0], "cpu"
    engine.path, engine.precision, engine.calibration = path, "int8", record
    return engine


def _read_record(path: str) -> dict:
    """A calibration record ({} where absent, not a plain file or not a JSON object: it only informs)."""
    try:
        raw = _read_plain(path)
        data = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _rebuild(got: list, spec, leaves: list):
    return pytree.tree_unflatten([torch.from_numpy(got[ref]) if kind == "out" else ref for kind, ref in leaves], spec)


def _decisions_path() -> str:
    return os.path.join(cache_dir(), "auto_engine.json")


def _valid_decision(value) -> bool:
    return (
        isinstance(value, dict)
        and value.get("engine") in ("torch", "onnxruntime")
        and all(
            isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool)
            for k in ("torch_ms", "onnxruntime_ms")
        )
    )


def _read_decisions() -> dict:
    """The `auto` decisions, whatever the file holds: a file that is not a JSON object (or not a
    plain file) is moved aside and said once; entries that are not decisions are left out."""
    folder = usable_cache_dir()
    if folder is None:
        return {}
    path = _decisions_path()
    try:
        raw = _read_plain(path)
        if raw is None:
            return {}
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"holds a JSON {type(data).__name__}, not an object")
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        why = str(e) if str(e).startswith(("is ", "holds ", "cannot ")) else "is not valid JSON"
        _move_aside(path, why)
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and _valid_decision(v)}


def _write_decision(key: str, decision: dict) -> None:
    if usable_cache_dir() is None:
        return
    data = _read_decisions()
    data[key] = decision
    try:
        _write_atomic(_decisions_path(), json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError as e:
        _say(f"ONNX cache: cannot write auto_engine.json ({e.strerror or e}): measured again next time")


def decision_key(net: torch.nn.Module, z_shape, x_shape, track_kwargs: dict, policy: compute.ComputePolicy) -> str:
    """What names an `auto` decision: the graph's key, the thread count, ONNX Runtime's version and
    the session options it runs with (an option adopted later decides again)."""
    import onnxruntime

    return (
        f"{model_key(net, z_shape, x_shape, track_kwargs)}|threads={policy.threads}"
        f"|ort={onnxruntime.__version__}|{compute.ort_options_signature(policy)}"
    )


def load_per_core() -> float | None:
    """The 1-minute load average per core this process may run on (None where the OS has none)."""
    try:
        return os.getloadavg()[0] / compute.available_cores()
    except (AttributeError, OSError):
        return None


def choose_engine(ratios: list) -> str:
    """'onnxruntime' where the median of the rounds' torch ms / ONNX Runtime ms passes AUTO_MARGIN."""
    ordered = sorted(ratios)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return "onnxruntime" if median > AUTO_MARGIN else "torch"


def usable_decision(cached: dict | None, load: float | None) -> dict | None:
    """The cached decision where it may be used now: taken by this probe method, and not a
    provisional one (taken on an oversubscribed machine) while the machine is quieter now."""
    if not cached or cached.get("method") != DECISION_METHOD:
        return None
    taken_under = cached.get("load_per_core")
    provisional = isinstance(taken_under, (int, float)) and taken_under > LOADED_PER_CORE
    if provisional and load is not None and load <= LOADED_PER_CORE:
        return None
    return cached


def probe(engine: OnnxEngine, net: torch.nn.Module, runs: int = PROBE_RUNS) -> dict:
    """Time one dummy frame in both engines, one call each in turn (who goes first alternates), after
    one warm-up call each: the median ms of each and the median of the rounds' torch / ONNX Runtime
    ratios (two calls back to back share whatever load the machine had then)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(engine.x_shape, generator=gen) * 255
    kwargs = dict(engine.track_kwargs)

    def run_torch():
        with torch.inference_mode():
            net.track(x, **kwargs)

    calls = {"torch_ms": run_torch, "onnxruntime_ms": lambda: engine.track(x, with_channels=False)}
    ms = {k: [] for k in calls}
    for fn in calls.values():
        fn()
    for r in range(runs):
        for k in list(calls) if r % 2 == 0 else list(reversed(calls)):
            t0 = time.perf_counter()
            calls[k]()
            ms[k].append((time.perf_counter() - t0) * 1e3)
    ratios = [t / o for t, o in zip(ms["torch_ms"], ms["onnxruntime_ms"])]
    return {
        **{k: round(sorted(v)[len(v) // 2], 3) for k, v in ms.items()},
        "ratios": [round(r, 4) for r in ratios],
    }


class EngineMixin:
    """Engine choice for a tracker whose per-frame network call goes through `network_track()`.

    Subclasses say the network's input shapes (`engine_shapes`) and, where track() takes
    arguments, `engine_track_kwargs`."""

    onnx_engine: OnnxEngine | None = None
    onnx_modules: dict = {}
    onnx_wide_engines: dict = {}  # search input shape -> OnnxEngine, beside the main one
    engine_choice: str = "torch"
    engine_probe: dict | None = None
    onnx_int8_engine: OnnxEngine | None = None  # set_precision("int8"); never chosen by `auto`

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

    def run_module(self, name: str, *xs: torch.Tensor):
        """engine_modules()[name] on the inputs xs in the engine in use (torch for other shapes)."""
        onnx = self.onnx_modules.get(name) if self._usable_engine() is not None else None
        if onnx is not None and onnx.fits(xs):
            return onnx(*xs)
        return self.engine_modules()[name][0](*xs)

    # Device and precision of the torch network (`self.network`), shared by every tracker that
    # runs one: the cached template tensors move with it.
    def to(self, device: str):
        if self.precision != "fp32":
            check_precision(self.precision, check_device(device))
        self.device = check_device(device)
        self.network.to(self.device)
        move_cached_tensors(self.network, self.device, self.dtype)
        return self

    def set_precision(self, precision: str, policy: compute.ComputePolicy | None = None):
        """fp16 (CUDA only): the network's weights and inputs in half precision; its outputs are
        turned back to float32 before decoding, so the decoders stay in float32 / float64.
        int8 (CPU only): the main network in ONNX Runtime on a quantised graph (`int8_engine`); the
        torch module stays fp32 (template, refinements and shapes not exported run there)."""
        dtype = check_precision(precision, self.device)
        if precision == "int8":
            if self.engine_choice == "torch":
                raise EngineError("int8 runs in ONNX Runtime: use --engine auto or onnxruntime, not torch")
            self.onnx_int8_engine = int8_engine(self, policy)
        else:
            self.onnx_int8_engine = None
        self.dtype = dtype
        self.precision = precision
        self.network.to(dtype=self.dtype)
        move_cached_tensors(self.network, self.device, self.dtype)
        return self

    @property
    def engine_name(self) -> str:
        """The engine the next frame runs in ("onnxruntime-int8": the int8 graph, set_precision)."""
        engine = self._usable_engine()
        if engine is None:
            return "torch"
        return "onnxruntime-int8" if engine.precision == "int8" else "onnxruntime"

    def _usable_engine(self) -> OnnxEngine | None:
        """The ONNX engine where it can run this tracker's network now: the int8 graph's at int8
        precision; else the fp32 graph's at fp32 only, and not a CPU session for a network moved to
        the GPU since."""
        precision = getattr(self, "precision", "fp32")
        if precision == "int8":
            return self.onnx_int8_engine
        engine = self.onnx_engine
        if engine is None or precision != "fp32":
            return None
        device = getattr(self, "device", None)
        if device is not None and device.type != "cpu" and engine.device_type != device.type:
            return None
        return engine

    def set_engine(self, choice: str, policy: compute.ComputePolicy | None = None) -> str:
        """Switch engines ("auto" measures both, see the module doc); returns the one in use."""
        check_choice(choice)
        if choice == "torch" and getattr(self, "precision", "fp32") == "int8":
            raise EngineError("int8 runs in ONNX Runtime: use --engine auto or onnxruntime, not torch")
        self.engine_choice = choice
        self.onnx_engine, self.engine_probe, self.onnx_modules, self.onnx_wide_engines = None, None, {}, {}
        if choice == "torch":
            return self.engine_name
        device = getattr(self, "device", torch.device("cpu"))
        if choice == "auto" and device.type != "cpu":
            return self.engine_name  # on a GPU the torch module stays (its CUDA kernels)
        policy = policy or compute.current()
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if choice == "onnxruntime":
                raise EngineError("the onnxruntime engine needs the onnxruntime package") from None
            return self.engine_name
        z_shape, x_shape = self.engine_shapes()
        if choice == "auto":
            key = decision_key(self.network, z_shape, x_shape, self.engine_track_kwargs(), policy)
            cached = usable_decision(_read_decisions().get(key), load_per_core())
            if cached and cached["engine"] == "torch":
                self.engine_probe = dict(cached, cached=True)
                return self.engine_name
        try:
            engine = OnnxEngine(self.network, z_shape, x_shape, self.engine_track_kwargs(), policy, device=str(device))
        except (EngineError, DeviceError):
            raise  # a CUDA provider that cannot run says so, as in torch
        except Exception as e:  # noqa: BLE001 - an export the exporter cannot do: say which, keep torch
            why = (
                f"{getattr(self, 'name', type(self).__name__)}: ONNX export failed "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            )
            if choice == "onnxruntime":
                raise EngineError(why) from e
            _say(f"{why}: auto runs torch")  # not silently: a slower engine is news
            return self.engine_name
        if choice == "auto":
            load = load_per_core()
            cached = usable_decision(_read_decisions().get(key), load)
            if cached and cached["engine"] == "onnxruntime":
                self.engine_probe = dict(cached, cached=True)
            else:
                saved = _own_attrs(self.network)
                try:
                    with torch.no_grad():
                        self.network.template(torch.rand(z_shape, generator=torch.Generator().manual_seed(2)) * 255)
                    timing = probe(engine, self.network)
                finally:
                    _restore(self.network, saved)
                decision = dict(
                    timing,
                    engine=choose_engine(timing["ratios"]),
                    threads=policy.threads,
                    method=DECISION_METHOD,
                    load_per_core=None if load is None else round(load, 2),
                    decided_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                )
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
                    raise EngineError(
                        f"{getattr(self, 'name', type(self).__name__)}: ONNX export of {name} "
                        f"failed ({type(e).__name__})"
                    ) from e
        wide = {}
        for side in self.engine_search_sizes():
            shape = (*x_shape[:2], int(side), int(side))
            if shape == engine.x_shape:
                continue
            try:
                wide[shape] = OnnxEngine(
                    self.network, z_shape, shape, self.engine_track_kwargs(), policy, device=str(device)
                )
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
            engine = self.onnx_wide_engines.get(tuple(x.shape))  # (fp32: int8 has the main size only)
        if engine is not None:
            return engine.track(x, with_channels=getattr(self, "collect_channels", True))
        return self.network.track(x, **kwargs)
