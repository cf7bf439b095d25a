"""Dropout layers: ``Dropout`` and ``Dropout2d``, as ``torch.nn``'s.

They drop only in training mode (``module.train()``); in evaluation they return the input.
Masks come from the seeded generator of the input's device (``mg.manual_seed``).
"""

from __future__ import annotations

import minigrad.functional as F
from layers.arguments import check_bool, check_number
from layers.module import Module


class _DropoutNd(Module):
    """``p`` (the drop probability, in [0, 1]) and ``inplace`` (see ``F.dropout``)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        layer = type(self).__name__
        self.p = check_number(p, "p (dropout probability)", layer, low=0, high=1)
        self.inplace = check_bool(inplace, "inplace", layer)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``, as
    ``torch.nn.Dropout``. Shapes: (*) -> (*)."""

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels with probability ``p`` and scale the rest by ``1 / (1 - p)``, as
    ``torch.nn.Dropout2d``. Shapes: (N, C, H, W) or (N, C, L) -> the same."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


__all__ = ["Dropout", "Dropout2d"]
