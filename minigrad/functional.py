"""``torch.nn.functional``-style names, re-exported from :mod:`minigrad.ops`.

Use as ``import minigrad.functional as F``.
"""

from minigrad.ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from minigrad.ops.matmul import linear
from minigrad.ops.shape import one_hot, pad

__all__ = [
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
