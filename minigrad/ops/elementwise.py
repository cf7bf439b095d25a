"""Elementwise arithmetic and maths with broadcasting, and device/dtype copies.

Binary ops follow PyTorch: shapes broadcast (a mismatch raises naming both shapes), a float
and an integer operand give the float's dtype, float32 with float64 gives float64, and a
Python scalar takes the tensor's dtype. Gradients come back in the broadcast shape; the
autograd walk sums them down to each input's shape.
"""

from __future__ import annotations

import numpy

from minigrad import backend
from minigrad.autograd import Function
from minigrad.tensor import Tensor, operand


def broadcast_shape(op: str, *shapes: tuple) -> tuple:
    """The broadcast of ``shapes``, or a ValueError naming the op and both shapes."""
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            described = " and ".join(str(tuple(s)) for s in shapes)
            raise ValueError(
                f"{op}: shapes {described} are not broadcastable "
                f"(dim {axis}: sizes {sorted(sizes)})"
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _category(dtype: numpy.dtype) -> int:
    return {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}[dtype.kind]


def _result_dtype(a: Tensor, b: Tensor) -> numpy.dtype:
    """PyTorch's promotion: the higher category (bool < int < float) decides; within one
    category a 0-d tensor (or scalar) yields to a dimensioned tensor, else types promote."""
    ka, kb = _category(a.dtype), _category(b.dtype)
    if ka != kb:
        return a.dtype if ka > kb else b.dtype
    if (a.ndim == 0) != (b.ndim == 0):
        return b.dtype if a.ndim == 0 else a.dtype
    return numpy.promote_types(a.dtype, b.dtype)


def binary_operands(op: str, a, b) -> tuple[Tensor, Tensor]:
    """Two tensors with a common dtype on one device, checked to broadcast."""
    if not isinstance(a, Tensor):
        a = operand(a, b)
    b = operand(b, a)
    if a.device != b.device:
        raise backend.DeviceError(
            f"{op}: expected both tensors on the same device, got {a.device} {a.shape} "
            f"and {b.device} {b.shape}"
        )
    broadcast_shape(op, a.shape, b.shape)
    dtype = _result_dtype(a, b)
    return (a if a.dtype == dtype else a.to(dtype)), (b if b.dtype == dtype else b.to(dtype))


class ToCopy(Function):
    """Copy to another device and/or dtype; the gradient goes back the same way."""

    def forward(self, x, device=None, dtype=None):
        self.source = (backend.device_of(x), x.dtype)
        y = x if device is None else backend.to_device(x, device)
        if dtype is not None and y.dtype != numpy.dtype(dtype):
            y = y.astype(dtype)
        return y.copy() if y is x else y

    def backward(self, gy):
        device, dtype = self.source
        return backend.to_device(gy, device).astype(dtype, copy=False)


def to_copy(x: Tensor, device=None, dtype=None) -> Tensor:
    """``x`` on ``device`` with ``dtype`` (either may be None: keep), differentiable."""
    if device is not None:
        device = backend.canonical_device(device)
        backend.array_module(device)
    return ToCopy.apply(x, device=device, dtype=dtype)


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, -gy


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, gy):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        return (gy * b if need_a else None), (gy * a if need_b else None)


class Div(Function):
    def forward(self, a, b):
        y = a / b
        self.save_for_backward(b, y)
        return y

    def backward(self, gy):
        b, y = self.saved
        ga = gy / b
        return ga, (-ga * y if self.needs_input_grad[1] else None)


class Pow(Function):
    """``a ** b`` for tensors, with PyTorch's gradients at the edges: the base gets 0 where
    the exponent is 0; the exponent gets 0 where the base is 0 and the exponent >= 0, and NaN
    where the base is negative (the log is undefined there)."""

    def forward(self, a, b):
        y = a**b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved
        xp = backend.get_array_module(a)
        need_a, need_b = self.needs_input_grad
        return (self._base_grad(xp, gy, a, b) if need_a else None), (
            self._exponent_grad(xp, gy, a, b, y) if need_b else None
        )

    @staticmethod
    def _base_grad(xp, gy, a, b):
        singular = (a == 0) & (b < 1)
        ga = gy * b * xp.where(singular, 1, a) ** (b - 1)
        infinite = xp.copysign(xp.full((), xp.inf, dtype=gy.dtype), gy * b)
        return xp.where(singular, xp.where(b == 0, 0, infinite), ga).astype(gy.dtype, copy=False)

    @staticmethod
    def _exponent_grad(xp, gy, a, b, y):
        log_a = xp.log(xp.where(a > 0, a, 1))
        gb = xp.where(a > 0, gy * y * log_a, 0)
        gb = xp.where(a < 0, xp.nan, gb)
        infinite = xp.copysign(xp.full((), xp.inf, dtype=gy.dtype), -gy)
        return xp.where((a == 0) & (b < 0), infinite, gb).astype(gy.dtype, copy=False)


class PowScalar(Function):
    """``x ** e`` for a Python-number exponent."""

    def forward(self, x, exponent):
        self.exponent = exponent
        self.save_for_backward(x)
        return x**exponent

    def backward(self, gy):
        (x,) = self.saved
        e = self.exponent
        if e == 0:
            return gy * 0
        return gy * e * x ** (e - 1)


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Exp(Function):
    def forward(self, x):
        y = backend.get_array_module(x).exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        return gy * self.saved[0]


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.saved[0]


class Sqrt(Function):
    def forward(self, x):
        y = backend.get_array_module(x).sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        return gy / (2 * self.saved[0])


class Abs(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return backend.get_array_module(x).abs(x)

    def backward(self, gy):
        return gy * backend.get_array_module(gy).sign(self.saved[0])


class Maximum(Function):
    """Elementwise max; at ties each input gets half the gradient, as in PyTorch."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return backend.get_array_module(a).maximum(a, b)

    def backward(self, gy):
        return _split_by_winner(gy, *self.saved)


class Minimum(Function):
    """Elementwise min; at ties each input gets half the gradient, as in PyTorch."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return backend.get_array_module(a).minimum(a, b)

    def backward(self, gy):
        a, b = self.saved
        return _split_by_winner(gy, b, a)


def _split_by_winner(gy, a, b):
    """Gradient of max(a, b): all to the larger, half each at ties."""
    xp = backend.get_array_module(gy)
    share_a = xp.where(a > b, 1, xp.where(a == b, 0.5, 0)).astype(gy.dtype)
    return gy * share_a, gy * (1 - share_a)


class Clamp(Function):
    def forward(self, x, min=None, max=None):
        xp = backend.get_array_module(x)
        keep = xp.ones(x.shape, dtype=bool)
        if min is not None:
            keep &= x >= min
        if max is not None:
            keep &= x <= max
        self.save_for_backward(keep)
        return xp.clip(x, min, max).astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * self.saved[0]


class Where(Function):
    def forward(self, a, b, condition):
        self.save_for_backward(condition)
        return backend.get_array_module(a).where(condition, a, b)

    def backward(self, gy):
        (condition,) = self.saved
        xp = backend.get_array_module(gy)
        zero = xp.zeros((), dtype=gy.dtype)
        need_a, need_b = self.needs_input_grad
        return (
            xp.where(condition, gy, zero) if need_a else None,
            xp.where(condition, zero, gy) if need_b else None,
        )


def add(a, b) -> Tensor:
    return Add.apply(*binary_operands("add", a, b))


def sub(a, b) -> Tensor:
    return Sub.apply(*binary_operands("sub", a, b))


def mul(a, b) -> Tensor:
    return Mul.apply(*binary_operands("mul", a, b))


def div(a, b) -> Tensor:
    a, b = binary_operands("div", a, b)
    if a.dtype.kind not in "fc":
        a, b = a.to(numpy.float32), b.to(numpy.float32)
    return Div.apply(a, b)


def pow(a, b) -> Tensor:
    """``a ** b``: a Python-number exponent keeps ``a``'s dtype."""
    if isinstance(a, Tensor) and isinstance(b, int | float) and not isinstance(b, bool):
        return PowScalar.apply(a, exponent=b)
    return Pow.apply(*binary_operands("pow", a, b))


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def abs(x: Tensor) -> Tensor:
    return Abs.apply(x)


def maximum(a, b) -> Tensor:
    return Maximum.apply(*binary_operands("maximum", a, b))


def minimum(a, b) -> Tensor:
    return Minimum.apply(*binary_operands("minimum", a, b))


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Limit ``x`` to [min, max]; the gradient passes where ``min <= x <= max``."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if x.dtype.kind not in "fc" and any(isinstance(b, float) for b in (min, max)):
        x = x.to(numpy.float32)  # PyTorch promotes an integer tensor with float bounds
    return Clamp.apply(x, min=min, max=max)


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` else ``other``, broadcasting all three, as ``torch.where``.

    ``input`` and ``other`` may be tensors or Python scalars.
    """
    ref = next((v for v in (input, other, condition) if isinstance(v, Tensor)), None)
    if ref is None:
        raise TypeError("where: condition, input or other must be a Tensor")
    condition = operand(condition, ref)
    if condition.dtype != numpy.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got dtype {condition.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = operand(input, condition)
    a, b = binary_operands("where", input, other)
    broadcast_shape("where", condition.shape, a.shape, b.shape)
    if condition.device != a.device:
        raise backend.DeviceError(
            f"where: condition is on {condition.device} but the values are on {a.device}"
        )
    return Where.apply(a, b, condition=condition.data)


_OPERAND_TYPES = (Tensor, bool, int, float, numpy.generic)


def compare(op: str, a, b):
    """An elementwise comparison (``eq ne lt le gt ge``): a bool tensor, no gradient.

    Returns NotImplemented for operands that are not tensors, numbers or arrays, so that
    ``t == None`` is False and ``t in list`` works, as in PyTorch.
    """
    if not isinstance(b, _OPERAND_TYPES) and not backend.is_array(b):
        return NotImplemented
    a, b = binary_operands(op, a, b)
    ufunc = {
        "eq": "equal",
        "ne": "not_equal",
        "lt": "less",
        "le": "less_equal",
        "gt": "greater",
        "ge": "greater_equal",
    }[op]
    return Tensor._wrap(getattr(a.xp, ufunc)(a.data, b.data))
