"""MaxPool2d (return_indices, ceil_mode), MaxUnpool2d and AvgPool2d against torch.nn's:
outputs, indices and input gradients, float32 and float64; constructor errors and repr."""

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L
import minigrad as mg


@st.composite
def window_cases(draw, dilation=True):
    """kernel_size, stride (or None), padding, dilation, ceil_mode and an input they fit."""
    kernel = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    kh, kw = np.broadcast_to(kernel, 2)
    stride = draw(
        st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 2), st.integers(1, 3)))
    )
    padding = draw(
        st.one_of(
            st.integers(0, min(kh, kw) // 2),
            st.tuples(st.integers(0, kh // 2), st.integers(0, kw // 2)),
        )
    )
    d = draw(st.sampled_from([1, 2])) if dilation else 1
    size = (d * (kh - 1) + 1 + draw(st.integers(0, 4)), d * (kw - 1) + 1 + draw(st.integers(0, 4)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=draw(st.booleans()))
    if dilation:
        kwargs["dilation"] = d
    return kwargs, shape


@settings(max_examples=20)
@given(
    case=window_cases(),
    dtype=float_dtypes,
    seed=seeds,
    indices=st.booleans(),
    training=st.booleans(),
)
def test_max_pool2d_matches_torch(device, parity, case, dtype, seed, indices, training):
    kwargs, shape = case
    kwargs["return_indices"] = indices
    x = random_array(seed, shape, dtype)
    out = parity.run(
        L.MaxPool2d(**kwargs),
        torch.nn.MaxPool2d(**kwargs),
        [x],
        device,
        dtype=dtype,
        seed=seed,
        training=training,
    )
    assert len(out.our_out) == (2 if indices else 1)


@settings(max_examples=20)
@given(
    case=window_cases(dilation=False),
    dtype=float_dtypes,
    seed=seeds,
    count_include_pad=st.booleans(),
    divisor=st.sampled_from([None, 3]),
)
def test_avg_pool2d_matches_torch(device, parity, case, dtype, seed, count_include_pad, divisor):
    kwargs, shape = case
    kwargs.update(count_include_pad=count_include_pad, divisor_override=divisor)
    x = random_array(seed, shape, dtype)
    parity.run(
        L.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), [x], device, dtype=dtype, seed=seed
    )


@settings(max_examples=15)
@given(
    kernel=st.integers(1, 3),
    stride=st.sampled_from([None, 1, 2]),
    size=st.tuples(st.integers(3, 7), st.integers(3, 7)),
    dtype=float_dtypes,
    seed=seeds,
    sized=st.booleans(),
)
def test_max_unpool2d_matches_torch(device, parity, kernel, stride, size, dtype, seed, sized):
    x = torch.tensor(random_array(seed, (2, 2, *size), dtype))
    pooled, indices = torch.nn.functional.max_pool2d(x, kernel, stride, return_indices=True)
    step = kernel if stride is None else stride
    default = [(n - 1) * step + kernel for n in pooled.shape[2:]]
    # a pooling that dropped rows or columns must be undone with its output_size
    output_size = list(size) if sized or default != list(size) else None
    parity.run(
        L.MaxUnpool2d(kernel, stride),
        torch.nn.MaxUnpool2d(kernel, stride),
        [pooled.numpy(), indices.numpy()],
        device,
        dtype=dtype,
        seed=seed,
        call=lambda layer, v, i: layer(v, i, output_size=output_size),
    )


def test_pool_then_unpool_round_trip(device):
    x = mg.tensor(random_array(0, (1, 2, 6, 6), np.float32), device=device)
    values, indices = L.MaxPool2d(2, return_indices=True)(x)
    restored = L.MaxUnpool2d(2)(values, indices)
    assert restored.shape == x.shape
    kept = restored.numpy() != 0
    np.testing.assert_array_equal(restored.numpy()[kept], x.numpy()[kept])
    assert kept.sum() == 2 * 9


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: L.MaxPool2d(0), ValueError, "MaxPool2d: kernel_size must be positive, got 0"),
        (lambda: L.MaxPool2d(2, stride=0), ValueError, "stride must be positive"),
        (
            lambda: L.MaxPool2d(2, padding=2),
            ValueError,
            "padding 2 should be at most half of kernel_size 2",
        ),
        (lambda: L.MaxPool2d(2, dilation=0), ValueError, "dilation must be positive"),
        (lambda: L.MaxPool2d(2, ceil_mode=1), TypeError, "ceil_mode must be True or False"),
        (lambda: L.MaxPool2d((2, 2, 2)), TypeError, "kernel_size must be an int or a tuple of two"),
        (lambda: L.AvgPool2d(3, padding=(2, 0)), ValueError, "should be at most half"),
        (
            lambda: L.AvgPool2d(2, divisor_override=0),
            ValueError,
            "divisor_override must be a non-zero int",
        ),
        (lambda: L.MaxUnpool2d(0), ValueError, "MaxUnpool2d: kernel_size must be positive"),
        (lambda: L.MaxUnpool2d(2, padding=-1), ValueError, "padding must be non-negative"),
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("MaxPool2d", dict(kernel_size=2)),
        ("MaxPool2d", dict(kernel_size=(3, 2), stride=1, padding=1, dilation=2, ceil_mode=True)),
        ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
        ("MaxUnpool2d", dict(kernel_size=2)),
        ("MaxUnpool2d", dict(kernel_size=3, stride=(2, 1), padding=1)),
    ],
)
def test_repr_matches_torch(name, kwargs):
    ours, theirs = getattr(L, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ours) == repr(theirs)
    assert vars(ours)["stride"] == theirs.stride
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
