"""NanoTrack V1 / V2 / V3 networks (HonglinChu/SiamTrackers, folder NanoTrack/).

A MobileNetV3-small backbone (stride 16) shared by template and search, then a BAN head:
pixel-wise correlation (every template position correlated with every search position, one
output channel per template cell: 8x8 template -> 64 channels) re-weighted by channel attention,
then a classification tower and a box tower of depth-wise separable convolutions.

* V1: one pixel-wise correlation on the raw backbone features, shared by both towers; towers with
  5x5 / 3x3 depth-wise kernels (cls 128 channels, box 96).
* V2: separate cls / reg pixel-wise correlations, each with a 1x1 conv+BN projection of template
  and search first; 6-layer towers (dw 3x3, pw 1x1, BN, ReLU6).
* V3: wider backbone (one more block, 96 channels). Each branch concatenates a pixel-wise
  correlation (followed by a 2x2 dw conv: 16x16 -> 15x15) with a depth-wise correlation of the
  template's centre 4x4 (padding 1 -> 15x15), squeezed by a 1x1 conv; towers are dw 3x3 + BN +
  ReLU6 + pw-linear + BN.

Module and parameter names follow the reference checkpoints key for key (`backbone.features.*`,
`neck.downsample.*`, `ban_head.*`). The reference builds an AdjustLayer neck that its
template()/track() never call; it is kept here (as `neck`) only so the checkpoints load strictly.

Inputs are raw 0..255 BGR float tensors (no normalisation), as the reference feeds them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

VERSIONS = ("v1", "v2", "v3")


# ---------------------------------------------------------------------------------------------
# Backbone: MobileNetV3-small


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of 8, never more than 10% below (MobileNet rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# (kernel, expansion, out channels, squeeze-excite, hard-swish, stride) per inverted residual
# block. The last blocks run at stride 1 so the backbone's total stride stays 16 (127 -> 8x8,
# 255 -> 16x16).
_SMALL_BLOCKS = [
    (3, 1, 16, True, False, 2),
    (3, 4.5, 24, False, False, 2),
    (3, 3.67, 24, False, False, 1),
    (5, 4, 40, True, True, 2),
    (5, 6, 40, True, True, 1),
    (5, 6, 40, True, True, 1),
    (5, 3, 48, True, True, 1),
    (5, 3, 48, True, True, 1),
]
BACKBONE_BLOCKS = {
    "v1": _SMALL_BLOCKS,
    "v2": _SMALL_BLOCKS,
    # mobilenetv3_small_v3: one more block, widening to 96 channels (kept at stride 1)
    "v3": _SMALL_BLOCKS + [(5, 6, 96, True, True, 1)],
}


class SqueezeExcite(nn.Module):
    """Channel gating by a 2-layer MLP on the global average (fc.0 / fc.2 are Linear layers)."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = _make_divisible(channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Hardsigmoid()
        )

    def forward(self, x):
        b, c = x.shape[:2]
        gate = self.fc(x.mean((2, 3))).view(b, c, 1, 1)
        return x * gate


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, hidden: int, oup: int, kernel: int, stride: int, use_se: bool, use_hs: bool):
        super().__init__()
        self.identity = stride == 1 and inp == oup
        act = nn.Hardswish if use_hs else nn.ReLU
        dw = nn.Conv2d(hidden, hidden, kernel, stride, (kernel - 1) // 2, groups=hidden, bias=False)
        se = SqueezeExcite(hidden) if use_se else nn.Identity()
        if inp == hidden:
            # no expansion: dw, BN, act, SE, pw-linear, BN  (indices 0..5 as in the checkpoints)
            layers = [dw, nn.BatchNorm2d(hidden), act(inplace=True), se]
        else:
            # expand, BN, act, dw, BN, SE, act, pw-linear, BN (indices 0..8)
            layers = [
                nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
                nn.BatchNorm2d(hidden),
                act(inplace=True),
                dw,
                nn.BatchNorm2d(hidden),
                se,
                act(inplace=True),
            ]
        layers += [nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.identity else self.conv(x)


class MobileNetV3Small(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        channels = _make_divisible(16)
        layers = [
            nn.Sequential(
                nn.Conv2d(3, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels), nn.Hardswish(inplace=True)
            )
        ]
        for k, t, c, use_se, use_hs, s in blocks:
            out = _make_divisible(c)
            layers.append(InvertedResidual(channels, _make_divisible(channels * t), out, k, s, use_se, use_hs))
            channels = out
        self.features = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x):
        return self.features(x)


class AdjustLayer(nn.Module):
    """The reference's neck (1x1 conv + BN). Built and loaded, never called by template/track."""

    def __init__(self, channels: int):
        super().__init__()
        self.downsample = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return self.downsample(x)


# ---------------------------------------------------------------------------------------------
# Correlations


def pixelwise_xcorr(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(B, C, Hx, Wx) x (B, C, Hz, Wz) -> (B, Hz*Wz, Hx, Wx): channel k is the dot product of
    template cell k (row-major) with every search cell."""
    b, c, h, w = search.shape
    kernel_mat = kernel.reshape(b, c, -1).transpose(1, 2)
    return torch.matmul(kernel_mat, search.reshape(b, c, -1)).view(b, -1, h, w)


def depthwise_xcorr(search: torch.Tensor, kernel: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """Channel c of the template slid over channel c of the search (group conv)."""
    b, c = kernel.shape[:2]
    out = F.conv2d(
        search.reshape(1, b * c, *search.shape[2:]),
        kernel.reshape(b * c, 1, *kernel.shape[2:]),
        padding=padding,
        groups=b * c,
    )
    return out.view(b, c, *out.shape[2:])


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    """1x1 conv (with bias) + BN: the template / search projections of the correlation modules."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout))


class ChannelAttention(nn.Module):
    """x * sigmoid(fc2(relu(fc1(avgpool(x))))), fc1 / fc2 being 1x1 convs."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels, 1)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * gate


class PixelwiseCorrelation(nn.Module):
    """Pixel-wise correlation + channel attention.

    `channels` is the backbone width; `project` adds the 1x1 conv+BN on template and search (V2,
    V3); `post_conv` adds V3's 2x2 dw conv + BN + ReLU6 + 1x1 conv + BN (16x16 -> 15x15).
    forward returns (output, raw correlation before the attention).
    """

    def __init__(self, channels: int, project: bool, post_conv: bool, template_cells: int = 64):
        super().__init__()
        self.CA_layer = ChannelAttention(template_cells)
        if project:
            self.conv_kernel = conv_bn(channels, channels)
            self.conv_search = conv_bn(channels, channels)
        if post_conv:
            n = template_cells
            self.conv = nn.Sequential(
                nn.Conv2d(n, n, 2, groups=n, bias=False),
                nn.BatchNorm2d(n),
                nn.ReLU6(inplace=True),
                nn.Conv2d(n, n, 1),
                nn.BatchNorm2d(n),
            )
        self.project, self.post_conv = project, post_conv

    def kernel(self, zf):
        return self.conv_kernel(zf) if self.project else zf

    def forward(self, kernel, xf):
        """`kernel` is `self.kernel(zf)` (computed once per template)."""
        search = self.conv_search(xf) if self.project else xf
        corr = pixelwise_xcorr(search, kernel)
        out = self.CA_layer(corr)
        if self.post_conv:
            out = self.conv(out)
        return out, corr


class DepthwiseCorrelation(nn.Module):
    """V3's depth-wise branch: 1x1 conv+BN projections, then depth-wise xcorr with padding 1."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_kernel = conv_bn(channels, channels)
        self.conv_search = conv_bn(channels, channels)

    def kernel(self, zf):
        # the template's centre 4x4 cells (8x8 -> rows/cols 2..5)
        if zf.shape[3] > 4:
            zf = zf[:, :, 2:6, 2:6]
        return self.conv_kernel(zf)

    def forward(self, kernel, xf):
        return depthwise_xcorr(self.conv_search(xf), kernel, padding=1)


# ---------------------------------------------------------------------------------------------
# Towers


def separable_tower(spec, post_bn_act: bool) -> nn.Sequential:
    """Depth-wise separable layers.

    `spec` lists (in channels, out channels, dw kernel). post_bn_act=True: dw, pw, BN, ReLU6 per
    layer (V1/V2); False: dw, BN, ReLU6, pw, BN (V3: the pw conv is linear).
    """
    layers = []
    for cin, cout, k in spec:
        dw = nn.Conv2d(cin, cin, k, 1, k // 2, groups=cin, bias=False)
        pw = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)
        if post_bn_act:
            layers += [dw, pw, nn.BatchNorm2d(cout), nn.ReLU6(inplace=True)]
        else:
            layers += [dw, nn.BatchNorm2d(cin), nn.ReLU6(inplace=True), pw, nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------------
# BAN heads. Each has template(zf) -> per-template state, and forward(state, xf) ->
# (cls logits, loc = exp(box regression) = l, t, r, b distances, [(level, branch, corr)]).


class BANHeadV1(nn.Module):
    def __init__(self, channels: int = 48):
        super().__init__()
        self.corr_pw = PixelwiseCorrelation(channels, project=False, post_conv=False)
        self.cls_tower = separable_tower([(64, 128, 5), (128, 128, 5), (128, 128, 3)], True)
        self.bbox_tower = separable_tower([(64, 96, 3), (96, 96, 3), (96, 96, 5), (96, 96, 5)], True)
        self.cls_logits = nn.Sequential(nn.Conv2d(128, 2, 1))
        self.bbox_pred = nn.Sequential(nn.Conv2d(96, 4, 1))

    def template(self, zf):
        return {"pw": self.corr_pw.kernel(zf)}

    def forward(self, state, xf):
        feat, corr = self.corr_pw(state["pw"], xf)
        cls = self.cls_logits(self.cls_tower(feat))
        loc = torch.exp(self.bbox_pred(self.bbox_tower(feat)))
        return cls, loc, [("pw", "cls+reg", corr)]


class BANHeadV2(nn.Module):
    def __init__(self, channels: int = 48):
        super().__init__()
        self.corr_pw_reg = PixelwiseCorrelation(channels, project=True, post_conv=False)
        self.corr_pw_cls = PixelwiseCorrelation(channels, project=True, post_conv=False)
        spec = [(64, 96, 3)] + [(96, 96, 3)] * 5
        self.cls_pw_tower = separable_tower(spec, True)
        self.bbox_pw_tower = separable_tower(spec, True)
        self.cls_pred = nn.Sequential(nn.Conv2d(96, 2, 1))
        self.bbox_pred = nn.Sequential(nn.Conv2d(96, 4, 1))

    def template(self, zf):
        return {"cls": self.corr_pw_cls.kernel(zf), "reg": self.corr_pw_reg.kernel(zf)}

    def forward(self, state, xf):
        reg, reg_corr = self.corr_pw_reg(state["reg"], xf)
        cls, cls_corr = self.corr_pw_cls(state["cls"], xf)
        logits = self.cls_pred(self.cls_pw_tower(cls))
        loc = torch.exp(self.bbox_pred(self.bbox_pw_tower(reg)))
        return logits, loc, [("pw", "cls", cls_corr), ("pw", "reg", reg_corr)]


class BANHeadV3(nn.Module):
    def __init__(self, channels: int = 96):
        super().__init__()
        c = channels
        self.corr_dw_reg = DepthwiseCorrelation(c)
        self.corr_pw_reg = PixelwiseCorrelation(c, project=True, post_conv=True)
        self.corr_dw_cls = DepthwiseCorrelation(c)
        self.corr_pw_cls = PixelwiseCorrelation(c, project=True, post_conv=True)
        self.cls_tower = separable_tower([(c, c, 3)] * 6, False)
        self.bbox_tower = separable_tower([(c, c, 3)] * 6, False)
        self.cls_logits = nn.Sequential(nn.Conv2d(c, 2, 1))
        self.bbox_pred = nn.Sequential(nn.Conv2d(c, 4, 1))
        self.down_reg = nn.Sequential(nn.Conv2d(c + 64, c, 1))
        self.down_cls = nn.Sequential(nn.Conv2d(c + 64, c, 1))

    def template(self, zf):
        return {
            "pw_cls": self.corr_pw_cls.kernel(zf),
            "pw_reg": self.corr_pw_reg.kernel(zf),
            "dw_cls": self.corr_dw_cls.kernel(zf),
            "dw_reg": self.corr_dw_reg.kernel(zf),
        }

    def forward(self, state, xf):
        pw_reg, reg_corr = self.corr_pw_reg(state["pw_reg"], xf)
        pw_cls, cls_corr = self.corr_pw_cls(state["pw_cls"], xf)
        dw_reg = self.corr_dw_reg(state["dw_reg"], xf)
        dw_cls = self.corr_dw_cls(state["dw_cls"], xf)
        reg = self.down_reg(torch.cat((pw_reg, dw_reg), 1))
        cls = self.down_cls(torch.cat((pw_cls, dw_cls), 1))
        logits = self.cls_logits(self.cls_tower(cls))
        loc = torch.exp(self.bbox_pred(self.bbox_tower(reg)))
        return (
            logits,
            loc,
            [("pw", "cls", cls_corr), ("pw", "reg", reg_corr), ("dw", "cls", dw_cls), ("dw", "reg", dw_reg)],
        )


_HEADS = {"v1": BANHeadV1, "v2": BANHeadV2, "v3": BANHeadV3}


class NanoTrack(nn.Module):
    """template(z) stores the template state; track(x) -> {'cls', 'loc', 'xcorr'}."""

    #: track() takes a batch of searches with a batch of template states (sample i with template
    #: i, every op per sample): several targets run as one call (trackers/core/batching.py)
    batchable = True

    @property
    def free_batch_graph(self) -> bool:
        """Whether an exported track graph can leave the batch axis free: V3's depth-wise branch is a
        grouped conv whose group count (batch x channels) the graph fixes."""
        return self.version != "v3"

    def __init__(self, version: str = "v2"):
        super().__init__()
        if version not in _HEADS:
            raise ValueError(f"unknown NanoTrack version {version!r}; known: {', '.join(VERSIONS)}")
        self.version = version
        self.backbone = MobileNetV3Small(BACKBONE_BLOCKS[version])
        channels = self.backbone.out_channels
        self.neck = AdjustLayer(64 if version in ("v1", "v2") else 96)
        self.ban_head = _HEADS[version](channels)
        self.zf = None
        self._template_state = None

    @property
    def score_size(self) -> int:
        return 15 if self.version == "v3" else 16

    def template(self, z: torch.Tensor) -> None:
        self.zf = self.backbone(z)
        # everything that depends only on the template is computed here, once per target
        self._template_state = self.ban_head.template(self.zf)

    def track(self, x: torch.Tensor) -> dict:
        if self._template_state is None:
            raise RuntimeError("NanoTrack.track() called before template()")
        xf = self.backbone(x)
        cls, loc, xcorr = self.ban_head(self._template_state, xf)
        return {"cls": cls, "loc": loc, "xcorr": xcorr}

    def forward(self, z: torch.Tensor, x: torch.Tensor):
        """Template + search in one call (export / tests): returns (cls, loc)."""
        self.template(z)
        out = self.track(x)
        return out["cls"], out["loc"]


def detect_version(keys) -> str | None:
    """'v1' / 'v2' / 'v3' from a state_dict's key names, None when it is not a NanoTrack checkpoint."""
    keys = set(keys)
    if not any(k.startswith("ban_head.") for k in keys):
        return None
    if any(k.startswith("ban_head.corr_dw_") for k in keys):
        return "v3"
    if any(k.startswith("ban_head.cls_pw_tower.") for k in keys):
        return "v2"
    if any(k.startswith("ban_head.corr_pw.") for k in keys):
        return "v1"
    return None
