"""Argument parsing shared by the ops: dims, shapes and the int-or-pair arguments of the
spatial ops, each failing with an error that names the op, the argument and the value."""

from __future__ import annotations

import numbers


def is_int(value) -> bool:
    """True for Python and NumPy integers, not for bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def pair(value, name: str, op: str) -> tuple[int, int]:
    """An int, or a sequence of one or two ints, as a pair (PyTorch's ``_pair``)."""
    items = tuple(value) if isinstance(value, tuple | list) else (value,)
    if len(items) not in (1, 2) or not all(is_int(v) for v in items):
        raise TypeError(f"{op}: {name} must be an int or a tuple of two ints, got {value!r}")
    return (int(items[0]), int(items[-1]))


def positive_pair(value, name: str, op: str, minimum: int = 1) -> tuple[int, int]:
    """:func:`pair`, checked to be at least ``minimum`` (1: positive, 0: non-negative)."""
    result = pair(value, name, op)
    if min(result) < minimum:
        bound = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {bound}, got {value!r}")
    return result


def normalize_dim(dim, ndim: int, op: str) -> int:
    """``dim`` as a non-negative axis, or an IndexError naming the op and the valid range."""
    if not is_int(dim):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    low, high = -max(ndim, 1), max(ndim, 1) - 1
    if not low <= dim <= high:
        raise IndexError(f"{op}: dim {dim} is out of range [{low}, {high}] for a {ndim}-d tensor")
    return int(dim) % max(ndim, 1)


def shape_arg(shape) -> tuple:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` as PyTorch does."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)
