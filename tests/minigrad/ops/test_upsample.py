"""interpolate ("nearest", "bilinear") against PyTorch: sizes and scale factors (non-integer,
up and down), align_corners, recompute_scale_factor, PyTorch's float32 index rules and its
large-output path; float64 gradcheck; bad input."""

import math

import numpy as np
import pytest
import torch.nn.functional as TF
from helpers import REAL_GPU, check_parity, float_dtypes, layouts, random_array, seeds
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradcheck import gradcheck
from minigrad.ops.upsample import interpolate

FACTORS = [0.3, 0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0, 1 / 3, 2.9]


@st.composite
def resize_cases(draw):
    """(shape, kwargs): an explicit size (int or pair) or scale factors (number or pair, with
    or without recompute_scale_factor), upsampling and downsampling."""
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 7)),
        draw(st.integers(1, 7)),
    )
    kwargs = {}
    if draw(st.booleans()):
        size = (draw(st.integers(1, 15)), draw(st.integers(1, 15)))
        kwargs["size"] = size[0] if draw(st.booleans()) else size
    else:
        factors = (draw(st.sampled_from(FACTORS)), draw(st.sampled_from(FACTORS)))
        assume(all(math.floor(n * f) >= 1 for n, f in zip(shape[2:], factors, strict=True)))
        kwargs["scale_factor"] = factors
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
    return shape, kwargs


@settings(max_examples=150)
@given(
    case=resize_cases(), align_corners=st.booleans(), dtype=float_dtypes, layout=layouts, seed=seeds
)
def test_bilinear_matches_torch(device, case, align_corners, dtype, layout, seed):
    shape, kwargs = case
    kwargs = dict(kwargs, mode="bilinear", align_corners=align_corners)
    x = random_array(seed, shape, dtype)
    check_parity(
        lambda t: interpolate(t, **kwargs),
        lambda t: TF.interpolate(t, **kwargs),
        [x],
        device,
        reduction=16,
        layout=layout,
    )


@settings(max_examples=150)
@given(case=resize_cases(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_nearest_matches_torch(device, case, dtype, layout, seed):
    shape, kwargs = case
    x = random_array(seed, shape, dtype)
    check_parity(
        lambda t: interpolate(t, **kwargs),
        lambda t: TF.interpolate(t, **kwargs),
        [x],
        device,
        reduction=16,
        layout=layout,
    )


def test_bilinear_default_align_corners_is_false(device):
    x = random_array(0, (1, 2, 4, 5), np.float32)
    check_parity(
        lambda t: interpolate(t, scale_factor=1.7, mode="bilinear"),
        lambda t: TF.interpolate(t, scale_factor=1.7, mode="bilinear", align_corners=False),
        [x],
        device,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((1, 2, 14, 3), {"size": (46, 5)}),
        ((1, 2, 3, 30), {"size": (4, 58)}),
    ],
)
def test_nearest_indices_use_float32_arithmetic(device, dtype, shape, kwargs):
    """Small outputs: PyTorch computes floor(dst * (in / out)) in float32 even for float64
    data; sizes where float64 arithmetic would pick another row or column."""
    x = random_array(1, shape, dtype)
    check_parity(
        lambda t: interpolate(t, **kwargs),
        lambda t: TF.interpolate(t, **kwargs),
        [x],
        device,
        reduction=4,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((1, 2, 45, 3), {"size": (129, 4)}),
        ((1, 2, 3, 65), {"size": (4, 141)}),
        ((1, 1, 130, 2), {"scale_factor": (1.005, 1.0)}),
        ((1, 2, 6, 4), {"size": (141, 3)}),
    ],
)
def test_nearest_large_outputs_follow_torch_generic_path(device, dtype, shape, kwargs):
    """Ho + Wo > 128: PyTorch's forward computes indices in float64 for float64 data and
    drops its 1x shortcut, while its backward keeps the float32 rule; sizes where the rules
    give different indices."""
    x = random_array(1, shape, dtype)
    check_parity(
        lambda t: interpolate(t, **kwargs),
        lambda t: TF.interpolate(t, **kwargs),
        [x],
        device,
        reduction=4,
    )


@pytest.mark.parametrize(
    "kwargs", [{"scale_factor": 2}, {"size": (10, 6)}, {"scale_factor": (0.5, 1.5)}]
)
def test_nearest_keeps_integer_dtypes(device, kwargs):
    x = np.random.default_rng(2).integers(0, 255, (2, 3, 5, 3)).astype(np.uint8)
    ours = check_parity(
        lambda t: interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), [x], device
    )
    assert ours[0].dtype == np.uint8


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale_factor": 2, "mode": "bilinear", "align_corners": False},
        {"size": (5, 3), "mode": "bilinear", "align_corners": True},
        {"scale_factor": 0.6, "mode": "bilinear"},
        {"scale_factor": 2},
        {"size": (7, 2)},
    ],
)
def test_interpolate_gradcheck(device, kwargs):
    x = mg.tensor(random_array(3, (1, 2, 4, 3), np.float64), device=device, requires_grad=True)
    assert gradcheck(lambda t: interpolate(t, **kwargs), [x])


@pytest.mark.skipif(REAL_GPU, reason="counts transfers of the CPU stand-in")
def test_gpu_interpolate_makes_no_host_transfers():
    from minigrad.testing import fake_cupy

    x = mg.tensor(random_array(4, (2, 3, 5, 4), np.float32), device="gpu", requires_grad=True)
    with fake_cupy.count_transfers() as transfers:
        up = interpolate(x, scale_factor=2.5, mode="bilinear", align_corners=True)
        (interpolate(up, size=(7, 9)).sum() + interpolate(x, scale_factor=2).sum()).backward()
    assert transfers.to_host_calls == 0 and transfers.to_device_calls == 0, transfers


BAD_CASES = {
    "3-d input": (
        lambda x: interpolate(mg.reshape(x, (2, 4, 4)), size=3),
        ValueError,
        r"4-D input \(N, C, H, W\), got shape \(2, 4, 4\)",
    ),
    "size and scale": (
        lambda x: interpolate(x, size=3, scale_factor=2),
        ValueError,
        "only one of size or scale_factor",
    ),
    "neither": (lambda x: interpolate(x), ValueError, "either size or scale_factor"),
    "unknown mode": (
        lambda x: interpolate(x, size=3, mode="cubic"),
        ValueError,
        "mode must be one of .* got 'cubic'",
    ),
    "torch-only mode": (
        lambda x: interpolate(x, size=3, mode="bicubic"),
        NotImplementedError,
        "'bicubic' is not implemented",
    ),
    "align_corners with nearest": (
        lambda x: interpolate(x, size=3, align_corners=False),
        ValueError,
        "align_corners .* mode='nearest'",
    ),
    "zero size": (
        lambda x: interpolate(x, size=(0, 3)),
        ValueError,
        r"greater than 0, got input \(4, 4\) and output \(0, 3\)",
    ),
    "tiny factor": (lambda x: interpolate(x, scale_factor=0.2), ValueError, r"output \(0, 0\)"),
    "negative factor": (lambda x: interpolate(x, scale_factor=-2.0), ValueError, "greater than 0"),
    "three sizes": (
        lambda x: interpolate(x, size=(2, 3, 4)),
        ValueError,
        r"size must be a number or a sequence of 2 .* got \(2, 3, 4\)",
    ),
    "float size": (lambda x: interpolate(x, size=2.5), TypeError, "size must hold ints"),
    "recompute with size": (
        lambda x: interpolate(x, size=3, recompute_scale_factor=True),
        ValueError,
        "recompute_scale_factor is not meaningful",
    ),
    "bilinear integers": (
        lambda x: interpolate(
            mg.reshape(mg.arange(32, device=x.device), (2, 1, 4, 4)), size=3, mode="bilinear"
        ),
        TypeError,
        "bilinear needs a floating-point input, got int64",
    ),
    "antialias": (
        lambda x: interpolate(x, size=3, mode="bilinear", antialias=True),
        NotImplementedError,
        "antialias",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_input_raises_naming_the_argument(device, name):
    fn, error, match = BAD_CASES[name]
    x = mg.tensor(random_array(5, (1, 2, 4, 4), np.float32), device=device)
    with pytest.raises(error, match=match):
        fn(x)
