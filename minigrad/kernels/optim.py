"""Fused optimizer updates on CUDA: one ``cupy.ElementwiseKernel`` launch per parameter.

The ``xp`` update of an optimizer (``sgd_update``, ``adam_update``, ``rmsprop_update`` in
:mod:`minigrad.optim`) is about ten array ops, each a kernel launch that reads and writes
whole arrays; the kernels here read the parameter, its gradient and its state once and write
them once. Each kernel calls a device function of :data:`PREAMBLE` that mirrors the ``xp``
update line by line (it stays the reference: a ``gpu``-marked test compares the two, and
the same source is compiled for the host and compared with it on the CPU).

Each entry of :data:`KERNELS` names its scalar arguments after the fields of the optimizer's
coefficients (``AdamCoefficients.step_size`` is the kernel's ``step_size``), so the call is
``kernel(g, *scalars, p, *state)`` with the state in the order of the update's arrays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy

PREAMBLE = r"""
// Scalars arrive as doubles and are cast to T where PyTorch casts its Python floats (so
// 1 - beta2 is computed in double, then rounded), matching the xp update operation for
// operation.
template <typename T>
__device__ T optim_grad(T g, T p, double weight_decay, int maximize) {
  if (maximize) g = -g;
  return weight_decay != 0.0 ? g + p * T(weight_decay) : g;
}

template <typename T>
__device__ T optim_lerp(T start, T end, double weight) {
  T diff = end - start;
  return weight < 0.5 ? start + diff * T(weight) : end - diff * T(1.0 - weight);
}

template <typename T>
__device__ T optim_maximum(T a, T b) {
  return (a != a || a > b) ? a : b;
}

template <typename T>
__device__ void sgd_update(T& p, T* buffer, T g, double lr, double momentum, double dampening,
                           double weight_decay, int nesterov, int maximize, int first) {
  g = optim_grad(g, p, weight_decay, maximize);
  T d = g;
  if (buffer) {
    if (first) {
      *buffer = g;
    } else {
      T kept = *buffer * T(momentum);
      *buffer = dampening != 0.0 ? kept + g * T(1.0 - dampening) : kept + g;
    }
    d = nesterov ? g + *buffer * T(momentum) : *buffer;
  }
  p += d * T(-lr);
}

template <typename T>
__device__ void adam_update(T& p, T& exp_avg, T& exp_avg_sq, T* max_exp_avg_sq, T g, double lr,
                            double beta1, double beta2, double eps, double weight_decay,
                            int decoupled, int maximize, double step_size,
                            double bias_correction2_sqrt) {
  if (decoupled && weight_decay != 0.0) p *= T(1.0 - lr * weight_decay);
  g = optim_grad(g, p, decoupled ? 0.0 : weight_decay, maximize);
  exp_avg = optim_lerp(exp_avg, g, 1.0 - beta1);
  exp_avg_sq = exp_avg_sq * T(beta2) + g * T(1.0 - beta2) * g;
  T second = exp_avg_sq;
  if (max_exp_avg_sq) {
    *max_exp_avg_sq = optim_maximum(*max_exp_avg_sq, exp_avg_sq);
    second = *max_exp_avg_sq;
  }
  T denom = sqrt(second) / T(bias_correction2_sqrt) + T(eps);
  p += exp_avg * T(-step_size) / denom;
}

template <typename T>
__device__ void rmsprop_update(T& p, T& square_avg, T* grad_avg, T* buffer, T g, double lr,
                               double alpha, double eps, double weight_decay, double momentum,
                               int maximize) {
  g = optim_grad(g, p, weight_decay, maximize);
  square_avg = square_avg * T(alpha) + g * T(1.0 - alpha) * g;
  T avg;
  if (grad_avg) {
    *grad_avg = optim_lerp(*grad_avg, g, 1.0 - alpha);
    avg = sqrt(square_avg - *grad_avg * *grad_avg);
  } else {
    avg = sqrt(square_avg);
  }
  avg += T(eps);
  if (buffer) {
    *buffer = *buffer * T(momentum) + g / avg;
    p += *buffer * T(-lr);
  } else {
    p += g * T(-lr) / avg;
  }
}
"""


@dataclass(frozen=True)
class Kernel:
    """One fused update: ``operation`` runs per element with ``g``, the scalars and the
    output arrays ``p`` and ``state`` (updated in place) in scope, as CuPy defines them."""

    name: str
    scalars: tuple  # ("float64 lr", "int32 maximize", ...): names are coefficient fields
    state: tuple  # names of the state arrays, in the update's order
    operation: str

    @property
    def in_params(self) -> str:
        return ", ".join(("T g", *self.scalars))

    @property
    def out_params(self) -> str:
        return ", ".join(f"T {name}" for name in ("p", *self.state))

    def scalar_values(self, c) -> list:
        """The scalar arguments, read from the coefficients ``c`` (flags as int32)."""
        values = []
        for declaration in self.scalars:
            kind, name = declaration.split()
            value = getattr(c, name)
            values.append(numpy.int32(value) if kind == "int32" else numpy.float64(value))
        return values


_SGD = ("float64 lr", "float64 momentum", "float64 dampening", "float64 weight_decay")
_SGD_FLAGS = ("int32 nesterov", "int32 maximize", "int32 first")
_SGD_ARGS = "g, lr, momentum, dampening, weight_decay, nesterov, maximize, first"
_ADAM = ("float64 lr", "float64 beta1", "float64 beta2", "float64 eps", "float64 weight_decay")
_ADAM_REST = ("int32 decoupled", "int32 maximize", "float64 step_size")
_ADAM_REST += ("float64 bias_correction2_sqrt",)
_ADAM_ARGS = (
    "g, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step_size, bias_correction2_sqrt"
)
_RMSPROP = ("float64 lr", "float64 alpha", "float64 eps", "float64 weight_decay")
_RMSPROP += ("float64 momentum", "int32 maximize")
_RMSPROP_ARGS = "g, lr, alpha, eps, weight_decay, momentum, maximize"

KERNELS = {
    kernel.name: kernel
    for kernel in (
        Kernel("sgd", _SGD + _SGD_FLAGS, (), f"sgd_update(p, (T*)0, {_SGD_ARGS})"),
        Kernel(
            "sgd_momentum",
            _SGD + _SGD_FLAGS,
            ("momentum_buffer",),
            f"sgd_update(p, &momentum_buffer, {_SGD_ARGS})",
        ),
        Kernel(
            "adam",
            _ADAM + _ADAM_REST,
            ("exp_avg", "exp_avg_sq"),
            f"adam_update(p, exp_avg, exp_avg_sq, (T*)0, {_ADAM_ARGS})",
        ),
        Kernel(
            "adam_amsgrad",
            _ADAM + _ADAM_REST,
            ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
            f"adam_update(p, exp_avg, exp_avg_sq, &max_exp_avg_sq, {_ADAM_ARGS})",
        ),
        Kernel(
            "rmsprop",
            _RMSPROP,
            ("square_avg",),
            f"rmsprop_update(p, square_avg, (T*)0, (T*)0, {_RMSPROP_ARGS})",
        ),
        Kernel(
            "rmsprop_centered",
            _RMSPROP,
            ("square_avg", "grad_avg"),
            f"rmsprop_update(p, square_avg, &grad_avg, (T*)0, {_RMSPROP_ARGS})",
        ),
        Kernel(
            "rmsprop_momentum",
            _RMSPROP,
            ("square_avg", "momentum_buffer"),
            f"rmsprop_update(p, square_avg, (T*)0, &momentum_buffer, {_RMSPROP_ARGS})",
        ),
        Kernel(
            "rmsprop_centered_momentum",
            _RMSPROP,
            ("square_avg", "grad_avg", "momentum_buffer"),
            f"rmsprop_update(p, square_avg, &grad_avg, &momentum_buffer, {_RMSPROP_ARGS})",
        ),
    )
}

_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def supported(xp, dtype) -> bool:
    """True when ``xp`` is real CuPy (not NumPy or the stand-in) and the dtype has a kernel."""
    return getattr(xp, "__name__", "") == "cupy" and numpy.dtype(dtype) in _DTYPES


@functools.cache
def _elementwise(xp, name: str):
    kernel = KERNELS[name]
    return xp.ElementwiseKernel(
        kernel.in_params,
        kernel.out_params,
        kernel.operation,
        f"minigrad_{name}_step",
        preamble=PREAMBLE,
    )


def launch(xp, name: str, c, arrays: tuple) -> None:
    """Run kernel ``name`` on ``arrays = (p, g, *state)`` with the scalars of ``c``."""
    p, g, *state = arrays
    _elementwise(xp, name)(g, *KERNELS[name].scalar_values(c), p, *state)


def sgd(xp, c, arrays: tuple, scratch) -> None:
    """The fused ``sgd_update`` (same arguments; ``scratch`` is not needed)."""
    launch(xp, "sgd_momentum" if len(arrays) == 3 else "sgd", c, arrays)


def adam(xp, c, arrays: tuple, scratch) -> None:
    """The fused ``adam_update`` (same arguments; ``scratch`` is not needed)."""
    launch(xp, "adam_amsgrad" if c.amsgrad else "adam", c, arrays)


def rmsprop(xp, c, arrays: tuple, scratch) -> None:
    """The fused ``rmsprop_update`` (same arguments; ``scratch`` is not needed)."""
    name = "rmsprop" + ("_centered" if c.centered else "") + ("_momentum" if c.momentum > 0 else "")
    launch(xp, name, c, arrays)
