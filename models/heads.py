"""Region-proposal heads of the pysot family and the correlations they are built on.

* `xcorr_depthwise`: channel c of the search features correlated with channel c of the template
  features (SiamRPN++ DW-XCorr); `xcorr_fast`: full cross-correlation with a per-sample stack of
  kernels (SiamRPN's UP-XCorr), both as one grouped conv.
* `DepthwiseXCorr` (one branch), `DepthwiseRPN` (cls + loc branches), `MultiRPN` (one
  DepthwiseRPN per feature level, fused by a softmax-weighted or a plain average),
  `UPChannelRPN` (SiamRPN, CVPR 2018).

Names follow `pysot/models/head/rpn.py` so checkpoints load by name under `rpn_head.`.

The template half of every correlation depends only on the template, so the heads split their
work in two: `embed_kernels(z)` runs once at init, `match(kernels, x)` once per frame and also
returns the raw correlation maps (the GUI's channel grid). `forward(z, x)` does both, as pysot's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: one correlation response: (level index, branch name, (1, C, h, w) tensor)
Correlation = tuple[int, str, torch.Tensor]


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) search * (B, C, h, w) template -> (B, C, H-h+1, W-w+1), channel by channel."""
    batch, channel = kernel.shape[:2]
    x = x.reshape(1, batch * channel, x.size(2), x.size(3))
    kernel = kernel.reshape(batch * channel, 1, kernel.size(2), kernel.size(3))
    out = F.conv2d(x, kernel, groups=batch * channel)
    return out.reshape(batch, channel, out.size(2), out.size(3))


def xcorr_fast(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Full cross-correlation, sample by sample: search (B, C, H, W) with kernel (B, K*C, h, w)
    read as K filters of C channels -> (B, K, H-h+1, W-w+1)."""
    batch = kernel.size(0)
    channel = x.size(1)
    if kernel.size(1) % channel:
        raise ValueError(f"kernel channels {kernel.size(1)} are not a multiple of search channels {channel}")
    pk = kernel.reshape(-1, channel, kernel.size(2), kernel.size(3))
    px = x.reshape(1, batch * channel, x.size(2), x.size(3))
    out = F.conv2d(px, pk, groups=batch)
    return out.reshape(batch, -1, out.size(2), out.size(3))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DepthwiseXCorr(nn.Module):
    """3x3 conv+BN+ReLU on each side, depth-wise correlation, then a 1x1 conv+BN+ReLU+1x1 conv head."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.conv_search = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )

    def embed_kernel(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_kernel(z)

    def match(self, kernel: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(head output, depth-wise correlation map)."""
        feature = xcorr_depthwise(self.conv_search(x), kernel)
        return self.head(feature), feature

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.match(self.embed_kernel(z), x)[0]


class DepthwiseRPN(nn.Module):
    """SiamRPN++ head on one level: a `cls` branch (2A channels: A background logits, then A
    foreground) and a `loc` branch (4A: dx, dy, dw, dh blocks of A)."""

    def __init__(self, anchor_num: int = 5, in_channels: int = 256, out_channels: int = 256):
        super().__init__()
        self.cls = DepthwiseXCorr(in_channels, out_channels, 2 * anchor_num)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4 * anchor_num)

    def embed_kernels(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls.embed_kernel(z), self.loc.embed_kernel(z)

    def match(self, kernels, x: torch.Tensor, level: int = 0):
        """-> cls, loc, [(level, 'cls', xcorr), (level, 'loc', xcorr)]."""
        cls, cls_xcorr = self.cls.match(kernels[0], x)
        loc, loc_xcorr = self.loc.match(kernels[1], x)
        return cls, loc, [(level, "cls", cls_xcorr), (level, "loc", loc_xcorr)]

    def forward(self, z: torch.Tensor, x: torch.Tensor):
        return self.match(self.embed_kernels(z), x)[:2]


class MultiRPN(nn.Module):
    """One DepthwiseRPN per level (`rpn2`, `rpn3`, ...), outputs fused by averaging.

    `weighted=True` (SiamRPN++ R50): softmax of the learnt `cls_weight` / `loc_weight` vectors
    weights the levels; otherwise (MobileNetV2) a plain mean.
    """

    def __init__(self, anchor_num: int, in_channels: Sequence[int], weighted: bool = False):
        super().__init__()
        self.weighted = weighted
        self.num = len(in_channels)
        for i, c in enumerate(in_channels):
            self.add_module(f"rpn{i + 2}", DepthwiseRPN(anchor_num, c, c))
        if weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.num))
            self.loc_weight = nn.Parameter(torch.ones(self.num))

    def levels(self) -> list[DepthwiseRPN]:
        return [getattr(self, f"rpn{i + 2}") for i in range(self.num)]

    def fusion_weights(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not self.weighted:
            return None
        return F.softmax(self.cls_weight, 0), F.softmax(self.loc_weight, 0)

    def embed_kernels(self, zs: Sequence[torch.Tensor]) -> list:
        return [rpn.embed_kernels(z) for rpn, z in zip(self.levels(), zs)]

    def match(self, kernels, xs: Sequence[torch.Tensor]):
        """-> fused cls, fused loc, every level's correlation maps."""
        if len(xs) != self.num:
            raise ValueError(f"expected {self.num} feature levels, got {len(xs)}")
        cls, loc, correlations = [], [], []
        for level, (rpn, k, x) in enumerate(zip(self.levels(), kernels, xs)):
            c, l, corr = rpn.match(k, x, level)
            cls.append(c)
            loc.append(l)
            correlations += corr
        weights = self.fusion_weights()
        if weights is None:
            return sum(cls) / self.num, sum(loc) / self.num, correlations
        # accumulated in level order, as the reference does
        fused_cls = 0
        fused_loc = 0
        for i in range(self.num):
            fused_cls = fused_cls + cls[i] * weights[0][i]
            fused_loc = fused_loc + loc[i] * weights[1][i]
        return fused_cls, fused_loc, correlations

    def forward(self, zs, xs):
        return self.match(self.embed_kernels(zs), xs)[:2]


class UPChannelRPN(nn.Module):
    """SiamRPN's up-channel head: the template's 3x3 conv emits 2A (cls) / 4A (loc) whole kernels
    of `feature_in` channels each, correlated in full with the search features; a 1x1 conv
    adjusts the loc output."""

    def __init__(self, anchor_num: int = 5, feature_in: int = 256):
        super().__init__()
        cls_output, loc_output = 2 * anchor_num, 4 * anchor_num
        self.template_cls_conv = nn.Conv2d(feature_in, feature_in * cls_output, kernel_size=3)
        self.template_loc_conv = nn.Conv2d(feature_in, feature_in * loc_output, kernel_size=3)
        self.search_cls_conv = nn.Conv2d(feature_in, feature_in, kernel_size=3)
        self.search_loc_conv = nn.Conv2d(feature_in, feature_in, kernel_size=3)
        self.loc_adjust = nn.Conv2d(loc_output, loc_output, kernel_size=1)

    def embed_kernels(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.template_cls_conv(z), self.template_loc_conv(z)

    def match(self, kernels, x: torch.Tensor, level: int = 0):
        """-> cls, loc, [(level, 'cls', correlation), (level, 'loc', correlation before loc_adjust)]."""
        cls = xcorr_fast(self.search_cls_conv(x), kernels[0])
        loc_corr = xcorr_fast(self.search_loc_conv(x), kernels[1])
        return cls, self.loc_adjust(loc_corr), [(level, "cls", cls), (level, "loc", loc_corr)]

    def forward(self, z: torch.Tensor, x: torch.Tensor):
        return self.match(self.embed_kernels(z), x)[:2]
