"""Tensor factories with PyTorch's names and defaults (float32, device="cpu")."""

from __future__ import annotations

import numpy

from minigrad import backend
from minigrad.ops.arguments import shape_arg as _shape
from minigrad.tensor import Tensor

_FLOAT = numpy.float32


def _leaf(array, requires_grad: bool) -> Tensor:
    return Tensor._wrap(array).requires_grad_(requires_grad)


def _float(dtype):
    """``dtype``, or the default float32 when None (as PyTorch's factories)."""
    return _FLOAT if dtype is None else dtype


def zeros(*size, dtype=_FLOAT, device="cpu", requires_grad: bool = False) -> Tensor:
    xp = backend.array_module(device)
    return _leaf(xp.zeros(_shape(size), dtype=_float(dtype)), requires_grad)


def ones(*size, dtype=_FLOAT, device="cpu", requires_grad: bool = False) -> Tensor:
    xp = backend.array_module(device)
    return _leaf(xp.ones(_shape(size), dtype=_float(dtype)), requires_grad)


def empty(*size, dtype=_FLOAT, device="cpu", requires_grad: bool = False) -> Tensor:
    xp = backend.array_module(device)
    return _leaf(xp.empty(_shape(size), dtype=_float(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad: bool = False) -> Tensor:
    xp = backend.array_module(device)
    if dtype is None:
        dtype = _FLOAT if isinstance(fill_value, float) else numpy.asarray(fill_value).dtype
    return _leaf(xp.full(tuple(size), fill_value, dtype=dtype), requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad: bool = False):
    """Values in [start, end) by ``step``; int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        integral = all(isinstance(v, int) for v in (start, end, step))
        dtype = numpy.int64 if integral else _FLOAT
    xp = backend.array_module(device)
    return _leaf(xp.arange(start, end, step, dtype=dtype), requires_grad)


def randn(*size, dtype=_FLOAT, device="cpu", requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the device's seeded generator (``mg.manual_seed``)."""
    xp = backend.array_module(device)
    data = backend.rng(xp).standard_normal(_shape(size), dtype=_float(dtype))
    return _leaf(data, requires_grad)


def rand(*size, dtype=_FLOAT, device="cpu", requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the device's seeded generator."""
    xp = backend.array_module(device)
    return _leaf(backend.rng(xp).random(_shape(size), dtype=_float(dtype)), requires_grad)


def randint(low, high=None, size=(), dtype=numpy.int64, device="cpu") -> Tensor:
    """Integers in [low, high) from the device's seeded generator."""
    if high is None:
        low, high = 0, low
    xp = backend.array_module(device)
    data = backend.rng(xp).integers(low, high, size=tuple(size))
    return Tensor._wrap(data.astype(dtype, copy=False))
