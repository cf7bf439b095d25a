"""FCN baseline of seed 001 (Table 1): five stride-2 conv stages, five transposed-conv stages."""

from __future__ import annotations

from layers import BatchNorm2d, Conv2d, ConvTranspose2d, Module, ReLU, Sequential
from segmentation.models.blocks import check_input

ENCODER_WIDTHS = (32, 64, 128, 256, 512)
DECODER_WIDTHS = (512, 256, 128, 64, 32)


def conv_stage(in_channels: int, out_channels: int) -> Sequential:
    """3x3 conv, stride 2, padding 1, then ReLU and BatchNorm (the table's order)."""
    return Sequential(
        Conv2d(in_channels, out_channels, 3, stride=2, padding=1),
        ReLU(inplace=True),
        BatchNorm2d(out_channels),
    )


def deconv_stage(in_channels: int, out_channels: int) -> Sequential:
    """ConvTranspose2d(k=3, s=2, padding=1, output_padding=1) doubling H and W, ReLU, BN."""
    return Sequential(
        ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
        ReLU(inplace=True),
        BatchNorm2d(out_channels),
    )


class FCN(Module):
    """Seed 001's baseline FCN: encoder 32-64-128-256-512 (each stage halves H and W),
    decoder 512-256-128-64-32 (each doubles them), 1x1 classifier.

    Shapes: (N, in_channels, H, W) -> (N, num_classes, H, W), H and W multiples of 32.
    """

    divisor = 32

    def __init__(self, in_channels=3, num_classes=3):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        widths = (in_channels, *ENCODER_WIDTHS)
        self.encoder = Sequential(
            *(conv_stage(a, b) for a, b in zip(widths, widths[1:], strict=False))
        )
        widths = (ENCODER_WIDTHS[-1], *DECODER_WIDTHS)
        self.decoder = Sequential(
            *(deconv_stage(a, b) for a, b in zip(widths, widths[1:], strict=False))
        )
        self.classifier = Conv2d(DECODER_WIDTHS[-1], num_classes, 1)

    def forward(self, x):
        check_input("FCN", x, self.in_channels, self.divisor, self.divisor)
        return self.classifier(self.decoder(self.encoder(x)))
