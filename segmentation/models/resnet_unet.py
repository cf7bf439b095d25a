"""ResNet34-U-Net: a torchvision-layout ResNet34 encoder and a transposed-conv decoder."""

from __future__ import annotations

from layers import BatchNorm2d, Conv2d, ConvTranspose2d, MaxPool2d, Module, ReLU, Sequential
from segmentation.models.blocks import DoubleConv, check_input, join, match_size


class BasicBlock(Module):
    """torchvision's BasicBlock: two 3x3 convs with BN, a 1x1 downsample shortcut when the
    stride or width changes, ReLU after the sum. (N, in, H, W) -> (N, out, H/s, W/s)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(out_channels)
        self.relu = ReLU(inplace=True)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = Sequential(
                Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                BatchNorm2d(out_channels),
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def resnet_layer(in_channels: int, out_channels: int, blocks: int, stride: int) -> Sequential:
    """One ResNet stage: the first block may stride and widen, the rest keep the shape."""
    first = BasicBlock(in_channels, out_channels, stride)
    return Sequential(first, *(BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)))


class UpBlock(Module):
    """ConvTranspose2d(k=2, s=2), then [skip, x] joined (when a skip is given) and DoubleConv."""

    def __init__(self, in_channels: int, up_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.up = ConvTranspose2d(in_channels, up_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(up_channels + skip_channels, out_channels)

    def forward(self, x, skip=None):
        x = self.up(x)
        return self.conv(x if skip is None else join(skip, x))


class ResNet34UNet(Module):
    """ResNet34 encoder (torchvision's layout and keys: ``conv1``, ``bn1``, ``layer1.0.conv1``
    ...) with a U-Net decoder: five ConvTranspose2d(k=2, s=2) stages joined with layer3,
    layer2, layer1 and the stem's output, the last without a skip, then a 1x1 head.
    24,451,651 parameters at 3 classes.

    :meth:`load_encoder` takes a torchvision ``resnet34`` state dict (ImageNet weights the
    user has; ``fc.*`` ignored). Shapes: (N, in_channels, H, W) -> (N, num_classes, H, W)
    for any H, W >= 32: each upsampled map is padded or cropped to its skip's size, and the
    output to the input's.
    """

    def __init__(self, in_channels=3, num_classes=3):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.conv1 = Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = BatchNorm2d(64)
        self.relu = ReLU(inplace=True)
        self.maxpool = MaxPool2d(3, stride=2, padding=1)
        self.layer1 = resnet_layer(64, 64, 3, 1)
        self.layer2 = resnet_layer(64, 128, 4, 2)
        self.layer3 = resnet_layer(128, 256, 6, 2)
        self.layer4 = resnet_layer(256, 512, 3, 2)
        self.up1 = UpBlock(512, 256, 256, 256)
        self.up2 = UpBlock(256, 128, 128, 128)
        self.up3 = UpBlock(128, 64, 64, 64)
        self.up4 = UpBlock(64, 64, 64, 64)
        self.up5 = UpBlock(64, 32, 0, 32)
        self.head = Conv2d(32, num_classes, 1)

    def encoder_keys(self) -> list[str]:
        """The state-dict keys that come from a torchvision resnet34."""
        prefixes = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
        return [k for k in self.state_dict() if k.startswith(prefixes)]

    def load_encoder(self, state_dict) -> None:
        """Load a torchvision resnet34 state dict into the encoder (its ``fc.*`` ignored).

        Raises naming every missing encoder key, unknown key and shape mismatch."""
        wanted = set(self.encoder_keys())
        extra = [k for k in state_dict if k not in wanted and not k.startswith("fc.")]
        missing = [k for k in self.encoder_keys() if k not in state_dict]
        if extra or missing:
            raise RuntimeError(
                "load_encoder: not a torchvision resnet34 state dict; "
                f"missing keys: {missing or 'none'}; unexpected keys: {extra or 'none'}"
            )
        encoder = {k: v for k, v in state_dict.items() if k in wanted}
        self.load_state_dict(encoder, strict=False)

    def forward(self, x):
        check_input("ResNet34UNet", x, self.in_channels, 32)
        stem_input = x
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        x = self.layer4(f3)
        x = self.up1(x, f3)
        x = self.up2(x, f2)
        x = self.up3(x, f1)
        x = self.up4(x, stem)
        return self.head(match_size(self.up5(x), stem_input))
