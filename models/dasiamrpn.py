"""DaSiamRPN networks (foolwood/DaSiamRPN code/net.py): SiamRPNBIG, SiamRPNvot, SiamRPNotb.

An AlexNet-style backbone (`featureExtract`, BN after every conv, no padding) and the original
SiamRPN head with up-channel cross-correlation (UP-XCorr): the template features are turned by
`conv_r1` / `conv_cls1` into 4A / 2A correlation kernels of C channels each, which are then
correlated with the search features from `conv_r2` / `conv_cls2`. Parameter names are those of
the released .model files (SiamRPNBIG.model, SiamRPNVOT.model, SiamRPNOTB.model), so they load
as they are.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class DaSiamRPNVariant:
    width: int  # backbone channel multiplier ("size" in the reference)
    feature_out: int  # C: channels of the correlation kernels / search features
    weights_file: str


VARIANTS = {
    "big": DaSiamRPNVariant(width=2, feature_out=512, weights_file="SiamRPNBIG.model"),
    "vot": DaSiamRPNVariant(width=1, feature_out=256, weights_file="SiamRPNVOT.model"),
    "otb": DaSiamRPNVariant(width=1, feature_out=256, weights_file="SiamRPNOTB.model"),
}


def alexnet_bn(width: int) -> nn.Sequential:
    """The reference's `featureExtract`: 5 convs with BN; indices matter (checkpoint keys)."""
    c = [3] + [n * width for n in (96, 256, 384, 384, 256)]
    return nn.Sequential(
        nn.Conv2d(c[0], c[1], kernel_size=11, stride=2),
        nn.BatchNorm2d(c[1]),  # 0, 1
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.ReLU(inplace=True),  # 2, 3
        nn.Conv2d(c[1], c[2], kernel_size=5),
        nn.BatchNorm2d(c[2]),  # 4, 5
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.ReLU(inplace=True),  # 6, 7
        nn.Conv2d(c[2], c[3], kernel_size=3),
        nn.BatchNorm2d(c[3]),  # 8, 9
        nn.ReLU(inplace=True),  # 10
        nn.Conv2d(c[3], c[4], kernel_size=3),
        nn.BatchNorm2d(c[4]),  # 11, 12
        nn.ReLU(inplace=True),  # 13
        nn.Conv2d(c[4], c[5], kernel_size=3),
        nn.BatchNorm2d(c[5]),  # 14, 15
    )


class DaSiamRPN(nn.Module):
    """template(z) computes the correlation kernels once; track(x) returns the raw head outputs
    as {'cls': (1, 2A, S, S), 'loc': (1, 4A, S, S), 'cls_feature': (1, C, S+3, S+3), 'xcorr': [...]}.

    Channel view ('xcorr'): UP-XCorr sums, over the C channels, the correlation of search channel
    c with kernel channel c, separately for each of the 2A cls kernels. What decides an anchor's
    foreground probability is the fg - bg logit difference, so channel c's map is the depth-wise
    correlation of search channel c with sum_a (fg kernel a - bg kernel a)[c]: the C maps add up
    exactly to sum over anchors of (fg logit - bg logit). Computed only when `collect_channels`.
    """

    def __init__(self, variant: str = "big", anchor_num: int = 5):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown DaSiamRPN variant {variant!r}; known: {', '.join(VARIANTS)}")
        v = VARIANTS[variant]
        self.variant = variant
        self.anchor_num = anchor_num
        self.feature_out = v.feature_out
        feat_in = 256 * v.width
        self.featureExtract = alexnet_bn(v.width)
        self.conv_r1 = nn.Conv2d(feat_in, v.feature_out * 4 * anchor_num, 3)
        self.conv_r2 = nn.Conv2d(feat_in, v.feature_out, 3)
        self.conv_cls1 = nn.Conv2d(feat_in, v.feature_out * 2 * anchor_num, 3)
        self.conv_cls2 = nn.Conv2d(feat_in, v.feature_out, 3)
        self.regress_adjust = nn.Conv2d(4 * anchor_num, 4 * anchor_num, 1)
        self.collect_channels = True
        self.r1_kernel: torch.Tensor | None = None
        self.cls1_kernel: torch.Tensor | None = None
        self._channel_kernel: torch.Tensor | None = None

    def template(self, z: torch.Tensor) -> None:
        z_f = self.featureExtract(z)
        r1 = self.conv_r1(z_f)
        cls1 = self.conv_cls1(z_f)
        k = r1.shape[-1]
        A, C = self.anchor_num, self.feature_out
        self.r1_kernel = r1.view(4 * A, C, k, k)
        self.cls1_kernel = cls1.view(2 * A, C, k, k)
        # (C, 1, k, k) depth-wise kernel of the channel view (see class doc)
        self._channel_kernel = (self.cls1_kernel[A:] - self.cls1_kernel[:A]).sum(0).unsqueeze(1)

    def track(self, x: torch.Tensor) -> dict:
        if self.r1_kernel is None:
            raise RuntimeError("DaSiamRPN.track called before template()")
        x_f = self.featureExtract(x)
        cls_feature = self.conv_cls2(x_f)
        loc = self.regress_adjust(F.conv2d(self.conv_r2(x_f), self.r1_kernel))
        cls = F.conv2d(cls_feature, self.cls1_kernel)
        out = {"cls": cls, "loc": loc, "cls_feature": cls_feature}
        if self.collect_channels:
            maps = F.conv2d(cls_feature, self._channel_kernel, groups=cls_feature.shape[1])
            out["xcorr"] = [("conv5", "cls fg-bg", maps)]
        return out

    def forward(self, x: torch.Tensor):
        """The reference's call signature: (delta, score)."""
        out = self.track(x)
        return out["loc"], out["cls"]
