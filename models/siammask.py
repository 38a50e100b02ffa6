"""SiamMask (Wang et al., CVPR 2019) as pysot builds it (experiments/siammask_r50_l3).

ResNet-50 (levels 0-3, layer3 dilated) -> AdjustLayer on layer3 -> DepthwiseRPN (cls / loc) and a
mask branch: MaskCorr, a depth-wise correlation whose 1x1 head gives 63*63 mask logits per score
cell, and Refine, which rebuilds a sharper 127x127 mask for one cell from the correlation feature
there and the search crop's own stem / layer1 / layer2 features (SharpMask-style top-down
refinement). Attribute names are pysot ModelBuilder's (`backbone`, `neck`, `rpn_head`,
`mask_head`, `refine_head`), so pysot's siammask_r50_l3 checkpoint loads by name.

The backbone, neck and RPN head are the shared pysot parts of models/backbones.py, necks.py,
heads.py; only the mask parts live here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import resnet50
from .heads import DepthwiseRPN, DepthwiseXCorr, xcorr_depthwise
from .necks import AdjustAllLayer

MASK_SIDE = 63  # MaskCorr: a 63x63 low-resolution mask per score cell
REFINE_SIDE = 127  # Refine output (= exemplar size)


class MaskCorr(DepthwiseXCorr):
    """pysot MaskCorr: the DW-XCorr branch with 63*63 output channels (channel = row*63 + col)."""

    def __init__(self, in_channels: int = 256, hidden: int = 256, out_channels: int = MASK_SIDE * MASK_SIDE):
        super().__init__(in_channels, hidden, out_channels)


def _two_convs(cin: int, mid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, mid, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, cout, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class Refine(nn.Module):
    """pysot Refine: for one score cell (y, x), the 256-d mask-correlation vector there is deconvolved
    to 15x15 and merged, coarse to fine, with windows of the search crop's layer2 (15x15), layer1
    (31x31) and stem (61x61) features centred on the same cell ('v' = lateral convs on the backbone
    features, 'h' = convs on the upsampled top-down path), ending in 127x127 logits.

    Upsampling is nearest-neighbour: pysot calls F.upsample(size=...), whose default mode is 'nearest'.
    """

    def __init__(self):
        super().__init__()
        self.v0 = _two_convs(64, 16, 4)
        self.v1 = _two_convs(256, 64, 16)
        self.v2 = _two_convs(512, 128, 32)
        self.h2 = _two_convs(32, 32, 32)
        self.h1 = _two_convs(16, 16, 16)
        self.h0 = _two_convs(4, 4, 4)
        self.deconv = nn.ConvTranspose2d(256, 32, 15, 15)
        self.post0 = nn.Conv2d(32, 16, 3, padding=1)
        self.post1 = nn.Conv2d(16, 4, 3, padding=1)
        self.post2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, features: Sequence[torch.Tensor], corr_feature: torch.Tensor, pos) -> torch.Tensor:
        """features = (stem 125x125, layer1 63x63, layer2 31x31) of the search crop; corr_feature the
        mask correlation (1, 256, S, S); pos = (y, x) cell. Returns (1, 127*127) logits."""
        return self.decode(*self.windows(features, corr_feature, pos))

    @staticmethod
    def windows(features: Sequence[torch.Tensor], corr_feature: torch.Tensor, pos) -> tuple:
        """The inputs of cell pos = (y, x): the stem, layer1 and layer2 windows centred on it and its
        correlation vector, shaped REFINE_WINDOW_SHAPES (plain slicing: no weights)."""
        y, x = int(pos[0]), int(pos[1])
        # each level padded so that the window of cell (y, x) starts at stride * (y, x)
        p0 = F.pad(features[0], [16, 16, 16, 16])[:, :, 4 * y : 4 * y + 61, 4 * x : 4 * x + 61]
        p1 = F.pad(features[1], [8, 8, 8, 8])[:, :, 2 * y : 2 * y + 31, 2 * x : 2 * x + 31]
        p2 = F.pad(features[2], [4, 4, 4, 4])[:, :, y : y + 15, x : x + 15]
        p3 = corr_feature[:, :, y, x].reshape(-1, corr_feature.shape[1], 1, 1)
        return p0, p1, p2, p3

    def decode(self, p0: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, p3: torch.Tensor) -> torch.Tensor:
        """The refinement's convolutions on windows(): (N, 127*127) logits."""
        out = self.deconv(p3)
        out = self.post0(F.interpolate(self.h2(out) + self.v2(p2), size=(31, 31), mode="nearest"))
        out = self.post1(F.interpolate(self.h1(out) + self.v1(p1), size=(61, 61), mode="nearest"))
        out = self.post2(F.interpolate(self.h0(out) + self.v0(p0), size=(REFINE_SIDE, REFINE_SIDE), mode="nearest"))
        return out.reshape(-1, REFINE_SIDE * REFINE_SIDE)


#: the shapes of Refine.windows() for one cell: stem, layer1, layer2 windows and the correlation vector
REFINE_WINDOW_SHAPES = ((1, 64, 61, 61), (1, 256, 31, 31), (1, 512, 15, 15), (1, 256, 1, 1))


class RefineDecode(nn.Module):
    """Refine.decode as a module of its own (the refinement's weighted part), so an engine can run it:
    forward(p0, p1, p2, p3) -> logits."""

    def __init__(self, refine: Refine):
        super().__init__()
        self.refine = refine

    def forward(self, p0: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, p3: torch.Tensor) -> torch.Tensor:
        return self.refine.decode(p0, p1, p2, p3)


class SiamMaskNet(nn.Module):
    """template(z) keeps the RPN and mask kernels; track(x) returns {'cls', 'loc', 'xcorr'} like the
    other RPN networks and remembers what mask_refine(pos) needs (the search crop's stem / layer1 /
    layer2 features and the mask correlation). The 63x63-per-cell mask logits (`mask_logits`) are
    not needed by the tracker, which refines one cell, so they are computed only on request."""

    def __init__(self):
        super().__init__()
        self.backbone = resnet50(used_layers=[0, 1, 2, 3])
        self.neck = AdjustAllLayer([1024], [256])
        self.rpn_head = DepthwiseRPN(anchor_num=5, in_channels=256, out_channels=256)
        self.mask_head = MaskCorr(256, 256, MASK_SIDE * MASK_SIDE)
        self.refine_head = Refine()
        self._kernels = None
        self._mask_kernel: torch.Tensor | None = None
        self.refine_features: list[torch.Tensor] | None = None
        self.mask_corr_feature: torch.Tensor | None = None

    def template(self, z: torch.Tensor) -> None:
        zf = self.neck.downsample(self.backbone(z)[-1])
        self._kernels = self.rpn_head.embed_kernels(zf)
        self._mask_kernel = self.mask_head.embed_kernel(zf)

    def track(self, x: torch.Tensor) -> dict:
        if self._kernels is None:
            raise RuntimeError("SiamMaskNet.track called before template()")
        levels = self.backbone(x)
        self.refine_features = levels[:-1]
        xf = self.neck.downsample(levels[-1])
        cls, loc, correlations = self.rpn_head.match(self._kernels, xf)
        self.mask_corr_feature = xcorr = self._mask_correlation(xf)
        return {
            "cls": cls,
            "loc": loc,
            "xcorr": [("layer3", branch, t) for _, branch, t in correlations] + [("layer3", "mask", xcorr)],
        }

    def _mask_correlation(self, xf: torch.Tensor) -> torch.Tensor:
        return xcorr_depthwise(self.mask_head.conv_search(xf), self._mask_kernel)

    def mask_logits(self) -> torch.Tensor:
        """(1, 63*63, S, S) MaskCorr output of the last track() (pysot's outputs['mask'])."""
        return self.mask_head.head(self.mask_corr_feature)

    def mask_refine(self, pos) -> torch.Tensor:
        """(1, 127*127) refined mask logits at score cell pos = (y, x) of the last track()."""
        return self.refine_head.decode(*self.refine_windows(pos))

    def refine_windows(self, pos) -> tuple:
        """Refine.windows() of score cell pos = (y, x) of the last track()."""
        if self.mask_corr_feature is None:
            raise RuntimeError("SiamMaskNet.mask_refine called before track()")
        return self.refine_head.windows(self.refine_features, self.mask_corr_feature, pos)
