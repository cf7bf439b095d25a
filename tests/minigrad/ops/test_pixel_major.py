"""minigrad.ops.conv.pixel_major: weight-bound convs on compact pixel-major columns, against
PyTorch (forward, both gradients, conv_transpose2d's forward and backward), against the wide
im2col path it replaces, which convs it takes, and its float64 gradients by gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, random_array, with_layout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.functional import conv2d, conv_transpose2d
from minigrad.gradcheck import gradcheck
from minigrad.ops.conv import conv2d_geometry, dispatch, pixel_major, reversed_kernel
from minigrad.ops.conv.nonfinite import _gemm_pass
from minigrad.ops.im2col import ConvGeometry

# PyTorch warns that its own asymmetric "same" padding copies the input.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@pytest.fixture
def every_conv_weight_bound(monkeypatch):
    """Every conv counts as weight-bound, so that small test shapes take this path."""
    monkeypatch.setattr(reversed_kernel, "WEIGHT_BOUND_ELEMENTS", 1)
    monkeypatch.setattr(reversed_kernel, "WEIGHT_BOUND_RATIO", 0)


@pytest.fixture
def path_calls(monkeypatch):
    """The names of this module's kernels as they are called."""
    calls = []
    for name in ("forward", "grad_input", "grad_weight"):
        original = getattr(pixel_major, name)
        monkeypatch.setattr(
            pixel_major,
            name,
            lambda *a, _n=name, _f=original, **k: calls.append(_n) or _f(*a, **k),
        )
    return calls


@st.composite
def dense_cases(draw):
    """A dense stride-1 conv2d: x shape, w shape, padding (int pair or "same"), dilation;
    kernels 1x2 to 3x3 (even and non-square), outputs from one pixel up."""
    kernel = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)).filter(lambda k: k[0] * k[1] > 1))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = "same" if draw(st.booleans()) else tuple(draw(st.integers(0, k)) for k in kernel)
    pads = (0, 0) if padding == "same" else padding
    smallest = [
        max(1, d * (k - 1) + 1 - 2 * p) for k, d, p in zip(kernel, dilation, pads, strict=True)
    ]
    size = tuple(draw(st.integers(s, s + 3)) for s in smallest)
    c_in, c_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return (draw(st.integers(1, 3)), c_in, *size), (c_out, c_in, *kernel), padding, dilation


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=dense_cases(), dtype=float_dtypes, layout=st.sampled_from(["contiguous", "strided"]))
def test_conv2d_matches_torch(every_conv_weight_bound, path_calls, case, dtype, layout):
    """Output, input gradient and weight gradient, x also as a strided view (the fixtures
    hold for every example: the thresholds stay patched, the calls are cleared here)."""
    path_calls.clear()
    x_shape, w_shape, padding, dilation = case
    x, w = random_array(1, x_shape, dtype), random_array(2, w_shape, dtype)
    check_parity(
        lambda a, b: conv2d(a, b, padding=padding, dilation=dilation),
        lambda a, b: TF.conv2d(a, b, padding=padding, dilation=dilation),
        [x, w],
        "cpu",
        reduction=w_shape[1] * w_shape[2] * w_shape[3],
        layout=layout,
    )
    assert set(path_calls) == {"forward", "grad_input", "grad_weight"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("padding", "dilation", "output_padding"), [(0, 1, 0), (1, 1, 0), (1, 2, 1)]
)
def test_conv_transpose2d_matches_torch(
    every_conv_weight_bound, path_calls, dtype, padding, dilation, output_padding
):
    """conv_transpose2d (stride 1) has conv2d's input gradient as its forward, and conv2d's
    forward and weight gradient as its backward."""
    x, w = random_array(0, (2, 5, 4, 3), dtype), random_array(1, (5, 3, 3, 3), dtype)
    options = dict(padding=padding, dilation=dilation, output_padding=output_padding)
    check_parity(
        lambda a, b: conv_transpose2d(a, b, **options),
        lambda a, b: TF.conv_transpose2d(a, b, **options),
        [x, w],
        "cpu",
        reduction=45,
    )
    assert set(path_calls) == {"forward", "grad_input", "grad_weight"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_numbers_as_wide_im2col(dtype):
    """The columns hold the same products as im2col's wide layout, so the forward and the
    weight gradient agree with it to rounding."""
    x, w = random_array(0, (3, 6, 5, 4), dtype), random_array(1, (7, 6, 3, 3), dtype)
    gy = random_array(2, (3, 7, 5, 4), dtype)
    g = conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    y_wide, gw_wide = _gemm_pass(x, g, W=w, gy=gy)
    tolerance = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(pixel_major.forward(x, w, g), y_wide, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(
        pixel_major.grad_weight(x, gy, g), gw_wide, rtol=tolerance, atol=tolerance
    )


def test_the_weight_gradient_fills_a_given_array():
    x, gy = random_array(0, (2, 3, 4, 5), np.float32), random_array(1, (2, 4, 4, 5), np.float32)
    g = conv2d_geometry("conv2d", x.shape, (4, 3, 3, 3), 1, 1, 1, 1)
    given_array = np.full(g.weight_shape, np.nan, np.float32)
    filled = pixel_major.grad_weight(x, gy, g, out=given_array)
    assert np.shares_memory(filled, given_array)
    np.testing.assert_array_equal(given_array, pixel_major.grad_weight(x, gy, g))


def test_float64_gradients_pass_gradcheck(every_conv_weight_bound):
    x = mg.tensor(random_array(0, (2, 3, 4, 5), np.float64), requires_grad=True)
    w = mg.tensor(random_array(1, (4, 3, 2, 3), np.float64), requires_grad=True)
    assert gradcheck(lambda a, b: conv2d(a, b, padding=(1, 0), dilation=(2, 1)), (x, w))


def test_an_inf_in_x_stays_where_torch_puts_it(every_conv_weight_bound):
    """No extra columns: an inf in x reaches only the products PyTorch's conv makes."""
    x = random_array(0, (1, 2, 4, 5), np.float64)
    x[0, 1, 2, 4] = np.inf
    w = random_array(1, (3, 2, 3, 3), np.float64)
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    y = conv2d(xt, wt, padding=1)
    y.backward(mg.ones(y.shape, dtype=mg.float64))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = TF.conv2d(tx, tw, padding=1)
    ty.sum().backward()
    for ours, theirs in ((y, ty), (wt.grad, tw.grad), (xt.grad, tx.grad)):
        ours, theirs = ours.detach().numpy(), theirs.detach().numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-10)


def _geometry(**changes):
    sizes = dict(batch=2, in_channels=4, in_h=5, in_w=5, out_channels=4, out_h=5, out_w=5)
    sizes.update(kh=3, kw=3, sy=1, sx=1, pad_h=1, pad_w=1, dy=1, dx=1, groups=1)
    sizes.update(changes)
    return ConvGeometry(**sizes)


@pytest.mark.parametrize(
    "changes",
    [
        dict(groups=2),
        dict(sy=2, sx=2, out_h=3, out_w=3),
        dict(kh=1, kw=1, pad_h=0, pad_w=0),
        dict(batch=0),
    ],
)
def test_takes_only_dense_stride_1_convs_with_a_kernel(changes):
    assert pixel_major.supported(_geometry(), np.zeros(1, np.float32))
    assert not pixel_major.supported(_geometry(**changes), np.zeros(1, np.float32))


def test_keeps_off_the_gpu(device):
    """The GPU keeps the im2col path it was measured on."""
    array = mg.zeros(1, device=device).data
    assert pixel_major.supported(_geometry(), array) == (device == "cpu")


def test_dispatch_takes_it_only_for_weight_bound_convs():
    small_weight = conv2d_geometry("conv2d", (4, 64, 8, 8), (64, 64, 3, 3), 1, 1, 1, 1)
    resnet_layer3 = conv2d_geometry("conv2d", (4, 256, 8, 8), (256, 256, 3, 3), 1, 1, 1, 1)
    array = np.zeros(1, np.float32)
    assert not dispatch._pixel_major(small_weight, array)
    assert dispatch._pixel_major(resnet_layer3, array)


def test_a_strided_view_of_gy_is_read_as_it_is(every_conv_weight_bound):
    x, w = random_array(0, (2, 3, 4, 4), np.float64), random_array(1, (5, 3, 3, 3), np.float64)
    gy = random_array(2, (2, 5, 4, 4), np.float64)
    g = conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    expected = pixel_major.grad_input(gy, w, g)
    strided = pixel_major.grad_input(with_layout(gy, "strided"), w, g)
    np.testing.assert_array_equal(strided, expected)
