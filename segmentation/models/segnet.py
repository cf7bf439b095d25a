"""SegNet-style unpooling net of seed 001 (Table 2, "Wilson's model")."""

from __future__ import annotations

from layers import (
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    MaxPool2d,
    MaxUnpool2d,
    Module,
    ModuleList,
    ReLU,
)
from segmentation.models.blocks import check_input

WIDTHS = (32, 64, 128, 256, 512, 1024)


class EncoderStage(Module):
    """3x3 conv (stride 2) + BN + ReLU, then (all stages but the first) a 2x2 max pool whose
    indices the matching decoder stage unpools with. Halves H and W, or quarters them."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool):
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, 3, stride=2, padding=1)
        self.bn = BatchNorm2d(out_channels)
        self.relu = ReLU(inplace=True)
        self.pool = MaxPool2d(2, return_indices=True) if pool else None

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))
        if self.pool is None:
            return x, None
        return self.pool(x)


class DecoderStage(Module):
    """Max unpool with the encoder's indices (when it pooled), then ConvTranspose2d(k=3, s=2,
    padding=1, output_padding=1) + BN + ReLU: the mirror of an EncoderStage."""

    def __init__(self, in_channels: int, out_channels: int, unpool: bool):
        super().__init__()
        self.unpool = MaxUnpool2d(2) if unpool else None
        self.deconv = ConvTranspose2d(
            in_channels, out_channels, 3, stride=2, padding=1, output_padding=1
        )
        self.bn = BatchNorm2d(out_channels)
        self.relu = ReLU(inplace=True)

    def forward(self, x, indices):
        if self.unpool is not None:
            x = self.unpool(x, indices)
        return self.relu(self.bn(self.deconv(x)))


class SegNet(Module):
    """Encoder of ``depth`` conv + BN stages (widths 32, 64, ..., 1024 at depth 6) with max
    pools after every stage but the first; the decoder mirrors it, unpooling with the
    pools' indices (the skip connections of the model) before each transposed conv.

    Each stage halves H and W with its stride-2 conv and the pooled ones halve them again,
    so the input side must be divisible by ``2 ** (2 * depth - 1)``: 2048 at the table's
    full depth 6, 128 at the default depth 4 (trainable at 128x128). ReLU follows each BN,
    as in the baseline FCN the model builds on.
    Shapes: (N, in_channels, H, W) -> (N, num_classes, H, W).
    """

    def __init__(self, in_channels=3, num_classes=3, depth=4):
        super().__init__()
        if not 1 <= depth <= len(WIDTHS):
            raise ValueError(f"depth must be in 1..{len(WIDTHS)}, got {depth!r}")
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        widths = (in_channels, *WIDTHS[:depth])
        self.encoder = ModuleList(
            EncoderStage(widths[i], widths[i + 1], pool=i > 0) for i in range(depth)
        )
        out_widths = (WIDTHS[0], *WIDTHS[: depth - 1])
        self.decoder = ModuleList(
            DecoderStage(widths[i + 1], out_widths[i], unpool=i > 0) for i in reversed(range(depth))
        )
        self.classifier = Conv2d(WIDTHS[0], num_classes, 1)

    @property
    def divisor(self) -> int:
        return 2 ** (2 * self.depth - 1)

    def forward(self, x):
        check_input("SegNet", x, self.in_channels, self.divisor, self.divisor)
        indices = []
        for stage in self.encoder:
            x, idx = stage(x)
            indices.append(idx)
        for stage, idx in zip(self.decoder, reversed(indices), strict=True):
            x = stage(x, idx)
        return self.classifier(x)


__all__ = ["DecoderStage", "EncoderStage", "SegNet"]
