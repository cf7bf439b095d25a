"""Layers: ``Module``, ``Parameter`` and the layer classes on top of :mod:`minigrad` (to come:
Conv2d, ConvTranspose2d, MaxPool2d, MaxUnpool2d, Upsample, BatchNorm2d, ... as in DESIGN.md)."""
