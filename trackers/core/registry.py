"""Every tracker SiamScope offers, by short stable name: the mechanism, naming no tracker.

A TrackerSpec says how to build the tracker (from a checkpoint where it needs one) and where its
published weights come from. The GUI's picker, `python main.py trackers` and `track --tracker`
all read this one table. What fills it:

* catalogues added with `add_catalogue()`: the project's own trackers come from the declared list
  in trackers/families/__init__.py (importing that package adds it; nothing here names a family);
* third-party packages, through the entry-point group `siamscope.trackers` (docs/plugins.md): each
  entry point names a TrackerSpec, a list of them, or a module with a `TRACKERS` list.

A catalogue or plugin that fails to load must not take the others down: its error is kept in
IMPORT_ERRORS (one line each, which `trackers` and the app's picker show) and the rest load.

A family's variants are data in one idiom: a table of `Variant` rows (name, title, params,
weights), turned into specs by `variant_specs()`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from .base import Tracker
from .paths import RESOURCES_DIR

#: the entry-point group third-party trackers register under (pyproject.toml:
#: [project.entry-points."siamscope.trackers"] my-tracker = "my_package.tracker:TRACKERS")
ENTRY_POINT_GROUP = "siamscope.trackers"


@dataclasses.dataclass
class TrackerSpec:
    name: str  # short, stable: "nanotrack-v2", "siamrpnpp-r50", ...
    title: str  # what the picker shows
    family: str  # "SiamRPN++", "NanoTrack", ...
    build: Callable[..., Tracker]  # build(weights: Optional[str], device: str) -> Tracker
    params_type: type  # the hyper-parameter dataclass
    # the variant's default parameters where they are not params_type()'s (DaSiamRPN vot/otb,
    # NanoTrack v1/v3 share one dataclass with other values); "Reset to defaults" uses make_params()
    default_params: Callable[[], object] | None = None
    needs_weights: bool = True
    weights_file: str = ""  # published file name, looked up in the model folders
    description: str = ""
    # the file a tracker that needs no checkpoint loads anyway (the project's own weights in
    # resources/): what a run's provenance names when no checkpoint was given
    builtin_weights: str = ""
    default_engine: str | None = None  # engine when none is asked for (None: what build() gives)
    note: str = ""  # a caveat shown with the tracker (why it is experimental, ...)
    experimental: bool = False  # not (yet) validated: listed, but labelled so

    def make_params(self):
        """A fresh instance of this tracker's default hyper-parameters."""
        return self.default_params() if self.default_params is not None else self.params_type()


def experimental_label(spec: TrackerSpec) -> str:
    """'experimental: <its note>' for an experimental tracker (issue 22.6: trained here and not shown
    to beat the training-free floor on the SRE validation table; the note gives its figure), ''
    otherwise. The picker, `trackers` and `zoo` show it."""
    if not spec.experimental:
        return ""
    return f"experimental: {spec.note}" if spec.note else "experimental"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a family's table of trackers: what differs between the variants of one family,
    as data. `params` are the variant's values where they differ from its params dataclass's
    defaults (the reference config the dataclass carries); `weights` the published checkpoint file.
    The optional columns default to the table's (`variant_specs`)."""

    name: str
    title: str
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)
    weights: str = ""
    network: str = ""  # the family's own key for the network (a pysot experiment, a version)
    family: str = ""  # display family where it is not the table's
    params_type: type | None = None  # where the variant's knobs are another dataclass (more fields)
    description: str = ""
    note: str = ""
    experimental: bool = False

    def make_params(self, params_type: type, **overrides):
        """The variant's default parameters (`overrides` on top)."""
        return (self.params_type or params_type)(**{**self.params, **overrides})


def variant_specs(
    variants: Sequence[Variant],
    *,
    family: str,
    params_type: type,
    build: Callable[..., Tracker],
    description: str = "",
    **spec_fields,
) -> list[TrackerSpec]:
    """TrackerSpecs of a family's variant table. `build(name, weights, device)` is the family's one
    builder, called with the variant's name; `spec_fields` are TrackerSpec fields shared by the rows
    (needs_weights, builtin_weights, default_engine)."""
    specs = []
    for v in variants:
        ptype = v.params_type or params_type
        specs.append(
            TrackerSpec(
                name=v.name,
                title=v.title,
                family=v.family or family,
                build=(lambda weights=None, device="cpu", _n=v.name: build(_n, weights, device)),
                params_type=ptype,
                default_params=(lambda _v=v, _t=ptype: _v.make_params(_t)) if v.params else None,
                weights_file=v.weights,
                description=v.description or description,
                note=v.note,
                experimental=v.experimental,
                **spec_fields,
            )
        )
    return specs


_REGISTRY: dict[str, TrackerSpec] = {}
#: what failed to load, one line each: {catalogue or plugin: error}
IMPORT_ERRORS: dict[str, str] = {}
_CATALOGUES: list[tuple[str, Callable[[], Iterable[TrackerSpec]]]] = []
_read: set[str] = set()  # catalogues read so far
_plugins_read = False


def register(spec: TrackerSpec) -> TrackerSpec:
    _REGISTRY[spec.name] = spec
    return spec


def add_catalogue(name: str, catalogue: Callable[[], Iterable[TrackerSpec]]) -> None:
    """Add a source of trackers, read once, when the registry is next asked: `catalogue()`
    returns the specs."""
    if all(n != name for n, _ in _CATALOGUES):
        _CATALOGUES.append((name, catalogue))


def _specs_of(obj) -> list[TrackerSpec]:
    """What an entry point names: a TrackerSpec, a list of them, or a module with TRACKERS."""
    obj = getattr(obj, "TRACKERS", obj)
    specs = [obj] if isinstance(obj, TrackerSpec) else list(obj)
    for s in specs:
        if not isinstance(s, TrackerSpec):
            raise TypeError(f"expected TrackerSpec objects, got {type(s).__name__}")
    return specs


def plugin_catalogue() -> list[TrackerSpec]:
    """The trackers third-party packages declare in the `siamscope.trackers` entry-point group.
    A plugin that fails to load goes to IMPORT_ERRORS; the others still load."""
    from importlib.metadata import entry_points

    specs = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            specs += _specs_of(ep.load())
        except Exception as e:  # noqa: BLE001 - a broken plugin is reported, the app carries on
            IMPORT_ERRORS[f"plugin {ep.name} ({ep.value})"] = f"{type(e).__name__}: {e}"
    return specs


def _load_all() -> None:
    global _plugins_read
    sources = [(n, c) for n, c in _CATALOGUES if n not in _read]
    if not _plugins_read:
        _plugins_read = True
        sources.append(("plugins", plugin_catalogue))
    for name, catalogue in sources:
        _read.add(name)
        try:
            specs = list(catalogue())
        except Exception as e:  # noqa: BLE001 - report, keep the other trackers usable
            IMPORT_ERRORS[name] = f"{type(e).__name__}: {e}"
            continue
        for spec in specs:
            if spec.name in _REGISTRY:  # a plugin does not replace a tracker of the project's
                IMPORT_ERRORS[f"{name}: {spec.name}"] = f"the name {spec.name!r} is taken; not registered"
                continue
            register(spec)


def all_trackers() -> list[TrackerSpec]:
    _load_all()
    return list(_REGISTRY.values())


def get(name: str) -> TrackerSpec:
    _load_all()
    if name not in _REGISTRY:
        if not _CATALOGUES:  # a program that never imported the catalogue (trackers.families)
            raise KeyError(f"unknown tracker {name!r}: no catalogue of trackers was added (import trackers.families)")
        raise KeyError(f"unknown tracker {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_dirs() -> list[str]:
    """Folders searched for checkpoints: $SIAMSCOPE_MODELS (os.pathsep-separated, searched
    recursively one level deep), then the user models folder."""
    dirs = [d for d in os.environ.get("SIAMSCOPE_MODELS", "").split(os.pathsep) if d]
    dirs.append(user_models_dir())
    return dirs


def user_models_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "siamscope", "models")


def shipped_file(file_name: str) -> str | None:
    """A checkpoint that travels inside the package (resources/: the project's trained weights and
    NanoTrack v2's, bundled with its licence), else None."""
    shipped = os.path.join(RESOURCES_DIR, file_name)
    return shipped if os.path.isfile(shipped) else None


def find_weights(spec: TrackerSpec) -> str | None:
    """The tracker's checkpoint when none is given (an explicit --weights always wins): in the model
    folders ($SIAMSCOPE_MODELS, then the user models folder), else the copy shipped in the package,
    else None. A file in the model folders wins over the shipped one, so a user can replace it."""
    if not spec.weights_file:
        return None
    return find_file(spec.weights_file) or shipped_file(spec.weights_file)


#: what a run uses when no tracker is named, in order (the catalogue says: `prefer`); the first
#: ready one wins, else the first ready tracker
PREFERRED_TRACKERS: tuple[str, ...] = ()


def prefer(*names: str) -> None:
    """Declare the trackers a run uses when none is named, in order of preference."""
    global PREFERRED_TRACKERS
    PREFERRED_TRACKERS = tuple(names)


def ready(spec: TrackerSpec) -> bool:
    """The tracker can be built now: it needs no checkpoint, ships one, or one is found."""
    return not spec.needs_weights or bool(spec.builtin_weights) or find_weights(spec) is not None


def preferred_tracker() -> str:
    """The first of PREFERRED_TRACKERS that is ready, else the first ready tracker."""
    specs = {s.name: s for s in all_trackers()}
    for name in PREFERRED_TRACKERS:
        if name in specs and ready(specs[name]):
            return name
    return next((s.name for s in specs.values() if ready(s)), next(iter(specs)))


def find_file(file_name: str) -> str | None:
    """A file (a relative path such as 'nanotrackv2.pth' or 'siamrpn_alex_dwxcorr/model.pth') in
    the model folders or one level below them; None where it is in none."""
    for d in model_dirs():
        for sub in ("", *sorted(_subdirs(d))):
            p = os.path.join(d, sub, file_name)
            if os.path.isfile(p):
                return p
    return None


def _subdirs(d: str) -> list[str]:
    try:
        return [e.name for e in os.scandir(d) if e.is_dir()]
    except OSError:
        return []


def loaded_checkpoint(spec: TrackerSpec, weights: str | None = None) -> str | None:
    """The checkpoint file `build(spec.name, weights)` actually reads: the one given, else the one
    found in the model folders, else the built-in weights; None for a tracker without any."""
    if spec.needs_weights:
        return weights or find_weights(spec)
    return weights or spec.builtin_weights or None


def build(
    name: str, weights: str | None = None, device: str = "cpu", engine: str | None = None, precision: str = "fp32"
) -> Tracker:
    """Build a tracker by name; weights default to the file found in the model folders. `engine`
    ("auto", "torch", "onnxruntime"; trackers/core/engines.py) picks what runs the per-frame network;
    None keeps the tracker's own default. `precision` other than fp32 (fp16 on CUDA, int8 on the
    CPU: trackers/core/quantize.py) is set after the engine."""
    spec = get(name)
    if spec.needs_weights and weights is None:
        weights = find_weights(spec)
        if weights is None:
            from models.checkpoint import CheckpointError

            raise CheckpointError(
                f"tracker {name!r} needs its checkpoint {spec.weights_file!r}: pass --weights FILE, or put "
                f"the file in {user_models_dir()} or a folder named by SIAMSCOPE_MODELS"
            )
    tracker = spec.build(weights, device)
    engine = engine or spec.default_engine
    if engine is not None:
        tracker.set_engine(engine)
    if precision != "fp32":
        tracker.set_precision(precision)
    return tracker
