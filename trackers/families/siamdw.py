"""SiamDW SiamRPN+ (SiamRPNRes22: CIResNet-22 + up-channel RPN, 5 anchors, cls_type 'thinner').

The loop is the shared RPN loop (trackers/core/siamese.py): crop -> network -> anchors -> penalty ->
cosine window -> best anchor -> lr-damped size -> clip. What differs from pysot, and is overridden
here (reference: researchmm/SiamDW lib/tracker/siamrpn.py):
* classification is 'thinner': one logit per anchor, scored with a sigmoid (not a 2-way softmax);
  the regression layout (channel = coord * 5 + anchor) and the anchor grid are pysot's;
* crop sides use Python 2 rounding (`python2round`, ties away from zero) and the crop corner
  Python 3 `round(pos - (side + 1) / 2)` (ties to even);
* a box's centre is x + w / 2 (SiamDW's `cxy_wh_2_rect`), not pysot's x + (w - 1) / 2.
The SiamFC+ models of SiamDW are in trackers/families/siamfc.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.base import Box, validate_box
from ..core.crop import channel_average, get_subwindow, py2_round
from ..core.registry import Variant, variant_specs
from ..core.siamese import AnchorDecoder, RPNParams, SiameseRPNTracker


@dataclasses.dataclass
class SiamRPNPlusParams(RPNParams):
    """SiamRPNRes22.yaml, section TEST.OTB2015 (RPNConfig defaults for the rest)."""

    penalty_k: float = 0.841
    window_influence: float = 0.39
    lr: float = 0.714
    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5


class SigmoidAnchorDecoder(AnchorDecoder):
    """Anchors as pysot lays them out; cls (1, A, S, S) holds one logit per anchor ('thinner')."""

    def score(self, cls: np.ndarray) -> np.ndarray:
        logits = cls[0].reshape(-1).astype(np.float32)
        return 1.0 / (1.0 + np.exp(-logits))


class SiamRPNPlusTracker(SiameseRPNTracker):
    def __init__(
        self, network, params: SiamRPNPlusParams | None = None, name: str = "siamrpn-res22", device: str = "cpu"
    ):
        super().__init__(
            network,
            SigmoidAnchorDecoder(stride=8, ratios=(0.33, 0.5, 1, 2, 3), scales=(8,)),
            params or SiamRPNPlusParams(),
            name,
            device,
        )

    def crop_at(self, frame: np.ndarray, side: float, out_size: int) -> np.ndarray:
        c = (side + 1) / 2
        corner = (round(self.center[0] - c), round(self.center[1] - c))
        return get_subwindow(frame, None, out_size, int(side), self.channel_average, corner=corner)

    def crop_exemplar(self, frame: np.ndarray) -> np.ndarray:
        return self.crop_at(frame, py2_round(self.context_size()), self.params.exemplar_size)

    def crop_search(self, frame: np.ndarray, instance_size: int | None = None):
        p = self.params
        instance_size = instance_size or p.instance_size
        s_z = self.context_size()
        scale_z = p.exemplar_size / s_z
        pad = ((instance_size - p.exemplar_size) / 2) / scale_z
        s_x = py2_round(s_z + 2 * pad)
        return self.crop_at(frame, s_x, instance_size), scale_z, s_x

    def start(self, frame: np.ndarray, center_xy, size_wh) -> None:
        """Initialise from a centre and size (frame pixels), as SiamDW's `init(im, pos, sz)`."""
        import torch

        self.center = np.array(center_xy, np.float64)
        self.size = np.array(size_wh, np.float64)
        self.channel_average = channel_average(frame)
        with torch.no_grad():
            self.network.template(self._tensor(self.crop_exemplar(frame)))

    def init(self, frame: np.ndarray, box: Box) -> None:
        x, y, w, h = validate_box(box, frame.shape)
        self.start(frame, (x + w / 2, y + h / 2), (w, h))

    def decode(self, cls, loc, scale_z, frame_shape):
        step = super().decode(cls, loc, scale_z, frame_shape)
        (cx, cy), (w, h) = step.center, step.size
        # SiamDW reports boxes as centre - size / 2
        return dataclasses.replace(step, box=(float(cx - w / 2), float(cy - h / 2), float(w), float(h)))


VARIANTS = (Variant("siamrpn-res22", "SiamRPN+ CIResNet-22 (SiamDW)", {}, "CIResNet22_RPN.pth"),)


def build(name: str, weights: str | None = None, device: str = "cpu") -> SiamRPNPlusTracker:
    from models.checkpoint import load_checkpoint
    from models.cir import siamrpn_res22

    net = siamrpn_res22()
    if weights is not None:
        load_checkpoint(net, weights, "SiamDW")
    return SiamRPNPlusTracker(net.eval(), SiamRPNPlusParams(), name, device)


TRACKERS = variant_specs(
    VARIANTS,
    family="SiamDW",
    params_type=SiamRPNPlusParams,
    build=build,
    description="SiamRPN with a cropping-inside residual backbone, up-channel RPN, sigmoid anchors.",
)
