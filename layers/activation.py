"""Activation layers: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``Softmax`` and
``LogSoftmax``, as ``torch.nn``'s; each calls ``minigrad.functional``.

``inplace=True`` is accepted for PyTorch's signature; the result is a new tensor (see
``F.relu``: without version counters an in-place write could corrupt a saved value).
"""

from __future__ import annotations

import warnings

import minigrad.functional as F
from layers.arguments import check_bool, check_number
from layers.module import Module
from minigrad.ops.arguments import is_int


class ReLU(Module):
    """``max(x, 0)``, as ``torch.nn.ReLU``. Shapes: (*) -> (*)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = check_bool(inplace, "inplace", type(self).__name__)

    def forward(self, input):
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``x if x > 0 else negative_slope * x``, as ``torch.nn.LeakyReLU``. Shapes: (*) -> (*)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        layer = type(self).__name__
        self.negative_slope = check_number(negative_slope, "negative_slope", layer)
        self.inplace = check_bool(inplace, "inplace", layer)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid``. Shapes: (*) -> (*)."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """``tanh(x)``, as ``torch.nn.Tanh``. Shapes: (*) -> (*)."""

    def forward(self, input):
        return F.tanh(input)


class _SoftmaxBase(Module):
    """``dim`` handling of Softmax and LogSoftmax: an int, or None for PyTorch's deprecated
    implicit choice (dim 0 for 0-, 1- and 3-d inputs, else 1), with its warning."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        if dim is not None and not is_int(dim):
            raise TypeError(f"{type(self).__name__}: dim must be an int or None, got {dim!r}")
        self.dim = dim

    def _dim(self, input) -> int:
        if self.dim is not None:
            return self.dim
        name = type(self).__name__.lower()
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. Change the call to "
            "include dim=X as an argument.",
            stacklevel=3,
        )
        return 0 if input.ndim in (0, 1, 3) else 1

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim``, as ``torch.nn.Softmax``. Shapes: (*) -> (*)."""

    def forward(self, input):
        return F.softmax(input, self._dim(input))


class LogSoftmax(_SoftmaxBase):
    """``log(softmax(x))`` along ``dim``, as ``torch.nn.LogSoftmax``. Shapes: (*) -> (*)."""

    def forward(self, input):
        return F.log_softmax(input, self._dim(input))


__all__ = ["LeakyReLU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]
