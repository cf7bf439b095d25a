"""Classification losses with PyTorch's formulas: cross entropy, NLL, BCE with logits.

``cross_entropy`` fuses a numerically stable log-softmax over the class axis with the
(weighted, label-smoothed) negative log-likelihood in one Function; its backward is
``softmax - onehot``, scaled. Inputs are (N, C, d1, ..., dk) with class-index targets
(N, d1, ..., dk), viewed inside as (N, C, L) and (N, 1, L). Ignored targets are replaced by
class 0 before gathering and masked out of the loss, the weights and the gradient. Like
PyTorch's, ``cross_entropy`` also takes class probabilities (soft labels) of the input's shape.

Target range checks run only for NumPy arrays: on the GPU they would copy the targets to the
host on every call, so an out-of-range class there gives undefined values instead of an error.
"""

from __future__ import annotations

import math

from minigrad import autograd, backend
from minigrad.autograd import Function
from minigrad.ops.checks import check_float_tensor, check_optional_tensor
from minigrad.ops.elementwise import broadcast_shape
from minigrad.tensor import Tensor

REDUCTIONS = ("none", "mean", "sum")


def _ncl(shape: tuple) -> tuple:
    """(N, C, L) for an (N, C, d1, ..., dk) or (C,) input, L = d1 * ... * dk (spelled out, as
    a reshape with -1 fails for N = 0)."""
    if len(shape) == 1:
        return 1, shape[0], 1
    return shape[0], shape[1], math.prod(shape[2:])


def _per_element_shape(shape: tuple) -> tuple:
    """The shape of the per-element losses of an input of ``shape``: (N, d1, ..., dk), or ()
    for a (C,) input. Class-index targets have it too."""
    return () if len(shape) == 1 else shape[:1] + shape[2:]


def _class_views(x, target, ignore_index: int) -> tuple:
    """``x`` as (N, C, L); the target as int64 (N, 1, L) with ignored entries set to class 0;
    the float mask (N, 1, L) of entries that count."""
    xp = backend.get_array_module(x)
    n, c, length = _ncl(x.shape)
    x3 = x.reshape(n, c, length)
    t = target.reshape(n, 1, length).astype(xp.int64, copy=False)
    valid = t != ignore_index
    return x3, xp.where(valid, t, 0), valid.astype(x.dtype)


def _reduce(losses, total_weight, reduction: str, target_shape: tuple):
    """Apply ``reduction`` to per-element losses; the mean divides by ``total_weight`` (the
    summed weights, or the element count for probability targets; NaN, without a warning,
    when nothing counts, as in PyTorch)."""
    xp = backend.get_array_module(losses)
    if reduction == "none":
        return losses.reshape(target_shape)
    total = losses.sum()
    if reduction == "sum":
        return total
    return total / xp.where(total_weight == 0, xp.nan, total_weight)


def _loss_coefficients(gy, total_weight, reduction: str, input_shape: tuple):
    """d(output)/d(per-element loss) times ``gy``, shaped to broadcast over (N, 1, L)."""
    xp = backend.get_array_module(gy)
    if reduction == "none":
        n, _, length = _ncl(input_shape)
        return gy.reshape(n, 1, length)
    if reduction == "sum":
        return gy
    return gy / xp.where(total_weight == 0, 1, total_weight)


class CrossEntropy(Function):
    """log_softmax over the class axis + weighted, label-smoothed NLL, in one pass.

    Per element (n, l) with target t and smoothing ``eps`` (zero when ignored):
    ``loss = (1 - eps) * w[t] * (-logp[t]) + eps / C * sum_c w[c] * (-logp[c])``; the mean
    divides by ``sum w[t]`` over counted elements (PyTorch's rule, also with smoothing).
    """

    def forward(self, x, target, weight, ignore_index, reduction, label_smoothing):
        xp = backend.get_array_module(x)
        x3, t, valid = _class_views(x, target, ignore_index)
        c = x3.shape[1]
        w = None if weight is None else weight.astype(x.dtype, copy=False)
        shifted = x3 - x3.max(axis=1, keepdims=True)
        picked = xp.take_along_axis(shifted, t, axis=1)
        smoothed = None
        if label_smoothing > 0:
            weighted = shifted if w is None else shifted * w[:, None]
            smoothed = weighted.sum(axis=1, keepdims=True)
        e = xp.exp(shifted, out=shifted)
        s = e.sum(axis=1, keepdims=True)
        lse = xp.log(s)
        w_t = valid if w is None else w[t] * valid
        losses = w_t * (lse - picked)
        w_sum = x.dtype.type(c) if w is None else w.sum()
        if smoothed is not None:
            smooth = valid * (w_sum * lse - smoothed)
            losses = (1 - label_smoothing) * losses + (label_smoothing / c) * smooth
        total_weight = w_t.sum()
        self.args = (x.shape, reduction, label_smoothing)
        self.save_for_backward(e, s, t, valid, w, w_t, w_sum, total_weight)
        return _reduce(losses, total_weight, reduction, target.shape)

    def backward(self, gy):
        e, s, t, valid, w, w_t, w_sum, total_weight = self.saved
        xp = backend.get_array_module(gy)
        shape, reduction, eps = self.args
        c = e.shape[1]
        g = _loss_coefficients(gy, total_weight, reduction, shape)
        pull = (1 - eps) * w_t + (eps / c) * w_sum * valid
        gx = e * (g * pull / s)
        if eps > 0:
            uniform = g * valid * (eps / c)
            gx -= uniform if w is None else uniform * w[:, None]
        at_target = xp.take_along_axis(gx, t, axis=1)
        xp.put_along_axis(gx, t, at_target - g * (1 - eps) * w_t, axis=1)
        return gx.reshape(shape), None


class CrossEntropyWithProbabilities(Function):
    """log_softmax over the class axis against class probabilities ``p`` (soft labels).

    Per element (n, l), with ``q = (1 - eps) * p + eps / C`` and ``logs = log_softmax(x)``:
    ``loss = -sum_c w[c] * q[c] * logs[c]``; the mean divides by N * L (PyTorch's rule for
    probability targets: the weights do not enter the divisor). Gradients:
    ``dx = g * (softmax * sum_c w q - w q)`` and ``dp = -g * (1 - eps) * w * logs``.
    """

    def forward(self, x, target, weight, reduction, label_smoothing):
        xp = backend.get_array_module(x)
        n, c, length = _ncl(x.shape)
        x3 = x.reshape(n, c, length)
        q = target.reshape(n, c, length)
        if label_smoothing > 0:
            q = (1 - label_smoothing) * q + label_smoothing / c
        wq = q if weight is None else q * weight.astype(x.dtype, copy=False)[:, None]
        shifted = x3 - x3.max(axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        losses = -(wq * log_probs).sum(axis=1, keepdims=True)
        count = x.dtype.type(losses.size)
        self.args = (x.shape, reduction, label_smoothing, count)
        self.save_for_backward(log_probs, wq, weight)
        return _reduce(losses, count, reduction, _per_element_shape(x.shape))

    def backward(self, gy):
        log_probs, wq, weight = self.saved
        xp = backend.get_array_module(gy)
        shape, reduction, eps, count = self.args
        g = _loss_coefficients(gy, count, reduction, shape)
        gx = gp = None
        if self.needs_input_grad[0]:
            gx = (g * (xp.exp(log_probs) * wq.sum(axis=1, keepdims=True) - wq)).reshape(shape)
        if self.needs_input_grad[1]:
            w = 1 if weight is None else weight.astype(log_probs.dtype, copy=False)[:, None]
            gp = (-(1 - eps) * g * w * log_probs).reshape(shape)
        return gx, gp


class NLLLoss(Function):
    """``loss = -w[t] * input[t]`` per element (log-probabilities); mean divides by ``sum w[t]``."""

    def forward(self, x, target, weight, ignore_index, reduction):
        xp = backend.get_array_module(x)
        x3, t, valid = _class_views(x, target, ignore_index)
        w_t = valid if weight is None else weight.astype(x.dtype, copy=False)[t] * valid
        losses = -w_t * xp.take_along_axis(x3, t, axis=1)
        total_weight = w_t.sum()
        self.args = (x.shape, x3.shape, reduction)
        self.save_for_backward(t, w_t, total_weight)
        return _reduce(losses, total_weight, reduction, target.shape)

    def backward(self, gy):
        t, w_t, total_weight = self.saved
        xp = backend.get_array_module(gy)
        shape, shape3, reduction = self.args
        g = _loss_coefficients(gy, total_weight, reduction, shape)
        gx = xp.zeros(shape3, dtype=w_t.dtype)
        xp.put_along_axis(gx, t, -g * w_t, axis=1)
        return gx.reshape(shape), None


class BinaryCrossEntropyWithLogits(Function):
    """``loss = (1 - t) * x + (1 + (pw - 1) * t) * softplus(-x)``, times ``weight``.

    ``softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)`` never overflows. Gradients:
    ``dx = (1 - t) - (1 + (pw - 1) t) * sigmoid(-x)``, ``dt = -x + (pw - 1) * softplus(-x)``.
    """

    def forward(self, x, t, weight, pos_weight, reduction):
        xp = backend.get_array_module(x)
        e = xp.exp(-xp.abs(x))
        softplus_neg = xp.log1p(e) + xp.maximum(-x, 0)
        log_weight = None if pos_weight is None else 1 + (pos_weight - 1) * t
        losses = (1 - t) * x + (softplus_neg if log_weight is None else log_weight * softplus_neg)
        if weight is not None:
            losses = losses * weight
        self.args = (reduction, x.size)
        self.save_for_backward(x, t, e, softplus_neg, log_weight, weight, pos_weight)
        if reduction == "none":
            return losses
        return losses.sum() if reduction == "sum" else losses.mean()

    def backward(self, gy):
        x, t, e, softplus_neg, log_weight, weight, pos_weight = self.saved
        xp = backend.get_array_module(gy)
        reduction, count = self.args
        g = gy / count if reduction == "mean" else gy
        if weight is not None:
            g = g * weight
        gx = gt = None
        if self.needs_input_grad[0]:
            sigmoid_neg = xp.where(x >= 0, e, 1) / (1 + e)
            pull = sigmoid_neg if log_weight is None else log_weight * sigmoid_neg
            gx = g * ((1 - t) - pull)
        if self.needs_input_grad[1]:
            gt = -x if pos_weight is None else (pos_weight - 1) * softplus_neg - x
            gt = g * gt
        return gx, gt


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction {REDUCTIONS}")


def _check_constant(op: str, name: str, t, input: Tensor) -> None:
    """``t`` is None or a float Tensor on the input's device that needs no gradient."""
    if t is None:
        return
    check_optional_tensor(op, name, t, input)
    check_float_tensor(op, name, t)
    if t.requires_grad and autograd.is_grad_enabled():
        raise RuntimeError(
            f"{op} is not differentiable with respect to argument '{name}'; "
            "this input cannot have requires_grad=True (detach it)"
        )


def _classes(input: Tensor) -> int:
    """C of an (N, C, d1, ..., dk) or (C,) input."""
    return _ncl(input.shape)[1]


def _check_class_weight(op: str, weight, input: Tensor) -> None:
    """``weight`` is None or a constant (C,) float Tensor beside the input."""
    _check_constant(op, "weight", weight, input)
    classes = _classes(input)
    if weight is not None and weight.shape != (classes,):
        raise ValueError(
            f"{op}: weight must have shape ({classes},) for {classes} classes, got {weight.shape}"
        )


def _check_logits(op: str, input: Tensor, target) -> None:
    """Input and target are Tensors, the input a floating (C,) or (N, C, *) one."""
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{op}: input and target must be Tensors")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {input.dtype}")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have shape (C,) or (N, C, *), got a 0-d tensor")


def _check_class_target(op: str, input: Tensor, target, weight, ignore_index: int) -> None:
    """Input (N, C, *) float, target (N, *) integer class indices, weight (C,)."""
    _check_logits(op, input, target)
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: target must hold integer class indices (int64), got dtype {target.dtype}"
        )
    expected = _per_element_shape(input.shape)
    if target.shape != expected:
        raise ValueError(
            f"{op}: target of shape {target.shape} does not match input of shape {input.shape}: "
            f"expected target shape {expected} for input (N, C, d1, ..., dk)"
        )
    if target.device != input.device:
        raise backend.DeviceError(
            f"{op}: target is on {target.device} but input is on {input.device}"
        )
    _check_class_weight(op, weight, input)
    if backend.is_cpu_array(target.data):
        _check_target_range(op, target.data, _classes(input), ignore_index)


def _check_probability_target(
    op: str, input: Tensor, target: Tensor, weight, ignore_index: int
) -> None:
    """Class probabilities: the input's shape, dtype and device; no ``ignore_index``."""
    _check_logits(op, input, target)
    if target.dtype != input.dtype:
        raise TypeError(
            f"{op}: class-probability target must have the input's floating dtype, got input "
            f"{input.dtype} and target {target.dtype} (convert the target with .to(input.dtype))"
        )
    if target.shape != input.shape:
        raise ValueError(
            f"{op}: class-probability target of shape {target.shape} must have the input's "
            f"shape {input.shape} (or pass integer class indices of shape (N, d1, ..., dk))"
        )
    if target.device != input.device:
        raise backend.DeviceError(
            f"{op}: target is on {target.device} but input is on {input.device}"
        )
    if ignore_index != -100:
        raise ValueError(
            f"{op}: ignore_index is not supported for class-probability targets, got "
            f"ignore_index={ignore_index} (mask the loss with reduction='none' instead)"
        )
    _check_class_weight(op, weight, input)


def _check_target_range(op: str, t, classes: int, ignore_index: int) -> None:
    """Every target is a class in [0, classes) or ``ignore_index`` (host arrays only)."""
    xp = backend.get_array_module(t)
    bad = (t != ignore_index) & ((t < 0) | (t >= classes))
    if bad.any():
        position = tuple(int(i) for i in xp.unravel_index(xp.flatnonzero(bad)[0], t.shape))
        raise ValueError(
            f"{op}: target {int(t[position])} at position {position} is out of bounds: "
            f"expected a class index in [0, {classes - 1}] or ignore_index={ignore_index}"
        )


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy of logits and class indices or probabilities, as PyTorch's.

    Per element, with ``p = softmax(input)`` over dim 1, ``eps = label_smoothing``:

    - class indices ``t``: ``loss = (1 - eps) * w[t] * -log p[t] + eps / C * sum_c w[c] *
      -log p[c]``, and 0 where ``t == ignore_index``; ``"mean"`` divides the sum by the sum of
      ``w[t]`` over the counted elements (NaN when there are none);
    - class probabilities ``q`` (soft labels, the input's shape, dtype): ``loss = -sum_c w[c] *
      ((1 - eps) * q[c] + eps / C) * log p[c]``; ``"mean"`` divides by the number of elements
      N * d1 * ... * dk. The target gets a gradient, as in PyTorch.

    ``"sum"`` sums, ``"none"`` keeps the shape (N, d1, ..., dk).

    Args:
        input: (N, C, d1, ..., dk) or (C,) logits, floating.
        target: (N, d1, ..., dk) or () integer class indices in [0, C) or ``ignore_index``;
            or class probabilities of the input's shape and dtype.
        weight: optional (C,) class weights (no gradient).
        ignore_index: target value that contributes neither loss nor gradient (class indices
            only).
        reduction: "mean", "sum" or "none".
        label_smoothing: ``eps`` in [0, 1].

    Shapes:
        output: () for "mean"/"sum"; (N, d1, ..., dk) for "none".

    Raises:
        TypeError: a target neither integer nor of the input's dtype. ValueError: shapes that
        don't match (naming both), a target out of range (naming it and its position; checked
        on the CPU only), ``ignore_index`` with probabilities, a bad ``reduction`` or
        ``label_smoothing``.
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"
        )
    label_smoothing = float(label_smoothing)
    weight_data = None if weight is None else weight.data
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        _check_probability_target("cross_entropy", input, target, weight, ignore_index)
        return CrossEntropyWithProbabilities.apply(
            input, target, weight=weight_data, reduction=reduction, label_smoothing=label_smoothing
        )
    _check_class_target("cross_entropy", input, target, weight, ignore_index)
    return CrossEntropy.apply(
        input,
        target,
        weight=weight_data,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities, as ``torch.nn.functional.nll_loss``.

    Per element ``loss = -w[t] * input[n, t, d...]`` (0 where ``t == ignore_index``);
    ``"mean"`` divides the sum by the sum of ``w[t]`` over the counted elements.

    Args:
        input: (N, C, d1, ..., dk) or (C,) log-probabilities, floating.
        target: (N, d1, ..., dk) or () integer class indices.
        weight: optional (C,) class weights (no gradient).
        ignore_index: target value that contributes neither loss nor gradient.
        reduction: "mean", "sum" or "none".

    Shapes:
        output: () for "mean"/"sum"; the target's shape for "none".

    Raises:
        As :func:`cross_entropy`.
    """
    _check_reduction("nll_loss", reduction)
    _check_class_target("nll_loss", input, target, weight, ignore_index)
    return NLLLoss.apply(
        input,
        target,
        weight=None if weight is None else weight.data,
        ignore_index=ignore_index,
        reduction=reduction,
    )


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Sigmoid + binary cross entropy in one stable formula, as PyTorch's twin.

    ``loss = (1 - t) * x + (1 + (pw - 1) * t) * log(1 + exp(-x))``, times ``weight``, with
    ``log(1 + exp(-x))`` computed as ``log1p(exp(-|x|)) + max(-x, 0)``. ``pos_weight`` and
    ``weight`` broadcast against the input as in PyTorch (a per-class ``pos_weight`` for
    (N, C, H, W) input has shape (C, 1, 1)); neither receives a gradient. The target does.

    Args:
        input: logits of any shape, floating.
        target: probabilities in [0, 1], the input's shape and dtype.
        weight: optional rescaling of each element, broadcastable to the input.
        pos_weight: optional weight of positive examples, broadcastable to the input.
        reduction: "mean", "sum" or "none".

    Shapes:
        output: () for "mean"/"sum"; the input's shape for "none".

    Raises:
        ValueError: target shape differs from the input's, or a weight does not broadcast
        to it. TypeError: a target that is not floating or not of the input's dtype.
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{op}: input and target must be Tensors")
    if input.dtype.kind != "f" or target.dtype != input.dtype:
        raise TypeError(
            f"{op}: input and target must share one floating dtype, got {input.dtype} and "
            f"{target.dtype} (convert the target with .to(input.dtype))"
        )
    if target.shape != input.shape:
        raise ValueError(
            f"{op}: target size {target.shape} must be the same as input size {input.shape}"
        )
    for name, t in (("weight", weight), ("pos_weight", pos_weight)):
        _check_constant(op, name, t, input)
        if t is not None and broadcast_shape(op, t.shape, input.shape) != input.shape:
            raise ValueError(
                f"{op}: {name} of shape {t.shape} does not broadcast to input size {input.shape}"
            )
    return BinaryCrossEntropyWithLogits.apply(
        input,
        target,
        weight=None if weight is None else weight.data.astype(input.dtype, copy=False),
        pos_weight=None if pos_weight is None else pos_weight.data.astype(input.dtype, copy=False),
        reduction=reduction,
    )
