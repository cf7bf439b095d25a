"""pad in its four modes against PyTorch (values and gradients), float64 gradcheck, errors."""

import numpy as np
import pytest
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, layouts, random_array, seeds, shapes
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad.gradcheck import gradcheck

EDGE_MODES = ["reflect", "replicate", "circular"]


@settings(max_examples=40)
@given(shape=shapes(min_dims=1, max_dims=4), data=st.data(), dtype=float_dtypes, seed=seeds)
def test_constant_pad_matches_torch(device, shape, data, dtype, seed):
    n = data.draw(st.integers(1, len(shape)))
    amounts = []
    for i in range(n):
        size = shape[-1 - i]
        lo = data.draw(st.integers(-(size - 1), 3))
        hi = data.draw(st.integers(-(size - 1 + min(lo, 0)), 3))
        amounts += [lo, hi]
    value = data.draw(st.sampled_from([0.0, -1.5]))
    check_parity(
        lambda t: F.pad(t, amounts, value=value),
        lambda t: TF.pad(t, amounts, value=value),
        [random_array(seed, shape, dtype)],
        device,
    )


def _edge_amounts(draw, size: int, mode: str) -> list:
    """(left, right) amounts ``mode`` accepts for a dim of ``size``: a crop and a pad, two
    crops that keep at least one entry, or two pads."""
    kind = draw(st.sampled_from(["crop and pad", "two crops", "two pads"]))
    if kind == "two crops":
        left = draw(st.integers(0, size - 1))
        return [-left, -draw(st.integers(0, size - 1 - left))]
    crop = draw(st.integers(0, size - 1)) if kind == "crop and pad" else 0
    largest = {"reflect": size - 1, "replicate": 4, "circular": size - crop}[mode]
    amounts = [-crop, draw(st.integers(0, largest))]
    return amounts if draw(st.booleans()) else amounts[::-1]


@settings(max_examples=60)
@given(
    mode=st.sampled_from(EDGE_MODES),
    dims=st.integers(1, 3),
    leading=st.integers(1, 2),
    data=st.data(),
    dtype=float_dtypes,
    layout=layouts,
    seed=seeds,
)
def test_edge_pad_matches_torch(device, mode, dims, leading, data, dtype, layout, seed):
    shape = tuple(data.draw(st.integers(1, 3)) for _ in range(leading))
    shape += tuple(data.draw(st.integers(1, 5)) for _ in range(dims))
    amounts = []
    for i in range(dims):
        amounts += _edge_amounts(data.draw, shape[-1 - i], mode)
    check_parity(
        lambda t: F.pad(t, amounts, mode=mode),
        lambda t: TF.pad(t, amounts, mode=mode),
        [random_array(seed, shape, dtype)],
        device,
        layout=layout,
    )


@pytest.mark.parametrize("mode", EDGE_MODES)
def test_edge_pad_of_images_matches_torch(device, mode):
    """The U-Net use: (N, C, H, W) padded on all four sides, up to the reflect limit."""
    x = random_array(0, (2, 3, 5, 4), np.float32)
    for amounts in [(1, 1, 1, 1), (3, 0, 2, 4), (0, 2, 0, 0), (3, -1, -2, 2)]:
        check_parity(
            lambda t, a=amounts: F.pad(t, a, mode=mode),
            lambda t, a=amounts: TF.pad(t, a, mode=mode),
            [x],
            device,
        )


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: F.pad(t, (1, -1, 2, 0), value=3.0),
        lambda t: F.pad(t, (3, 2, 1, 2), mode="reflect"),
        lambda t: F.pad(t, (-1, 5, 2, 1), mode="replicate"),
        lambda t: F.pad(t, (4, 4, 2, -1), mode="circular"),
    ],
)
def test_pad_gradcheck(device, fn):
    x = mg.tensor(random_array(3, (2, 3, 4), np.float64), device=device, requires_grad=True)
    assert gradcheck(fn, [x])


def test_pad_value_none_means_zero_like_torch(device):
    x = random_array(0, (2, 3), np.float32)
    check_parity(
        lambda t: F.pad(t, (1, 1), value=None), lambda t: TF.pad(t, (1, 1), value=None), [x], device
    )


def test_bad_padding_raises_naming_the_problem(device):
    x = mg.zeros(1, 2, 3, 4, device=device)
    with pytest.raises(ValueError, match="unknown padding mode 'reflex'"):
        F.pad(x, (1, 1), mode="reflex")
    with pytest.raises(ValueError, match=r"reflect padding must be less than.*dim 3.*\(4, 0\)"):
        F.pad(x, (4, 0, 0, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"circular padding \(0, 5\) of dim 3 wraps around"):
        F.pad(x, (0, 5, 1, 1), mode="circular")
    with pytest.raises(ValueError, match=r"\(-2, 3\) of dim 3.*the 2 entries kept of its size 4"):
        F.pad(x, (-2, 3, 0, 0), mode="circular")
    with pytest.raises(ValueError, match=r"needs a 2-d or 3-d input.*4-d input"):
        F.pad(x, (1, 1), mode="replicate")
    with pytest.raises(ValueError, match="'reflect' doesn't take a value argument, got 1.5"):
        F.pad(x, (1, 1, 1, 1), mode="reflect", value=1.5)
    with pytest.raises(ValueError, match=r"negative size \(1, 2, 3, -2\)"):
        F.pad(x, (-3, -3))
    with pytest.raises(ValueError, match="even number of amounts"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match=r"\(-4, 4\) of dim 3 keeps none of its 4 entries"):
        F.pad(x, (-4, 4, 0, 0), mode="replicate")
    with pytest.raises(ValueError, match=r"\(0, 1\) of dim 2 keeps none of its 0 entries"):
        F.pad(mg.zeros(2, 3, 0, device=device), (0, 1), mode="replicate")


@pytest.mark.parametrize("amounts", [1, None, "ab", (1.0, 1), (True, 0)])
def test_pad_amounts_that_are_not_ints_raise_type_error(device, amounts):
    with pytest.raises(TypeError, match="pad: "):
        F.pad(mg.zeros(1, 2, 3, device=device), amounts)
