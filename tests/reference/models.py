"""PyTorch twins of :mod:`segmentation.models`, written from the architectures' descriptions
with ``torch.nn``; module names follow ours so state dicts line up key for key."""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.InstanceNorm2d(channels)


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, mid=None, norm="batch", dropout=0.0):
        super().__init__()
        mid = mid or cout
        seq = [
            nn.Conv2d(cin, mid, 3, padding=1, bias=False),
            _norm(norm, mid),
            nn.ReLU(),
            nn.Conv2d(mid, cout, 3, padding=1, bias=False),
            _norm(norm, cout),
            nn.ReLU(),
        ]
        if dropout:
            seq.append(nn.Dropout(dropout))
        self.double_conv = nn.Sequential(*seq)

    def forward(self, x):
        return self.double_conv(x)


def _pad_to(x, like):
    dy, dx = like.shape[2] - x.shape[2], like.shape[3] - x.shape[3]
    return TF.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])


class Down(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout, **kw))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout, bilinear, norm="batch", dropout=0.0):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(cin, cout, cin // 2, norm=norm, dropout=dropout)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            self.conv = DoubleConv(cin, cout, norm=norm, dropout=dropout)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x, skip):
        x = self.dropout(self.up(x))
        return self.conv(torch.cat([skip, _pad_to(x, skip)], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin, n, k=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, n, k, padding=k // 2)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
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
        c = [base_channels * 2**k for k in range(5)]
        f = 2 if bilinear else 1
        kw = {"norm": norm, "dropout": dropout}
        self.inc = DoubleConv(in_channels, c[0], **kw)
        self.down1, self.down2 = Down(c[0], c[1], **kw), Down(c[1], c[2], **kw)
        self.down3, self.down4 = Down(c[2], c[3], **kw), Down(c[3], c[4] // f, **kw)
        self.up1 = Up(c[4], c[3] // f, bilinear, **kw)
        self.up2 = Up(c[3], c[2] // f, bilinear, **kw)
        self.up3 = Up(c[2], c[1] // f, bilinear, **kw)
        self.up4 = Up(c[1], c[0], bilinear, **kw)
        self.outc = OutConv(c[0], num_classes, head_kernel)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(self.down4(x4), x4)
        return self.outc(self.up4(self.up3(self.up2(x, x3), x2), x1))


def _separable(cin, cout):
    return [
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.Conv2d(cin, cout, 1, bias=False),
    ]


class FastDoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.block = nn.Sequential(
            *_separable(cin, cout),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            *_separable(cout, cout),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.block(x)


class FastDecoderBlock(nn.Module):
    """As seed 000 describes it: upsample first, then the 1x1 conv (ours runs them swapped)."""

    def __init__(self, cin, cskip):
        super().__init__()
        self.reduce = nn.Conv2d(cin, cskip, 1, bias=False)
        self.conv = FastDoubleConv(2 * cskip, cskip)

    def forward(self, x, skip):
        x = TF.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, self.reduce(x)], dim=1))


class FastUNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=3, base_channels=64):
        super().__init__()
        c = [base_channels * 2**k for k in range(5)]
        self.enc1, self.enc2 = FastDoubleConv(in_channels, c[0]), FastDoubleConv(c[0], c[1])
        self.enc3, self.enc4 = FastDoubleConv(c[1], c[2]), FastDoubleConv(c[2], c[3])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = FastDoubleConv(c[3], c[4])
        self.dec4, self.dec3 = FastDecoderBlock(c[4], c[3]), FastDecoderBlock(c[3], c[2])
        self.dec2, self.dec1 = FastDecoderBlock(c[2], c[1]), FastDecoderBlock(c[1], c[0])
        self.head = nn.Conv2d(c[0], num_classes, 1)

    def forward(self, x):
        s1 = self.enc1(x)
        s2 = self.enc2(self.pool(s1))
        s3 = self.enc3(self.pool(s2))
        s4 = self.enc4(self.pool(s3))
        x = self.bottleneck(self.pool(s4))
        return self.head(self.dec1(self.dec2(self.dec3(self.dec4(x, s4), s3), s2), s1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + idt)


def _layer(cin, cout, n, stride):
    return nn.Sequential(
        BasicBlock(cin, cout, stride), *[BasicBlock(cout, cout) for _ in range(n - 1)]
    )


class UpBlock(nn.Module):
    def __init__(self, cin, cup, cskip, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cup, 2, stride=2)
        self.conv = DoubleConv(cup + cskip, cout)

    def forward(self, x, skip=None):
        x = self.up(x)
        return self.conv(x if skip is None else torch.cat([skip, _pad_to(x, skip)], 1))


class ResNet34UNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1, self.layer2 = _layer(64, 64, 3, 1), _layer(64, 128, 4, 2)
        self.layer3, self.layer4 = _layer(128, 256, 6, 2), _layer(256, 512, 3, 2)
        self.up1, self.up2 = UpBlock(512, 256, 256, 256), UpBlock(256, 128, 128, 128)
        self.up3, self.up4 = UpBlock(128, 64, 64, 64), UpBlock(64, 64, 64, 64)
        self.up5 = UpBlock(64, 32, 0, 32)
        self.head = nn.Conv2d(32, num_classes, 1)

    def forward(self, x):
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        y = self.up4(self.up3(self.up2(self.up1(self.layer4(f3), f3), f2), f1), stem)
        return self.head(_pad_to(self.up5(y), x))


class FCN(nn.Module):
    def __init__(self, in_channels=3, num_classes=3):
        super().__init__()
        enc = (in_channels, 32, 64, 128, 256, 512)
        dec = (512, 512, 256, 128, 64, 32)
        self.encoder = nn.Sequential(
            *[
                nn.Sequential(nn.Conv2d(a, b, 3, 2, 1), nn.ReLU(), nn.BatchNorm2d(b))
                for a, b in zip(enc, enc[1:], strict=False)
            ]
        )
        self.decoder = nn.Sequential(
            *[
                nn.Sequential(
                    nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1),
                    nn.ReLU(),
                    nn.BatchNorm2d(b),
                )
                for a, b in zip(dec, dec[1:], strict=False)
            ]
        )
        self.classifier = nn.Conv2d(32, num_classes, 1)

    def forward(self, x):
        return self.classifier(self.decoder(self.encoder(x)))


class EncoderStage(nn.Module):
    def __init__(self, cin, cout, pool):
        super().__init__()
        self.conv, self.bn, self.relu = (
            nn.Conv2d(cin, cout, 3, 2, 1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )
        self.pool = nn.MaxPool2d(2, return_indices=True) if pool else None

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))
        return (x, None) if self.pool is None else self.pool(x)


class DecoderStage(nn.Module):
    def __init__(self, cin, cout, unpool):
        super().__init__()
        self.unpool = nn.MaxUnpool2d(2) if unpool else None
        self.deconv = nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)
        self.bn, self.relu = nn.BatchNorm2d(cout), nn.ReLU()

    def forward(self, x, idx):
        if self.unpool is not None:
            x = self.unpool(x, idx)
        return self.relu(self.bn(self.deconv(x)))


class SegNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=3, depth=4):
        super().__init__()
        w = (32, 64, 128, 256, 512, 1024)[:depth]
        ins = (in_channels, *w)
        self.encoder = nn.ModuleList([EncoderStage(ins[i], w[i], i > 0) for i in range(depth)])
        outs = (32, *w[:-1])
        self.decoder = nn.ModuleList(
            [DecoderStage(w[i], outs[i], i > 0) for i in reversed(range(depth))]
        )
        self.classifier = nn.Conv2d(32, num_classes, 1)

    def forward(self, x):
        idx = []
        for s in self.encoder:
            x, i = s(x)
            idx.append(i)
        for s, i in zip(self.decoder, reversed(idx), strict=True):
            x = s(x, i)
        return self.classifier(x)
