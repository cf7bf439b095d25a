"""Loss modules: ``CrossEntropyLoss``, ``NLLLoss``, ``BCEWithLogitsLoss``, ``MSELoss`` and
``L1Loss``, as ``torch.nn``'s, called as ``loss(input, target)``.

Class weights and ``pos_weight`` are buffers (in the state dict as ``weight`` and
``pos_weight``, moved by ``to()``), as in PyTorch. The legacy ``size_average`` / ``reduce``
arguments map to ``reduction`` with PyTorch's rule and warning.
"""

from __future__ import annotations

import warnings

import minigrad.functional as F
from layers.arguments import check_choice, check_int, check_number
from layers.module import Module
from minigrad.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _legacy_reduction(size_average, reduce) -> str:
    """PyTorch's ``legacy_get_string``: both default to True; mean, sum or none."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        "size_average and reduce args will be deprecated, please use "
        f"reduction='{reduction}' instead.",
        stacklevel=4,
    )
    return reduction


class _Loss(Module):
    """``reduction`` ("mean", "sum" or "none"), checked at construction."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        self.reduction = check_choice(reduction, "reduction", type(self).__name__, REDUCTIONS)

    def _reduce(self, loss: Tensor) -> Tensor:
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def _check_pair(self, input, target) -> None:
        """Tensors of one shape; PyTorch's warning (then broadcasting) when they differ."""
        for name, t in (("input", input), ("target", target)):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: {name} must be a Tensor, got {type(t).__name__}"
                )
        if target.shape != input.shape:
            warnings.warn(
                f"Using a target size ({target.shape}) that is different to the input size "
                f"({input.shape}). This will likely lead to incorrect results due to "
                "broadcasting. Please ensure they have the same size.",
                stacklevel=3,
            )


class _WeightedLoss(_Loss):
    """A loss with optional per-class ``weight`` (a (C,) Tensor buffer)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy of logits and class indices (or class probabilities), as
    ``torch.nn.CrossEntropyLoss``; see ``F.cross_entropy``.

    Args:
        weight: optional (C,) class weights.
        ignore_index: target value that adds neither loss nor gradient.
        reduction: "mean" (weighted by the counted targets' weights), "sum" or "none".
        label_smoothing: in [0, 1]; mixes the target with the uniform distribution.

    Shapes:
        input (N, C, d1, ...) or (C,); target (N, d1, ...) or () indices, or probabilities
        of the input's shape -> () or (N, d1, ...) with "none".
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        super().__init__(weight, size_average, reduce, reduction)
        layer = type(self).__name__
        self.ignore_index = check_int(ignore_index, "ignore_index", layer, minimum=None)
        self.label_smoothing = check_number(label_smoothing, "label_smoothing", layer, 0.0, 1.0)

    def forward(self, input, target):
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities, as ``torch.nn.NLLLoss``.

    Args:
        weight, ignore_index, reduction: as :class:`CrossEntropyLoss`.

    Shapes:
        input (N, C, d1, ...) or (C,); target (N, d1, ...) or () -> () or (N, d1, ...).
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
    ):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = check_int(
            ignore_index, "ignore_index", type(self).__name__, minimum=None
        )

    def forward(self, input, target):
        return F.nll_loss(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class BCEWithLogitsLoss(_Loss):
    """Sigmoid and binary cross entropy in one stable op, as ``torch.nn.BCEWithLogitsLoss``.

    Args:
        weight: optional rescaling of each element, broadcastable to the input.
        reduction: "mean", "sum" or "none".
        pos_weight: optional weight of the positives, broadcastable to the input (a
            per-class one for (N, C, H, W) has shape (C, 1, 1)).

    Shapes:
        input and target (*) -> () or (*) with "none".
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average=None,
        reduce=None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
    ):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )


class MSELoss(_Loss):
    """Mean squared error ``(input - target) ** 2``, reduced, as ``torch.nn.MSELoss``.

    Shapes: input and target (*) -> () or (*) with "none".
    """

    def forward(self, input, target):
        self._check_pair(input, target)
        diff = input - target
        return self._reduce(diff * diff)


class L1Loss(_Loss):
    """Mean absolute error ``|input - target|``, reduced, as ``torch.nn.L1Loss``.

    Shapes: input and target (*) -> () or (*) with "none".
    """

    def forward(self, input, target):
        self._check_pair(input, target)
        return self._reduce((input - target).abs())


__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss"]
