"""Segmentation losses on :mod:`minigrad`: each is called as ``loss(logits, target)`` and
returns a scalar Tensor (gradients come from autograd).

Multiclass losses take (N, C, H, W) logits and (N, H, W) integer targets; binary ones
(N, 1, H, W) logits and float or integer targets of shape (N, 1, H, W) or (N, H, W). Targets
may be Tensors or numpy/cupy arrays and receive no gradient.
"""

from segmentation.losses.combo import ComboLoss
from segmentation.losses.cross_entropy import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    class_weights_from_frequency,
)
from segmentation.losses.focal import FocalLoss
from segmentation.losses.overlap import DiceLoss, JaccardLoss, TverskyLoss

__all__ = [
    "BCEWithLogitsLoss",
    "ComboLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "JaccardLoss",
    "TverskyLoss",
    "class_weights_from_frequency",
]
