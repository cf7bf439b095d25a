"""``ComboLoss``: a weighted sum of losses, such as cross entropy + Dice (the popular PyTorch
U-Net repository) or focal + Dice (seed 004)."""

from __future__ import annotations

import numbers

from layers import Module, ModuleList
from minigrad.tensor import Tensor


class ComboLoss(Module):
    """``loss(x, t) = sum_i w_i * loss_i(x, t)``.

    Args:
        losses: loss modules, called as ``loss_i(input, target)``; or ``(loss, weight)`` pairs
            (then ``weights`` must be None). They are submodules (``losses.0``, ...), so their
            buffers (class weights) are in the state dict and move with ``to()``.
        weights: one number per loss; None gives weight 1 each (or the pairs' weights).

    Example:
        ``ComboLoss([(CrossEntropyLoss(), 1.0), (DiceLoss(), 1.0)])`` or
        ``ComboLoss([FocalLoss(), DiceLoss()], weights=[1.0, 1.0])``.
    """

    def __init__(self, losses, weights=None):
        super().__init__()
        losses = list(losses)
        if not losses:
            raise ValueError("ComboLoss: expected at least one loss")
        if all(isinstance(item, tuple) for item in losses):
            if weights is not None:
                raise ValueError(
                    "ComboLoss: give weights either in (loss, weight) pairs or as weights"
                )
            losses, weights = zip(*losses, strict=True)
        weights = [1.0] * len(losses) if weights is None else list(weights)
        if len(weights) != len(losses):
            raise ValueError(f"ComboLoss: {len(losses)} losses but {len(weights)} weights")
        for i, (loss, weight) in enumerate(zip(losses, weights, strict=True)):
            if not isinstance(loss, Module):
                raise TypeError(f"ComboLoss: loss {i} must be a layers.Module, got {loss!r}")
            if not isinstance(weight, numbers.Real):
                raise TypeError(f"ComboLoss: weight {i} must be a number, got {weight!r}")
        self.losses = ModuleList(losses)
        self.weights = [float(w) for w in weights]

    def extra_repr(self) -> str:
        return f"weights={self.weights}"

    def forward(self, input: Tensor, target) -> Tensor:
        total = None
        for loss, weight in zip(self.losses, self.weights, strict=True):
            term = weight * loss(input, target)
            total = term if total is None else total + term
        return total
