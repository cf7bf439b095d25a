"""ReLU, LeakyReLU, Sigmoid, Tanh, Softmax and LogSoftmax against torch.nn's: outputs and input
gradients, float32 and float64, drawn shapes and arguments; repr and errors."""

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds, shapes
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L
import minigrad as mg


@st.composite
def activation_cases(draw):
    """(class name, constructor kwargs, input shape), dims drawn within the shape."""
    name = draw(st.sampled_from(["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]))
    shape = draw(shapes(min_dims=1, max_dims=4))
    kwargs = {}
    if name in ("ReLU", "LeakyReLU"):
        kwargs["inplace"] = draw(st.booleans())
    if name == "LeakyReLU":
        kwargs["negative_slope"] = draw(st.sampled_from([0.01, 0.2, -0.5, 2.0]))
    if name in ("Softmax", "LogSoftmax"):
        kwargs["dim"] = draw(st.integers(-len(shape), len(shape) - 1))
    return name, kwargs, shape


@settings(max_examples=25)
@given(case=activation_cases(), dtype=float_dtypes, seed=seeds, training=st.booleans())
def test_activation_matches_torch(device, parity, case, dtype, seed, training):
    name, kwargs, shape = case
    x = random_array(seed, shape, dtype) * 3
    ours = getattr(L, name)(**kwargs)
    if kwargs.get("negative_slope", 0) < 0:  # torch has no in-place backward for these
        kwargs["inplace"] = False
    theirs = getattr(torch.nn, name)(**kwargs)
    # torch's in-place ReLU cannot take a leaf that requires grad: give it a copy
    call = (lambda layer, t: layer(t * 1)) if kwargs.get("inplace") else None
    parity.run(ours, theirs, [x], device, dtype=dtype, training=training, seed=seed, call=call)


@pytest.mark.filterwarnings("ignore:Implicit dimension choice")
@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
def test_implicit_dim_is_torchs(device, parity, name, ndim):
    x = random_array(ndim, (2, 3, 2, 2)[:ndim], np.float64)
    parity.run(getattr(L, name)(), getattr(torch.nn, name)(), [x], device, dtype=np.float64)


def test_implicit_dim_warns_as_torch():
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        L.Softmax()(mg.zeros(2, 3))
    with pytest.warns(UserWarning, match="Implicit dimension choice for logsoftmax"):
        L.LogSoftmax()(mg.zeros(2, 3))


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("ReLU", {}),
        ("ReLU", dict(inplace=True)),
        ("LeakyReLU", {}),
        ("LeakyReLU", dict(negative_slope=0.2, inplace=True)),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("Softmax", dict(dim=1)),
        ("Softmax", {}),
        ("LogSoftmax", dict(dim=-1)),
    ],
)
def test_repr_matches_torch(name, kwargs):
    ours, theirs = getattr(L, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == []


def test_inplace_is_accepted_and_returns_a_new_tensor():
    x = mg.tensor([-1.0, 2.0])
    y = L.ReLU(inplace=True)(x)
    np.testing.assert_array_equal(y.numpy(), [0.0, 2.0])


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: L.ReLU(inplace="no"), TypeError, "ReLU: inplace must be True or False"),
        (lambda: L.LeakyReLU("0.1"), TypeError, "LeakyReLU: negative_slope must be a number"),
        (lambda: L.Softmax(dim=1.0), TypeError, "Softmax: dim must be an int or None, got 1.0"),
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_softmax_dim_out_of_range():
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        L.Softmax(dim=2)(mg.zeros(2, 3))
