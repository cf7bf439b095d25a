"""minigrad.ops.conv.sub_pixel: the input gradient of a strided conv as one stride-1 conv of gy
per output phase, against PyTorch (conv2d's input gradient, conv_transpose2d's output, with
padding, output padding, dilation, groups and unequal strides), a float64 gradcheck, and which
convs it takes."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, random_array, seeds
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.functional import conv2d, conv_transpose2d
from minigrad.gradcheck import gradcheck
from minigrad.ops.conv import conv2d_geometry, sub_pixel
from minigrad.ops.im2col import ConvGeometry


@contextlib.contextmanager
def every_strided_conv():
    """The phases take every strided conv (however few channels and pixels); yields the list
    of the geometries they ran, so that a test can tell they did."""
    calls = []
    original = sub_pixel.grad_input

    def counted(gy, W, g, conv):
        calls.append(g)
        return original(gy, W, g, conv)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sub_pixel, "MIN_CHANNELS", 0)
        patch.setattr(sub_pixel, "MIN_PHASE_ELEMENTS", 0)
        patch.setattr(sub_pixel, "grad_input", counted)
        yield calls


@st.composite
def strided_cases(draw):
    """A strided conv2d: x shape, w shape, stride, padding, dilation, groups, output padding
    (for its transposed twin). Kernels 1x1 to 5x5, strides 1 to 3 per side (not both 1),
    padding up to k - 1, windows that overlap in one direction at least, inputs from the
    smallest the dilated kernel fits into."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)).filter(lambda s: max(s) > 1))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, k - 1)) for k in kernel)
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    # Overlapping windows (disjoint ones keep col2im, a plain copy there).
    assume(any(d * (k - 1) >= s for k, s, d in zip(kernel, stride, dilation, strict=True)))
    groups = draw(st.integers(1, 3))
    c_in = groups * (1 if groups == 1 else 2)  # not depthwise, which has its own path
    c_out = groups * draw(st.integers(1, 2))
    size = tuple(
        draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 8))
        for k, d in zip(kernel, dilation, strict=True)
    )
    x_shape = (draw(st.integers(1, 2)), c_in, *size)
    w_shape = (c_out, c_in // groups, *kernel)
    return x_shape, w_shape, stride, padding, dilation, groups, output_padding


@settings(max_examples=60, deadline=None)
@given(case=strided_cases(), dtype=float_dtypes, seed=seeds)
def test_conv2d_input_gradient_matches_torch(case, dtype, seed):
    x_shape, w_shape, stride, padding, dilation, groups, _ = case
    args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    x, w = random_array(seed, x_shape, dtype), random_array(seed + 1, w_shape, dtype)
    reduction = w_shape[0] * w_shape[2] * w_shape[3]
    with every_strided_conv() as calls:
        check_parity(
            lambda a, b: conv2d(a, b, **args),
            lambda a, b: TF.conv2d(a, b, **args),
            [x, w],
            "cpu",
            reduction=reduction,
        )
    assert calls, "the phases did not run"


@settings(max_examples=60, deadline=None)
@given(case=strided_cases(), dtype=float_dtypes, seed=seeds)
def test_conv_transpose2d_output_matches_torch(case, dtype, seed):
    x_shape, w_shape, stride, padding, dilation, groups, output_padding = case
    args = {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "groups": groups,
        "dilation": dilation,
    }
    # The transposed conv maps w's first dim (conv2d's out channels) to its second.
    c_in = w_shape[0]
    x = random_array(seed, (x_shape[0], c_in, *x_shape[2:]), dtype)
    w = random_array(seed + 1, w_shape, dtype)
    with every_strided_conv() as calls:
        check_parity(
            lambda a, b: conv_transpose2d(a, b, **args),
            lambda a, b: TF.conv_transpose2d(a, b, **args),
            [x, w],
            "cpu",
            reduction=c_in * w_shape[2] * w_shape[3],
        )
    assert calls, "the phases did not run"


def test_a_phase_no_offset_reaches_is_zero():
    """A 2x3 kernel with strides (3, 1) and no padding: every third input row meets no kernel
    offset, and its gradient is zero, as PyTorch's."""
    x, w = random_array(0, (2, 3, 9, 9), np.float64), random_array(1, (4, 3, 2, 3), np.float64)
    with every_strided_conv() as calls:
        ours = check_parity(
            lambda a, b: conv2d(a, b, stride=(3, 1)),
            lambda a, b: TF.conv2d(a, b, stride=(3, 1)),
            [x, w],
            "cpu",
        )
    assert ours[0].shape == (2, 4, 3, 7)
    assert calls


@pytest.mark.parametrize(
    "args",
    [
        {"stride": 2, "padding": 1, "output_padding": 1},
        {"stride": (2, 3), "padding": (1, 0), "dilation": 2, "groups": 2},
    ],
)
def test_conv_transpose2d_gradcheck(args):
    x = mg.tensor(random_array(0, (1, 2, 4, 3), np.float64), requires_grad=True)
    w = mg.tensor(random_array(1, (2, 2, 3, 3), np.float64), requires_grad=True)
    with every_strided_conv() as calls:
        assert gradcheck(lambda a, b: conv_transpose2d(a, b, **args), [x, w])
    assert calls


def _geometry(x_shape, w_shape, stride, padding) -> ConvGeometry:
    return conv2d_geometry("conv2d", x_shape, w_shape, stride, padding, 1, 1)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "expected"),
    [
        ((4, 32, 128, 128), (32, 32, 3, 3), 2, 1, True),  # SegNet's, FCN's last up-conv
        ((4, 64, 64, 64), (64, 64, 3, 3), 2, 1, True),
        ((4, 32, 64, 64), (32, 32, 3, 3), 2, 1, False),  # 32 x 32x32 per phase: col2im's
        ((4, 64, 32, 32), (128, 64, 3, 3), 2, 1, False),  # 16x16 outputs: col2im's
        ((4, 3, 128, 128), (64, 3, 7, 7), 2, 3, False),  # 3 channels: col2im's
        ((4, 64, 128, 128), (32, 64, 2, 2), 2, 0, False),  # disjoint windows: a copy
        ((4, 32, 128, 128), (32, 32, 3, 3), 1, 1, False),  # stride 1: the reversed kernel
        ((1, 1024, 16, 16), (1024, 1024, 3, 3), 2, 1, False),  # weight-bound: col2im's
    ],
)
def test_which_convs_take_the_phases(x_shape, w_shape, stride, padding, expected):
    g = _geometry(x_shape, w_shape, stride, padding)
    gy = np.zeros(g.out_shape, np.float32)
    assert sub_pixel.pays(g, gy) is expected


def test_depthwise_convs_keep_their_own_path():
    g = conv2d_geometry("conv2d", (4, 64, 64, 64), (64, 1, 3, 3), 2, 1, 1, 64)
    assert not sub_pixel.pays(g, np.zeros(g.out_shape, np.float32))


def test_gpu_arrays_keep_col2im():
    from minigrad.testing import fake_cupy

    g = _geometry((4, 32, 128, 128), (32, 32, 3, 3), 2, 1)
    assert not sub_pixel.pays(g, fake_cupy.zeros(g.out_shape, dtype=np.float32))


def test_a_large_transposed_conv_runs_the_phases_by_default(monkeypatch):
    """SegNet's up-conv shape takes the phases with the default thresholds (and agrees with
    PyTorch in float32)."""
    calls = []
    original = sub_pixel.grad_input
    monkeypatch.setattr(sub_pixel, "grad_input", lambda *a: calls.append(1) or original(*a))
    x = random_array(0, (1, 32, 64, 64), np.float32)
    w = random_array(1, (32, 32, 3, 3), np.float32)
    args = {"stride": 2, "padding": 1, "output_padding": 1}
    check_parity(
        lambda a, b: conv_transpose2d(a, b, **args),
        lambda a, b: TF.conv_transpose2d(a, b, **args),
        [x, w],
        "cpu",
        reduction=32 * 9,
    )
    assert calls
