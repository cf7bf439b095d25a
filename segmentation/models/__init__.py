"""The U-Net family: ``UNet``, ``FastUNet``, ``ResNet34UNet``, ``FCN`` and ``SegNet``.

Each is built as ``Model(in_channels=3, num_classes=3, ...)`` and maps (N, C, H, W) images
to (N, num_classes, H, W) logits.
"""

from segmentation.models.fast_unet import FastUNet
from segmentation.models.fcn import FCN
from segmentation.models.resnet_unet import ResNet34UNet
from segmentation.models.segnet import SegNet
from segmentation.models.unet import UNet

MODELS = {
    "unet": UNet,
    "fast_unet": FastUNet,
    "resnet34_unet": ResNet34UNet,
    "fcn": FCN,
    "segnet": SegNet,
}

__all__ = ["FCN", "MODELS", "FastUNet", "ResNet34UNet", "SegNet", "UNet"]
