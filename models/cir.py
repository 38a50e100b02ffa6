"""SiamDW's cropping-inside residual (CIR) networks and the SiamFC+ / SiamRPN+ models built on them.

Zhang & Peng, "Deeper and Wider Siamese Networks for Real-Time Visual Tracking" (CVPR 2019);
reference: researchmm/SiamDW (lib/models). Design notes: shared/seeds/000_069576ae2498f61c.txt.

Why the crops: zero padding makes features near a map's border differ from the same content in
the middle, so an exemplar (padded all round) and a search region (mostly unpadded) disagree and
the tracker learns a position bias. Every padded 3x3 convolution here is followed, once the
residual addition is done, by cutting one feature ring off each side ("crop after the addition"):
the border features touched by padding never reach the correlation.

Units (module names and nesting follow the reference exactly, so its released checkpoints load
by their key names):
* CIR unit (`CIRBottleneck`): 1x1 -> 3x3 (pad 1) -> 1x1 bottleneck plus shortcut, add, ReLU
  (except a stage's last unit where the reference drops it), crop 1.
* CIR-D unit: the stride of a down-sampling ResNet unit is moved out: the unit runs at stride 1
  with a 1x1 projection shortcut, is cropped, and a 2x2 max-pool (stride 2) follows. The pool is
  a separate entry of the stage's Sequential (index 1), as in the reference, which is why
  checkpoint keys jump from `layer2.0` to `layer2.2`.
* CIR-Inception unit (`CIRInceptionUnit`): a bottleneck branch and a 1x1 conv branch in place of
  the shortcut, merged by channel concatenation, then crop 1.
* CIR-NeXt unit (`CIRNeXtUnit`): the 3x3 of the bottleneck split into 32 groups (cardinality
  32), added to the (projected) shortcut, BN, ReLU, crop 1.

Networks (stride and receptive field are what the paper's guidelines fix: stride 8 and a
receptive field of 60-80 % of the 127-pixel exemplar for the 3-stage nets):
* CIResNet-16 / -22: stem (7x7/2 conv, BN, ReLU, crop 2, 2x2/2 max-pool), conv2 with 1 / 3 CIR
  units, conv3 with a CIR-D unit and 3 CIR units; stride 8, receptive field 77 / 93.
* CIResNet-43: the paper halves the stride to 4 for its deepest net to keep the receptive field
  in range: the stem and 14 CIR units in one stage (1 + 14 x 3 = 43 layers); stride 4,
  receptive field 121.
* CIResInception-22, CIResNeXt-22: stem 7x7/2 conv (no padding), BN, ReLU, 3x3/2 max-pool, then
  3 + 4 units (down-sampling after the first unit of the second stage); stride 8.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .siamfc import ScaledXCorr, SiamFCBase


def crop_border(x: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Cut k feature rows/columns off every side (the padding-affected ring)."""
    return x[:, :, k:-k, k:-k].contiguous()


# ---------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------
class CIRBottleneck(nn.Module):
    """CIR unit: ResNet bottleneck whose output ring is cropped after the residual addition."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, last_relu: bool, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.last_relu = last_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + (x if self.downsample is None else self.downsample(x))
        if self.last_relu:
            out = self.relu(out)
        return crop_border(out)


class _Bottleneck3x3Branch(nn.Module):
    """The bottleneck branch of a CIR-Inception unit (1x1 -> 3x3 -> 1x1, x4 channels)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, last_relu: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.last_relu = last_relu

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out) if self.last_relu else out


class _Conv1x1Branch(nn.Module):
    """The 1x1 branch that replaces the shortcut in a CIR-Inception unit (BN eps 1e-3, as the
    reference's Inception-style BasicConv2d)."""

    def __init__(self, inplanes: int, planes: int, last_relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn = nn.BatchNorm2d(planes, eps=0.001)
        self.last_relu = last_relu

    def forward(self, x):
        out = self.bn(self.conv(x))
        return F.relu(out, inplace=True) if self.last_relu else out


class CIRInceptionUnit(nn.Module):
    """CIR-Inception: concat(bottleneck branch (4p), 1x1 branch (p)) -> crop 1; 5p channels out."""

    def __init__(self, inplanes: int, planes: int, last_relu: bool = True):
        super().__init__()
        self.branch3x3 = _Bottleneck3x3Branch(inplanes, planes, last_relu)
        self.branch1x1 = _Conv1x1Branch(inplanes, planes, last_relu)

    def forward(self, x):
        return crop_border(torch.cat([self.branch3x3(x), self.branch1x1(x)], 1))


class CIRNeXtUnit(nn.Module):
    """CIR-NeXt: grouped bottleneck (cardinality branches of width `width`) + shortcut, BN, ReLU,
    crop 1. Output channels = expansion * cardinality * width."""

    def __init__(
        self, inplanes: int, width: int = 4, cardinality: int = 32, expansion: int = 2, last_relu: bool = True
    ):
        super().__init__()
        inner = cardinality * width
        out_planes = inner * expansion
        self.basic = nn.Sequential(
            OrderedDict(
                [
                    ("conv1_0", nn.Conv2d(inplanes, inner, 1, bias=False)),
                    ("bn1", nn.BatchNorm2d(inner)),
                    ("act0", nn.ReLU()),
                    ("conv3_0", nn.Conv2d(inner, inner, 3, padding=1, groups=cardinality, bias=False)),
                    ("bn2", nn.BatchNorm2d(inner)),
                    ("act1", nn.ReLU()),
                    ("conv1_1", nn.Conv2d(inner, out_planes, 1, bias=False)),
                    ("bn3", nn.BatchNorm2d(out_planes)),
                ]
            )
        )
        # identity shortcut where the widths agree (an empty Sequential: no checkpoint keys)
        self.shortcut = nn.Sequential()
        if inplanes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(inplanes, out_planes, 1, bias=False))
        self.bn0 = nn.BatchNorm2d(out_planes)
        self.last_relu = last_relu

    def forward(self, x):
        out = self.bn0(self.basic(x) + self.shortcut(x))
        return crop_border(F.relu(out) if self.last_relu else out)


# ---------------------------------------------------------------------------------------------
# Backbones (the inner `features` module of the reference; see CIRFeatures for the outer one)
# ---------------------------------------------------------------------------------------------
class CIResNet(nn.Module):
    """Stacked CIR / CIR-D units. `units` = CIR units per stage; `pooled` = whether a stage
    starts with a CIR-D unit (its first unit followed by the 2x2/2 max-pool); `last_relus` =
    whether a stage's last unit keeps its ReLU (the reference drops it on the feature output)."""

    def __init__(
        self, units=(3, 4), pooled=(False, True), last_relus=(True, False), planes=(64, 128), stem_channels: int = 64
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self._inplanes = stem_channels
        for i, (n, pool, last_relu, p) in enumerate(zip(units, pooled, last_relus, planes)):
            setattr(self, f"layer{i + 1}", self._stage(p, n, pool, last_relu))
        self.num_stages = len(units)
        self.out_channels = self._inplanes
        self.spec = (tuple(units), tuple(pooled))

    def _stage(self, planes: int, units: int, pooled: bool, last_relu: bool) -> nn.Sequential:
        out_planes = planes * CIRBottleneck.expansion
        downsample = None
        if self._inplanes != out_planes:
            downsample = nn.Sequential(nn.Conv2d(self._inplanes, out_planes, 1, bias=False), nn.BatchNorm2d(out_planes))
        layers = [CIRBottleneck(self._inplanes, planes, last_relu=True, downsample=downsample)]
        if pooled:
            layers.append(self.maxpool)  # CIR-D: stride moved out of the unit, pool after the crop
        self._inplanes = out_planes
        for i in range(1, units):
            layers.append(CIRBottleneck(out_planes, planes, last_relu=last_relu if i == units - 1 else True))
        return nn.Sequential(*layers)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        # 7x7 conv pads 3: crop the 2 padding-affected pixels each side before pooling
        return self.maxpool(crop_border(self.relu(self.bn1(self.conv1(x))), 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def geometry(self) -> tuple[int, int]:
        """(receptive field, total stride) of one output feature, in input pixels."""
        rf, jump = 7, 2  # conv1 7x7/2
        rf, jump = rf + (2 - 1) * jump, jump * 2  # crop leaves it; 2x2/2 max-pool
        for n, pool in zip(*self.spec):
            rf += 2 * jump  # first unit's 3x3
            if pool:
                rf, jump = rf + jump, jump * 2
            rf += 2 * jump * (n - 1)
        return rf, jump


class CIResInception(nn.Module):
    """CIResInception-22: stem, 3 CIR-Inception units (64 -> 320 channels), then a down-sampling
    stage of 4 units (320 -> 640) with the 2x2/2 pool after its first unit."""

    def __init__(self, units=(3, 4)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.layer1 = self._stage(64, 64, units[0], pooled=False, last_relu=True)
        self.layer2 = self._stage(320, 128, units[1], pooled=True, last_relu=False)
        self.out_channels = 640

    def _stage(self, inplanes: int, planes: int, units: int, pooled: bool, last_relu: bool):
        layers = []
        for i in range(units):
            if i == 1 and pooled:
                layers.append(self.maxpool)
            layers.append(
                CIRInceptionUnit(inplanes if i == 0 else planes * 5, planes, last_relu if i == units - 1 else True)
            )
        return nn.Sequential(*layers)

    def stem(self, x):
        return self.maxpool1(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x):
        return self.layer2(self.layer1(self.stem(x)))


class CIResNeXt(nn.Module):
    """CIResNeXt-22 (cardinality 32, bottleneck width 4 then 8): stem with a biased 7x7/2 conv,
    3 CIR-NeXt units (64 -> 256), then 4 (256 -> 512) with the 2x2/2 pool after the first."""

    def __init__(self, units=(3, 4), cardinality: int = 32, width: int = 4, expansion: int = 2):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 64, 7, stride=2, padding=0)
        self.bn0 = nn.BatchNorm2d(64)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self._inplanes = 64
        self.layer1 = self._stage(units[0], cardinality, width, expansion, pooled=False, last_relu=True)
        self.layer2 = self._stage(units[1], cardinality, width * 2, expansion, pooled=True, last_relu=False)
        self.out_channels = self._inplanes

    def _stage(self, units, cardinality, width, expansion, pooled, last_relu):
        layers = []
        for i in range(units):
            layers.append(
                CIRNeXtUnit(self._inplanes, width, cardinality, expansion, last_relu if i == units - 1 else True)
            )
            self._inplanes = expansion * width * cardinality
            if i == 0 and pooled:
                layers.append(self.maxpool)
        return nn.Sequential(*layers)

    def stem(self, x):
        return self.maxpool1(F.relu(self.bn0(self.conv0(x))))

    def forward(self, x):
        return self.layer2(self.layer1(self.stem(x)))


class CIRFeatures(nn.Module):
    """The reference's outer backbone wrapper (ResNet22 / Incep22 / ResNeXt22 hold the network
    as `.features`), kept so checkpoint keys read `features.features.*`."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.features = net
        self.feature_size = net.out_channels

    def forward(self, x):
        return self.features(x)


def ciresnet16() -> CIResNet:
    return CIResNet(units=(1, 4), pooled=(False, True), last_relus=(True, False))


def ciresnet22() -> CIResNet:
    return CIResNet(units=(3, 4), pooled=(False, True), last_relus=(True, False))


def ciresnet43() -> CIResNet:
    return CIResNet(units=(14,), pooled=(False,), last_relus=(False,), planes=(64,))


def ciresinception22() -> CIResInception:
    return CIResInception((3, 4))


def ciresnext22() -> CIResNeXt:
    return CIResNeXt((3, 4), cardinality=32, width=4)


# ---------------------------------------------------------------------------------------------
# SiamFC+ and SiamRPN+
# ---------------------------------------------------------------------------------------------
class SiamFCPlus(SiamFCBase):
    """SiamFC+ = CIR backbone + `Corr_Up` (0.1 * xcorr). Keys `features.features.*`."""

    channel_level = "layer2"

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.features = CIRFeatures(backbone)
        self.connect_model = ScaledXCorr(0.1)

    @property
    def head(self):
        return self.connect_model

    def embed(self, x):
        return self.features(x)


def siamfc_res22() -> SiamFCPlus:
    return SiamFCPlus(ciresnet22())


def siamfc_incep22() -> SiamFCPlus:
    return SiamFCPlus(ciresinception22())


def siamfc_next22() -> SiamFCPlus:
    return SiamFCPlus(ciresnext22())


class RPNUp(nn.Module):
    """SiamDW `RPN_Up`: up-channel RPN head. The exemplar feature becomes correlation kernels
    (template_cls: A x C, template_reg: 4A x C kernels of 3x3), the search feature is projected
    to C channels, and each branch is one plain correlation; `adjust` (1x1) refines the box
    regression. Layout: cls (1, A, S, S) one logit per anchor (sigmoid), reg (1, 4A, S, S) with
    channel = coord * A + anchor."""

    def __init__(self, anchor_nums: int = 5, inchannels: int = 512, outchannels: int = 256):
        super().__init__()
        self.anchor_nums = anchor_nums
        self.outchannels = outchannels
        self.template_cls = nn.Conv2d(inchannels, outchannels * anchor_nums, 3)
        self.template_reg = nn.Conv2d(inchannels, outchannels * 4 * anchor_nums, 3)
        self.search_cls = nn.Conv2d(inchannels, outchannels, 3)
        self.search_reg = nn.Conv2d(inchannels, outchannels, 3)
        self.adjust = nn.Conv2d(4 * anchor_nums, 4 * anchor_nums, 1)

    def kernels(self, zf: torch.Tensor):
        C = self.outchannels
        cls_k = self.template_cls(zf)
        reg_k = self.template_reg(zf)
        return cls_k.reshape(-1, C, *cls_k.shape[2:]), reg_k.reshape(-1, C, *reg_k.shape[2:])

    def forward(self, zf: torch.Tensor, xf: torch.Tensor):
        cls_k, reg_k = self.kernels(zf)
        return self.correlate(cls_k, reg_k, xf)[:2]

    def correlate(self, cls_k, reg_k, xf):
        cls_feature = self.search_cls(xf)
        loc_feature = self.search_reg(xf)
        cls = F.conv2d(cls_feature, cls_k)
        reg = self.adjust(F.conv2d(loc_feature, reg_k))
        return cls, reg, cls_feature


class SiamRPNPlus(nn.Module):
    """SiamRPN+ (SiamRPNRes22: CIResNet-22 + RPN_Up, 5 anchors, cls_type 'thinner')."""

    def __init__(self, backbone: nn.Module | None = None, anchor_nums: int = 5):
        super().__init__()
        self.features = CIRFeatures(backbone if backbone is not None else ciresnet22())
        self.connect_model = RPNUp(anchor_nums, self.features.feature_size, 256)

    def template(self, z: torch.Tensor) -> None:
        # the kernels depend on the exemplar only: compute them once per init
        self.cls_kernel, self.reg_kernel = self.connect_model.kernels(self.features(z))

    def track(self, x: torch.Tensor, with_channels: bool = True) -> dict:
        cls, reg, cls_feature = self.connect_model.correlate(self.cls_kernel, self.reg_kernel, self.features(x))
        out = {"cls": cls, "loc": reg}
        if with_channels:
            # cls logits summed over anchors = sum over channels of the depth-wise correlation of
            # each search channel with that channel's kernel summed over anchors
            k = self.cls_kernel.sum(0, keepdim=True)
            C = k.shape[1]
            out["xcorr"] = [("layer2", "cls", F.conv2d(cls_feature, k.reshape(C, 1, *k.shape[2:]), groups=C))]
        return out

    def forward(self, z, x):
        return self.connect_model(self.features(z), self.features(x))


def siamrpn_res22() -> SiamRPNPlus:
    return SiamRPNPlus(ciresnet22(), anchor_nums=5)
