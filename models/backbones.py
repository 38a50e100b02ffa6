"""Feature extractors of the pysot family: atrous ResNet-50, MobileNetV2 and the legacy AlexNet.

Module and parameter names follow pysot's (`pysot/models/backbone/*.py`) exactly, so pysot
model-zoo checkpoints and the fixtures' seeded weights load by name under the `backbone.` prefix.
Inputs are raw 0..255 BGR crops (no normalisation); BatchNorm runs with its stored statistics.

The multi-level backbones take pysot's `used_layers` (ResNet: 0 = conv1+bn+relu before the
max-pool, 1..4 = layer1..4; MobileNetV2: 0..7 = layer0..layer7) and always return a **list** of
those levels in `used_layers` order, also for a single level (unlike pysot, which unwraps a
one-element list), so callers never branch on the count.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


# -- ResNet-50, stride 8 ------------------------------------------------------------------------
class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, x4 expansion) with pysot's dilation/padding rule."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, dilation: int = 1
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        # pysot's padding: 1 for stride 1, 0 for stride 2 (its crops are sized so nothing is lost);
        # the first block of a dilated stage uses half the stage's dilation (as its downsample does).
        padding = 2 - stride
        if downsample is not None and dilation > 1:
            dilation = dilation // 2
            padding = dilation
        if dilation > 1:
            padding = dilation
        self.conv2 = nn.Conv2d(
            planes, planes, kernel_size=3, stride=stride, padding=padding, bias=False, dilation=dilation
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetAtrous(nn.Module):
    """pysot's ResNet with layer3/layer4 dilated (2, 4) instead of strided: total stride 8.

    layer3 / layer4 are built only when 3 / 4 is in `used_layers` (pysot does the same: SiamMask
    uses levels [0, 1, 2, 3] and has no layer4 weights).
    """

    #: channels of each level index (ResNet-50)
    CHANNELS = {0: 64, 1: 256, 2: 512, 3: 1024, 4: 2048}

    def __init__(self, blocks: Sequence[int] = (3, 4, 6, 3), used_layers: Sequence[int] = (2, 3, 4)):
        super().__init__()
        self.used_layers = list(used_layers)
        if not self.used_layers or any(i not in range(5) for i in self.used_layers):
            raise ValueError(f"used_layers must be indices in 0..4, got {used_layers!r}")
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, blocks[0])
        self.layer2 = self._make_layer(128, blocks[1], stride=2)
        deepest = max(self.used_layers)
        self.layer3 = self._make_layer(256, blocks[2], dilation=2) if deepest >= 3 else None
        self.layer4 = self._make_layer(512, blocks[3], dilation=4) if deepest >= 4 else None
        self.channels = [self.CHANNELS[i] for i in self.used_layers]

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            out = planes * Bottleneck.expansion
            if stride == 1 and dilation == 1:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, out, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out)
                )
            else:
                # pysot: a 3x3 shortcut where the stage changes stride or dilation
                dd = dilation // 2 if dilation > 1 else 1
                padding = dd if dilation > 1 else 0
                downsample = nn.Sequential(
                    nn.Conv2d(
                        self.inplanes, out, kernel_size=3, stride=stride, bias=False, padding=padding, dilation=dd
                    ),
                    nn.BatchNorm2d(out),
                )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, dilation=dilation)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        deepest = max(self.used_layers)
        stem = self.relu(self.bn1(self.conv1(x)))
        levels = [stem]
        x = self.maxpool(stem)
        for i, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4), start=1):
            if i > deepest:
                break
            x = layer(x)
            levels.append(x)
        return [levels[i] for i in self.used_layers]


def resnet50(used_layers: Sequence[int] = (2, 3, 4)) -> ResNetAtrous:
    return ResNetAtrous((3, 4, 6, 3), used_layers)


# -- MobileNetV2 --------------------------------------------------------------------------------
def _conv_bn_relu6(inp: int, oup: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, padding, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True)
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depth-wise (maybe dilated) -> 1x1 project (+ skip)."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int, dilation: int = 1):
        super().__init__()
        self.use_res_connect = stride == 1 and inp == oup
        padding = dilation if dilation > 1 else 2 - stride
        hidden = inp * expand_ratio
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, padding, dilation=dilation, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """pysot's MobileNetV2: stages 4-7 dilated instead of strided (total stride 8), layer0..layer7."""

    # expansion t, channels c, blocks n, stride s, dilation d  (pysot's stride-8 setting)
    SETTING = [
        (1, 16, 1, 1, 1),
        (6, 24, 2, 2, 1),
        (6, 32, 3, 2, 1),
        (6, 64, 4, 1, 2),
        (6, 96, 3, 1, 2),
        (6, 160, 3, 1, 4),
        (6, 320, 1, 1, 4),
    ]

    def __init__(self, width_mult: float = 1.4, used_layers: Sequence[int] = (3, 5, 7)):
        super().__init__()
        self.used_layers = list(used_layers)
        if not self.used_layers or any(i not in range(8) for i in self.used_layers):
            raise ValueError(f"used_layers must be indices in 0..7, got {used_layers!r}")
        input_channel = int(32 * width_mult)
        self.layer0 = _conv_bn_relu6(3, input_channel, 2, 0)
        stage_channels = [input_channel]
        last_dilation = 1
        for idx, (t, c, n, s, d) in enumerate(self.SETTING, start=1):
            output_channel = int(c * width_mult)
            blocks = []
            for i in range(n):
                if i == 0:
                    # the first block of a stage whose dilation grows uses half of it
                    dd = d if d == last_dilation else max(d // 2, 1)
                    blocks.append(InvertedResidual(input_channel, output_channel, s, t, dd))
                else:
                    blocks.append(InvertedResidual(input_channel, output_channel, 1, t, d))
                input_channel = output_channel
            last_dilation = d
            setattr(self, f"layer{idx}", nn.Sequential(*blocks))
            stage_channels.append(output_channel)
        self.channels = [stage_channels[i] for i in self.used_layers]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = []
        for idx in range(max(self.used_layers) + 1):
            x = getattr(self, f"layer{idx}")(x)
            levels.append(x)
        return [levels[i] for i in self.used_layers]


def mobilenetv2(width_mult: float = 1.4, used_layers: Sequence[int] = (3, 5, 7)) -> MobileNetV2:
    return MobileNetV2(width_mult, used_layers)


# -- AlexNet (legacy layout) --------------------------------------------------------------------
class AlexNetLegacy(nn.Module):
    """pysot's `alexnetlegacy`: one `features` Sequential (conv/BN/pool, no ReLU after conv5).

    Returns a single tensor: 6x6 for a 127 template, 22x22 for a 255 search crop.
    """

    CONFIGS = (3, 96, 256, 384, 384, 256)

    def __init__(self, width_mult: float = 1.0):
        super().__init__()
        c = [3] + [int(v * width_mult) for v in self.CONFIGS[1:]]
        self.features = nn.Sequential(
            nn.Conv2d(c[0], c[1], kernel_size=11, stride=2),
            nn.BatchNorm2d(c[1]),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[1], c[2], kernel_size=5),
            nn.BatchNorm2d(c[2]),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], kernel_size=3),
            nn.BatchNorm2d(c[3]),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], kernel_size=3),
            nn.BatchNorm2d(c[4]),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[4], c[5], kernel_size=3),
            nn.BatchNorm2d(c[5]),
        )
        self.channels = [c[5]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
