"""Reductions against PyTorch (dim, keepdim, unbiased), and float64 gradcheck."""

import numpy as np
import pytest
import torch
from helpers import check_parity, float_dtypes, layouts, random_array, seeds, shapes
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradcheck import gradcheck


@st.composite
def shape_and_dims(draw, min_dims=1):
    shape = draw(shapes(min_dims=min_dims))
    dims = draw(
        st.one_of(
            st.none(),
            st.integers(-len(shape), len(shape) - 1),
            st.lists(
                st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True
            ).map(tuple),
        )
    )
    return shape, dims


def _length(shape, dims):
    if dims is None:
        return int(np.prod(shape))
    dims = (dims,) if isinstance(dims, int) else dims
    return int(np.prod([shape[d] for d in dims]))


def _torch_dims(dims):
    return {} if dims is None else {"dim": dims}


@pytest.mark.parametrize("name", ["sum", "mean"])
@settings(max_examples=40)
@given(case=shape_and_dims(), keepdim=st.booleans(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_sum_mean_match_torch(device, name, case, keepdim, dtype, layout, seed):
    shape, dims = case
    keep = {} if dims is None else {"keepdim": keepdim}
    check_parity(
        lambda t: getattr(t, name)(**_torch_dims(dims), **keep),
        lambda t: getattr(t, name)(**_torch_dims(dims), **keep),
        [random_array(seed, shape, dtype)],
        device,
        reduction=_length(shape, dims),
        layout=layout,
    )


@settings(max_examples=40)
@given(
    case=shape_and_dims(),
    keepdim=st.booleans(),
    unbiased=st.booleans(),
    dtype=float_dtypes,
    seed=seeds,
)
def test_var_matches_torch(device, case, keepdim, unbiased, dtype, seed):
    shape, dims = case
    if _length(shape, dims) < 2:
        shape = shape[:-1] + (shape[-1] + 2,)
        dims = -1
    check_parity(
        lambda t: t.var(dim=dims, unbiased=unbiased, keepdim=keepdim),
        lambda t: t.var(dim=dims, correction=int(unbiased), keepdim=keepdim),
        [random_array(seed, shape, dtype)],
        device,
        reduction=_length(shape, dims),
    )


@pytest.mark.parametrize("name", ["max", "min"])
@settings(max_examples=40)
@given(
    shape=shapes(min_dims=1), data=st.data(), keepdim=st.booleans(), dtype=float_dtypes, seed=seeds
)
def test_max_min_along_dim_match_torch(device, name, shape, data, keepdim, dtype, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    out = check_parity(
        lambda t: tuple(getattr(t, name)(dim=dim, keepdim=keepdim)),
        lambda t: tuple(getattr(t, name)(dim=dim, keepdim=keepdim)),
        [random_array(seed, shape, dtype)],
        device,
    )
    assert out[1].dtype == np.int64


@pytest.mark.parametrize("name", ["max", "min"])
@settings(max_examples=25)
@given(shape=shapes(), dtype=float_dtypes, seed=seeds)
def test_full_max_min_match_torch(device, name, shape, dtype, seed):
    check_parity(
        lambda t: getattr(t, name)(),
        lambda t: getattr(t, name)(),
        [random_array(seed, shape, dtype)],
        device,
    )


@pytest.mark.parametrize("name", ["max", "min", "amax"])
def test_ties_share_the_gradient_like_torch(device, name):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    check_parity(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [x], device)


def test_max_along_dim_with_ties_picks_torchs_index(device):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    check_parity(lambda t: tuple(t.max(dim=1)), lambda t: tuple(t.max(dim=1)), [x], device)


def test_argmax_matches_torch(device):
    x = random_array(0, (3, 4, 5), np.float32)
    t = torch.tensor(x)
    np.testing.assert_array_equal(mg.tensor(x, device=device).argmax().numpy(), t.argmax().numpy())
    np.testing.assert_array_equal(
        mg.tensor(x, device=device).argmax(dim=1, keepdim=True).numpy(),
        t.argmax(dim=1, keepdim=True).numpy(),
    )


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.sum(dim=1),
        lambda t: t.mean(dim=(0, 2), keepdim=True),
        lambda t: t.var(dim=2),
        lambda t: t.var(unbiased=False),
        lambda t: t.max(dim=1).values,
        lambda t: t.min(),
    ],
)
def test_reduction_gradcheck(device, fn):
    x = mg.tensor(random_array(2, (2, 3, 4), np.float64), device=device, requires_grad=True)
    assert gradcheck(fn, [x])


def test_reduction_dim_out_of_range_is_clear(device):
    with pytest.raises(IndexError, match="sum: dim 3 is out of range"):
        mg.ones(2, 3, device=device).sum(dim=3)


def test_max_min_of_two_tensors_are_elementwise_like_torch(device):
    a, b = random_array(0, (2, 3), np.float64), random_array(1, (3,), np.float64)
    check_parity(lambda x, y: mg.max(x, y), lambda x, y: torch.max(x, y), [a, b], device)
    check_parity(lambda x, y: x.min(y), lambda x, y: x.min(y), [a, b], device)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.bool_])
def test_integer_and_bool_sums_are_int64_like_torch(device, dtype):
    x = np.array([[1, 0, 1], [1, 1, 0]], dtype=dtype)
    ours, theirs = mg.tensor(x, device=device).sum(dim=1), torch.tensor(x).sum(dim=1)
    assert ours.dtype == np.int64 and str(theirs.dtype) == "torch.int64"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
