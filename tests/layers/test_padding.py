"""ZeroPad2d, ConstantPad2d, ReflectionPad2d, ReplicationPad2d and CircularPad2d against
torch.nn's: outputs and input gradients, float32 and float64, drawn amounts (crops too);
repr and errors."""

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L
import minigrad as mg

NAMES = ["ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "CircularPad2d"]


def _layers(name, padding):
    if name == "ConstantPad2d":
        return L.ConstantPad2d(padding, 1.5), torch.nn.ConstantPad2d(padding, 1.5)
    return getattr(L, name)(padding), getattr(torch.nn, name)(padding)


@settings(max_examples=25)
@given(
    name=st.sampled_from(NAMES),
    h=st.integers(3, 5),
    w=st.integers(3, 5),
    batched=st.booleans(),
    data=st.data(),
    dtype=float_dtypes,
    seed=seeds,
)
def test_padding_matches_torch(device, parity, name, h, w, batched, data, dtype, seed):
    low = -1 if name in ("ZeroPad2d", "ConstantPad2d", "CircularPad2d") else 0
    amount = st.integers(low, 2)  # below each mode's limit for sizes >= 3
    padding = data.draw(st.one_of(st.integers(0, 2), st.tuples(amount, amount, amount, amount)))
    shape = (2, 3, h, w) if batched else (3, h, w)
    ours, theirs = _layers(name, padding)
    parity.run(ours, theirs, [random_array(seed, shape, dtype)], device, dtype=dtype, seed=seed)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("padding", [1, (1, 0, 2, 3)])
def test_repr_matches_torch(name, padding):
    ours, theirs = _layers(name, padding)
    assert repr(ours) == repr(theirs)
    assert ours.padding == theirs.padding


@pytest.mark.parametrize("name", NAMES)
def test_bad_padding(name):
    with pytest.raises(TypeError, match=rf"{name}: padding must be an int or a tuple of 4 ints"):
        _layers(name, (1, 2))
    with pytest.raises(TypeError, match="padding must be an int or a tuple of 4 ints"):
        _layers(name, 1.5)


def test_reflection_limit_is_named():
    with pytest.raises(ValueError, match="reflect"):
        L.ReflectionPad2d(3)(mg.zeros(1, 1, 3, 3))


@pytest.mark.parametrize("name", ["ReflectionPad2d", "ReplicationPad2d", "CircularPad2d"])
def test_bad_input_dims(name):
    with pytest.raises(ValueError, match=rf"{name}: expected 3D \(C, H, W\) or 4D"):
        getattr(L, name)(1)(mg.zeros(3, 3))


def test_constant_value_is_checked():
    with pytest.raises(TypeError, match="ConstantPad2d: value must be a number"):
        L.ConstantPad2d(1, "zero")
    assert L.ConstantPad2d(1, -2)(mg.zeros(1, 1)).numpy()[0, 0] == -2
    np.testing.assert_array_equal(L.ZeroPad2d((1, 0, 0, 0))(mg.ones(1, 1)).numpy(), [[0, 1]])
