"""Activations and (log-)softmax against PyTorch, and float64 gradcheck."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, layouts, random_array, seeds, shapes
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad.gradcheck import gradcheck
from minigrad.ops.activation import ZERO_ROW

ACTIVATIONS = {
    "relu": (F.relu, TF.relu),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "leaky_relu_default": (F.leaky_relu, TF.leaky_relu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@settings(max_examples=25)
@given(shape=shapes(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_activation_matches_torch(device, name, shape, dtype, layout, seed):
    ours, theirs = ACTIVATIONS[name]
    check_parity(ours, theirs, [random_array(seed, shape, dtype)], device, layout=layout)


@pytest.mark.parametrize("ours,theirs", [(F.softmax, TF.softmax), (F.log_softmax, TF.log_softmax)])
@settings(max_examples=25)
@given(shape=shapes(min_dims=1), data=st.data(), dtype=float_dtypes, seed=seeds)
def test_softmax_matches_torch(device, ours, theirs, shape, data, dtype, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = random_array(seed, shape, dtype) * 5
    check_parity(
        lambda t: ours(t, dim=dim), lambda t: theirs(t, dim=dim), [x], device, reduction=shape[dim]
    )


@pytest.mark.parametrize("ours", [F.softmax, F.log_softmax])
def test_softmax_is_stable_for_huge_logits(device, ours):
    x = mg.tensor(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32), device=device)
    out = ours(x, dim=1).numpy()
    assert np.all(np.isfinite(out))


def test_sigmoid_is_stable_for_huge_inputs(device):
    x = mg.tensor(np.array([-1000.0, 0.0, 1000.0], dtype=np.float32), device=device)
    np.testing.assert_allclose(F.sigmoid(x).numpy(), [0.0, 0.5, 1.0])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(device, name):
    x = random_array(0, (3, 4), np.float64)
    x[np.abs(x) < 0.05] = 0.3  # keep finite differences away from the kink at 0
    assert gradcheck(ACTIVATIONS[name][0], [mg.tensor(x, device=device, requires_grad=True)])


@pytest.mark.parametrize("ours", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_gradcheck(device, ours, dim):
    x = mg.tensor(random_array(1, (3, 4), np.float64), device=device, requires_grad=True)
    assert gradcheck(lambda t: ours(t, dim=dim), [x])


def test_softmax_dim_out_of_range_names_the_range(device):
    with pytest.raises(IndexError, match=r"dim 2 is out of range \[-2, 1\]"):
        F.softmax(mg.ones(2, 3, device=device), dim=2)


@pytest.mark.parametrize("ours,theirs", [(F.softmax, TF.softmax), (F.log_softmax, TF.log_softmax)])
def test_softmax_over_an_empty_dim_matches_torch(device, ours, theirs):
    check_parity(lambda t: ours(t, dim=1), lambda t: theirs(t, dim=1), [np.zeros((2, 0))], device)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_activation_of_infinities_and_nan_matches_torch(device, name):
    """-inf, inf and NaN give PyTorch's values and gradients (relu(-inf) is 0, not NaN)."""
    ours, theirs = ACTIVATIONS[name]
    x = np.array([-np.inf, -2.0, -0.0, 0.0, 3.0, np.inf, np.nan], np.float32)
    xt = torch.tensor(x, requires_grad=True)
    theirs(xt).backward(torch.ones_like(xt))
    ours_x = mg.tensor(x, device=device, requires_grad=True)
    y = ours(ours_x)
    y.backward(mg.ones(y.shape, device=device))
    expected = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(y.detach().cpu().numpy(), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours_x.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_relu_backward_writes_into_an_exclusive_gradient_only():
    """ReLU's backward reuses its output gradient's memory when nothing else refers to it,
    and leaves a gradient that another input shares intact (``relu(a) + b``, with b's
    ``.grad`` that very array): both leaves' gradients match PyTorch's."""
    values = np.array([-1.0, 2.0, -3.0, 4.0], np.float32)
    a, b = (mg.tensor(values, requires_grad=True) for _ in range(2))
    ta, tb = (torch.tensor(values, requires_grad=True) for _ in range(2))
    ((F.relu(a) + b) * 3).sum().backward()
    ((TF.relu(ta) + tb) * 3).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())

    y = F.relu(mg.tensor(values, requires_grad=True))
    gy = np.full(4, 3.0, np.float32)
    ran = y.grad_fn.backward(gy)  # this frame holds gy too: it must not be written
    assert not np.shares_memory(ran, gy)
    np.testing.assert_array_equal(gy, 3.0)
    np.testing.assert_array_equal(ran, [0.0, 3.0, 0.0, 3.0])


def test_relu_backward_reuses_the_memory_of_an_exclusive_gradient():
    y = F.relu(mg.tensor(np.array([-1.0, 2.0], np.float32), requires_grad=True))
    fresh_ids = []

    def fresh():
        array = np.full(2, 5.0, np.float32)
        fresh_ids.append(id(array))
        return array

    result = y.grad_fn.backward(fresh())
    assert id(result) == fresh_ids[0]
    np.testing.assert_array_equal(result, [0.0, 5.0])


@pytest.mark.parametrize(
    "shape", [(2, 4, 8, 8), (5, 103), (3, 4, 9), (ZERO_ROW - 1,), (ZERO_ROW,), (ZERO_ROW + 1,)]
)
@pytest.mark.parametrize("transposed", [False, True])
def test_relu_of_arrays_longer_than_a_zero_row_matches_torch(device, shape, transposed):
    """The host's ReLU runs contiguous arrays as rows of ZERO_ROW values plus a tail
    (shapes with and without a tail, one row and one value either side of it, and one
    shorter than a row), with infinities and NaNs spread over both parts; a transposed input
    takes the plain loop."""
    x = random_array(4, shape, np.float32)
    flat = x.reshape(-1)
    flat[::37], flat[5::41], flat[7::43], flat[-1] = np.nan, -np.inf, np.inf, np.nan
    if transposed:
        x = x.T
    xt = torch.tensor(x, requires_grad=True)
    TF.relu(xt).backward(torch.ones_like(xt))
    ours_x = mg.tensor(x, device=device, requires_grad=True)
    y = F.relu(ours_x)
    y.backward(mg.ones(y.shape, device=device))
    np.testing.assert_array_equal(y.detach().cpu().numpy(), TF.relu(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(ours_x.grad.cpu().numpy(), xt.grad.numpy())
