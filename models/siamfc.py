"""SiamFC networks: a fully-convolutional backbone and a plain cross-correlation head.

Two references share this shape (see shared/fixtures/README_classic.md):
* siamfc-pytorch (huanglianghua): AlexNetV1 with batch norm, head `out_scale * xcorr` with
  out_scale 0.001; state_dict keys `backbone.convN.M.*`.
* SiamDW SiamFC+ (researchmm): a cropping-inside residual backbone (models/cir.py) and
  `Corr_Up` = 0.1 * xcorr; keys `features.features.*` (built in models/cir.py on this base).

The plain cross-correlation of an exemplar feature z (C, h, w) over a search feature x is the sum
over channels of the depth-wise correlations of channel c of z with channel c of x. `track`
returns those per-channel maps for the middle scale as 'xcorr' entries, so the GUI's channel grid
shows what each channel contributes to the response (their sum is exactly the response).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ScaledXCorr(nn.Module):
    """response = out_scale * conv2d(x, z): the SiamFC head, no parameters."""

    def __init__(self, out_scale: float):
        super().__init__()
        self.out_scale = out_scale

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # One exemplar, a batch of search scales: z is (1, C, h, w) and acts as the single kernel.
        return self.out_scale * F.conv2d(x, z)

    def per_channel(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H', W') depth-wise maps whose sum over C equals forward(z, x)."""
        C = z.shape[1]
        return self.out_scale * F.conv2d(x, z.reshape(C, 1, *z.shape[2:]), groups=C)


class SiamFCBase(nn.Module):
    """template(z) keeps the exemplar feature; track(x) scores a batch of search crops.

    Subclasses define `embed(x)` (the backbone) and `head` (a ScaledXCorr); `channel_level` names
    the feature level in the channel view.
    """

    channel_level = "features"
    head: ScaledXCorr

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def template(self, z: torch.Tensor) -> None:
        self.zf = self.embed(z)

    def track(self, x: torch.Tensor, with_channels: bool = True) -> dict:
        xf = self.embed(x)
        out = {"response": self.head(self.zf, xf)}
        if with_channels:
            mid = xf.shape[0] // 2
            out["xcorr"] = [(self.channel_level, "xcorr", self.head.per_channel(self.zf, xf[mid : mid + 1]))]
        return out

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(z), self.embed(x))


class AlexNetV1(nn.Module):
    """siamfc-pytorch's AlexNetV1: five conv blocks (grouped conv2/4/5 as in the original
    two-GPU AlexNet), batch norm with eps 1e-6, no padding; total stride 8.
    127 -> 6x6x256 exemplar feature, 255 -> 22x22x256 search feature."""

    output_stride = 8

    def __init__(self):
        super().__init__()

        def bn(c):
            return nn.BatchNorm2d(c, eps=1e-6, momentum=0.05)

        self.conv1 = nn.Sequential(nn.Conv2d(3, 96, 11, 2), bn(96), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.conv2 = nn.Sequential(
            nn.Conv2d(96, 256, 5, 1, groups=2), bn(256), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        )
        self.conv3 = nn.Sequential(nn.Conv2d(256, 384, 3, 1), bn(384), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(nn.Conv2d(384, 384, 3, 1, groups=2), bn(384), nn.ReLU(inplace=True))
        # the feature entering the correlation: no BN / ReLU after conv5
        self.conv5 = nn.Sequential(nn.Conv2d(384, 256, 3, 1, groups=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


class SiamFCAlexNet(SiamFCBase):
    """siamfc-pytorch `Net(AlexNetV1(), SiamFC(out_scale=0.001))`; keys `backbone.*`."""

    channel_level = "conv5"

    def __init__(self, out_scale: float = 0.001):
        super().__init__()
        self.backbone = AlexNetV1()
        self.head = ScaledXCorr(out_scale)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
