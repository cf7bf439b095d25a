"""The Winograd F(2x2, 3x3) path of conv2d against PyTorch: outputs and every gradient, whole
and cut into row bands and channel blocks, float64 gradcheck, and when the path is taken."""

import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradcheck import gradcheck
from minigrad.ops import conv as conv_ops
from minigrad.ops import winograd
from minigrad.ops.conv import conv2d, conv2d_geometry, conv_transpose2d, reversed_kernel, shifted
from minigrad.ops.conv import dispatch as conv_dispatch
from minigrad.ops.im2col import scratch

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@contextlib.contextmanager
def routed_to_winograd(tiny_tiles: bool = False):
    """Route every 3x3 stride-1 conv with 2+ channels per group to Winograd (none to the
    shifted-window GEMMs, which would take the dense ones first); count the calls
    that compute a conv, a weight gradient, and both in one pass.

    Scratch arrays come filled with NaN, so a value read before it is written shows. With
    ``tiny_tiles``, each GEMM tile is one row of 2x2 tiles of one sample and each transform
    block one channel.
    """
    counts = {"forward": 0, "grad_weight": 0, "both": 0}
    original = winograd.forward_and_grad_weight

    def counted(x, W, gy, g, **options):
        counts["forward"] += W is not None
        counts["grad_weight"] += gy is not None
        counts["both"] += W is not None and gy is not None
        return original(x, W, gy, g, **options)

    def poisoned(like, size, slot):
        array = scratch(like, size, slot)
        array[...] = np.nan
        return array

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(winograd, "MIN_CHANNELS", 2)
        patch.setattr(shifted, "MAX_CHANNELS", 0)
        patch.setattr(winograd, "scratch", poisoned)
        patch.setattr(winograd, "forward_and_grad_weight", counted)
        if tiny_tiles:
            for name in ("MIN_TILE_COLUMNS", "TILE_BYTES", "GPU_TILE_BYTES", "BLOCK_BYTES"):
                patch.setattr(winograd, name, 1)
        yield counts


@st.composite
def winograd_cases(draw):
    """A 3x3 stride-1 conv2d: groups, 2-3 channels per group, any padding, sizes from 1."""
    groups = draw(st.integers(1, 2))
    c_in, c_out = (groups * draw(st.integers(2, 3)) for _ in range(2))
    padding = draw(
        st.one_of(
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.just("same"),
        )
    )
    pads = (1, 1) if padding == "same" else np.broadcast_to(padding, 2)
    size = tuple(draw(st.integers(max(1, 3 - 2 * p), 9)) for p in pads)
    return dict(
        x=(draw(st.integers(1, 3)), c_in, *size),
        w=(c_out, c_in // groups, 3, 3),
        bias=draw(st.booleans()),
        args=dict(padding=padding, groups=groups),
    )


def _check(case, dtype, seed, device):
    arrays = [random_array(seed, case["x"], dtype), random_array(seed + 1, case["w"], dtype)]
    if case["bias"]:
        arrays.append(random_array(seed + 2, (case["w"][0],), dtype))
    n, _, h, w = case["x"]
    check_parity(
        lambda *t: conv2d(*t, **case["args"]),
        lambda *t: TF.conv2d(*t, **case["args"]),
        arrays,
        device,
        reduction=max(case["w"][1] * 9, n * h * w),
    )


@settings(max_examples=30)
@given(case=winograd_cases(), dtype=float_dtypes, seed=seeds)
def test_winograd_conv2d_matches_torch(device, case, dtype, seed):
    groups = case["args"]["groups"]
    with routed_to_winograd() as calls:
        _check(case, dtype, seed, device)
    assert calls["forward"] >= 2  # the output, and the input gradient (the reversed conv)
    assert calls["grad_weight"] == 1
    g = conv2d_geometry("conv2d", case["x"], case["w"], 1, case["args"]["padding"], 1, groups)
    shares = conv_ops._backward_shares_gy(g, conv_ops._reversed_geometry(g))
    assert calls["both"] == (device == "cpu" and shares)  # the CPU may share gy's transform


@settings(max_examples=12)
@given(case=winograd_cases(), dtype=float_dtypes, seed=seeds)
def test_winograd_in_row_bands_and_channel_blocks_matches_torch(device, case, dtype, seed):
    with routed_to_winograd(tiny_tiles=True) as calls:
        _check(case, dtype, seed, device)
    assert calls["grad_weight"] == 1


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_winograd_conv_transpose2d_matches_torch(device, padding):
    x, w = random_array(0, (2, 4, 5, 6), np.float64), random_array(1, (4, 3, 3, 3), np.float64)
    with routed_to_winograd() as calls:
        check_parity(
            lambda a, b: conv_transpose2d(a, b, padding=padding),
            lambda a, b: TF.conv_transpose2d(a, b, padding=padding),
            [x, w],
            device,
        )
    assert calls["forward"] >= 1 and calls["grad_weight"] == 1
    assert calls["both"] == 1  # the backward transforms its output gradient once


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups,c_in,c_out", [(1, 3, 5), (2, 4, 6)])
def test_reversed_kernel_equals_the_reversed_copy(device, dtype, groups, c_in, c_out):
    """``reversed_kernel=True`` reads the original weight and returns the original layout's
    weight gradient: the same numbers as the reversed conv run on the reversed copies."""
    xp = mg.backend.array_module(device)
    g = conv2d_geometry("conv2d", (2, c_in, 5, 6), (c_out, c_in // groups, 3, 3), 1, 1, 1, groups)
    reversed_g = reversed_kernel._reversed_geometry(g)
    x, gy, w = (
        xp.asarray(random_array(seed, shape, dtype))
        for seed, shape in enumerate([g.in_shape, g.out_shape, g.weight_shape])
    )
    gx, gw = winograd.forward_and_grad_weight(gy, w, x, reversed_g, reversed_kernel=True)
    copy_gx, copy_gw = winograd.forward_and_grad_weight(
        gy, reversed_kernel._reversed_weight(w, g), x, reversed_g
    )
    rtol, atol = (1e-5, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)
    assert gw.shape == w.shape and gx.shape == x.shape
    np.testing.assert_allclose(mg.backend.to_host(gx), mg.backend.to_host(copy_gx), rtol, atol)
    expected_gw = reversed_kernel._reversed_weight(copy_gw, reversed_g)
    np.testing.assert_allclose(mg.backend.to_host(gw), mg.backend.to_host(expected_gw), rtol, atol)


def test_input_gradient_alone_takes_the_reversed_kernel_without_a_copy(device, monkeypatch):
    """A conv2d whose weight needs no gradient computes its input gradient on the Winograd
    path from the weight as it is (no reversed copy), and matches PyTorch."""
    x, w = random_array(0, (2, 4, 6, 5), np.float64), random_array(1, (6, 4, 3, 3), np.float64)
    copies = []
    original = reversed_kernel._reversed_weight
    monkeypatch.setattr(
        conv_dispatch, "_reversed_weight", lambda *a: copies.append(1) or original(*a)
    )
    with routed_to_winograd() as calls:
        xt = mg.tensor(x, device=device, requires_grad=True)
        y = conv2d(xt, mg.tensor(w, device=device), padding=1)
        gy = random_array(2, y.shape, np.float64)
        y.backward(mg.tensor(gy, device=device))
    tx = torch.tensor(x, requires_grad=True)
    TF.conv2d(tx, torch.tensor(w), padding=1).backward(torch.tensor(gy))
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert calls["forward"] == 2 and calls["grad_weight"] == 0 and copies == []


def test_winograd_gradcheck(device):
    x = mg.tensor(random_array(0, (2, 2, 5, 4), np.float64), device=device, requires_grad=True)
    w = mg.tensor(random_array(1, (3, 2, 3, 3), np.float64), device=device, requires_grad=True)
    b = mg.tensor(random_array(2, (3,), np.float64), device=device, requires_grad=True)
    with routed_to_winograd() as calls:
        assert gradcheck(lambda *t: conv2d(*t, padding=1), (x, w, b))
    assert calls["forward"] >= 1 and calls["grad_weight"] >= 1


@pytest.mark.parametrize(
    "w_shape,args,expected",
    [
        ((128, 128, 3, 3), {}, True),
        ((128, 64, 3, 3), {}, False),  # 64 input channels: im2col is faster
        ((128, 64, 3, 3), {"groups": 2}, False),  # 64 channels per group
        ((128, 128, 3, 3), {"stride": 2}, False),
        ((128, 128, 3, 3), {"dilation": 2}, False),
        ((128, 128, 3, 2), {}, False),
        ((128, 128, 5, 5), {}, False),
        ((3, 128, 3, 3), {}, False),  # 3 output channels
    ],
)
def test_winograd_is_taken_for_3x3_stride_1_convs_with_enough_channels(w_shape, args, expected):
    x_shape = (1, w_shape[1] * args.get("groups", 1), 8, 8)
    geometry = conv2d_geometry(
        "conv2d",
        x_shape,
        w_shape,
        args.get("stride", 1),
        1,
        args.get("dilation", 1),
        args.get("groups", 1),
    )
    assert winograd.supported(geometry) is expected


def test_winograd_input_far_from_zero_keeps_float32_accuracy(device):
    """Transforms subtract neighbouring pixels: an offset input must not lose digits."""
    x = random_array(0, (1, 4, 8, 8), np.float32) + np.float32(100)
    w = random_array(1, (4, 4, 3, 3), np.float32)
    with routed_to_winograd() as calls:
        check_parity(
            lambda a, b: conv2d(a, b, padding=1),
            lambda a, b: TF.conv2d(a, b, padding=1),
            [x, w],
            device,
            reduction=64,
        )
    assert calls["forward"] >= 1


@pytest.mark.parametrize(
    "where,input_grad,weight_grad",
    [("x", False, True), ("x", True, True), ("gy", True, True), ("gy", True, False)],
)
@pytest.mark.parametrize("position", [(0, 0, 0, 0), (1, 2, 3, 4), (0, 1, 5, 6)])
def test_an_inf_gives_the_infs_and_nans_of_torch_on_the_cpu(
    position, where, input_grad, weight_grad
):
    """Winograd spreads an inf over whole tiles; the CPU path computes such results again by
    im2col, so output and gradients match PyTorch's, non-finite entries included (with
    ``input_grad`` through the backward that shares gy's transform, or, without
    ``weight_grad``, through the input gradient alone)."""
    x = random_array(0, (2, 3, 7, 8), np.float64)
    w = random_array(1, (3, 3, 3, 3), np.float64)
    gy = random_array(2, (2, 3, 7, 8), np.float64)
    (x if where == "x" else gy)[position] = np.inf
    xt = mg.tensor(x, requires_grad=input_grad)
    wt = mg.tensor(w, requires_grad=weight_grad)
    with routed_to_winograd() as calls:
        y = conv2d(xt, wt, padding=1)
        y.backward(mg.tensor(gy))
    assert calls["grad_weight"] == int(weight_grad)
    assert calls["both"] == (input_grad and weight_grad)
    tx, tw = torch.tensor(x, requires_grad=input_grad), torch.tensor(w, requires_grad=weight_grad)
    ty = TF.conv2d(tx, tw, padding=1)
    ty.backward(torch.tensor(gy))
    pairs = [(y.detach().numpy(), ty.detach())]
    if weight_grad:
        pairs.append((wt.grad.numpy(), tw.grad))
    if input_grad:
        pairs.append((xt.grad.numpy(), tx.grad))
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-10, atol=1e-10)
