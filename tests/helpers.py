"""Parity with PyTorch: one helper every op test goes through.

``check_parity(our_fn, torch_fn, arrays, device)`` runs our op and its PyTorch twin on the
same inputs, compares the outputs, backpropagates the same random upstream gradient through
both, and compares every input gradient. Float inputs require grad; integer inputs (targets,
indices) are passed as they are.

Every op joins the ``device`` fixture of ``tests/conftest.py`` from the day it is written
(convolution family, layers, models, losses too): write the test once, taking ``device``,
and it runs on "cpu" and on "gpu" (real CuPy, or the fake_cupy stand-in).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import backend

# Real CuPy with a CUDA device behind "gpu" (else the fake_cupy stand-in, set in conftest).
REAL_GPU = backend.cuda_available() and os.environ.get("MINIGRAD_FAKE_GPU", "") in ("", "0")

FLOAT_DTYPES = [np.float32, np.float64]
LAYOUTS = ["contiguous", "transposed", "strided"]


def tolerances(dtype, reduction: int = 1) -> tuple[float, float]:
    """(rtol, atol) for comparing with PyTorch; float32's grow with the reduction length."""
    if np.dtype(dtype) == np.float64:
        return 1e-10, 1e-10
    return 2e-4, 2e-5 * max(1.0, float(np.sqrt(reduction)))


def with_layout(array, layout: str):
    """The same values (numpy or cupy) as a contiguous array, a transposed or a strided view."""
    xp = mg.backend.get_array_module(array)
    if layout == "contiguous" or array.ndim == 0:
        return xp.array(array, order="C")
    if layout == "transposed":
        return xp.ascontiguousarray(array.T).T
    wide = xp.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype=array.dtype)
    wide[..., ::2] = array
    return wide[..., ::2]


def _on_device(array: np.ndarray, device: str, layout: str):
    """A tensor for ``array`` on ``device`` whose data has the given memory layout."""
    t = mg.tensor(array, device=device, requires_grad=array.dtype.kind == "f")
    t.data = with_layout(t.data, layout)
    return t


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def _assert_close(ours, theirs, rtol, atol, what: str) -> None:
    theirs = np.asarray(theirs)
    scale = max(1.0, float(np.abs(theirs).max())) if theirs.size else 1.0
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch's {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * scale, err_msg=what)


def check_parity(
    our_fn,
    torch_fn,
    arrays,
    device: str,
    reduction: int = 1,
    layout: str = "contiguous",
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
):
    """Compare ``our_fn(*tensors)`` with ``torch_fn(*torch_tensors)``: outputs and gradients.

    Args:
        our_fn, torch_fn: the op under test and its PyTorch twin, taking the same arguments.
        arrays: numpy inputs; floating ones require grad in both frameworks.
        device: "cpu" or "gpu" (the device fixture).
        reduction: the length of the longest sum inside the op, to scale float32 tolerance.
        layout: pass our inputs as contiguous arrays, transposed or strided views.
    Returns:
        Our outputs (a tuple of Tensors), for further checks.
    """
    ours = [_on_device(a, device, layout) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    our_out, their_out = _as_tuple(our_fn(*ours)), _as_tuple(torch_fn(*theirs))
    float_dtype = next((a.dtype for a in arrays if a.dtype.kind == "f"), np.float64)
    default_rtol, default_atol = tolerances(float_dtype, reduction)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    assert len(our_out) == len(their_out), f"{len(our_out)} outputs, torch gives {len(their_out)}"
    rng = np.random.default_rng(seed)
    our_loss, their_loss = None, None
    for k, (o, t) in enumerate(zip(our_out, their_out, strict=True)):
        assert o.device == mg.backend.canonical_device(device), f"output {k} left the device"
        _assert_close(o.detach().numpy(), t.detach().numpy(), rtol, atol, f"output {k}")
        if t.requires_grad:
            assert o.requires_grad, f"output {k} should require grad"
            v = rng.standard_normal(t.shape).astype(t.detach().numpy().dtype)
            our_term = (o * mg.tensor(v, device=device)).sum()
            their_term = (t * torch.tensor(v)).sum()
            our_loss = our_term if our_loss is None else our_loss + our_term
            their_loss = their_term if their_loss is None else their_loss + their_term
    if their_loss is None:
        return our_out
    our_loss.backward()
    their_loss.backward()
    for k, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        if t.grad is None:
            assert o.grad is None or not np.any(o.grad.numpy()), f"input {k}: unexpected gradient"
            continue
        assert o.grad is not None, f"input {k}: no gradient, torch has one"
        _assert_close(o.grad.numpy(), t.grad.numpy(), rtol, atol, f"gradient of input {k}")
    return our_out


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def random_array(
    seed: int, shape: tuple, dtype, low: float | None = None, high: float | None = None
) -> np.ndarray:
    """Seeded normal (or uniform in [low, high]) values of ``dtype``."""
    rng = np.random.default_rng(seed)
    if low is not None:
        return np.asarray(rng.uniform(low, high, size=shape), dtype=dtype)
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


seeds = st.integers(min_value=0, max_value=2**31 - 1)
float_dtypes = st.sampled_from(FLOAT_DTYPES)
layouts = st.sampled_from(LAYOUTS)
