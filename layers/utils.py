"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

Both work in place on the parameters' ``.grad`` arrays, in cache-sized chunks over the thread
pool on the CPU (:func:`minigrad.optim.foreach.for_each_chunk`). On a GPU,
``clip_grad_norm_`` never copies to the host (the scale stays a device scalar), unless
``error_if_nonfinite`` asks it to look at the norm.
"""

from __future__ import annotations

import types
import warnings

import numpy

import minigrad as mg
from minigrad import backend
from minigrad.optim.foreach import for_each_chunk
from minigrad.tensor import Tensor


def clip_grad_norm_(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Scale the gradients so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of the per-gradient norms (the norm of all
    gradients concatenated); every gradient is multiplied by
    ``min(max_norm / (total_norm + 1e-6), 1)``, as in PyTorch.

    Args:
        parameters: a Tensor or an iterable of Tensors; those whose grad is None are skipped.
        max_norm: the largest total norm allowed.
        norm_type: the p of the p-norm; ``inf`` for the largest absolute value.
        error_if_nonfinite: raise if the total norm is NaN or infinite.
        foreach: accepted for PyTorch compatibility; every path here is the foreach one.

    Returns:
        The total norm before clipping, a 0-d Tensor on the gradients' device.

    Raises:
        RuntimeError: the norm is not finite and ``error_if_nonfinite`` is set.
    """
    _check_foreach(foreach)
    params = _parameter_list(parameters)
    grads = _grads(params, "clip_grad_norm_")
    norm_type = float(norm_type)
    if not grads:
        return mg.tensor(0.0)
    xp = backend.get_array_module(grads[0])
    norms = xp.stack([_vector_norm(xp, g, norm_type) for g in grads])
    total = _vector_norm(xp, norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    scale = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
    for_each_chunk(lambda chunk: xp.multiply(chunk, scale, out=chunk), grads)
    return Tensor._wrap(total)


def clip_grad_value_(parameters, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient into ``[-clip_value, clip_value]``, in place.

    Args:
        parameters: a Tensor or an iterable of Tensors; those whose grad is None are skipped.
        clip_value: the largest absolute value allowed.
        foreach: accepted for PyTorch compatibility; every path here is the foreach one.
    """
    _check_foreach(foreach)
    grads = _grads(_parameter_list(parameters), "clip_grad_value_")
    clip_value = float(clip_value)
    if grads:
        xp = backend.get_array_module(grads[0])
        for_each_chunk(lambda chunk: xp.clip(chunk, -clip_value, clip_value, out=chunk), grads)


def _check_foreach(foreach) -> None:
    if foreach is not None and not isinstance(foreach, bool):
        raise TypeError(f"foreach must be None, True or False, got {foreach!r}")


def _parameter_list(parameters) -> list:
    """``parameters`` as a list (a Tensor alone becomes a one-element list); an empty
    generator warns, as in PyTorch."""
    if isinstance(parameters, Tensor):
        return [parameters]
    is_generator = isinstance(parameters, types.GeneratorType)
    params = list(parameters)
    if is_generator and not params:
        warnings.warn(
            "`parameters` is an empty generator, no gradient clipping will occur.",
            stacklevel=3,
        )
    return params


def _grads(params: list, fn: str) -> list:
    """The gradient arrays of ``params`` (those that have one), all on one device."""
    grads = [p.grad.data for p in params if p.grad is not None]
    devices = {backend.device_of(g) for g in grads}
    if len(devices) > 1:
        raise backend.DeviceError(
            f"{fn}: expected every gradient on one device, got gradients on {sorted(devices)}"
        )
    return grads


def _vector_norm(xp, a, ord: float):
    """The ``ord``-norm of ``a`` viewed as a vector (``torch.linalg.vector_norm``), 0-d."""
    if ord == 2.0:
        flat = a.reshape(-1)
        return xp.sqrt(xp.dot(flat, flat))
    magnitude = xp.abs(a)
    if ord == numpy.inf:
        return magnitude.max() if a.size else xp.zeros((), dtype=a.dtype)
    if ord == -numpy.inf:
        return magnitude.min()
    if ord == 0.0:
        return xp.count_nonzero(a).astype(a.dtype)
    if ord == 1.0:
        return magnitude.sum()
    return (magnitude**ord).sum() ** (1.0 / ord)
