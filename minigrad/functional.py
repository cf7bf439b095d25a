"""``torch.nn.functional``-style names, re-exported from :mod:`minigrad.ops`.

Use as ``import minigrad.functional as F``.
"""

from minigrad.ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from minigrad.ops.conv import conv2d, conv_transpose2d
from minigrad.ops.dropout import dropout, dropout2d
from minigrad.ops.loss import binary_cross_entropy_with_logits, cross_entropy, nll_loss
from minigrad.ops.matmul import linear
from minigrad.ops.normalization import batch_norm, instance_norm
from minigrad.ops.padding import pad
from minigrad.ops.pooling import avg_pool2d, max_pool2d, max_unpool2d
from minigrad.ops.shape import one_hot
from minigrad.ops.upsample import interpolate

__all__ = [
    "conv2d",
    "conv_transpose2d",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "instance_norm",
    "nll_loss",
    "avg_pool2d",
    "interpolate",
    "max_pool2d",
    "max_unpool2d",
    "leaky_relu",
    "linear",
    "log_softmax",
    "one_hot",
    "pad",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
