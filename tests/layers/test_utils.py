"""clip_grad_norm_ and clip_grad_value_ equal torch.nn.utils' on the same gradients."""

import math

import numpy as np
import pytest
import torch
from helpers import FLOAT_DTYPES, shapes
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from layers.utils import clip_grad_norm_, clip_grad_value_
from minigrad import backend
from minigrad.optim import foreach


def _pairs(grads: list, device: str):
    """Our parameters and torch's, with ``grads`` (None: no gradient) as their .grad."""
    ours, theirs = [], []
    for g in grads:
        shape = (3,) if g is None else g.shape
        dtype = np.float32 if g is None else g.dtype
        p = mg.zeros(shape, dtype=dtype, device=device, requires_grad=True)
        t = torch.zeros(shape, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype, requires_grad=True)
        if g is not None:
            p.grad, t.grad = mg.tensor(g, device=device), torch.tensor(g)
        ours.append(p)
        theirs.append(t)
    return ours, theirs


def _tolerance(dtype) -> float:
    return 1e-12 if np.dtype(dtype) == np.float64 else 2e-6


def _assert_grads_equal(ours, theirs, dtype) -> None:
    tol = _tolerance(dtype)
    for p, t in zip(ours, theirs, strict=True):
        if t.grad is None:
            assert p.grad is None
            continue
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)


@settings(max_examples=20, deadline=None)
@given(
    sizes=st.lists(shapes(max_dims=3), min_size=1, max_size=4),
    dtype=st.sampled_from(FLOAT_DTYPES),
    max_norm=st.sampled_from([0.1, 1.0, 1e3]),
    norm_type=st.sampled_from([2.0, 1.0, 3.0, 0.5, math.inf, 0.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_clip_grad_norm_equals_torch(device, sizes, dtype, max_norm, norm_type, seed):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(s).astype(dtype) for s in sizes] + [None]
    ours, theirs = _pairs(grads, device)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    their_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert total.device == backend.canonical_device(device) and total.shape == ()
    assert total.dtype == their_total.numpy().dtype
    tol = _tolerance(dtype)
    np.testing.assert_allclose(total.numpy(), their_total.numpy(), rtol=tol, atol=tol)
    _assert_grads_equal(ours, theirs, dtype)


def test_clip_grad_norm_scales_in_place_over_chunks(monkeypatch):
    """A gradient cut into many chunks over the thread pool is scaled in place."""
    monkeypatch.setattr(foreach, "CHUNK_BYTES", 64)
    monkeypatch.setattr(foreach, "PARALLEL_BYTES", 0)
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((30, 7)), rng.standard_normal(100).astype(np.float64)]
    ours, theirs = _pairs(grads, "cpu")
    arrays = [p.grad.data for p in ours]
    clip_grad_norm_(ours, 0.5)
    torch.nn.utils.clip_grad_norm_(theirs, 0.5)
    assert all(p.grad.data is a for p, a in zip(ours, arrays, strict=True))
    _assert_grads_equal(ours, theirs, np.float64)


def test_clip_grad_norm_takes_one_tensor_and_ignores_missing_grads(device):
    (p,), (t,) = _pairs([np.arange(4.0)], device)
    total = clip_grad_norm_(p, 1.0)
    np.testing.assert_allclose(float(total), float(torch.nn.utils.clip_grad_norm_(t, 1.0)))
    _assert_grads_equal([p], [t], np.float64)
    ours, _ = _pairs([None, None], device)
    empty = clip_grad_norm_(ours, 1.0)
    assert empty.item() == 0.0 and empty.dtype == np.float32 and all(p.grad is None for p in ours)


def test_clip_grad_norm_of_a_non_finite_norm(device):
    grads = [np.array([1.0, np.inf]), np.array([2.0])]
    ours, theirs = _pairs(grads, device)
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    total = clip_grad_norm_(ours, 1.0)
    their_total = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert math.isinf(float(total)) and math.isinf(float(their_total))
    np.testing.assert_array_equal(ours[0].grad.numpy(), theirs[0].grad.numpy())


def test_an_empty_generator_warns_as_torch():
    with pytest.warns(UserWarning, match="`parameters` is an empty generator"):
        clip_grad_norm_((p for p in []), 1.0)


def test_gradients_on_two_devices_are_refused():
    ours_cpu, _ = _pairs([np.ones(2)], "cpu")
    ours_gpu, _ = _pairs([np.ones(2)], "gpu")
    with pytest.raises(backend.DeviceError, match=r"one device, got gradients on \['cpu', 'gpu'\]"):
        clip_grad_norm_(ours_cpu + ours_gpu, 1.0)
    with pytest.raises(TypeError, match="foreach must be None, True or False"):
        clip_grad_norm_(ours_cpu, 1.0, foreach="yes")


@settings(max_examples=15, deadline=None)
@given(
    sizes=st.lists(shapes(max_dims=3), min_size=1, max_size=3),
    dtype=st.sampled_from(FLOAT_DTYPES),
    clip_value=st.sampled_from([0.0, 0.3, 1.0, 10.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_clip_grad_value_equals_torch(device, sizes, dtype, clip_value, seed):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(s).astype(dtype) for s in sizes] + [None]
    ours, theirs = _pairs(grads, device)
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, t in zip(ours, theirs, strict=True):
        if t.grad is not None:
            np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
