"""Side by side with ``torch.optim``: the ``trajectory`` fixture every optimizer test uses.

``trajectory(ours, theirs, device, dtype)`` builds the same problem in both frameworks (a
least-squares fit and a quartic, parameters in two groups with different learning rates, one
parameter that never gets a gradient), takes ``steps`` steps of our optimizer class ``ours``
and of torch's ``theirs`` with the same keyword arguments, each on gradients from its own
autograd, and compares every parameter after every step (and the state at the end).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import REAL_GPU

import minigrad as mg
from minigrad.optim import foreach

TORCH_IMPLEMENTATION_FLAGS = {"foreach", "fused", "capturable", "differentiable"}


def tolerance(dtype) -> tuple[float, float]:
    """(rtol, atol) between two trajectories: float64 to rounding, float32 to ~1e-5."""
    return (1e-10, 1e-12) if np.dtype(dtype) == np.float64 else (2e-5, 2e-6)


@dataclass
class Problem:
    """A small fixed problem in minibatches: at step t, with batch ``b = t % 2``,
    ``loss = mean((X[b] @ w - Y[b])**2) + 0.25 * sum(c**4) + k[b] . c``.

    The batches keep the gradients moving (a steady gradient would make RMSprop's centered
    variance a cancellation, and a converged run chaotic, so that rounding would decide the
    trajectory). ``w`` (4, 3) is in group 0, ``c`` (5,) and ``unused`` (2,) in group 1.
    ``sign = -1`` negates the loss (for ``maximize=True``).
    """

    X: np.ndarray  # (2, 4, 4): two batches of 4 rows
    Y: np.ndarray  # (2, 4, 3)
    k: np.ndarray  # (2, 5)
    w0: np.ndarray
    c0: np.ndarray
    sign: float = 1.0

    @classmethod
    def make(cls, dtype, sign: float = 1.0) -> Problem:
        rng = np.random.default_rng(1234)
        return cls(
            X=rng.standard_normal((2, 4, 4)).astype(dtype),
            Y=rng.standard_normal((2, 4, 3)).astype(dtype),
            k=rng.standard_normal((2, 5)).astype(dtype),
            w0=rng.standard_normal((4, 3)).astype(dtype),
            c0=rng.standard_normal(5).astype(dtype),
            sign=sign,
        )

    def ours(self, device: str, start: int = 0):
        """Our parameters and the loss closure (each call is the next step's batch, the first
        that of step ``start``)."""
        params = [
            mg.tensor(self.w0, device=device, requires_grad=True),
            mg.tensor(self.c0, device=device, requires_grad=True),
            mg.tensor(np.ones(2, self.w0.dtype), device=device, requires_grad=True),
        ]
        data = [[mg.tensor(a[b], device=device) for a in (self.X, self.Y, self.k)] for b in (0, 1)]
        return params, self._closure(params, data, start)

    def theirs(self, start: int = 0):
        """Torch's parameters and loss closure."""
        params = [
            torch.tensor(self.w0, requires_grad=True),
            torch.tensor(self.c0, requires_grad=True),
        ]
        params.append(torch.ones(2, dtype=params[0].dtype, requires_grad=True))
        data = [[torch.tensor(a[b]) for a in (self.X, self.Y, self.k)] for b in (0, 1)]
        return params, self._closure(params, data, start)

    def _closure(self, params: list, data: list, start: int):
        calls = [start]

        def loss():
            w, c, _ = params
            X, Y, k = data[calls[0] % 2]
            calls[0] += 1
            r = X @ w - Y
            return ((r * r).mean() + 0.25 * (c * c * c * c).sum() + (k * c).sum()) * self.sign

        return loss


def groups(params: list, lr: float) -> list:
    return [{"params": params[:1]}, {"params": params[1:], "lr": lr * 0.5}]


def one_step(optimizer, loss) -> None:
    optimizer.zero_grad()
    loss().backward()
    optimizer.step()


def assert_same_params(ours: list, theirs: list, dtype, what: str) -> None:
    """``|ours - theirs| <= atol + rtol * |theirs|`` for every parameter (a cheap check: it
    runs after every step)."""
    rtol, atol = tolerance(dtype)
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        a, b = o.detach().numpy(), t.detach().numpy()
        assert a.dtype == b.dtype, f"{what} p{i}: dtype {a.dtype} != torch's {b.dtype}"
        excess = np.abs(a - b) - (atol + rtol * np.abs(b))
        assert excess.max() <= 0, f"{what} p{i}: {a} != torch's {b}"


def assert_same_state(ours, theirs, dtype) -> None:
    """Same state keys per parameter and the same values (step counts exactly; float32
    ratios such as RMSprop's ``g / avg`` in its momentum buffer to 1e-4)."""
    our_state, their_state = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert sorted(our_state) == sorted(their_state)
    rtol, atol = tolerance(dtype) if np.dtype(dtype) == np.float64 else (1e-4, 1e-5)
    for index, entry in their_state.items():
        assert list(our_state[index]) == list(entry), f"state keys of parameter {index}"
        for key, value in entry.items():
            ours_value = our_state[index][key]
            if key == "step":
                assert ours_value.device == "cpu" and ours_value.shape == ()
            np.testing.assert_allclose(
                ours_value.numpy(), value.numpy(), rtol=rtol, atol=atol, err_msg=key
            )
            assert ours_value.dtype == value.numpy().dtype, key


@pytest.fixture
def kit():
    """The helpers above for the test modules (which cannot import this conftest)."""
    return SimpleNamespace(
        Problem=Problem,
        groups=groups,
        one_step=one_step,
        tolerance=tolerance,
        TORCH_IMPLEMENTATION_FLAGS=TORCH_IMPLEMENTATION_FLAGS,
    )


def dtypes_of(device: str) -> list:
    """The dtypes a trajectory runs in: both on the CPU and a real GPU; float32 on the
    stand-in (its float64 path is the same code, and every op of it is slow)."""
    return [np.float64, np.float32] if device == "cpu" or REAL_GPU else [np.float32]


@pytest.fixture
def trajectory():
    """``run(ours, theirs, device, dtype=None, steps=None, lr=..., sign=1, **kwargs)``: both
    optimizers built with ``kwargs`` on two groups, compared after every step, in ``dtype``
    or each of :func:`dtypes_of` the device (200 steps on the CPU, 50 on the GPU stand-in);
    returns (our optimizer, torch's) of the last run."""

    def run(ours_cls, theirs_cls, device, dtype=None, steps=None, lr=0.01, sign=1.0, **kwargs):
        if steps is None:
            steps = 200 if device == "cpu" or REAL_GPU else 50
        for each in [dtype] if dtype is not None else dtypes_of(device):
            result = _run_side_by_side(ours_cls, theirs_cls, device, each, steps, lr, sign, kwargs)
        return result

    return run


def _run_side_by_side(ours_cls, theirs_cls, device, dtype, steps, lr, sign, kwargs):
    problem = Problem.make(dtype, sign)
    our_params, our_loss = problem.ours(device)
    their_params, their_loss = problem.theirs()
    ours = ours_cls(groups(our_params, lr), lr=lr, **kwargs)
    theirs = theirs_cls(groups(their_params, lr), lr=lr, **kwargs)
    for step in range(steps):
        one_step(ours, our_loss)
        one_step(theirs, their_loss)
        assert_same_params(our_params, their_params, dtype, f"{np.dtype(dtype)} step {step}")
    assert_same_state(ours, theirs, dtype)
    assert our_params[2].grad is None and our_params[2] not in ours.state
    np.testing.assert_array_equal(our_params[2].detach().numpy(), 1.0)
    return ours, theirs


@pytest.fixture(params=["default", "tiny"])
def chunk_bytes(request, monkeypatch):
    """Run with the default CPU chunk size, and with 16-byte chunks (every parameter cut
    into many chunks, spread over the thread pool however small the step)."""
    if request.param == "tiny":
        monkeypatch.setattr(foreach, "CHUNK_BYTES", 16)
        monkeypatch.setattr(foreach, "PARALLEL_BYTES", 0)
    return request.param


@pytest.fixture
def resume():
    """``run(ours, device, dtype, steps_before=7, steps_after=9, **kwargs)``: take some
    steps, load the state dict into a fresh optimizer (built with another lr) on copies of the
    parameters, and check that both continue exactly alike, bit for bit."""

    def run(ours_cls, device, dtype, steps_before=7, steps_after=9, sign=1.0, **kwargs):
        problem = Problem.make(dtype, sign)
        params, loss = problem.ours(device)
        lr = kwargs.pop("lr", 0.01)
        optimizer = ours_cls(groups(params, lr), lr=lr, **kwargs)
        for _ in range(steps_before):
            one_step(optimizer, loss)
        copy_params, copy_loss = problem.ours(device, start=steps_before)
        for p, q in zip(copy_params, params, strict=True):
            p.data[...] = q.data
        fresh = ours_cls(groups(copy_params, 123.0), lr=123.0, **kwargs)
        fresh.load_state_dict(optimizer.state_dict())
        for _ in range(steps_after):
            one_step(optimizer, loss)
            one_step(fresh, copy_loss)
            for p, q in zip(params, copy_params, strict=True):
                np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
        state, fresh_state = optimizer.state_dict(), fresh.state_dict()
        assert state["param_groups"] == fresh_state["param_groups"]
        assert sorted(state["state"]) == sorted(fresh_state["state"])
        for index, entry in state["state"].items():
            assert list(entry) == list(fresh_state["state"][index])
            for key, value in entry.items():
                np.testing.assert_array_equal(
                    value.numpy(), fresh_state["state"][index][key].numpy()
                )

    return run
