"""Input checks shared by the ops, each raising an error that names the op and the argument."""

from __future__ import annotations

from minigrad import backend
from minigrad.tensor import Tensor


def check_float_tensor(op: str, name: str, t) -> None:
    """``t`` is a floating-point Tensor."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {t.dtype}")


def check_optional_tensor(op: str, name: str, t, input: Tensor, shape: tuple | None = None) -> None:
    """``t`` is None, or a Tensor on ``input``'s device (of ``shape``, when given)."""
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
    if shape is not None and t.shape != shape:
        raise ValueError(
            f"{op}: {name} must have shape {shape} for input of shape {input.shape}, got {t.shape}"
        )
    if t.device != input.device:
        raise backend.DeviceError(
            f"{op}: {name} is on {t.device} but input is on {input.device}; move it with .to()"
        )
