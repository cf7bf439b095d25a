"""Constructor-argument checks shared by the layers, and the factory of their parameters.

Each check fails at construction with an error naming the layer, the argument, what was
expected and what was given (``Conv2d: kernel_size must be positive, got (0, 3)``), where
PyTorch would often fail later, inside the first forward.
"""

from __future__ import annotations

import numbers

import numpy

import minigrad as mg
from layers.parameter import Parameter
from minigrad.ops.arguments import is_int, pair, positive_pair


def check_int(value, name: str, layer: str, minimum: int | None = 1) -> int:
    """``value`` as an int of at least ``minimum`` (None: any); TypeError or ValueError
    naming it."""
    if not is_int(value):
        raise TypeError(f"{layer}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{layer}: {name} must be at least {minimum}, got {value}")
    return int(value)


def check_number(value, name: str, layer: str, low=None, high=None) -> float:
    """``value`` as a real number (not a bool) within [low, high] where given."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{layer}: {name} must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        expected = {(True, True): f"between {low} and {high}", (True, False): f"at least {low}"}
        bounds = expected.get((low is not None, high is not None), f"at most {high}")
        raise ValueError(f"{layer}: {name} must be {bounds}, got {value}")
    return value


def check_bool(value, name: str, layer: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{layer}: {name} must be True or False, got {value!r}")
    return value


def check_choice(value, name: str, layer: str, choices: tuple):
    if value not in choices:
        raise ValueError(f"{layer}: {name} must be one of {choices}, got {value!r}")
    return value


def spatial_pair(value, name: str, layer: str, minimum: int = 1) -> tuple[int, int]:
    """PyTorch's ``_pair`` of an int or a pair, checked to be at least ``minimum``."""
    if minimum is None:
        return pair(value, name, layer)
    return positive_pair(value, name, layer, minimum)


def new_parameter(shape: tuple, device, dtype, layer: str) -> Parameter:
    """An uninitialized Parameter of ``shape`` (float32 on the CPU unless told otherwise);
    the layer's ``reset_parameters`` fills it."""
    dtype = numpy.dtype(mg.float32 if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{layer}: dtype must be a floating-point type, got {dtype}")
    return Parameter(mg.empty(shape, dtype=dtype, device=device or "cpu"))


def new_buffer(fill, shape: tuple, device, dtype) -> mg.Tensor:
    """A buffer of ``shape`` filled with ``fill`` (running statistics, counters)."""
    return mg.full(shape, fill, dtype=dtype, device=device or "cpu")
