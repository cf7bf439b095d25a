"""U-Net (Ronneberger et al., 2015) with the popular PyTorch repository's layout and keys."""

from __future__ import annotations

from layers import (
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Identity,
    MaxPool2d,
    Module,
    Sequential,
    Upsample,
)
from segmentation.models.blocks import DoubleConv, check_input, join


class Down(Module):
    """2x2 max pool then DoubleConv: (N, C, H, W) -> (N, out, H/2, W/2)."""

    def __init__(self, in_channels, out_channels, norm="batch", dropout=0.0):
        super().__init__()
        self.maxpool_conv = Sequential(
            MaxPool2d(2), DoubleConv(in_channels, out_channels, norm=norm, dropout=dropout)
        )

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(Module):
    """Upsample x2 (ConvTranspose2d(k=2, s=2) halving channels, or bilinear), join the skip,
    DoubleConv. (N, in, H, W) and skip (N, in/2, 2H, 2W) -> (N, out, 2H, 2W)."""

    def __init__(self, in_channels, out_channels, bilinear=False, norm="batch", dropout=0.0):
        super().__init__()
        if bilinear:
            self.up = Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            mid = in_channels // 2
            self.conv = DoubleConv(in_channels, out_channels, mid, norm=norm, dropout=dropout)
        else:
            self.up = ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels, norm=norm, dropout=dropout)
        self.dropout = Dropout(dropout) if dropout else Identity()

    def forward(self, x, skip):
        return self.conv(join(skip, self.dropout(self.up(x))))


class UNet(Module):
    """U-Net: encoder 64-128-256-512, bottleneck 1024, decoder of up-convolutions.

    Args:
        in_channels, num_classes: input channels and output logits per pixel.
        base_channels: the first stage's width (64); stage k has ``base * 2**k``.
        bilinear: bilinear upsampling and a halved bottleneck instead of transposed convs
            (the popular repository's option: 17,263,107 parameters instead of 31,037,763 at
            3 classes).
        norm: "batch" or "instance" (seed 001's U-Net uses instance norm).
        dropout: probability of the dropout after each block's second conv and after each
            up-convolution (seed 003); 0 leaves it out.
        head_kernel: 1 (the original 1x1 head) or 3 (seed 003's 3x3 head).

    Shapes: (N, in_channels, H, W) -> logits (N, num_classes, H, W). Any H, W >= 16 works:
    odd sizes are padded to the skip's size after each upsampling.
    """

    def __init__(
        self,
        in_channels=3,
        num_classes=3,
        base_channels=64,
        bilinear=False,
        norm="batch",
        dropout=0.0,
        head_kernel=1,
    ):
        super().__init__()
        if head_kernel not in (1, 3):
            raise ValueError(f"head_kernel must be 1 or 3, got {head_kernel!r}")
        self.in_channels, self.num_classes = in_channels, num_classes
        c = [base_channels * 2**k for k in range(5)]
        factor = 2 if bilinear else 1
        kw = {"norm": norm, "dropout": dropout}
        self.inc = DoubleConv(in_channels, c[0], **kw)
        self.down1 = Down(c[0], c[1], **kw)
        self.down2 = Down(c[1], c[2], **kw)
        self.down3 = Down(c[2], c[3], **kw)
        self.down4 = Down(c[3], c[4] // factor, **kw)
        self.up1 = Up(c[4], c[3] // factor, bilinear, **kw)
        self.up2 = Up(c[3], c[2] // factor, bilinear, **kw)
        self.up3 = Up(c[2], c[1] // factor, bilinear, **kw)
        self.up4 = Up(c[1], c[0], bilinear, **kw)
        self.outc = OutConv(c[0], num_classes, head_kernel)

    def forward(self, x):
        check_input("UNet", x, self.in_channels, 16)
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


class OutConv(Module):
    """The head: a conv with bias from the last features to the class logits."""

    def __init__(self, in_channels, num_classes, kernel_size=1):
        super().__init__()
        self.conv = Conv2d(in_channels, num_classes, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        return self.conv(x)


__all__ = ["Down", "OutConv", "UNet", "Up"]
