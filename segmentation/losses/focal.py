"""Sigmoid focal loss with segmentation_models_pytorch's semantics (one-vs-rest per class)."""

from __future__ import annotations

import math

import minigrad as mg
import minigrad.functional as F
from layers import Module
from layers.arguments import check_choice
from minigrad import backend
from minigrad.tensor import Tensor
from segmentation.losses._base import (
    MODES,
    REDUCTIONS,
    binary_target,
    check_logits,
    class_target,
    constant,
    ncl,
)

NORM_EPS = 1e-6  # smp's lower bound of the normalising sum


class FocalLoss(Module):
    """Focal loss, as ``segmentation_models_pytorch.losses.FocalLoss``, but averaged over
    classes in "multiclass" mode where smp sums them.

    Per element, with logit ``x``, binary target ``t`` and ``b = BCEWithLogits(x, t)``:
    ``pt = exp(-b)``, ``f = (1 - pt) ** gamma``, ``loss = f * b``, times
    ``alpha * t + (1 - alpha) * (1 - t)`` when ``alpha`` is given; with ``normalized`` the
    losses are divided by ``max(sum f, 1e-6)`` (arXiv:1909.07829). Entries whose target is
    ``ignore_index`` are dropped.

    * "binary" / "multilabel": all entries of (N, C, *) logits form one pool (as smp, which
      flattens them): "mean" averages over the counted entries, ``sum f`` runs over all.
    * "multiclass": class ``c`` is one-vs-rest, ``t = (target == c)`` against logit channel
      ``c``, each with its own ``sum f``; smp reduces each class over the counted pixels and
      **sums** the C results; here they are **averaged** (divided by C), so the loss does not
      grow with the number of classes: ours = smp's / C for "mean" and "sum".

    Args:
        mode: "multiclass", "binary" or "multilabel".
        alpha: weight of positive targets in [0, 1], or None for no weighting.
        gamma: focusing exponent (0 gives binary cross entropy).
        ignore_index: target label that counts for nothing, or None.
        reduction: "mean", "sum" or "none": per-pixel losses of shape (N, *) (the mean over
            classes) in "multiclass", of the input's shape otherwise; 0 where ignored.
        normalized: divide by the sum of focal factors.

    Shapes:
        input: (N, C, *) logits (C = 1 for "binary"). target: (N, *) class indices for
        "multiclass"; the input's shape (or (N, *) for "binary") with values in [0, 1].
    """

    def __init__(
        self,
        mode: str = "multiclass",
        alpha: float | None = None,
        gamma: float = 2.0,
        ignore_index: int | None = None,
        reduction: str = "mean",
        normalized: bool = False,
    ):
        super().__init__()
        check_choice(mode, "mode", "FocalLoss", MODES)
        check_choice(reduction, "reduction", "FocalLoss", REDUCTIONS)
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"FocalLoss: alpha must be in [0, 1] or None, got {alpha}")
        if gamma < 0:
            raise ValueError(f"FocalLoss: gamma must be non-negative, got {gamma}")
        self.mode = mode
        self.alpha = None if alpha is None else float(alpha)
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.normalized = bool(normalized)

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode!r}, alpha={self.alpha}, gamma={self.gamma}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, "
            f"normalized={self.normalized}"
        )

    def forward(self, input: Tensor, target) -> Tensor:
        check_logits("FocalLoss", input)
        n, c, length = ncl(input.shape)
        if self.mode == "binary" and c != 1:
            raise ValueError(
                f"FocalLoss: mode 'binary' needs (N, 1, *) logits, got shape {input.shape}"
            )
        x = input.reshape(n, c, length)
        t, mask = self._targets(input, target)
        loss, focal = self._elementwise(x, t)
        if mask is not None:
            loss = loss * constant(mask)
        if self.normalized:
            focal = focal if mask is None else focal * constant(mask)
            per_class = self.mode == "multiclass"
            norm = focal.sum(dim=(0, 2), keepdim=True) if per_class else focal.sum()
            loss = loss / norm.clamp(min=NORM_EPS)
        return self._reduce(loss, mask, input.shape)

    def _targets(self, input: Tensor, target) -> tuple:
        """Binary targets (N, C, L) in the input's dtype and the mask of counted entries:
        (N, 1, L) per pixel in "multiclass", (N, C, L) otherwise (None without ignore_index)."""
        if self.mode != "multiclass":
            return binary_target("FocalLoss", target, input, self.ignore_index)
        labels, valid = class_target("FocalLoss", target, input, self.ignore_index)
        xp = backend.get_array_module(labels)
        onehot = labels[:, None, :] == xp.arange(input.shape[1])[None, :, None]
        mask = None if valid is None else valid[:, None, :].astype(input.dtype)
        return onehot.astype(input.dtype), mask

    def _elementwise(self, x: Tensor, t) -> tuple:
        """Per-element focal losses and focal factors ``f``, both (N, C, L) Tensors."""
        bce = F.binary_cross_entropy_with_logits(x, constant(t), reduction="none")
        focal = (1.0 - mg.exp(-bce)) ** self.gamma
        loss = focal * bce
        if self.alpha is not None:
            loss = loss * constant(self.alpha * t + (1.0 - self.alpha) * (1.0 - t))
        return loss, focal

    def _reduce(self, loss: Tensor, mask, shape: tuple) -> Tensor:
        """Apply the reduction; "multiclass" averages the C one-vs-rest losses. A mean over no
        counted entry is NaN with a zero gradient, as PyTorch's mean of an empty tensor."""
        c = shape[1] if self.mode == "multiclass" else 1
        if self.reduction == "none":
            if self.mode == "multiclass":
                return (loss.sum(dim=1) / c).reshape(shape[:1] + shape[2:])
            return loss.reshape(shape)
        total = loss.sum() / c
        if self.reduction == "sum":
            return total
        if mask is None:
            count = loss.numel() // c
            return total / (count if count else math.nan)
        xp = backend.get_array_module(mask)
        count = mask.sum()
        empty = xp.where(count == 0, xp.nan, 0).astype(mask.dtype)
        return total / constant(xp.maximum(count, 1)) + constant(empty)
