"""pysot's adjust layers ("neck"): 1x1 conv + BN per backbone level, template cropped to its centre.

Names follow `pysot/models/neck/neck.py` (`downsample`, `downsample2`, ...) so checkpoints load by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class AdjustLayer(nn.Module):
    """1x1 conv + BN; a template-sized map (narrower than 20 cells) is cut to its centre
    `center_size` x `center_size` cells (SiamRPN++ §3.3: the padding-affected border of the 15x15
    template features is dropped, and the correlation kernel gets small)."""

    def __init__(self, in_channels: int, out_channels: int, center_size: int = 7):
        super().__init__()
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.center_size = center_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        # pysot tells template from search features by width: 15 (template) vs 31 (search at 255)
        if x.size(3) < 20:
            left = (x.size(3) - self.center_size) // 2
            x = x[:, :, left : left + self.center_size, left : left + self.center_size]
        return x


class AdjustAllLayer(nn.Module):
    """One AdjustLayer per level. A single level is named `downsample` (pysot's SiamMask layout);
    several are `downsample2`, `downsample3`, ... (pysot numbers levels from 2)."""

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int], center_size: int = 7):
        super().__init__()
        if len(in_channels) != len(out_channels):
            raise ValueError(f"in_channels {list(in_channels)} and out_channels {list(out_channels)} differ in length")
        self.num = len(out_channels)
        self.out_channels = list(out_channels)
        if self.num == 1:
            self.downsample = AdjustLayer(in_channels[0], out_channels[0], center_size)
        else:
            for i in range(self.num):
                self.add_module(f"downsample{i + 2}", AdjustLayer(in_channels[i], out_channels[i], center_size))

    def layers(self) -> list[AdjustLayer]:
        if self.num == 1:
            return [self.downsample]
        return [getattr(self, f"downsample{i + 2}") for i in range(self.num)]

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """List in, list out (one map per level)."""
        if len(features) != self.num:
            raise ValueError(f"expected {self.num} feature levels, got {len(features)}")
        return [layer(f) for layer, f in zip(self.layers(), features)]
