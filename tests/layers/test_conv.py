"""Conv2d and ConvTranspose2d against torch.nn's: output, input/weight/bias gradients with the
weights copied through the state dict both ways, train and eval, float32 and float64; their
constructor errors, repr and state-dict keys."""

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L
import minigrad as mg

# PyTorch warns that its own asymmetric "same" padding copies the input; ours does not care.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

directions = st.sampled_from(["to_torch", "from_torch"])


def random_tensor(shape, device, dtype=np.float32, seed=0):
    return mg.tensor(random_array(seed, shape, dtype), device=device)


@st.composite
def conv2d_cases(draw):
    """Conv2d constructor arguments (all of them, drawn) and an input they fit."""
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    dilation = draw(st.sampled_from([1, (1, 2), 2]))
    padding = draw(
        st.one_of(
            st.integers(0, 1),
            st.tuples(st.integers(0, 1), st.integers(0, 2)),
            st.just("same"),
            st.just("valid"),
        )
    )
    stride = 1 if padding == "same" else draw(st.sampled_from([1, 2, (1, 2)]))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    kwargs = dict(
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=draw(st.booleans()),
        padding_mode=mode,
    )
    kh, kw = np.broadcast_to(kernel, 2)
    dh, dw = np.broadcast_to(dilation, 2)
    # big enough for the dilated kernel, and for reflect padding (amount < size)
    size = (
        dh * (kh - 1) + 3 + draw(st.integers(0, 2)),
        dw * (kw - 1) + 3 + draw(st.integers(0, 2)),
    )
    shape = (draw(st.integers(1, 2)), c_in, *size)
    return (c_in, c_out, kernel), kwargs, shape


@settings(max_examples=15)
@given(
    case=conv2d_cases(),
    dtype=float_dtypes,
    training=st.booleans(),
    direction=directions,
    seed=seeds,
)
def test_conv2d_matches_torch(device, parity, case, dtype, training, direction, seed):
    args, kwargs, shape = case
    ours, theirs = L.Conv2d(*args, **kwargs), torch.nn.Conv2d(*args, **kwargs)
    x = random_array(seed, shape, dtype)
    reduction = args[0] * np.prod(np.broadcast_to(args[2], 2))
    parity.run(
        ours,
        theirs,
        [x],
        device,
        dtype=dtype,
        training=training,
        direction=direction,
        reduction=int(reduction),
        seed=seed,
    )


@st.composite
def conv_transpose2d_cases(draw):
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    stride = draw(st.sampled_from([1, 2, (2, 3)]))
    dilation = draw(st.sampled_from([1, 2]))
    sh, sw = np.broadcast_to(stride, 2)
    limit = max(min(sh, sw), dilation) - 1
    output_padding = draw(st.integers(0, limit))
    kh, kw = np.broadcast_to(kernel, 2)
    padding = draw(st.integers(0, (min(kh, kw) - 1) * dilation // 2))
    kwargs = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        bias=draw(st.booleans()),
        dilation=dilation,
    )
    shape = (draw(st.integers(1, 2)), c_in, draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return (c_in, c_out, kernel), kwargs, shape


@settings(max_examples=15)
@given(
    case=conv_transpose2d_cases(),
    dtype=float_dtypes,
    training=st.booleans(),
    direction=directions,
    seed=seeds,
    sized=st.booleans(),
)
def test_conv_transpose2d_matches_torch(
    device, parity, case, dtype, training, direction, seed, sized
):
    args, kwargs, shape = case
    ours, theirs = L.ConvTranspose2d(*args, **kwargs), torch.nn.ConvTranspose2d(*args, **kwargs)
    x = random_array(seed, shape, dtype)
    output_size = None
    if sized:  # the largest valid output, through output_size instead of output_padding
        stride = np.broadcast_to(kwargs["stride"], 2)
        kernel = np.broadcast_to(args[2], 2)
        p, d = kwargs["padding"], kwargs["dilation"]
        output_size = [
            int((n - 1) * s - 2 * p + d * (k - 1) + 1 + s - 1)
            for n, s, k in zip(shape[2:], stride, kernel, strict=True)
        ]
    out = parity.run(
        ours,
        theirs,
        [x],
        device,
        dtype=dtype,
        training=training,
        direction=direction,
        reduction=args[1] * 9,
        seed=seed,
        call=lambda layer, t: layer(t, output_size=output_size),
    )
    if sized:
        assert list(out.our_out[0].shape[2:]) == output_size


def test_conv_transpose2d_output_size_checks(device):
    layer = L.ConvTranspose2d(2, 3, 3, stride=2).to(device)
    x = random_tensor((1, 2, 4, 4), device)
    assert layer(x, output_size=(9, 10)).shape == (1, 3, 9, 10)
    assert layer(x, output_size=(1, 3, 10, 9)).shape == (1, 3, 10, 9)
    with pytest.raises(ValueError, match=r"valid sizes range from \[9, 9\] to \[10, 10\]"):
        layer(x, output_size=(11, 9))
    with pytest.raises(ValueError, match="output_size must hold 2 or 4 ints"):
        layer(x, output_size=(9,))


def test_unbatched_input(device):
    x = random_tensor((3, 5, 5), device)
    assert L.Conv2d(3, 4, 3).to(device)(x).shape == (4, 3, 3)
    assert L.ConvTranspose2d(3, 4, 3).to(device)(x).shape == (4, 7, 7)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: L.Conv2d(3, 8, 3, groups=2),
            r"in_channels \(3\) must be divisible by groups \(2\)",
        ),
        (
            lambda: L.Conv2d(4, 6, 3, groups=4),
            r"out_channels \(6\) must be divisible by groups \(4\)",
        ),
        (lambda: L.Conv2d(3, 8, 0), "kernel_size must be positive, got 0"),
        (lambda: L.Conv2d(3, 8, (3, 0)), r"kernel_size must be positive, got \(3, 0\)"),
        (lambda: L.Conv2d(3, 8, 3, stride=0), "stride must be positive"),
        (lambda: L.Conv2d(3, 8, 3, dilation=-1), "dilation must be positive"),
        (lambda: L.Conv2d(3, 8, 3, padding=-1), "padding must be non-negative"),
        (lambda: L.Conv2d(3, 8, 3, padding="full"), "padding must be one of .*'same'.*got 'full'"),
        (lambda: L.Conv2d(3, 8, 3, padding="same", stride=2), "padding='same' is not supported"),
        (lambda: L.Conv2d(3, 8, 3, padding_mode="foo"), "padding_mode must be one of .*got 'foo'"),
        (lambda: L.Conv2d(3, 8, 3, groups=0), "groups must be at least 1, got 0"),
        (lambda: L.Conv2d(0, 8, 3), "in_channels must be at least 1, got 0"),
        (lambda: L.ConvTranspose2d(2, 2, 3, padding_mode="reflect"), 'only "zeros" padding mode'),
        (lambda: L.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), "output_padding"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L.Conv2d(3.0, 8, 3), "in_channels must be an int, got 3.0"),
        (lambda: L.Conv2d(3, 8, (3, 3, 3)), "kernel_size must be an int or a tuple of two ints"),
        (lambda: L.Conv2d(3, 8, 3, bias="yes"), "bias must be True or False"),
        (lambda: L.Conv2d(3, 8, 3, dtype=np.int64), "dtype must be a floating-point type"),
        (lambda: L.ConvTranspose2d(3, 8, 3, padding="same"), "padding must be an int or a pair"),
    ],
)
def test_bad_argument_types(make, message):
    with pytest.raises(TypeError, match=message):
        make()


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((3, 8, 3), {}),
        ((4, 8, (3, 5)), dict(stride=(2, 1), padding=(1, 2), dilation=2, groups=2, bias=False)),
        ((3, 8, 3), dict(padding="same", padding_mode="reflect")),
        ((3, 8, 3), dict(padding="valid")),
        ((3, 3, 3), dict(padding=1, padding_mode="circular", groups=3)),
    ],
)
def test_conv2d_repr_and_keys_match_torch(args, kwargs):
    ours, theirs = L.Conv2d(*args, **kwargs), torch.nn.Conv2d(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.weight.shape == tuple(theirs.weight.shape)
    assert ours._reversed_padding_repeated_twice == list(theirs._reversed_padding_repeated_twice)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((3, 8, 3), {}),
        ((4, 6, (3, 2)), dict(stride=2, padding=1, output_padding=1, groups=2, bias=False)),
        ((2, 2, 3), dict(dilation=2, output_padding=1)),
    ],
)
def test_conv_transpose2d_repr_and_keys_match_torch(args, kwargs):
    ours, theirs = L.ConvTranspose2d(*args, **kwargs), torch.nn.ConvTranspose2d(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.weight.shape == tuple(theirs.weight.shape)


def test_parameters_on_device_and_dtype(device):
    layer = L.Conv2d(2, 3, 3, device=device, dtype=np.float64)
    assert layer.weight.device == layer.bias.device == device.replace("cuda", "gpu")
    assert layer.weight.dtype == layer.bias.dtype == np.float64
    assert layer.weight.requires_grad and layer.weight.is_leaf
    x = random_tensor((1, 2, 4, 4), device, np.float64)
    assert layer(x).dtype == np.float64
