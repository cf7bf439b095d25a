"""Dropout and channel-wise dropout (dropout2d), with PyTorch's scaling by ``1 / (1 - p)``.

The masks come from the backend's seeded generator (``backend.rng(xp)``), so
``mg.manual_seed(s)`` makes them reproducible on each device; they cannot match PyTorch's
random stream. The mask is stored already scaled, so the backward is one multiplication.
"""

from __future__ import annotations

import numbers

from minigrad import autograd, backend
from minigrad.autograd import Function
from minigrad.ops.checks import check_float_tensor
from minigrad.tensor import Tensor


class Dropout(Function):
    """``y = x * mask``, ``mask = (u >= p) / (1 - p)`` with ``u`` uniform in [0, 1).

    ``mask_shape`` is the input's shape (dropout) or (N, C, 1, ...) (whole channels); it
    broadcasts against ``x``.
    """

    def forward(self, x, p, mask_shape):
        mask = _scaled_mask(x, p, mask_shape)
        self.save_for_backward(mask)
        return x * mask

    def backward(self, gy):
        return gy * self.saved[0]


def _scaled_mask(x, p: float, shape: tuple):
    """Keep each entry with probability ``1 - p``, scaled by ``1 / (1 - p)`` (all zeros at p=1)."""
    xp = backend.get_array_module(x)
    draw_dtype = x.dtype if x.dtype.itemsize >= 4 else "float32"
    keep = backend.rng(xp).random(shape, dtype=draw_dtype) >= p
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    return keep.astype(x.dtype) * x.dtype.type(scale)


def _check_args(op: str, input: Tensor, p) -> None:
    check_float_tensor(op, "input", input)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p!r}")


def _apply(input: Tensor, p: float, mask_shape: tuple, inplace: bool) -> Tensor:
    """Run the op; with ``inplace`` and no graph to record, write the result into ``input``."""
    out = Dropout.apply(input, p=float(p), mask_shape=mask_shape)
    if inplace and not autograd.is_grad_enabled():
        input.data[...] = out.data
        return input
    return out


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    As ``torch.nn.functional.dropout``. With ``training=False`` (or ``p=0``) the input is
    returned unchanged. ``inplace=True`` overwrites ``input`` only under ``no_grad``; in grad
    mode the result is a new tensor, since ``input`` may be saved by another op's backward
    (there are no version counters to detect that overwrite, as PyTorch has).

    Args:
        input: floating tensor of any shape.
        p: probability of zeroing an element, in [0, 1].
        training: apply dropout (True) or return ``input`` (False).
        inplace: write the result into ``input`` (see above).

    Shapes:
        input: (*); output: (*), the same shape.

    Raises:
        ValueError: ``p`` outside [0, 1].
    """
    _check_args("dropout", input, p)
    if not training or p == 0:
        return input
    return _apply(input, p, input.shape, inplace)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    As ``torch.nn.functional.dropout2d``: one draw per (n, c) plane, a mask of shape
    (N, C, 1, 1). A 3-D input is read as (N, C, L), as PyTorch currently does (one draw per
    (n, c) row). ``training`` and ``inplace`` work as in :func:`dropout`.

    Args:
        input: (N, C, H, W) or (N, C, L) floating tensor.
        p: probability of zeroing a channel, in [0, 1].
        training: apply dropout (True) or return ``input`` (False).
        inplace: write the result into ``input`` under ``no_grad``.

    Shapes:
        input: (N, C, H, W) or (N, C, L); output: the same shape.

    Raises:
        ValueError: ``p`` outside [0, 1], or an input that is not 3-D or 4-D.
    """
    _check_args("dropout2d", input, p)
    if input.ndim not in (3, 4):
        raise ValueError(
            f"dropout2d: expected a 4-D (N, C, H, W) or 3-D (N, C, L) input, got shape "
            f"{input.shape}"
        )
    if not training or p == 0:
        return input
    return _apply(input, p, input.shape[:2] + (1,) * (input.ndim - 2), inplace)
