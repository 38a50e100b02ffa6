"""Winograd F(4x4, 3x3) convolution for the CPU graphs of the heavy backbones (issue 26, item 2).

Why: ResNet-50 in pysot's SiamRPN++ keeps layer3 and layer4 at stride 8 (31x31 cells for a 255-px
search), and its stage shortcuts are 3x3 convolutions, not 1x1 (`models/backbones.py`): layer4's
1024 -> 2048 shortcut alone is 36 GFLOP of the frame's 97, layer3's 512 -> 1024 one 9 more. ONNX
Runtime already runs direct convolutions near this CPU's fp32 peak (docs/speed-profile.md), so the
only way to a faster frame with fp32 arithmetic is fewer multiplications. Winograd's minimal
filtering algorithm F(m x m, 3 x 3) computes an m x m block of outputs from an (m+2)^2 input tile
with (m+2)^2 multiplications per channel pair instead of 9 m^2: for m = 4, 36 instead of 144 (4x
fewer), as 36 independent channel GEMMs (Lavin & Gray, "Fast Algorithms for Convolutional Neural
Networks", CVPR 2016; the transform matrices below are theirs, interpolation points 0, +-1, +-2,
infinity).

A dilated 3x3 convolution is a plain one on each of its d x d polyphase grids (rows a, a+d, a+2d,
... for a < d), exactly; so the atrous shortcuts are Winograd's case too: split into phases, run
F(4, 3) on each, interleave.

The arithmetic is the same convolution in a different order: in fp32 the outputs differ from the
direct convolution's by rounding only (about 1e-5 of the output's largest magnitude for m = 4:
tests/test_winograd.py measures it against `F.conv2d`; the engines' parity test against eager torch
still holds for the whole network). Eager torch keeps the direct convolution (the reference's
arithmetic); only the exported CPU graph uses this (`fast_convolutions`, trackers/core/engines.py).

Which convolutions: those whose weight has at least QUALIFYING_CHANNEL_PRODUCT input x output
channels, on maps whose polyphase grids are at least MIN_PHASE_SIDE cells a side (checked per call:
a smaller map runs the direct convolution). Measured one convolution at a time (ONNX Runtime, 2
threads; the table in docs/speed-profile.md), F(4, 3) runs layer4's 1024x2048 shortcut in 0.6x the
direct convolution's time, layer3's 512x1024 one in 0.6x, DaSiamRPN-big's 768x768 in 0.6x and
AlexNet's 384x384 and 256x384 in 0.8x; for 512x512 at dilation 4 on 31x31 (grids of 8x8: layer4's
3x3s) it is 1.45x slower, and for 256x256 the runs disagreed (0.8x-1.35x): the layout copies cost
about what the multiplications save.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F
from torch import nn

#: output tile side m of F(m x m, 3 x 3)
TILE = 4
#: Lavin & Gray's F(4, 3) matrices: input transform B^T (6x6), filter transform G (6x3), output
#: transform A^T (4x6)
_BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_G = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_AT = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)
#: the smallest input x output channel product rewritten (see the module doc): 256 x 384
QUALIFYING_CHANNEL_PRODUCT = 256 * 384
#: the smallest polyphase grid side (output side / dilation) computed by Winograd; below, direct
#: (layer4's 3x3s at dilation 4 on 31x31 have grids of 8: slower; its shortcut's, 15.5: faster)
MIN_PHASE_SIDE = 12
#: set to 0 to export every convolution direct (smaller graphs: SiamRPN++ R50's is ~500 MB with the
#: rewrite, ~200 MB without; the direct convolutions' rounding; about a fifth slower per R50 frame)
ENV_SWITCH = "SIAMSCOPE_WINOGRAD"


def enabled() -> bool:
    """Whether the engines may rewrite (ENV_SWITCH unset, or anything but 0)."""
    return os.environ.get(ENV_SWITCH, "1").strip() != "0"


def _is_plain_3x3(conv: nn.Module) -> bool:
    """A 3x3 stride-1 convolution, any dilation, the same zero padding on every side, no groups."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.groups == 1
        and conv.dilation[0] == conv.dilation[1]
        and isinstance(conv.padding, tuple)
        and conv.padding[0] == conv.padding[1]
        and conv.padding_mode == "zeros"
    )


def qualifies(conv: nn.Module) -> bool:
    """A plain 3x3 convolution (`_is_plain_3x3`) big enough to gain (QUALIFYING_CHANNEL_PRODUCT)."""
    return _is_plain_3x3(conv) and conv.in_channels * conv.out_channels >= QUALIFYING_CHANNEL_PRODUCT


class WinogradConv2d(nn.Module):
    """The same output as `conv` (a module `qualifies()` accepts), computed by F(4x4, 3x3) on each
    polyphase grid of its dilation. The transformed filters are computed once here, in float64 then
    rounded to the weight's dtype, from the weights `conv` has now (the exported graph is made from a
    loaded network; a later change of `conv.weight` is not followed)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not _is_plain_3x3(conv):
            raise ValueError(f"not a plain 3x3 stride-1 convolution: {conv}")
        m, n = TILE, TILE + 2
        self.dilation = int(conv.dilation[0])
        self.padding = int(conv.padding[0])
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        bt = torch.tensor(_BT, dtype=torch.float64)
        g = torch.tensor(_G, dtype=torch.float64)
        at = torch.tensor(_AT, dtype=torch.float64)
        w = conv.weight.detach().to(torch.float64)  # (K, C, 3, 3)
        dtype, device = conv.weight.dtype, conv.weight.device
        # U[xi, nu] = G w G^T at every (xi, nu) of the 6x6 tile, as (36, K, C): one GEMM each
        u = torch.einsum("xa,kcab,yb->xykc", g, w, g).reshape(n * n, self.out_channels, self.in_channels)
        self.register_buffer("filters", u.to(dtype=dtype, device=device).contiguous())
        # V = B^T d B of every input tile, as a depth-wise n x n convolution of stride m: channel c
        # gives the 36 outputs c*36 .. c*36+35
        tile = torch.einsum("xa,yb->xyab", bt, bt).reshape(n * n, 1, n, n)
        self.register_buffer("input_transform", tile.repeat(self.in_channels, 1, 1, 1).to(dtype=dtype, device=device))
        # Y = A^T M A of every tile, as a (16, 36) matrix on the 36 transformed positions
        out = torch.einsum("ix,jy->ijxy", at, at).reshape(m * m, n * n)
        self.register_buffer("output_transform", out.to(dtype=dtype, device=device))
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.direct = conv  # for maps too small to gain (MIN_PHASE_SIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n, d, p = TILE, TILE + 2, self.dilation, self.padding
        c, k = self.in_channels, self.out_channels
        h, w = int(x.shape[2]), int(x.shape[3])
        ho, wo = h + 2 * p - 2 * d, w + 2 * p - 2 * d
        if min(ho, wo) < MIN_PHASE_SIDE * d:
            return self.direct(x)
        # per phase: ceil(out / d) outputs in tiles of m, each tile reading m + 2 phase rows
        th, tw = -(-(-(-ho // d)) // m), -(-(-(-wo // d)) // m)
        sh, sw = th * m + 2, tw * m + 2
        # zero padding: the convolution's own on the top/left, enough on the bottom/right for whole
        # tiles on every phase (the extra outputs are cut off below)
        x = F.pad(x, (p, d * sw - w - p, p, d * sh - h - p))
        if d > 1:  # the d x d polyphase grids as a batch of (N, a, b)
            x = x.reshape(-1, c, sh, d, sw, d).permute(0, 3, 5, 1, 2, 4).reshape(-1, c, sh, sw)
        v = F.conv2d(x, self.input_transform, stride=m, groups=c)  # (N d d, C 36, th, tw)
        v = v.reshape(-1, c, n * n, th * tw).permute(2, 1, 0, 3).reshape(n * n, c, -1)  # (36, C, P)
        prods = torch.matmul(self.filters, v)  # (36, K, P), P = (N, a, b, ti, tj)
        y = torch.matmul(self.output_transform, prods.reshape(n * n, -1))  # (16, K P)
        # output row ti*m*d + i*d + a, column tj*m*d + j*d + b
        y = y.reshape(m, m, k, -1, d, d, th, tw).permute(3, 2, 6, 0, 4, 7, 1, 5)
        y = y.reshape(-1, k, th * m * d, tw * m * d)[:, :, :ho, :wo]
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, 1, 1)
        return y


def _qualifying(net: nn.Module) -> list:
    return [(name, mod) for name, mod in net.named_modules() if qualifies(mod)]


@contextlib.contextmanager
def fast_convolutions(net: nn.Module):
    """Within the block, every qualifying convolution of `net` is a WinogradConv2d of its current
    weights (for an export); the original modules are back afterwards, whatever happened. Yields
    how many were rewritten."""
    swapped = []
    try:
        for name, conv in _qualifying(net):
            parent_name, _, attr = name.rpartition(".")
            parent = net.get_submodule(parent_name) if parent_name else net
            setattr(parent, attr, WinogradConv2d(conv))
            swapped.append((parent, attr, conv))
        yield len(swapped)
    finally:
        for parent, attr, conv in reversed(swapped):
            setattr(parent, attr, conv)


def rewrites(net: nn.Module) -> int:
    """How many convolutions fast_convolutions(net) would rewrite."""
    return len(_qualifying(net))
