"""Building blocks shared by the U-Net family: the double conv, the skip join and size checks."""

from __future__ import annotations

import minigrad as mg
import minigrad.functional as F
from layers import (
    BatchNorm2d,
    Conv2d,
    Dropout,
    InstanceNorm2d,
    Module,
    ReLU,
    Sequential,
)

NORMS = ("batch", "instance")


def norm_layer(norm: str, channels: int) -> Module:
    """BatchNorm2d or InstanceNorm2d (PyTorch's defaults: the latter without affine)."""
    if norm == "batch":
        return BatchNorm2d(channels)
    if norm == "instance":
        return InstanceNorm2d(channels)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class DoubleConv(Module):
    """[3x3 conv without bias, norm, ReLU] x 2, with optional dropout at the end.

    (N, in_channels, H, W) -> (N, out_channels, H, W). The layout and keys are those of the
    popular PyTorch U-Net (``double_conv.0.weight`` ...), so its checkpoints load; a dropout
    layer, when asked for, comes last and so shifts no key.
    """

    def __init__(self, in_channels, out_channels, mid_channels=None, norm="batch", dropout=0.0):
        super().__init__()
        mid = mid_channels or out_channels
        layers = [
            Conv2d(in_channels, mid, 3, padding=1, bias=False),
            norm_layer(norm, mid),
            ReLU(inplace=True),
            Conv2d(mid, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            ReLU(inplace=True),
        ]
        if dropout:
            layers.append(Dropout(dropout))
        self.double_conv = Sequential(*layers)

    def forward(self, x):
        return self.double_conv(x)


def match_size(x, like):
    """``x`` zero-padded (or cropped) on the right and bottom halves to ``like``'s H and W,
    as the popular U-Net pads an upsampled map to its skip's size for odd inputs."""
    dy, dx = like.shape[2] - x.shape[2], like.shape[3] - x.shape[3]
    if dy == 0 and dx == 0:
        return x
    return F.pad(x, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))


def join(skip, x):
    """Concatenate [skip, x] along channels, x first brought to skip's size."""
    return mg.cat([skip, match_size(x, skip)], dim=1)


def check_input(model: str, x, in_channels: int, min_size: int, divisor: int = 1) -> None:
    """A clear error for a non-4D input, the wrong channel count, a side smaller than
    ``min_size`` or not a multiple of ``divisor``."""
    if x.ndim != 4:
        raise ValueError(f"{model}: expected input of shape (N, C, H, W), got {x.shape}")
    if x.shape[1] != in_channels:
        raise ValueError(f"{model}: expected {in_channels} input channels, got {x.shape[1]}")
    h, w = x.shape[2:]
    if h % divisor or w % divisor:
        raise ValueError(
            f"{model}: input size {h}x{w} must be divisible by {divisor} "
            f"(got remainders {h % divisor} and {w % divisor})"
        )
    if min(h, w) < min_size:
        raise ValueError(
            f"{model}: input size {h}x{w} is too small; each side must be at least {min_size}"
        )
