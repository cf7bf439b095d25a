"""The layer-parity helper every layer test goes through, as the ``parity`` fixture.

``parity.run(ours, theirs, inputs, device, ...)`` copies the weights between a layer and its
``torch.nn`` twin through the state dict (ours -> torch's ``load_state_dict``, or torch's
state dict, torch tensors as they are, -> ours), puts both in train or eval mode and dtype,
runs both on the same inputs, and compares the outputs, the gradient of every floating
input and of every parameter (by name), and every buffer afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import tolerances

import minigrad as mg

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def assert_close(ours, theirs, dtype, reduction: int, what: str) -> None:
    """``ours`` (numpy) equals torch's ``theirs`` within tests/helpers.py's tolerances, atol
    scaled by the largest magnitude (as check_parity does)."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch's {theirs.dtype}"
    rtol, atol = tolerances(dtype, reduction)
    scale = max(1.0, float(np.abs(theirs).max())) if theirs.size and theirs.dtype.kind == "f" else 1
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * scale, err_msg=what)


def to_torch_state(state: dict) -> dict:
    """Our state dict as torch tensors (for torch's ``load_state_dict``)."""
    return {k: torch.from_numpy(np.array(v.numpy())) for k, v in state.items()}


@dataclass
class Outcome:
    """What a parity run leaves for further checks: both layers and both outputs."""

    ours: object
    theirs: object
    our_out: tuple
    their_out: tuple


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def copy_state(ours, theirs, direction: str) -> None:
    """Make both layers hold the same weights and buffers: ``"to_torch"`` loads our state
    dict into torch's (strict), ``"from_torch"`` loads torch's, as it is, into ours."""
    if direction == "to_torch":
        theirs.load_state_dict(to_torch_state(ours.state_dict()), strict=True)
    else:
        ours.load_state_dict(theirs.state_dict(), strict=True)


def run_parity(
    ours,
    theirs,
    inputs,
    device: str,
    *,
    dtype=np.float32,
    training: bool = True,
    direction: str = "to_torch",
    reduction: int = 1,
    seed: int = 0,
    steps: int = 1,
    call=None,
) -> Outcome:
    """Compare ``ours(*inputs)`` with ``theirs(*inputs)``, outputs and every gradient.

    Args:
        ours, theirs: a layers.Module and its torch.nn twin, built alike.
        inputs: numpy arrays, or ``inputs(step)`` giving each step's; floating ones are cast
            to ``dtype`` and require grad.
        device: the ``device`` fixture's value.
        dtype: float32 or float64: both layers are cast with ``.to(dtype)`` after the copy.
        training: train (True) or eval mode for both.
        direction: how the weights are copied, see :func:`copy_state`.
        reduction: the longest sum inside the layer, to scale float32 tolerances.
        steps: forward/backward passes (running statistics accumulate over them).
        call: ``call(layer, *inputs)``, when the layer is not called as ``layer(*inputs)``.
    """
    call = call or (lambda layer, *args: layer(*args))
    copy_state(ours, theirs, direction)
    ours.train(training)
    theirs.train(training)
    ours.to(dtype).to(device)
    theirs.to(TORCH_DTYPES[np.dtype(dtype)])
    rng = np.random.default_rng(seed)
    for step in range(steps):
        batch = inputs(step) if callable(inputs) else inputs
        arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in batch]
        our_in = [mg.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
        their_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        ours.zero_grad()
        theirs.zero_grad()
        our_out, their_out = _as_tuple(call(ours, *our_in)), _as_tuple(call(theirs, *their_in))
        assert len(our_out) == len(their_out)
        our_loss = their_loss = None
        for k, (o, t) in enumerate(zip(our_out, their_out, strict=True)):
            assert o.device == mg.backend.canonical_device(device), f"output {k} left the device"
            assert_close(o.detach().numpy(), t, dtype, reduction, f"output {k}")
            if t.requires_grad:
                assert o.requires_grad, f"output {k} should require grad"
                v = rng.standard_normal(t.shape).astype(dtype)
                our_term = (o * mg.tensor(v, device=device)).sum()
                their_term = (t * torch.from_numpy(v)).sum()
                our_loss = our_term if our_loss is None else our_loss + our_term
                their_loss = their_term if their_loss is None else their_loss + their_term
        if their_loss is not None:
            our_loss.backward()
            their_loss.backward()
            _compare_gradients(ours, theirs, our_in, their_in, dtype, reduction)
    _compare_buffers(ours, theirs, dtype, reduction)
    return Outcome(ours, theirs, our_out, their_out)


def _compare_gradients(ours, theirs, our_in, their_in, dtype, reduction) -> None:
    for k, (o, t) in enumerate(zip(our_in, their_in, strict=True)):
        if t.grad is None:
            assert o.grad is None or not np.any(o.grad.numpy()), f"input {k}: unexpected grad"
            continue
        assert o.grad is not None, f"input {k}: no gradient, torch has one"
        assert_close(o.grad.numpy(), t.grad, dtype, reduction, f"gradient of input {k}")
    our_params = dict(ours.named_parameters())
    their_params = dict(theirs.named_parameters())
    assert list(our_params) == list(their_params), "parameter names differ from torch's"
    for name, t in their_params.items():
        o = our_params[name]
        assert o.dtype == np.dtype(dtype), f"{name}: dtype {o.dtype}, expected {dtype}"
        if t.grad is None:
            assert o.grad is None, f"{name}: gradient where torch has none"
            continue
        assert o.grad is not None, f"{name}: no gradient, torch has one"
        assert_close(o.grad.numpy(), t.grad, dtype, reduction, f"gradient of {name}")


def _compare_buffers(ours, theirs, dtype, reduction) -> None:
    our_state, their_state = ours.state_dict(), theirs.state_dict()
    assert list(our_state) == list(their_state), "state-dict keys differ from torch's"
    for name, t in their_state.items():
        assert_close(our_state[name].numpy(), t, dtype, reduction, f"state {name}")


@pytest.fixture(scope="session")
def parity():
    """This module's helper as ``parity.run`` (see :func:`run_parity`); session scoped, so
    hypothesis tests may take it."""
    return SimpleNamespace(run=run_parity)
