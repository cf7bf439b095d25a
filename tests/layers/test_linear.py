"""Linear, Identity and Flatten against torch.nn's: outputs, input, weight and bias gradients
with the weights copied both ways, float32 and float64, drawn sizes; repr, keys, errors."""

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L
import minigrad as mg


@settings(max_examples=15)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    in_features=st.integers(1, 6),
    out_features=st.integers(1, 5),
    bias=st.booleans(),
    dtype=float_dtypes,
    seed=seeds,
    direction=st.sampled_from(["to_torch", "from_torch"]),
)
def test_linear_matches_torch(
    device, parity, lead, in_features, out_features, bias, dtype, seed, direction
):
    ours = L.Linear(in_features, out_features, bias=bias)
    theirs = torch.nn.Linear(in_features, out_features, bias=bias)
    x = random_array(seed, (*lead, in_features), dtype)
    parity.run(
        ours,
        theirs,
        [x],
        device,
        dtype=dtype,
        direction=direction,
        reduction=in_features,
        seed=seed,
    )


@settings(max_examples=15)
@given(
    shape=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    data=st.data(),
    dtype=float_dtypes,
)
def test_flatten_matches_torch(device, parity, shape, data, dtype):
    n = len(shape)
    start = data.draw(st.integers(-n, n - 1))
    end = data.draw(st.integers(start % n - n, -1))
    x = random_array(0, shape, dtype)
    parity.run(L.Flatten(start, end), torch.nn.Flatten(start, end), [x], device, dtype=dtype)


def test_flatten_default_keeps_the_batch(device):
    x = mg.zeros(2, 3, 4, 5, device=device)
    assert L.Flatten()(x).shape == (2, 60)


def test_identity_returns_its_input_and_ignores_arguments(device, parity):
    x = mg.zeros(2, 3, device=device)
    assert L.Identity(54, unused="argument")(x) is x
    parity.run(L.Identity(), torch.nn.Identity(), [random_array(0, (2, 3), np.float64)], device)


def test_zero_features_init_like_torch():
    """Linear(0, 3): torch warns that initializing a zero-element weight is a no-op and draws
    the bias from U(0, 0)."""
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        layer = L.Linear(0, 3)
    np.testing.assert_array_equal(layer.bias.detach().numpy(), 0)
    assert layer(mg.zeros(2, 0)).shape == (2, 3)


@pytest.mark.parametrize(
    "kwargs", [dict(in_features=3, out_features=4), dict(in_features=2, out_features=1, bias=False)]
)
def test_linear_repr_and_keys_match_torch(kwargs):
    ours, theirs = L.Linear(**kwargs), torch.nn.Linear(**kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.weight.shape == tuple(theirs.weight.shape)


def test_flatten_and_identity_repr_match_torch():
    assert repr(L.Flatten()) == repr(torch.nn.Flatten())
    assert repr(L.Flatten(0, 2)) == repr(torch.nn.Flatten(0, 2))
    assert repr(L.Identity()) == repr(torch.nn.Identity())


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: L.Linear(-1, 3), ValueError, "Linear: in_features must be at least 0, got -1"),
        (lambda: L.Linear(2, 3.5), TypeError, "Linear: out_features must be an int, got 3.5"),
        (lambda: L.Linear(2, 3, bias=None), TypeError, "bias must be True or False"),
        (lambda: L.Linear(2, 3, dtype=np.int32), TypeError, "dtype must be a floating-point type"),
        (lambda: L.Flatten(start_dim="1"), TypeError, "Flatten: start_dim must be an int"),
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_linear_bad_input():
    with pytest.raises(ValueError, match=r"last dim in_features=3, got shape \(2, 4\)"):
        L.Linear(3, 2)(mg.zeros(2, 4))
