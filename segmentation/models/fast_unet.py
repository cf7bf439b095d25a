"""Fast U-Net (seed 000): depthwise-separable double convs and bilinear upsampling.

3,898,462 parameters at 3 classes against the U-Net's 31,037,763, with the same encoder
widths 64-128-256-512 and bottleneck 1024.
"""

from __future__ import annotations

import minigrad.functional as F
from layers import BatchNorm2d, Conv2d, MaxPool2d, Module, ReLU, Sequential
from segmentation.models.blocks import check_input, join


def separable(in_channels: int, out_channels: int) -> list:
    """Depthwise 3x3 (one filter per channel) then pointwise 1x1, both without bias."""
    return [
        Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        Conv2d(in_channels, out_channels, 1, bias=False),
    ]


class FastDoubleConv(Module):
    """[depthwise 3x3, pointwise 1x1, BatchNorm, ReLU] x 2: (N, in, H, W) -> (N, out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.block = Sequential(
            *separable(in_channels, out_channels),
            BatchNorm2d(out_channels),
            ReLU(inplace=True),
            *separable(out_channels, out_channels),
            BatchNorm2d(out_channels),
            ReLU(inplace=True),
        )

    def forward(self, x):
        return self.block(x)


class FastDecoderBlock(Module):
    """Bilinear upsampling to the skip's size, a 1x1 conv (no bias) down to the skip's
    channels, concatenation [skip, x] and a FastDoubleConv.

    (N, in, h, w) and skip (N, skip_ch, H, W) -> (N, skip_ch, H, W). The 1x1 conv runs before
    the upsampling, at the low resolution: both are linear and the conv has no bias, so
    they commute, and the conv costs a quarter of the multiplications.
    """

    def __init__(self, in_channels: int, skip_channels: int):
        super().__init__()
        self.reduce = Conv2d(in_channels, skip_channels, 1, bias=False)
        self.conv = FastDoubleConv(2 * skip_channels, skip_channels)

    def forward(self, x, skip):
        x = self.reduce(x)
        x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
        return self.conv(join(skip, x))


class FastUNet(Module):
    """Fast U-Net: FastDoubleConv encoder 64-128-256-512 with 2x2 max pools, bottleneck
    1024, four FastDecoderBlocks and a 1x1 head with bias.

    Submodules are registered in the seed's order (encoders, bottleneck, decoder blocks with
    their 1x1 conv before their double conv, head), so a PyTorch twin's state dict lines up.
    ``base_channels`` scales every width (64 is the seed's). Shapes: (N, in_channels, H, W)
    -> (N, num_classes, H, W); any H, W >= 16 works.
    """

    def __init__(self, in_channels=3, num_classes=3, base_channels=64):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        c = [base_channels * 2**k for k in range(5)]
        self.enc1 = FastDoubleConv(in_channels, c[0])
        self.enc2 = FastDoubleConv(c[0], c[1])
        self.enc3 = FastDoubleConv(c[1], c[2])
        self.enc4 = FastDoubleConv(c[2], c[3])
        self.pool = MaxPool2d(2)
        self.bottleneck = FastDoubleConv(c[3], c[4])
        self.dec4 = FastDecoderBlock(c[4], c[3])
        self.dec3 = FastDecoderBlock(c[3], c[2])
        self.dec2 = FastDecoderBlock(c[2], c[1])
        self.dec1 = FastDecoderBlock(c[1], c[0])
        self.head = Conv2d(c[0], num_classes, 1)

    def forward(self, x):
        check_input("FastUNet", x, self.in_channels, 16)
        s1 = self.enc1(x)
        s2 = self.enc2(self.pool(s1))
        s3 = self.enc3(self.pool(s2))
        s4 = self.enc4(self.pool(s3))
        x = self.bottleneck(self.pool(s4))
        x = self.dec4(x, s4)
        x = self.dec3(x, s3)
        x = self.dec2(x, s2)
        x = self.dec1(x, s1)
        return self.head(x)
