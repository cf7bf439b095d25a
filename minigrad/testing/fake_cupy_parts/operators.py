"""The device array's operators, NumPy-delegating methods and properties, from tables.

Each operator unwraps its other operand (refusing a ``numpy.ndarray``, as CuPy does), runs
NumPy's operator on the data and wraps the result; in-place operators write into the array.
"""

from __future__ import annotations

import operator

import numpy

from minigrad.testing.fake_cupy_parts.arrays import (
    _SCALARS,
    _call,
    _host_array_error,
    _wrap,
    ndarray,
)

_BINARY_OPERATORS = (
    ("add", "+", operator.add, operator.iadd),
    ("sub", "-", operator.sub, operator.isub),
    ("mul", "*", operator.mul, operator.imul),
    ("truediv", "/", operator.truediv, operator.itruediv),
    ("floordiv", "//", operator.floordiv, operator.ifloordiv),
    ("mod", "%", operator.mod, operator.imod),
    ("pow", "**", operator.pow, operator.ipow),
    ("matmul", "@", operator.matmul, operator.imatmul),
    ("and", "&", operator.and_, operator.iand),
    ("or", "|", operator.or_, operator.ior),
    ("xor", "^", operator.xor, operator.ixor),
    ("lshift", "<<", operator.lshift, operator.ilshift),
    ("rshift", ">>", operator.rshift, operator.irshift),
)
_COMPARISONS = (
    ("lt", "<", operator.lt),
    ("le", "<=", operator.le),
    ("eq", "==", operator.eq),
    ("ne", "!=", operator.ne),
    ("gt", ">", operator.gt),
    ("ge", ">=", operator.ge),
)
_UNARY_OPERATORS = (
    ("neg", operator.neg),
    ("pos", operator.pos),
    ("abs", operator.abs),
    ("invert", operator.invert),
)
_METHODS = (
    "all", "any", "argmax", "argmin", "argpartition", "argsort", "astype", "choose", "clip",
    "compress", "conj", "conjugate", "copy", "cumprod", "cumsum", "diagonal", "dot", "fill",
    "flatten", "max", "mean", "min", "nonzero", "partition", "prod", "put", "ravel", "repeat",
    "reshape", "round", "searchsorted", "sort", "squeeze", "std", "sum", "swapaxes", "take",
    "trace", "transpose", "var", "view",
)  # fmt: skip
_PLAIN_PROPERTIES = ("dtype", "ndim", "size", "nbytes", "strides", "itemsize", "flags")
_ARRAY_PROPERTIES = ("T", "mT", "real", "imag")


def _operand(other, symbol: str):
    """NumPy value for the other operand of ``symbol``, or NotImplemented for unknown types.

    Raises:
        TypeError: ``other`` is a ``numpy.ndarray``; CuPy refuses to mix it with device arrays.
    """
    if isinstance(other, ndarray):
        return other._a
    if isinstance(other, numpy.ndarray):
        raise _host_array_error(f"the operator {symbol}")
    if isinstance(other, _SCALARS):
        return other
    return NotImplemented


def _forward_operator(symbol: str, op):
    """The method for ``self <symbol> other``."""

    def method(self, other):
        value = _operand(other, symbol)
        return NotImplemented if value is NotImplemented else _wrap(op(self._a, value))

    return method


def _reflected_operator(symbol: str, op):
    """The method for ``other <symbol> self`` (Python's reflected operator)."""

    def method(self, other):
        value = _operand(other, symbol)
        return NotImplemented if value is NotImplemented else _wrap(op(value, self._a))

    return method


def _inplace_operator(symbol: str, op):
    """The method for ``self <symbol>= other``, writing into the array and returning it."""

    def method(self, other):
        value = _operand(other, symbol + "=")
        if value is NotImplemented:
            return NotImplemented
        op(self._a, value)  # NumPy's in-place operators write into self._a
        return self

    return method


def _unary_operator(op):
    """The method for a unary operator such as ``-self``."""

    def method(self):
        return _wrap(op(self._a))

    return method


def _delegating_method(name: str):
    """A method that runs ``numpy.ndarray.<name>`` on the data and wraps the result."""

    def method(self, *args, **kwargs):
        return _call(getattr(self._a, name), args, kwargs, f"ndarray.{name}", {id(self._a): self})

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Like ``cupy.ndarray.{name}``; computed by ``numpy.ndarray.{name}``."
    return method


def _plain_property(name: str) -> property:
    """A read-only property giving NumPy's value (shape data, dtype, flags)."""
    return property(lambda self: getattr(self._a, name), doc=f"Like ``cupy.ndarray.{name}``.")


def _array_property(name: str) -> property:
    """A read-only property giving NumPy's array attribute as a device array."""
    return property(
        lambda self: _wrap(getattr(self._a, name)), doc=f"Like ``cupy.ndarray.{name}``."
    )


def _install_array_api(cls) -> None:
    """Add the operators, methods and properties of the tables above to ``cls``."""
    for name, symbol, op, inplace in _BINARY_OPERATORS:
        setattr(cls, f"__{name}__", _forward_operator(symbol, op))
        setattr(cls, f"__r{name}__", _reflected_operator(symbol, op))
        setattr(cls, f"__i{name}__", _inplace_operator(symbol, inplace))
    cls.__divmod__ = _forward_operator("divmod", divmod)
    cls.__rdivmod__ = _reflected_operator("divmod", divmod)
    for name, symbol, op in _COMPARISONS:
        setattr(cls, f"__{name}__", _forward_operator(symbol, op))
    for name, op in _UNARY_OPERATORS:
        setattr(cls, f"__{name}__", _unary_operator(op))
    for name in _METHODS:
        setattr(cls, name, _delegating_method(name))
    for name in _PLAIN_PROPERTIES:
        setattr(cls, name, _plain_property(name))
    for name in _ARRAY_PROPERTIES:
        setattr(cls, name, _array_property(name))
