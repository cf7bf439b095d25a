"""2-D padding layers: ``ZeroPad2d``, ``ConstantPad2d``, ``ReflectionPad2d``,
``ReplicationPad2d`` and ``CircularPad2d``, as ``torch.nn``'s; each calls ``F.pad``.

``padding`` is an int (all four sides) or a 4-tuple (left, right, top, bottom); negative
amounts crop, as in PyTorch.
"""

from __future__ import annotations

import minigrad.functional as F
from layers.arguments import check_number
from layers.module import Module
from minigrad.ops.arguments import is_int


def _quadruple(padding, layer: str) -> tuple[int, int, int, int]:
    """PyTorch's ``_quadruple``: an int for every side, or (left, right, top, bottom)."""
    items = tuple(padding) if isinstance(padding, tuple | list) else (padding,) * 4
    if len(items) != 4 or not all(is_int(p) for p in items):
        raise TypeError(
            f"{layer}: padding must be an int or a tuple of 4 ints (left, right, top, bottom), "
            f"got {padding!r}"
        )
    return tuple(int(p) for p in items)


class _PadNd(Module):
    """A 2-D padding of one ``mode`` (F.pad's); shapes (N, C, H, W) or (C, H, W) ->
    (.., H + top + bottom, W + left + right)."""

    mode = "constant"

    def __init__(self, padding):
        super().__init__()
        self.padding = _quadruple(padding, type(self).__name__)

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(
                f"{type(self).__name__}: expected 3D (C, H, W) or 4D (N, C, H, W) input, got "
                f"{input.ndim}D input of shape {input.shape}"
            )
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ConstantPad2d(_PadNd):
    """Pad with the constant ``value``, as ``torch.nn.ConstantPad2d``."""

    def __init__(self, padding, value: float):
        super().__init__(padding)
        self.value = check_number(value, "value", type(self).__name__)

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    """Pad with zeros, as ``torch.nn.ZeroPad2d``."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad2d(_PadNd):
    """Mirror the input at its edges, the edge itself not repeated (each amount smaller than
    the padded dim), as ``torch.nn.ReflectionPad2d``."""

    mode = "reflect"


class ReplicationPad2d(_PadNd):
    """Repeat the edge values, as ``torch.nn.ReplicationPad2d``."""

    mode = "replicate"


class CircularPad2d(_PadNd):
    """Wrap the input around (each amount at most the padded dim), as
    ``torch.nn.CircularPad2d``."""

    mode = "circular"


__all__ = ["CircularPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "ZeroPad2d"]
