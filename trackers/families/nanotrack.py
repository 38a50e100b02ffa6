"""NanoTrack V1 / V2 / V3: the shared Siamese loop (crop -> network -> point decode) on the
NanoTrack networks (models/nanotrack.py), with the hyper-parameters of the reference configs
(HonglinChu/SiamTrackers NanoTrack `models/config/configv{1,2,3}.yaml`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from models.checkpoint import CheckpointError, load_into, read_state_dict
from models.nanotrack import NanoTrack, detect_version

from ..core.base import param
from ..core.registry import Variant, variant_specs
from ..core.siamese import PointDecoder, RPNParams, SiameseRPNTracker


@dataclasses.dataclass
class NanoTrackParams(RPNParams):
    """Defaults: configv2.yaml (TRACK.*), grid = TRACK.OUTPUT_SIZE, POINT.STRIDE."""

    penalty_k: float = 0.15
    window_influence: float = 0.49
    lr: float = 0.385
    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    # (the score grid side, 16 for V1/V2 and 15 for V3, is fixed by the network: the decoder reads
    # it from the output's shape)
    point_stride: int = param(
        16, "distance between score-grid points in search-crop pixels (fixed by the network)", live=False
    )


#: the variants: the reference configs' TRACK values where they are not NanoTrackParams' defaults
#: (configv2.yaml's); `network` is the NanoTrack version models/nanotrack.py builds
VARIANTS = (
    Variant(
        "nanotrack-v1",
        "NanoTrack V1 (MobileNetV3-small, BAN v1)",
        dict(penalty_k=0.148, window_influence=0.462, lr=0.390),
        "nanotrackv1.pth",
        network="v1",
    ),
    Variant("nanotrack-v2", "NanoTrack V2 (MobileNetV3-small, BAN v2)", {}, "nanotrackv2.pth", network="v2"),
    Variant(
        "nanotrack-v3",
        "NanoTrack V3 (MobileNetV3-small+, BAN v3)",
        dict(penalty_k=0.138, window_influence=0.455, lr=0.348),
        "nanotrackv3.pth",
        network="v3",
    ),
)
VARIANT_BY_NAME = {v.name: v for v in VARIANTS}


def default_params(name: str) -> NanoTrackParams:
    """A variant's default parameters, by tracker name ("nanotrack-v1")."""
    return VARIANT_BY_NAME[name].make_params(NanoTrackParams)


def load_nanotrack(version: str, weights: str) -> NanoTrack:
    """Build the network and load a checkpoint strictly; a checkpoint of another model gives a
    CheckpointError naming the file, the format detected from its keys and the key differences."""
    net = NanoTrack(version)
    state = read_state_dict(weights)
    found = detect_version(state)
    fmt = f"nanotrack-{found}" if found else "not a NanoTrack checkpoint"
    if found and found != version:
        fmt += f", expected nanotrack-{version}"
    load_into(net, state, str(weights), fmt, ignore=lambda k: k.endswith("num_batches_tracked"))
    return net.eval()


class NanoTracker(SiameseRPNTracker):
    """SiameseRPNTracker with a point decoder and a lean per-frame network call.

    The engine is the one every tracker has (trackers/core/engines.py): "onnxruntime" runs the search
    branch (backbone + BAN head, the template state fed as graph inputs) in one ONNX Runtime
    session, about 3x eager torch on the CPU at this network's size; "auto" (default) keeps what
    is measured faster here; "torch" the module. The template is always computed by the torch
    module. The search crop goes from the uint8 patch straight into one reused float32 buffer:
    no torch op and no allocation between the crop and the session.
    """

    def __init__(
        self, network: NanoTrack, params: NanoTrackParams, name: str = "", device: str = "cpu", engine: str = "auto"
    ):
        super().__init__(network, PointDecoder(params.point_stride), params, name=name, device=device)
        self._input: torch.Tensor | None = None
        self.set_engine(engine)

    def _host_input(self, patch: np.ndarray) -> torch.Tensor:
        h, w = patch.shape[:2]
        if self._input is None or tuple(self._input.shape[2:]) != (h, w):
            self._input = torch.empty((1, 3, h, w), dtype=torch.float32)
        # HWC uint8 -> CHW float32 straight into the reused buffer (same values as to_tensor_layout)
        np.copyto(self._input.numpy()[0], patch.transpose(2, 0, 1), casting="unsafe")
        return self._input

    def _tensor(self, patch: np.ndarray) -> torch.Tensor:
        if self.device.type != "cpu" or self.dtype != torch.float32:
            return super()._tensor(patch)
        return self._host_input(patch)

    def run_network(self, patch: np.ndarray) -> dict:
        engine = self._usable_engine()
        if engine is not None and engine.x_shape[2:] == patch.shape[:2]:
            # ORT reads a host array (its CUDA provider copies it to the GPU itself)
            return engine.track(self._host_input(patch), with_channels=self.collect_channels)
        with torch.inference_mode():
            # another size (a widened search while the target is lost): its own exported graph
            # where the tracker declares one (engine_search_sizes), else torch
            return self.network_track(self._tensor(patch))

    def init(self, frame, box) -> None:
        with torch.inference_mode():
            super().init(frame, box)


def build(name: str, weights: str | None, device: str = "cpu", engine: str = "auto") -> NanoTracker:
    """The NanoTrack variant `name` ("nanotrack-v2") on the checkpoint `weights`."""
    v = VARIANT_BY_NAME[name]
    if weights is None:
        raise CheckpointError(f"{name} needs a checkpoint ({v.weights})")
    net = load_nanotrack(v.network, weights)
    return NanoTracker(net, default_params(name), name=name, device=device, engine=engine)


TRACKERS = variant_specs(
    VARIANTS,
    family="NanoTrack",
    params_type=NanoTrackParams,
    build=build,
    description="Anchor-free lightweight Siamese tracker (HonglinChu/SiamTrackers NanoTrack), "
    "pixel-wise correlation + channel attention head.",
)
