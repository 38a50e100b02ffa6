"""The assembled pysot networks: backbone -> (neck) -> RPN head.

`template(z)` runs once per target and keeps the head's template kernels; `track(x)` returns
{'cls': (1, 2A, S, S), 'loc': (1, 4A, S, S), 'xcorr': [(level, branch, (1, C, h, w)), ...]},
where 'xcorr' holds the depth-wise correlation maps of every level and branch (the GUI's channel
grid). Attribute names are pysot `ModelBuilder`'s (`backbone`, `neck`, `rpn_head`), so pysot
model-zoo checkpoints load by name.

One builder per pysot experiment (`experiments/<name>/config.yaml`), keyed by that name in
`PYSOT_RPN_MODELS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .backbones import AlexNetLegacy, mobilenetv2, resnet50
from .heads import DepthwiseRPN, MultiRPN
from .necks import AdjustAllLayer


class SiamRPNNet(nn.Module):
    """A Siamese RPN: one backbone shared by template and search, an optional neck, one head.

    `level_names` name the head's feature levels in the 'xcorr' output ("layer2", "conv5", ...).
    """

    #: track() takes a batch of searches with a batch of template kernels (the correlations are
    #: per sample): several targets run as one call (trackers/core/batching.py)
    batchable = True
    #: an exported graph fixes the batch: DW-XCorr is a grouped conv of batch x channels groups
    free_batch_graph = False

    def __init__(self, backbone: nn.Module, neck: nn.Module | None, rpn_head: nn.Module, level_names: Sequence[str]):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.rpn_head = rpn_head
        self.level_names = list(level_names)
        self._kernels = None

    def features(self, image: torch.Tensor):
        """Backbone (+ neck) features of a crop, in the form the head takes."""
        f = self.backbone(image)
        if self.neck is not None:
            f = self.neck(f)
        return f

    def template(self, z: torch.Tensor) -> None:
        self._kernels = self.rpn_head.embed_kernels(self.features(z))

    def track(self, x: torch.Tensor) -> dict:
        if self._kernels is None:
            raise RuntimeError("track() called before template()")
        cls, loc, correlations = self.rpn_head.match(self._kernels, self.features(x))
        return {
            "cls": cls,
            "loc": loc,
            "xcorr": [(self.level_names[level], branch, t) for level, branch, t in correlations],
        }

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> dict:
        self.template(z)
        return self.track(x)


def siamrpn_alex_dwxcorr() -> SiamRPNNet:
    """SiamRPN on pysot's legacy AlexNet with a single DW-XCorr head (no neck)."""
    return SiamRPNNet(
        AlexNetLegacy(1.0), None, DepthwiseRPN(anchor_num=5, in_channels=256, out_channels=256), ["conv5"]
    )


def siamrpn_r50_l234_dwxcorr() -> SiamRPNNet:
    """SiamRPN++: ResNet-50 layers 2-4, each adjusted to 256 channels, softmax-weighted MultiRPN."""
    return SiamRPNNet(
        resnet50(used_layers=[2, 3, 4]),
        AdjustAllLayer([512, 1024, 2048], [256, 256, 256]),
        MultiRPN(anchor_num=5, in_channels=[256, 256, 256], weighted=True),
        ["layer2", "layer3", "layer4"],
    )


def siamrpn_r50_l234_dwxcorr_lt() -> SiamRPNNet:
    """SiamRPN++ long-term: as R50 but the neck keeps 128 / 256 / 512 channels per level."""
    return SiamRPNNet(
        resnet50(used_layers=[2, 3, 4]),
        AdjustAllLayer([512, 1024, 2048], [128, 256, 512]),
        MultiRPN(anchor_num=5, in_channels=[128, 256, 512], weighted=True),
        ["layer2", "layer3", "layer4"],
    )


def siamrpn_mobilev2_l234_dwxcorr() -> SiamRPNNet:
    """SiamRPN++ on MobileNetV2 x1.4 levels 3 / 5 / 7, plain-average MultiRPN."""
    return SiamRPNNet(
        mobilenetv2(width_mult=1.4, used_layers=[3, 5, 7]),
        AdjustAllLayer([44, 134, 448], [256, 256, 256]),
        MultiRPN(anchor_num=5, in_channels=[256, 256, 256], weighted=False),
        ["layer3", "layer5", "layer7"],
    )


#: pysot experiment name -> network builder
PYSOT_RPN_MODELS: dict[str, Callable[[], SiamRPNNet]] = {
    "siamrpn_alex_dwxcorr": siamrpn_alex_dwxcorr,
    "siamrpn_r50_l234_dwxcorr": siamrpn_r50_l234_dwxcorr,
    "siamrpn_r50_l234_dwxcorr_lt": siamrpn_r50_l234_dwxcorr_lt,
    "siamrpn_mobilev2_l234_dwxcorr": siamrpn_mobilev2_l234_dwxcorr,
}
