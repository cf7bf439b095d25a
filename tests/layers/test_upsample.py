"""Upsample against torch.nn.Upsample: size or scale_factor, nearest and bilinear (with and
without align_corners), outputs and input gradients, float32 and float64; repr and errors."""

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L


@st.composite
def upsample_cases(draw):
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    kwargs = dict(mode=mode)
    if draw(st.booleans()):
        kwargs["size"] = draw(
            st.one_of(st.integers(1, 7), st.tuples(st.integers(1, 7), st.integers(1, 7)))
        )
    else:
        factor = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])
        kwargs["scale_factor"] = draw(st.one_of(factor, st.tuples(factor, factor)))
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, True]))
    if mode == "bilinear":
        kwargs["align_corners"] = draw(st.sampled_from([None, False, True]))
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(2, 5)),
        draw(st.integers(2, 5)),
    )
    return kwargs, shape


@settings(max_examples=25)
@given(case=upsample_cases(), dtype=float_dtypes, seed=seeds)
def test_upsample_matches_torch(device, parity, case, dtype, seed):
    kwargs, shape = case
    x = random_array(seed, shape, dtype)
    parity.run(
        L.Upsample(**kwargs),
        torch.nn.Upsample(**kwargs),
        [x],
        device,
        dtype=dtype,
        seed=seed,
        reduction=16,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(scale_factor=2),
        dict(scale_factor=(2, 3), mode="bilinear"),
        dict(size=(4, 5), mode="bilinear", align_corners=True),
        dict(size=3),
    ],
)
def test_repr_and_attributes_match_torch(kwargs):
    ours, theirs = L.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
    assert repr(ours) == repr(theirs)
    assert ours.scale_factor == theirs.scale_factor
    assert type(ours.scale_factor) is type(theirs.scale_factor)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, "Upsample: give exactly one of size and scale_factor"),
        (dict(size=2, scale_factor=2), ValueError, "give exactly one of size and scale_factor"),
        (dict(scale_factor=2, mode="bicubic"), ValueError, "mode must be one of .*got 'bicubic'"),
        (
            dict(scale_factor=2, align_corners=True),
            ValueError,
            "align_corners can only be set with mode='bilinear'",
        ),
        (dict(scale_factor=0), ValueError, "scale_factor must be positive, got 0"),
        (dict(scale_factor="2"), TypeError, "scale_factor must be a number"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        L.Upsample(**kwargs)


def test_output_shape():
    import minigrad as mg

    assert L.Upsample(scale_factor=2, mode="bilinear")(mg.zeros(1, 2, 3, 4)).shape == (1, 2, 6, 8)
    assert np.all(L.Upsample(size=(5, 2))(mg.ones(1, 1, 2, 2)).numpy() == 1)
