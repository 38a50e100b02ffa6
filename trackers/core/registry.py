"""Every tracker SiamScope offers, by short stable name.

A TrackerSpec says how to build the tracker (from a checkpoint where it needs one) and where its
published weights come from. The GUI's picker, `python main.py trackers` and `track --tracker`
all read this one table. Tracker modules register themselves at import (see `_MODULES`).
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Callable, Optional

from .base import Tracker
from .paths import RESOURCES_DIR


@dataclasses.dataclass
class TrackerSpec:
    name: str                      # short, stable: "nanotrack-v2", "siamrpnpp-r50", ...
    title: str                     # what the picker shows
    family: str                    # "SiamRPN++", "NanoTrack", ...
    build: Callable[..., Tracker]  # build(weights: Optional[str], device: str) -> Tracker
    params_type: type              # the hyper-parameter dataclass
    # the variant's default parameters where they are not params_type()'s (DaSiamRPN vot/otb,
    # NanoTrack v1/v3 share one dataclass with other values); "Reset to defaults" uses make_params()
    default_params: Optional[Callable[[], object]] = None
    needs_weights: bool = True
    weights_file: str = ""         # published file name, looked up in the model folders
    description: str = ""
    # the file a tracker that needs no checkpoint loads anyway (the project's own weights in
    # resources/): what a run's provenance names when no checkpoint was given
    builtin_weights: str = ""
    default_engine: Optional[str] = None   # engine when none is asked for (None: what build() gives)

    def make_params(self):
        """A fresh instance of this tracker's default hyper-parameters."""
        return self.default_params() if self.default_params is not None else self.params_type()


_REGISTRY: dict[str, TrackerSpec] = {}

# Modules that define trackers; each calls register() at import. A module that fails to import
# (a tracker under construction) must not take the others down, so failures are kept and reported.
_MODULES = [
    "trackers.families.nanotrack",
    "trackers.families.siamrpn",
    "trackers.families.siamfc",
    "trackers.families.siamdw",
    "trackers.families.dasiamrpn",
    "trackers.families.siammask",
    "trackers.families.siamattn",
    "trackers.families.floor",
    "trackers.families.effnet",
    "trackers.families.default",
    "trackers.families.opencv_trackers",
]
IMPORT_ERRORS: dict[str, str] = {}
_loaded = False


def register(spec: TrackerSpec) -> TrackerSpec:
    _REGISTRY[spec.name] = spec
    return spec


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                IMPORT_ERRORS[mod] = f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 - report, keep the other trackers usable
            IMPORT_ERRORS[mod] = f"{type(e).__name__}: {e}"


def all_trackers() -> list[TrackerSpec]:
    _load_all()
    return list(_REGISTRY.values())


def get(name: str) -> TrackerSpec:
    _load_all()
    if name not in _REGISTRY:
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


def shipped_file(file_name: str) -> Optional[str]:
    """A checkpoint that travels inside the package (resources/: the project's trained weights and
    NanoTrack v2's, bundled with its licence), else None."""
    shipped = os.path.join(RESOURCES_DIR, file_name)
    return shipped if os.path.isfile(shipped) else None


def find_weights(spec: TrackerSpec) -> Optional[str]:
    """The tracker's checkpoint when none is given (an explicit --weights always wins): in the model
    folders ($SIAMSCOPE_MODELS, then the user models folder), else the copy shipped in the package,
    else None. A file in the model folders wins over the shipped one, so a user can replace it."""
    if not spec.weights_file:
        return None
    return find_file(spec.weights_file) or shipped_file(spec.weights_file)


#: what a run uses when no tracker is named, in order: the default (NanoTrack v2 under the long-term
#: guard, chosen on the leave-one-video-out table; NanoTrack v2's checkpoint ships in the package),
#: else the EfficientNet tracker trained here, should the bundled checkpoint have been removed
PREFERRED_TRACKERS = ("siamscope-default", "siamscope-effnet")


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


def find_file(file_name: str) -> Optional[str]:
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


def loaded_checkpoint(spec: TrackerSpec, weights: Optional[str] = None) -> Optional[str]:
    """The checkpoint file `build(spec.name, weights)` actually reads: the one given, else the one
    found in the model folders, else the built-in weights; None for a tracker without any."""
    if spec.needs_weights:
        return weights or find_weights(spec)
    return weights or spec.builtin_weights or None


def build(name: str, weights: Optional[str] = None, device: str = "cpu", engine: Optional[str] = None) -> Tracker:
    """Build a tracker by name; weights default to the file found in the model folders. `engine`
    ("auto", "torch", "onnxruntime"; trackers/core/engines.py) picks what runs the per-frame network;
    None keeps the tracker's own default."""
    spec = get(name)
    if spec.needs_weights and weights is None:
        weights = find_weights(spec)
        if weights is None:
            from models.checkpoint import CheckpointError
            raise CheckpointError(
                f"tracker {name!r} needs its checkpoint {spec.weights_file!r}: pass --weights FILE, or put "
                f"the file in {user_models_dir()} or a folder named by SIAMSCOPE_MODELS")
    tracker = spec.build(weights, device)
    engine = engine or spec.default_engine
    if engine is not None:
        tracker.set_engine(engine)
    return tracker
