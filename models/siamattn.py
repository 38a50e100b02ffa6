"""SiamAttn (Yu et al., CVPR 2020): Deformable Siamese Attention + Siamese RPN + region refinement.

No reference code or weights were published; this is built from the paper's description
(../shared/seeds/004_f40f9fc7d74243dd.txt) and proven by tests/test_siamattn.py.

Data flow for one level l of the three RPN levels (template z, search x, after the neck):

    self-attention   X^s = (alpha * V A_s + X)  +  (beta * A_c X + X)
                     A_s = softmax_col(Q^T K)  (N x N, each column sums to one)
                     A_c = softmax_row(X X^T)  (C x C, each row sums to one)
    cross-attention  X^c = gamma * A_c(Z) X + X     (template's channel affinities on the search,
                     Z^c = gamma * A_c(X) Z + Z      and the search's on the template)
    deformable       X' = DeformConv3x3(X^s + X^c)   (offsets from a 3x3 conv)

then a DW-XCorr RPN per level, fused by SiamRPN++'s softmax-weighted sum, and the region
refinement module: the depth-wise correlation of the attentional features of every level, fused
(1x1 conv + resampling, element-wise sum) once at the RPN grid (box, 25x25 for ResNet-50) and once
at 64x64 (mask, with the first two backbone stages of the search crop added for detail); for the
one box the RPN picked, deformable RoI pooling and a box head (deltas) and a mask head (64x64
logits over the box).

Everything is plain torch (bilinear sampling by `grid_sample`), so it runs on CPU and GPU and
exports to ONNX without torchvision.

Coordinates: boxes handed to the refinement are (x1, y1, x2, y2) in search-crop pixels. A feature
map's cell i lies at `origin + i * step` crop pixels (`MapGeometry`); the correlation grid follows
the anchor convention of `trackers/core/decode.py`: cell i at c + (i - S // 2) * stride, with
c = (instance_size - 1) / 2 the crop centre.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .heads import MultiRPN, xcorr_depthwise
from .necks import AdjustAllLayer


@dataclasses.dataclass
class SiamAttnConfig:
    backbone: str = "efficientnet-lite0"  # or "resnet50" (pysot stride-8 ResNet-50)
    channels: int = 128  # neck output = attention / RPN channels per level
    anchor_num: int = 5
    refine_channels: int = 64  # fused correlation features of the refinement module
    box_map_size: int = 25  # fused map for the box head (the RPN grid for ResNet-50)
    mask_map_size: int = 64  # fused map for the mask head
    box_pool: int = 7  # RoI bins for the box head
    mask_pool: int = 32  # RoI bins for the mask head (upsampled x2 to the 64x64 mask)
    pool_sampling: int = 2  # bilinear samples per bin side
    roi_offset_gain: float = 0.1  # deformable RoI offsets, in fractions of the box size
    template_center: int = 7  # template features cut to 7x7 (SiamRPN++ neck)
    exemplar_size: int = 127  # template crop side the network is trained with
    instance_size: int = 255  # search crop side (the refinement reads the actual one from the input)
    stride: int = 8  # RPN grid stride in crop pixels
    pretrained_backbone: bool = True  # ImageNet weights for EfficientNet-Lite0 where available
    train_backbone: bool = False


# -- attention equations ------------------------------------------------------------------------
def spatial_attention_map(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """A_s = softmax_col(Q^T K): (B, C', N) x2 -> (B, N, N), softmax over dim 1 (each column sums to 1)."""
    return F.softmax(torch.bmm(query.transpose(1, 2), key), dim=1)


def channel_attention_map(features: torch.Tensor) -> torch.Tensor:
    """A_c = softmax_row(F F^T): (B, C, N) -> (B, C, C), softmax over dim 2 (each row sums to 1)."""
    return F.softmax(torch.bmm(features, features.transpose(1, 2)), dim=2)


class SpatialSelfAttention(nn.Module):
    """X^s_s = alpha * V A_s + X, with 1x1 query / key convs to C/8 channels and a 1x1 value conv."""

    def __init__(self, channels: int, init_scale: float = 0.0):
        super().__init__()
        reduced = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, reduced, 1)
        self.key = nn.Conv2d(channels, reduced, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        # zero start: the module begins as the identity and learns how much context to mix in
        self.alpha = nn.Parameter(torch.tensor(float(init_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        attn = spatial_attention_map(self.query(x).flatten(2), self.key(x).flatten(2))
        out = torch.bmm(self.value(x).flatten(2), attn)
        return (self.alpha * out).reshape(B, C, H, W) + x


class ChannelAttention(nn.Module):
    """scale * A_c(source) X + X, no convolutions. source = x: channel self-attention (scale beta);
    source = the other branch: cross-attention (scale gamma)."""

    def __init__(self, init_scale: float = 0.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        attn = channel_attention_map((x if source is None else source).flatten(2))
        out = torch.bmm(attn, x.flatten(2))
        return (self.scale * out).reshape(B, C, H, W) + x


# -- deformable convolution ---------------------------------------------------------------------
def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int = 1,
    dilation: int = 1,
) -> torch.Tensor:
    """Deformable convolution (v1, stride 1) by bilinear sampling; torchvision's offset layout.

    offset (B, 2*kh*kw, Ho, Wo) holds (dy, dx) per kernel tap k = i * kw + j. Tap k of output
    (y, x) reads the input at (y - padding + i * dilation + dy, x - padding + j * dilation + dx),
    bilinearly, zero outside the map.
    """
    B, C, H, W = x.shape
    Cout, Cin, kh, kw = weight.shape
    Ho = H + 2 * padding - dilation * (kh - 1)
    Wo = W + 2 * padding - dilation * (kw - 1)
    K = kh * kw
    off = offset.reshape(B, K, 2, Ho, Wo)
    dev, dt = x.device, x.dtype
    tap_y = (torch.arange(kh, device=dev, dtype=dt) * dilation).repeat_interleave(kw)  # (K,)
    tap_x = (torch.arange(kw, device=dev, dtype=dt) * dilation).repeat(kh)
    base_y = torch.arange(Ho, device=dev, dtype=dt) - padding
    base_x = torch.arange(Wo, device=dev, dtype=dt) - padding
    py = base_y.view(1, 1, Ho, 1) + tap_y.view(1, K, 1, 1) + off[:, :, 0]  # (B, K, Ho, Wo)
    px = base_x.view(1, 1, 1, Wo) + tap_x.view(1, K, 1, 1) + off[:, :, 1]
    # align_corners=False normalisation: pixel centre p <-> (2p + 1) / size - 1
    grid = torch.stack(((2 * px + 1) / W - 1, (2 * py + 1) / H - 1), dim=-1).reshape(B, K * Ho, Wo, 2)
    cols = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    cols = cols.reshape(B, C * K, Ho * Wo)  # channel-major, tap-minor: weight.view(Cout, Cin*K)'s order
    out = torch.matmul(weight.reshape(Cout, Cin * K), cols).reshape(B, Cout, Ho, Wo)
    if bias is not None:
        out = out + bias.view(1, Cout, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """3x3 deformable conv whose offsets come from a 3x3 conv on the same input (zero-initialised,
    so it starts as an ordinary convolution)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.offset = nn.Conv2d(in_channels, 2 * kernel_size * kernel_size, kernel_size, padding=padding)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return deform_conv2d(x, self.offset(x), self.weight, self.bias, self.padding)


class DeformableSiameseAttention(nn.Module):
    """The DSA module of one level: self- + cross-attention on both branches, then a deformable conv.

    Weights are shared by the two branches (a Siamese module); each branch's cross-attention
    takes the channel affinities of the other branch.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.spatial = SpatialSelfAttention(channels)
        self.channel = ChannelAttention()  # beta
        self.cross = ChannelAttention()  # gamma
        self.deform = DeformConv2d(channels, channels)

    def attend(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """X^s + X^c before the deformable conv."""
        return self.spatial(x) + self.channel(x) + self.cross(x, source=other)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.deform(self.attend(z, x)), self.deform(self.attend(x, z))


# -- bilinear sampling on crop-pixel coordinates (RoI pooling, resampling) ----------------------
@dataclasses.dataclass(frozen=True)
class MapGeometry:
    """Cell i of a feature map lies at `origin + i * step` crop pixels (both axes)."""

    origin: float
    step: float


def sample_at(
    feature: torch.Tensor, px: torch.Tensor, py: torch.Tensor, geom: MapGeometry, padding_mode: str = "zeros"
) -> torch.Tensor:
    """Bilinear values of `feature` (B, C, H, W) at crop-pixel points px, py (B, h, w) -> (B, C, h, w)."""
    H, W = feature.shape[-2:]
    u = (px - geom.origin) / geom.step
    v = (py - geom.origin) / geom.step
    # align_corners=True: index 0 <-> -1, index size-1 <-> +1
    grid = torch.stack((2 * u / max(W - 1, 1) - 1, 2 * v / max(H - 1, 1) - 1), dim=-1)
    return F.grid_sample(feature, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def roi_align(
    feature: torch.Tensor,
    rois: torch.Tensor,
    out_size: int,
    geom: MapGeometry,
    sampling: int = 2,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """RoI pooling by bilinear sampling: each of out_size^2 bins averages sampling^2 points.

    rois (B, 4) x1, y1, x2, y2 in crop pixels, one per batch item. offsets (B, 2, out, out):
    per-bin (dx, dy) shifts in fractions of the box width / height (deformable RoI pooling).
    """
    n = out_size * sampling
    x1, y1, x2, y2 = rois.unbind(1)
    w = (x2 - x1).view(-1, 1, 1)
    h = (y2 - y1).view(-1, 1, 1)
    t = (torch.arange(n, device=rois.device, dtype=rois.dtype) + 0.5) / n
    px = x1.view(-1, 1, 1) + t.view(1, 1, n) * w  # (B, 1, n)
    py = y1.view(-1, 1, 1) + t.view(1, n, 1) * h  # (B, n, 1)
    px, py = px.expand(-1, n, n), py.expand(-1, n, n)
    if offsets is not None:
        # each bin's shift applies to all its sampling points
        off = offsets.repeat_interleave(sampling, dim=2).repeat_interleave(sampling, dim=3)
        px = px + off[:, 0] * w
        py = py + off[:, 1] * h
    samples = sample_at(feature, px, py, geom)
    return F.avg_pool2d(samples, sampling) if sampling > 1 else samples


class DeformRoIPool(nn.Module):
    """Deformable RoI pooling: plain RoI pooling, a conv predicts per-bin offsets from it (zero
    initialised), pooling again at the shifted bins."""

    def __init__(self, channels: int, out_size: int, sampling: int = 2, offset_gain: float = 0.1):
        super().__init__()
        self.out_size, self.sampling, self.offset_gain = out_size, sampling, offset_gain
        self.offset = nn.Conv2d(channels, 2, 3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, feature: torch.Tensor, rois: torch.Tensor, geom: MapGeometry) -> torch.Tensor:
        plain = roi_align(feature, rois, self.out_size, geom, self.sampling)
        offsets = self.offset(plain) * self.offset_gain
        return roi_align(feature, rois, self.out_size, geom, self.sampling, offsets)


# -- region refinement --------------------------------------------------------------------------
def correlation_geometry(size: int, stride: float, instance_size: int) -> MapGeometry:
    """The RPN grid: cell i at c + (i - size // 2) * stride, c the crop centre (anchor convention)."""
    c = (instance_size - 1) / 2
    return MapGeometry(c - (size // 2) * stride, float(stride))


def resized_geometry(geom: MapGeometry, size: int, new_size: int) -> MapGeometry:
    """Geometry after F.interpolate(..., align_corners=True) from size to new_size cells."""
    return MapGeometry(geom.origin, geom.step * (size - 1) / max(new_size - 1, 1))


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)


class RegionRefinement(nn.Module):
    """Fuses the per-level correlations of the attentional features and refines one box + mask."""

    def __init__(self, channels: int, detail_channels: Sequence[int], cfg: SiamAttnConfig, levels: int = 3):
        super().__init__()
        rc = cfg.refine_channels
        self.cfg = cfg
        self.box_fuse = nn.ModuleList(nn.Conv2d(channels, rc, 1) for _ in range(levels))
        self.mask_fuse = nn.ModuleList(nn.Conv2d(channels, rc, 1) for _ in range(levels))
        self.detail_fuse = nn.ModuleList(nn.Conv2d(c, rc, 1) for c in detail_channels)
        self.box_pool = DeformRoIPool(rc, cfg.box_pool, cfg.pool_sampling, cfg.roi_offset_gain)
        self.mask_pool = DeformRoIPool(rc, cfg.mask_pool, cfg.pool_sampling, cfg.roi_offset_gain)
        self.box_head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(rc * cfg.box_pool**2, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, 4),
        )
        # zero deltas at the start: the refinement begins by keeping the RPN's box
        nn.init.zeros_(self.box_head[-1].weight)
        nn.init.zeros_(self.box_head[-1].bias)
        self.mask_head = nn.Sequential(
            nn.Conv2d(rc, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=cfg.mask_map_size / cfg.mask_pool, mode="bilinear", align_corners=False),
            nn.Conv2d(32, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 1, 1),
        )

    def geometries(self, corr_size: int, instance_size: int) -> tuple[MapGeometry, MapGeometry]:
        """(box map, mask map) geometries for correlation maps of corr_size cells on a search
        crop of instance_size pixels."""
        base = correlation_geometry(corr_size, self.cfg.stride, instance_size)
        return (
            resized_geometry(base, corr_size, self.cfg.box_map_size),
            resized_geometry(base, corr_size, self.cfg.mask_map_size),
        )

    def fuse(
        self,
        correlations: Sequence[torch.Tensor],
        details: Sequence[torch.Tensor],
        detail_geometry: Sequence[MapGeometry],
        instance_size: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> box map (B, rc, 25, 25), mask map (B, rc, 64, 64), both over the correlation grid's extent."""
        S = correlations[0].shape[-1]
        box = sum(_resize(conv(c), self.cfg.box_map_size) for conv, c in zip(self.box_fuse, correlations))
        mask = sum(_resize(conv(c), self.cfg.mask_map_size) for conv, c in zip(self.mask_fuse, correlations))
        # early search features, sampled at the mask map's cells: the fine detail the mask needs
        _, mask_geom = self.geometries(S, instance_size)
        M = self.cfg.mask_map_size
        idx = torch.arange(M, device=mask.device, dtype=mask.dtype) * mask_geom.step + mask_geom.origin
        px = idx.view(1, 1, M).expand(mask.shape[0], M, M)
        py = idx.view(1, M, 1).expand(mask.shape[0], M, M)
        for conv, f, geom in zip(self.detail_fuse, details, detail_geometry):
            mask = mask + conv(sample_at(f, px, py, geom, padding_mode="border"))
        return F.relu(box), F.relu(mask)

    def forward(
        self, box_map: torch.Tensor, mask_map: torch.Tensor, rois: torch.Tensor, corr_size: int, instance_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> box deltas (B, 4) = (dx / w, dy / h, log w' / w, log h' / h) relative to rois, and
        mask logits (B, 1, 64, 64) over the roi."""
        box_geom, mask_geom = self.geometries(corr_size, instance_size)
        deltas = self.box_head(self.box_pool(box_map, rois, box_geom))
        mask = self.mask_head(self.mask_pool(mask_map, rois, mask_geom))
        return deltas, mask


def apply_box_deltas(rois: torch.Tensor, deltas: torch.Tensor, max_log_scale: float = 1.0) -> torch.Tensor:
    """(x1, y1, x2, y2) rois + (dx, dy, dw, dh) deltas -> refined (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = rois.unbind(1)
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + deltas[:, 0] * w
    cy = (y1 + y2) / 2 + deltas[:, 1] * h
    w = w * torch.exp(deltas[:, 2].clamp(-max_log_scale, max_log_scale))
    h = h * torch.exp(deltas[:, 3].clamp(-max_log_scale, max_log_scale))
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 1)


# -- backbones ----------------------------------------------------------------------------------
class StagedBackbone(nn.Module):
    """A backbone giving five search levels: two detail levels, then the three RPN levels.

    `strides[i]` / `offsets[i]`: cell j of level i sits at offsets[i] + j * strides[i] crop pixels.
    SiamRPN++ needs the three RPN levels at one spatial size, on a grid centred on the crop (the
    anchor convention); levels that are not (EfficientNet's strides 16 and 32, its even-sized
    "same"-padded maps) are resampled bilinearly onto that grid: n = 2 * floor(c / 8) + 1 cells at
    c + (j - n // 2) * 8, c = (input - 1) / 2 (31 cells for 255 crops, 15 for 127).
    """

    def __init__(
        self,
        trunk: nn.Module,
        channels: Sequence[int],
        strides: Sequence[int],
        offsets: Sequence[float],
        name: str,
        grid_stride: int = 8,
    ):
        super().__init__()
        self.trunk = trunk
        self.channels = list(channels)
        self.strides = list(strides)
        self.offsets = list(offsets)
        self.name = name
        self.grid_stride = grid_stride

    def detail_geometry(self) -> list[MapGeometry]:
        return [MapGeometry(o, float(s)) for o, s in zip(self.offsets[:2], self.strides[:2])]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = list(self.trunk(x))
        c = (x.shape[-1] - 1) / 2
        n = 2 * int(c // self.grid_stride) + 1
        origin = c - (n // 2) * self.grid_stride
        for i in (2, 3, 4):
            src = MapGeometry(self.offsets[i], float(self.strides[i]))
            if not (src.step == self.grid_stride and src.origin == origin and levels[i].shape[-1] == n):
                levels[i] = _resample(levels[i], src, MapGeometry(origin, float(self.grid_stride)), n)
        return levels


def _resample(x: torch.Tensor, src: MapGeometry, dst: MapGeometry, size: int) -> torch.Tensor:
    """x (cells at src) bilinearly sampled at the size x size cells of dst (edge cells repeated)."""
    pos = torch.arange(size, device=x.device, dtype=x.dtype) * dst.step + dst.origin
    px = pos.view(1, 1, size).expand(x.shape[0], size, size)
    py = pos.view(1, size, 1).expand(x.shape[0], size, size)
    return sample_at(x, px, py, src, padding_mode="border")


def build_backbone(name: str, pretrained: bool = True, trainable: bool = False) -> StagedBackbone:
    if name == "efficientnet-lite0":
        from .efficientnet_lite import EfficientNetLite0

        trunk = EfficientNetLite0(out_stages=(1, 2, 3, 5, 7))
        if pretrained:
            trunk.load_pretrained()
        if not trainable:
            trunk.freeze()
        # Cell centres under TF "same" padding, worked out for 127 and 255 crops: the stride-2
        # convs pad (1, 1), (0, 1), (1, 2), (0, 1), (1, 2) -> 2j, 4j + 2, 8j + 6, 16j + 14, 32j + 30.
        return StagedBackbone(trunk, trunk.channels, trunk.strides, [0.0, 2.0, 6.0, 14.0, 30.0], name)
    if name == "resnet50":
        from .backbones import resnet50

        trunk = resnet50(used_layers=(0, 1, 2, 3, 4))
        if not trainable:
            for p in trunk.parameters():
                p.requires_grad_(False)
        # conv1 (7x7, stride 2, unpadded): 3 + 2j; max-pool: 3 + 4j; layer2's unpadded stride-2
        # 3x3: 7 + 8j, kept by the dilated layer3 / layer4 (31 cells centred on a 255 crop).
        return StagedBackbone(trunk, trunk.channels, [2, 4, 8, 8, 8], [3.0, 3.0, 7.0, 7.0, 7.0], name)
    raise ValueError(f"unknown SiamAttn backbone {name!r}; known: efficientnet-lite0, resnet50")


# -- the network --------------------------------------------------------------------------------
class SiamAttn(nn.Module):
    """backbone -> neck -> DSA per level -> MultiRPN; correlations of the attentional features ->
    region refinement.

    Tracking use: `template(z)` keeps the template's neck features (the attention mixes the
    search into the template, so template kernels are recomputed every frame); `track(x)` returns
    {'cls', 'loc', 'xcorr'} as every RPN network here and keeps the fused refinement maps;
    `refine(rois)` then gives box deltas and mask logits for the picked box.
    """

    LEVEL_NAMES = ("l3", "l4", "l5")

    def __init__(self, backbone: StagedBackbone, cfg: SiamAttnConfig):
        super().__init__()
        self.cfg = cfg
        C = cfg.channels
        self.backbone = backbone
        self.neck = AdjustAllLayer(backbone.channels[2:], [C] * 3, cfg.template_center)
        self.attention = nn.ModuleList(DeformableSiameseAttention(C) for _ in range(3))
        self.rpn_head = MultiRPN(cfg.anchor_num, [C] * 3, weighted=True)
        self.refinement = RegionRefinement(C, backbone.channels[:2], cfg)
        self._init_output_layers()
        self._zf: list[torch.Tensor] | None = None
        self._maps: tuple[torch.Tensor, torch.Tensor, int] | None = None

    def _init_output_layers(self) -> None:
        """Small output layers (as detection heads are usually started): an untrained or seeded
        network then gives logits of a few units and anchor deltas near zero instead of boxes
        exp(30) anchors wide, and training starts from calm losses."""
        for rpn in self.rpn_head.levels():
            for branch in (rpn.cls, rpn.loc):
                nn.init.normal_(branch.head[-1].weight, std=0.01)
                nn.init.zeros_(branch.head[-1].bias)
        nn.init.normal_(self.refinement.mask_head[-1].weight, std=0.01)
        nn.init.zeros_(self.refinement.mask_head[-1].bias)

    # branches (also the ONNX export units)
    def template_features(self, z: torch.Tensor) -> list[torch.Tensor]:
        return self.neck(self.backbone(z)[2:])

    def search_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        levels = self.backbone(x)
        return self.neck(levels[2:]), levels[:2]

    def match(
        self,
        zf: Sequence[torch.Tensor],
        xf: Sequence[torch.Tensor],
        details: Sequence[torch.Tensor],
        instance_size: int,
    ) -> dict:
        """Attention, RPN and refinement maps from template and search features (search crop of
        instance_size pixels)."""
        attended = [dsa(z, x) for dsa, z, x in zip(self.attention, zf, xf)]
        za = [a[0] for a in attended]
        xa = [a[1] for a in attended]
        cls, loc, correlations = self.rpn_head.match(self.rpn_head.embed_kernels(za), xa)
        # mean over the template's cells rather than the sum: the fused maps keep one scale
        # whatever the template size
        attn_corr = [xcorr_depthwise(x, z) / (z.shape[-2] * z.shape[-1]) for z, x in zip(za, xa)]
        box_map, mask_map = self.refinement.fuse(attn_corr, details, self.backbone.detail_geometry(), instance_size)
        xcorr = [(self.LEVEL_NAMES[level], branch, t) for level, branch, t in correlations]
        xcorr += [(self.LEVEL_NAMES[i], "attn", t) for i, t in enumerate(attn_corr)]
        return {
            "cls": cls,
            "loc": loc,
            "xcorr": xcorr,
            "box_map": box_map,
            "mask_map": mask_map,
            "corr_size": attn_corr[0].shape[-1],
            "instance_size": instance_size,
        }

    # tracking
    def template(self, z: torch.Tensor) -> None:
        self._zf = self.template_features(z)

    def track(self, x: torch.Tensor) -> dict:
        if self._zf is None:
            raise RuntimeError("track() called before template()")
        xf, details = self.search_features(x)
        out = self.match(self._zf, xf, details, x.shape[-1])
        self._maps = (out["box_map"], out["mask_map"], out["corr_size"], x.shape[-1])
        return out

    def refine(self, rois: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box deltas (B, 4) and mask logits (B, 1, 64, 64) for rois (B, 4) of the last track()."""
        if self._maps is None:
            raise RuntimeError("refine() called before track()")
        box_map, mask_map, size, instance_size = self._maps
        return self.refinement(box_map, mask_map, rois, size, instance_size)

    # training
    def forward(self, z: torch.Tensor, x: torch.Tensor, rois: torch.Tensor) -> dict:
        """One pass for a batch: cls, loc (RPN), box_deltas and mask logits for the given rois."""
        xf, details = self.search_features(x)
        out = self.match(self.template_features(z), xf, details, x.shape[-1])
        out["box_deltas"], out["mask"] = self.refinement(
            out["box_map"], out["mask_map"], rois, out["corr_size"], x.shape[-1]
        )
        return out


def build_siamattn(
    cfg: SiamAttnConfig | None = None, seed: int | None = None, backbone: StagedBackbone | None = None
) -> SiamAttn:
    """The network; `seed` makes the random initialisation of everything not pretrained reproducible."""
    cfg = cfg or SiamAttnConfig()
    if seed is not None:
        torch.manual_seed(seed)
    if backbone is None:
        backbone = build_backbone(cfg.backbone, cfg.pretrained_backbone, cfg.train_backbone)
    return SiamAttn(backbone, cfg)


# -- ONNX export units --------------------------------------------------------------------------
class TemplateBranch(nn.Module):
    """z (1, 3, 127, 127) -> the three template levels."""

    def __init__(self, net: SiamAttn):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor):
        return tuple(self.net.template_features(z))


class SearchBranch(nn.Module):
    """(z levels x3, x (1, 3, 255, 255)) -> cls, loc, box_map, mask_map."""

    def __init__(self, net: SiamAttn):
        super().__init__()
        self.net = net

    def forward(self, z3: torch.Tensor, z4: torch.Tensor, z5: torch.Tensor, x: torch.Tensor):
        xf, details = self.net.search_features(x)
        out = self.net.match([z3, z4, z5], xf, details, x.shape[-1])
        return out["cls"], out["loc"], out["box_map"], out["mask_map"]


class RefineBranch(nn.Module):
    """(box_map, mask_map, rois (1, 4)) -> box deltas, mask logits, for a corr_size correlation
    grid on an instance_size search crop."""

    def __init__(self, net: SiamAttn, corr_size: int, instance_size: int):
        super().__init__()
        self.net, self.corr_size, self.instance_size = net, corr_size, instance_size

    def forward(self, box_map: torch.Tensor, mask_map: torch.Tensor, rois: torch.Tensor):
        return self.net.refinement(box_map, mask_map, rois, self.corr_size, self.instance_size)


# -- training targets -----------------------------------------------------------------------------
def rpn_targets(
    box: torch.Tensor,
    anchors: torch.Tensor,
    anchor_num: int,
    size: int,
    instance_size: int = 255,
    pos_iou: float = 0.6,
    neg_iou: float = 0.3,
):
    """pysot AnchorTarget for one sample: labels (A, S, S) 1 / 0 / -1, loc deltas (4, A, S, S), loc
    weight (A, S, S) (one over the positives). `box` (x1, y1, x2, y2) in crop pixels; `anchors`
    (A*S*S, 4) cx, cy, w, h from the crop centre (`trackers.core.decode.generate_anchors`); box=None
    (a negative pair): every anchor negative."""
    A, S = anchor_num, size
    labels = torch.zeros(A * S * S)
    loc = torch.zeros(4, A * S * S)
    weight = torch.zeros(A * S * S)
    if box is not None:
        c = (instance_size - 1) / 2
        acx, acy, aw, ah = (anchors[:, i] for i in range(4))
        ax1, ay1, ax2, ay2 = acx - aw / 2 + c, acy - ah / 2 + c, acx + aw / 2 + c, acy + ah / 2 + c
        x1, y1, x2, y2 = (float(v) for v in box)
        iw = (torch.minimum(ax2, torch.tensor(x2)) - torch.maximum(ax1, torch.tensor(x1))).clamp(min=0)
        ih = (torch.minimum(ay2, torch.tensor(y2)) - torch.maximum(ay1, torch.tensor(y1))).clamp(min=0)
        inter = iw * ih
        iou = inter / (aw * ah + (x2 - x1) * (y2 - y1) - inter)
        labels = torch.where(iou > pos_iou, 1.0, torch.where(iou < neg_iou, 0.0, -1.0))
        gcx, gcy, gw, gh = (x1 + x2) / 2 - c, (y1 + y2) / 2 - c, x2 - x1, y2 - y1
        loc = torch.stack(((gcx - acx) / aw, (gcy - acy) / ah, torch.log(gw / aw), torch.log(gh / ah)))
        pos = labels == 1
        if pos.any():
            weight = pos.float() / pos.sum()
    return labels.view(A, S, S), loc.view(4, A, S, S), weight.view(A, S, S)


def refine_targets(rois: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The deltas `apply_box_deltas` turns rois (B, 4) into boxes (B, 4), both x1, y1, x2, y2."""
    rw, rh = rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.stack(
        (
            ((boxes[:, 0] + boxes[:, 2]) - (rois[:, 0] + rois[:, 2])) / 2 / rw,
            ((boxes[:, 1] + boxes[:, 3]) - (rois[:, 1] + rois[:, 3])) / 2 / rh,
            torch.log(bw / rw),
            torch.log(bh / rh),
        ),
        1,
    )


def mask_targets(masks: torch.Tensor, rois: torch.Tensor, size: int = 64) -> torch.Tensor:
    """Crop-sized object masks (B, 1, H, W) in [0, 1] -> (B, 1, size, size) {0, 1} targets over
    the rois: the same bilinear RoI sampling the mask head's features get."""
    return (roi_align(masks.float(), rois, size, MapGeometry(0.0, 1.0), sampling=1) > 0.5).float()


# -- training loss ------------------------------------------------------------------------------
@dataclasses.dataclass
class SiamAttnLossWeights:
    cls: float = 1.0
    loc: float = 1.2
    box: float = 1.0
    mask: float = 1.0


def siamattn_loss(
    out: dict,
    labels: torch.Tensor,
    loc_target: torch.Tensor,
    loc_weight: torch.Tensor,
    box_target: torch.Tensor,
    mask_target: torch.Tensor,
    weights: SiamAttnLossWeights = SiamAttnLossWeights(),
) -> tuple[torch.Tensor, dict]:
    """SiamRPN++'s RPN losses plus the refinement's box (smooth L1) and mask (BCE) losses.

    labels (B, A, S, S): 1 positive, 0 negative, -1 ignored. loc_target (B, 4, A, S, S) anchor
    deltas, loc_weight (B, A, S, S) (sums to one over the positives of a sample). box_target
    (B, 4) the refinement's deltas, mask_target (B, 1, 64, 64) in {0, 1}.
    """
    B, _, S, _ = out["cls"].shape
    A = labels.shape[1]
    logp = F.log_softmax(out["cls"].reshape(B, 2, A, S, S), dim=1)
    cls_loss = 0.0
    for value in (1, 0):  # positives and negatives weigh half each (pysot select_cross_entropy_loss)
        sel = labels == value
        if sel.any():
            cls_loss = cls_loss + 0.5 * F.nll_loss(logp.permute(0, 2, 3, 4, 1)[sel], labels[sel].long())
    diff = (out["loc"].reshape(B, 4, A, S, S) - loc_target).abs().sum(1)
    loc_loss = (diff * loc_weight).sum() / B
    box_loss = F.smooth_l1_loss(out["box_deltas"], box_target)
    mask_loss = F.binary_cross_entropy_with_logits(out["mask"], mask_target)
    total = weights.cls * cls_loss + weights.loc * loc_loss + weights.box * box_loss + weights.mask * mask_loss
    return total, {
        "cls": float(torch.as_tensor(cls_loss).detach()),
        "loc": float(loc_loss.detach()),
        "box": float(box_loss.detach()),
        "mask": float(mask_loss.detach()),
    }
