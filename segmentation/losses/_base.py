"""What every segmentation loss shares: argument checks, and turning targets into arrays on
the logits' device. The losses are ``layers.Module`` subclasses, called as
``loss(input, target)``.

Targets are constants: a loss reads their values (a Tensor's ``.data``, or a numpy/cupy array,
moved to the logits' device) and never sends them a gradient.
"""

from __future__ import annotations

import math

import numpy

from minigrad import backend
from minigrad.tensor import Tensor

MODES = ("binary", "multiclass", "multilabel")
REDUCTIONS = ("mean", "sum", "none")


def check_logits(op: str, input) -> None:
    """``input`` is a floating Tensor of shape (N, C, *)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor of logits, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {input.dtype}")
    if input.ndim < 2:
        raise ValueError(f"{op}: input must have shape (N, C, *), got shape {input.shape}")


def ncl(shape: tuple) -> tuple:
    """(N, C, L) of an (N, C, d1, ..., dk) shape, L = d1 * ... * dk (spelled out for N = 0)."""
    return shape[0], shape[1], math.prod(shape[2:])


def constant(array) -> Tensor:
    """A Tensor holding ``array`` (numpy or cupy) that needs no gradient."""
    return Tensor(array)


def as_buffer(op: str, name: str, value) -> Tensor | None:
    """A constant tensor argument (class weights, ``pos_weight``) as a Tensor to register as
    a buffer: a Tensor is kept as it is, a list or numpy/cupy array becomes a Tensor on its
    own device (the host for lists; move the loss with ``.to(device)``), float32 unless the
    array is already floating (as ``torch.as_tensor``)."""
    if value is None or isinstance(value, Tensor):
        return value
    array = value if backend.is_array(value) else numpy.asarray(value, dtype=numpy.float32)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must be numeric, got dtype {array.dtype}")
    return Tensor(array, dtype=array.dtype if array.dtype.kind == "f" else numpy.float32)


def target_array(op: str, target, input: Tensor):
    """The values of ``target`` as an array on the input's device.

    A Tensor must already be there (as in PyTorch); a numpy or cupy array is moved there.
    """
    if isinstance(target, Tensor):
        if target.device != input.device:
            raise backend.DeviceError(
                f"{op}: target is on {target.device} but input is on {input.device}"
            )
        return target.data
    if backend.is_array(target):
        return backend.to_device(target, input.device)
    raise TypeError(
        f"{op}: target must be a Tensor or a numpy/cupy array, got {type(target).__name__}"
    )


def class_target(op: str, target, input: Tensor, ignore_index: int | None) -> tuple:
    """Integer class indices as (N, L) int64, and the (N, L) bool mask of counted pixels.

    Args:
        target: (N, d1, ..., dk) or (N, 1, d1, ..., dk) integers for an (N, C, d1, ..., dk)
            input.
        ignore_index: the label of pixels that do not count, or None (the mask is then None).

    Raises:
        TypeError: non-integer target. ValueError: wrong shape, or (host arrays only, to keep
        GPU steps free of syncs) a label outside [0, C) that is not ``ignore_index``.
    """
    t = target_array(op, target, input)
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: target must hold integer class indices (int64), got dtype {t.dtype}"
        )
    n, c, length = ncl(input.shape)
    expected = input.shape[:1] + input.shape[2:]
    if t.shape not in (expected, input.shape[:1] + (1,) + input.shape[2:]):
        raise ValueError(
            f"{op}: target of shape {t.shape} does not match input of shape {input.shape}: "
            f"expected (N, d1, ..., dk) = {expected}"
        )
    t = t.reshape(n, length).astype(numpy.int64, copy=False)
    valid = None if ignore_index is None else t != ignore_index
    if backend.is_cpu_array(t) and t.size:
        counted = t if valid is None else t[valid]
        if counted.size and (counted.min() < 0 or counted.max() >= c):
            raise ValueError(
                f"{op}: target holds labels in [{int(counted.min())}, {int(counted.max())}]; "
                f"expected class indices in [0, {c - 1}] or ignore_index={ignore_index}"
            )
    return t, valid


def binary_target(op: str, target, input: Tensor, ignore_index) -> tuple:
    """Per-channel targets as (N, C, L) in the input's dtype, and their (N, C, L) mask.

    Args:
        target: the input's shape (N, C, *), or (N, *) when C = 1; floating, integer or bool.
        ignore_index: the value of entries that do not count, or None (the mask is then None).
            Ignored entries are set to 0 in the returned target.
    """
    t = target_array(op, target, input)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{op}: target must be numeric, got dtype {t.dtype}")
    n, c, length = ncl(input.shape)
    accepted = [input.shape] + ([input.shape[:1] + input.shape[2:]] if c == 1 else [])
    if t.shape not in accepted:
        raise ValueError(
            f"{op}: target of shape {t.shape} does not match input of shape {input.shape}: "
            f"expected {' or '.join(str(s) for s in accepted)}"
        )
    t = t.reshape(n, c, length)
    xp = backend.get_array_module(t)
    if ignore_index is None:
        return t.astype(input.dtype), None
    keep = t != ignore_index
    return xp.where(keep, t, 0).astype(input.dtype), keep.astype(input.dtype)
