"""Elementwise ops against PyTorch (values and gradients), and float64 gradcheck."""

import numpy as np
import pytest
import torch
from helpers import check_parity, float_dtypes, layouts, random_array, seeds, shapes
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.gradcheck import gradcheck

# name: (ours, torch's, input range or None for normal samples)
UNARY = {
    "neg": (lambda x: -x, lambda x: -x, None),
    "exp": (mg.exp, torch.exp, None),
    "log": (mg.log, torch.log, (0.1, 3.0)),
    "sqrt": (mg.sqrt, torch.sqrt, (0.1, 3.0)),
    "abs": (mg.abs, torch.abs, None),
    "pow_scalar": (lambda x: x**3, lambda x: x**3, None),
    "pow_fraction": (lambda x: x**0.5, lambda x: x**0.5, (0.1, 3.0)),
    "rpow": (lambda x: 2.0**x, lambda x: 2.0**x, None),
    "add_scalar": (lambda x: x + 2, lambda x: x + 2, None),
    "rsub_scalar": (lambda x: 1.5 - x, lambda x: 1.5 - x, None),
    "rdiv_scalar": (lambda x: 2 / x, lambda x: 2 / x, (0.5, 2.0)),
    "clamp": (lambda x: mg.clamp(x, -0.5, 0.7), lambda x: torch.clamp(x, -0.5, 0.7), None),
    "clamp_min": (lambda x: x.clamp(min=0.1), lambda x: x.clamp(min=0.1), None),
}

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, None),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, None),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, None),
    "div": (lambda a, b: a / b, lambda a, b: a / b, (0.5, 2.0)),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, (0.5, 2.0)),
    "maximum": (mg.maximum, torch.maximum, None),
    "minimum": (mg.minimum, torch.minimum, None),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(max_examples=25)
@given(shape=shapes(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_unary_matches_torch(device, name, shape, dtype, layout, seed):
    ours, theirs, bounds = UNARY[name]
    x = random_array(seed, shape, dtype, *(bounds or ()))
    check_parity(ours, theirs, [x], device, layout=layout)


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=25)
@given(
    shapes_=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4),
    dtype=float_dtypes,
    seed=seeds,
)
def test_binary_broadcast_matches_torch(device, name, shapes_, dtype, seed):
    ours, theirs, bounds = BINARY[name]
    a = random_array(seed, shapes_.input_shapes[0], dtype, *(bounds or ()))
    b = random_array(seed + 1, shapes_.input_shapes[1], dtype, *(bounds or ()))
    check_parity(ours, theirs, [a, b], device)


@settings(max_examples=25)
@given(
    shapes_=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4),
    dtype=float_dtypes,
    seed=seeds,
)
def test_where_matches_torch(device, shapes_, dtype, seed):
    cond_shape, a_shape, b_shape = shapes_.input_shapes
    cond = random_array(seed, cond_shape, np.float64) > 0
    a = random_array(seed + 1, a_shape, dtype)
    b = random_array(seed + 2, b_shape, dtype)
    check_parity(
        lambda x, y: mg.where(mg.tensor(cond, device=device), x, y),
        lambda x, y: torch.where(torch.tensor(cond), x, y),
        [a, b],
        device,
    )


def test_maximum_ties_split_the_gradient_like_torch(device):
    a = np.array([1.0, 2.0, 3.0])
    check_parity(mg.maximum, torch.maximum, [a, a.copy()], device)
    check_parity(mg.minimum, torch.minimum, [a, np.array([1.0, 0.0, 5.0])], device)


def test_python_scalars_take_the_tensor_dtype(device):
    x = mg.ones(3, device=device)
    assert (x * 2.5).dtype == np.float32
    assert (2.5 - x).dtype == np.float32
    assert (x**2).dtype == np.float32
    assert (mg.arange(3, device=device) * 0.5).dtype == np.float32


def test_dtype_promotion_follows_torch(device):
    a = mg.ones(2, device=device, requires_grad=True)
    b = mg.ones(2, dtype=mg.float64, device=device, requires_grad=True)
    (a * b).sum().backward()
    assert (a * b).dtype == np.float64
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    assert (a + mg.arange(2, device=device)).dtype == np.float32


def test_comparisons_give_bool_without_grad(device):
    a = mg.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    for result, expected in [
        (a > 1.5, [0, 1, 1]),
        (a <= 2, [1, 1, 0]),
        (a == 2, [0, 1, 0]),
        (a != 2, [1, 0, 1]),
        (a < 3, [1, 1, 0]),
        (a >= 3, [0, 0, 1]),
    ]:
        assert result.dtype == np.bool_ and not result.requires_grad
        np.testing.assert_array_equal(result.numpy(), np.array(expected, dtype=bool))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(device, name):
    ours, _, bounds = UNARY[name]
    x = mg.tensor(
        random_array(3, (2, 3), np.float64, *(bounds or (0.2, 2.0))),
        device=device,
        requires_grad=True,
    )
    assert gradcheck(ours, [x])


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(device, name):
    ours, _, bounds = BINARY[name]
    a = mg.tensor(
        random_array(4, (2, 3), np.float64, *(bounds or (0.2, 2.0))),
        device=device,
        requires_grad=True,
    )
    b = mg.tensor(
        random_array(5, (3,), np.float64, *(bounds or (0.2, 2.0))),
        device=device,
        requires_grad=True,
    )
    assert gradcheck(ours, [a, b])


def test_where_gradcheck(device):
    cond = mg.tensor(np.array([[True, False, True]]), device=device)
    a = mg.tensor(random_array(1, (2, 3), np.float64), device=device, requires_grad=True)
    b = mg.tensor(random_array(2, (3,), np.float64), device=device, requires_grad=True)
    assert gradcheck(lambda x, y: mg.where(cond, x, y), [a, b])


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a * b, mg.maximum])
def test_broadcast_mismatch_names_both_shapes(device, op):
    a, b = mg.ones(2, 3, device=device), mg.ones(4, device=device)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\)"):
        op(a, b)


def test_mixing_devices_raises_naming_both(device):
    if device == "cpu":
        pytest.skip("needs two devices")
    a, b = mg.ones(2), mg.ones(2, device=device)
    with pytest.raises(mg.DeviceError, match="cpu.*gpu|gpu.*cpu"):
        a + b


@st.composite
def _clamp_bounds(draw):
    low = draw(st.floats(-1, 0.5))
    return low, low + draw(st.floats(0.1, 1))


@settings(max_examples=25)
@given(bounds=_clamp_bounds(), seed=seeds)
def test_clamp_bounds_match_torch(device, bounds, seed):
    x = random_array(seed, (3, 4), np.float64)
    check_parity(lambda t: mg.clamp(t, *bounds), lambda t: torch.clamp(t, *bounds), [x], device)


def test_clamp_of_integers_with_float_bounds_promotes_like_torch(device):
    ours = mg.tensor([1, 2, 3], device=device).clamp(0.5, 2.5)
    theirs = torch.tensor([1, 2, 3]).clamp(0.5, 2.5)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
