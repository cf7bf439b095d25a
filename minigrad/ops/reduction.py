"""Reductions (sum, mean, max, min, var, argmax) with ``dim``/``keepdim`` as in PyTorch."""

from __future__ import annotations

import numbers
from collections import namedtuple

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.arguments import normalize_dim
from minigrad.ops.elementwise import maximum, minimum
from minigrad.tensor import Tensor

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def normalize_dims(dim, ndim: int, op: str) -> tuple | None:
    """``dim`` (None, int or sequence) as a sorted tuple of axes; None means all axes."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    axes = tuple(sorted({normalize_dim(d, ndim, op) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dim {dim} names an axis twice")
    return axes


def _expand_back(gy, axes, keepdim: bool, shape: tuple):
    """Broadcast the gradient of a reduction over ``axes`` back to the input ``shape``."""
    xp = backend.get_array_module(gy)
    if not keepdim and axes is not None:
        gy = xp.expand_dims(gy, axes)
    elif axes is None:
        gy = gy.reshape((1,) * len(shape))
    return xp.broadcast_to(gy, shape)


def reduced_count(shape: tuple, axes) -> int:
    """How many elements each output of a reduction over ``axes`` combines."""
    count = 1
    for axis in range(len(shape)) if axes is None else axes:
        count *= shape[axis]
    return count


class Sum(Function):
    def forward(self, x, axes, keepdim):
        self.args = (axes, keepdim, x.shape)
        if x.dtype.kind in "biu":  # PyTorch sums bools and integers into int64
            return x.sum(axis=axes, keepdims=keepdim, dtype=backend.get_array_module(x).int64)
        return x.sum(axis=axes, keepdims=keepdim)

    def backward(self, gy):
        return _expand_back(gy, *self.args)


class Mean(Function):
    def forward(self, x, axes, keepdim):
        self.args = (axes, keepdim, x.shape)
        self.count = reduced_count(x.shape, axes)
        return x.mean(axis=axes, keepdims=keepdim)

    def backward(self, gy):
        return _expand_back(gy / self.count, *self.args)


class Var(Function):
    """Variance with ``correction`` (1 = unbiased, Bessel's correction; 0 = biased)."""

    def forward(self, x, axes, keepdim, correction):
        centered = x - x.mean(axis=axes, keepdims=True)
        denominator = reduced_count(x.shape, axes) - correction
        self.args = (axes, keepdim, x.shape)
        self.scale = 2 / denominator if denominator > 0 else float("nan")
        self.save_for_backward(centered)
        total = (centered * centered).sum(axis=axes, keepdims=keepdim)
        return total / denominator if denominator > 0 else total * float("nan")

    def backward(self, gy):
        (centered,) = self.saved
        return _expand_back(gy, *self.args) * centered * self.scale


class AMax(Function):
    """Max over all of ``axes``; ties share the gradient evenly, as ``torch.amax``."""

    def forward(self, x, axes, keepdim, take_min=False):
        y = x.min(axis=axes, keepdims=True) if take_min else x.max(axis=axes, keepdims=True)
        self.args = (axes, keepdim, x.shape)
        if any(self.needs_input_grad):
            winners = x == y
            self.save_for_backward(winners, winners.sum(axis=axes, keepdims=True).astype(x.dtype))
        return y if keepdim else (y.reshape(()) if axes is None else y.squeeze(axis=axes))

    def backward(self, gy):
        winners, count = self.saved
        return _expand_back(gy, *self.args) * (winners / count)


class MaxAlongDim(Function):
    """Max (or min) along one dim with the index of the first extreme; the gradient goes there."""

    def forward(self, x, dim, keepdim, take_min=False):
        xp = backend.get_array_module(x)
        indices = xp.expand_dims(x.argmin(axis=dim) if take_min else x.argmax(axis=dim), dim)
        values = xp.take_along_axis(x, indices, axis=dim)
        self.dim, self.shape = dim, x.shape
        self.save_for_backward(indices)
        if not keepdim:
            values, indices = values.squeeze(axis=dim), indices.squeeze(axis=dim)
        return values, indices.astype(xp.int64)

    def backward(self, gy):
        (indices,) = self.saved
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        xp.put_along_axis(gx, indices, gy.reshape(indices.shape), axis=self.dim)
        return gx


def sum(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Sum.apply(input, axes=normalize_dims(dim, input.ndim, "sum"), keepdim=keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if input.dtype.kind not in "fc":
        raise TypeError(f"mean: input dtype must be floating point, got {input.dtype}")
    return Mean.apply(input, axes=normalize_dims(dim, input.ndim, "mean"), keepdim=keepdim)


def var(
    input: Tensor,
    dim=None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction=None,
) -> Tensor:
    """Variance over ``dim``; ``correction`` (if given) overrides ``unbiased``, as in torch."""
    if correction is None:
        correction = 1 if unbiased else 0
    axes = normalize_dims(dim, input.ndim, "var")
    return Var.apply(input, axes=axes, keepdim=keepdim, correction=correction)


def _extreme(op: str, input: Tensor, dim, keepdim: bool, take_min: bool):
    if input.numel() == 0:
        raise RuntimeError(f"{op}: the input is empty (shape {input.shape})")
    if dim is None:
        return AMax.apply(input, axes=None, keepdim=False, take_min=take_min)
    axis = normalize_dim(dim, input.ndim, op)
    return ValuesIndices(*MaxAlongDim.apply(input, dim=axis, keepdim=keepdim, take_min=take_min))


def max(input: Tensor, dim=None, keepdim: bool = False):
    """The largest value, or with ``dim`` the (values, indices) named tuple, as ``torch.max``;
    ``max(a, b)`` with a tensor ``b`` is the elementwise maximum."""
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    return _extreme("max", input, dim, keepdim, take_min=False)


def min(input: Tensor, dim=None, keepdim: bool = False):
    """The smallest value, or with ``dim`` the (values, indices) named tuple, as ``torch.min``;
    ``min(a, b)`` with a tensor ``b`` is the elementwise minimum."""
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    return _extreme("min", input, dim, keepdim, take_min=True)


def amax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return AMax.apply(input, axes=normalize_dims(dim, input.ndim, "amax"), keepdim=keepdim)


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return Tensor._wrap(input.data.argmax().astype(input.xp.int64))
    axis = normalize_dim(dim, input.ndim, "argmax")
    out = input.data.argmax(axis=axis)
    return Tensor._wrap(
        (input.xp.expand_dims(out, axis) if keepdim else out).astype(input.xp.int64)
    )
