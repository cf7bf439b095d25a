"""Soft overlap losses with segmentation_models_pytorch's semantics: Dice, Jaccard, Tversky.

All three start from the same per-class statistics of the probabilities ``p`` (softmax over
classes for "multiclass", sigmoid per channel for "binary" and "multilabel") against the
targets ``t`` (one-hot for "multiclass"), summed over the batch and the pixels that count
(pixels labelled ``ignore_index`` are dropped from both ``p`` and ``t``):

    I_c = sum p * t  (soft true positives),  P_c = sum p,  T_c = sum t,
    FP_c = P_c - I_c,  FN_c = T_c - I_c.

Each loss turns a per-class score ``s_c`` into ``l_c = 1 - s_c`` (or ``-log(max(s_c, eps))``
with ``log_loss``), sets ``l_c = 0`` for a class with no target pixel in the batch (it still
counts in the mean), keeps the ``classes`` subset if given, and averages over classes.
Denominators are clamped to at least ``eps``.
"""

from __future__ import annotations

import numpy

import minigrad as mg
import minigrad.functional as F
from layers import Module
from layers.arguments import check_choice
from minigrad import backend
from minigrad.tensor import Tensor
from segmentation.losses._base import (
    MODES,
    binary_target,
    check_logits,
    class_target,
    constant,
    ncl,
)


def soft_statistics(
    op: str, input: Tensor, target, mode: str, from_logits: bool, ignore_index
) -> tuple:
    """Per-class ``(I, P, T)``: two (C,) Tensors and one (C,) constant array.

    Args:
        input: (N, C, *) logits (or probabilities when ``from_logits`` is False); C = 1 for
            "binary".
        target: (N, *) class indices for "multiclass"; the input's shape (or (N, *) for
            "binary") with values in [0, 1] otherwise.
    """
    n, c, length = ncl(input.shape)
    if mode == "binary" and c != 1:
        raise ValueError(f"{op}: mode 'binary' needs (N, 1, *) logits, got shape {input.shape}")
    x = input.reshape(n, c, length)
    if mode == "multiclass":
        p = F.softmax(x, dim=1) if from_logits else x
        t, valid = class_target(op, target, input, ignore_index)
        xp = backend.get_array_module(t)
        onehot = t[:, None, :] == xp.arange(c)[None, :, None]
        mask = None if valid is None else valid[:, None, :]
        onehot = (onehot if mask is None else onehot & mask).astype(input.dtype)
        mask = None if mask is None else mask.astype(input.dtype)
    else:
        p = F.sigmoid(x) if from_logits else x
        onehot, mask = binary_target(op, target, input, ignore_index)
    intersection = (p * constant(onehot)).sum(dim=(0, 2))
    predicted = (p if mask is None else p * constant(mask)).sum(dim=(0, 2))
    return intersection, predicted, onehot.sum(axis=(0, 2))


class _OverlapLoss(Module):
    """The shared body of Dice, Jaccard and Tversky; subclasses give ``score`` (and may
    change ``aggregate``)."""

    name = "overlap loss"

    def __init__(self, mode, classes, log_loss, from_logits, smooth, ignore_index, eps):
        super().__init__()
        check_choice(mode, "mode", self.name, MODES)
        if classes is not None:
            if mode == "binary":
                raise ValueError(f"{self.name}: classes cannot be chosen in mode 'binary'")
            classes = numpy.asarray(classes, dtype=numpy.int64).reshape(-1)
            if not classes.size:
                raise ValueError(f"{self.name}: classes must name at least one class")
        if eps <= 0:
            raise ValueError(f"{self.name}: eps must be positive, got {eps}")
        if smooth < 0:
            raise ValueError(f"{self.name}: smooth must be non-negative, got {smooth}")
        self.mode = mode
        self.classes = classes
        self.log_loss = bool(log_loss)
        self.from_logits = bool(from_logits)
        self.smooth = float(smooth)
        self.ignore_index = ignore_index
        self.eps = float(eps)

    def extra_repr(self) -> str:
        classes = None if self.classes is None else self.classes.tolist()
        return (
            f"mode={self.mode!r}, classes={classes}, log_loss={self.log_loss}, "
            f"from_logits={self.from_logits}, smooth={self.smooth}, "
            f"ignore_index={self.ignore_index}, eps={self.eps}"
        )

    def score(self, intersection: Tensor, predicted: Tensor, true) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement score")

    def aggregate(self, loss: Tensor) -> Tensor:
        return loss.mean()

    def forward(self, input: Tensor, target) -> Tensor:
        check_logits(self.name, input)
        intersection, predicted, true = soft_statistics(
            self.name, input, target, self.mode, self.from_logits, self.ignore_index
        )
        score = self.score(intersection, predicted, constant(true))
        loss = -mg.log(score.clamp(min=self.eps)) if self.log_loss else 1.0 - score
        loss = loss * constant((true > 0).astype(input.dtype))
        if self.classes is not None:
            c = input.shape[1]
            if self.classes.min() < -c or self.classes.max() >= c:
                raise ValueError(
                    f"{self.name}: classes {self.classes.tolist()} out of range for {c} classes"
                )
            loss = loss[self.classes]
        return self.aggregate(loss)


class DiceLoss(_OverlapLoss):
    """Soft Dice loss, as ``segmentation_models_pytorch.losses.DiceLoss``.

    ``s_c = (2 I_c + smooth) / max(P_c + T_c + smooth, eps)``; the loss is the mean over
    classes of ``1 - s_c`` (``-log(max(s_c, eps))`` with ``log_loss``), with 0 for a class
    absent from the batch's target (module docstring for ``I``, ``P``, ``T``).

    Args:
        mode: "multiclass" (softmax over C, integer targets (N, *)), "binary" ((N, 1, *)
            logits, targets in [0, 1] of shape (N, 1, *) or (N, *)) or "multilabel" (a
            sigmoid per channel, targets of the input's shape).
        classes: optional class indices whose losses are averaged (not in "binary").
        log_loss: use ``-log(score)`` instead of ``1 - score``.
        from_logits: the input holds logits (True) or probabilities (False).
        smooth: added to numerator and denominator.
        ignore_index: label of pixels (target entries) that count for nothing, or None.
        eps: lower bound of the denominator and of the score inside the log.

    Shapes:
        input: (N, C, *). output: ().
    """

    name = "DiceLoss"

    def __init__(
        self,
        mode: str = "multiclass",
        classes=None,
        log_loss: bool = False,
        from_logits: bool = True,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        eps: float = 1e-7,
    ):
        super().__init__(mode, classes, log_loss, from_logits, smooth, ignore_index, eps)

    def score(self, intersection, predicted, true):
        return (2.0 * intersection + self.smooth) / (predicted + true + self.smooth).clamp(
            min=self.eps
        )


class JaccardLoss(_OverlapLoss):
    """Soft Jaccard (IoU) loss, as ``segmentation_models_pytorch.losses.JaccardLoss``.

    ``s_c = (I_c + smooth) / max(P_c + T_c - I_c + smooth, eps)``; aggregated as
    :class:`DiceLoss`. The arguments are DiceLoss's; ``ignore_index`` masks pixels as in
    DiceLoss (smp's JaccardLoss, as read at commit bc597e9, takes no ``ignore_index``; with
    None the two agree exactly).
    """

    name = "JaccardLoss"

    def __init__(
        self,
        mode: str = "multiclass",
        classes=None,
        log_loss: bool = False,
        from_logits: bool = True,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        eps: float = 1e-7,
    ):
        super().__init__(mode, classes, log_loss, from_logits, smooth, ignore_index, eps)

    def score(self, intersection, predicted, true):
        union = predicted + true - intersection
        return (intersection + self.smooth) / (union + self.smooth).clamp(min=self.eps)


class TverskyLoss(_OverlapLoss):
    """Soft Tversky loss, as ``segmentation_models_pytorch.losses.TverskyLoss``.

    ``s_c = (I_c + smooth) / max(I_c + alpha FP_c + beta FN_c + smooth, eps)`` with
    ``FP_c = P_c - I_c`` and ``FN_c = T_c - I_c``; the loss is ``mean_c(l_c) ** gamma``
    (``l_c`` as in :class:`DiceLoss`). ``alpha = beta = 0.5``, ``gamma = 1`` is the Dice loss.

    Args:
        As :class:`DiceLoss`, plus
        alpha: weight of false positives.
        beta: weight of false negatives.
        gamma: exponent of the mean loss (smp's "focal Tversky" when > 1).
    """

    name = "TverskyLoss"

    def __init__(
        self,
        mode: str = "multiclass",
        classes=None,
        log_loss: bool = False,
        from_logits: bool = True,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        eps: float = 1e-7,
        alpha: float = 0.5,
        beta: float = 0.5,
        gamma: float = 1.0,
    ):
        super().__init__(mode, classes, log_loss, from_logits, smooth, ignore_index, eps)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)

    def score(self, intersection, predicted, true):
        false_pos = predicted - intersection
        false_neg = true - intersection
        denominator = intersection + self.alpha * false_pos + self.beta * false_neg + self.smooth
        return (intersection + self.smooth) / denominator.clamp(min=self.eps)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}"

    def aggregate(self, loss):
        return loss.mean() ** self.gamma
