"""minigrad.ops.conv.shifted: the stride-1 dense conv as kh*kw GEMMs over shifted windows,
against PyTorch (forward, with channel chunks, float32 accuracy, infs and NaNs), which convs
it takes, and the dispatch of conv2d's forward and input gradient through it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, random_array, seeds, tolerances, with_layout
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import cblas, parallel
from minigrad.functional import conv2d, conv_transpose2d
from minigrad.ops.conv import conv2d_geometry, reversed_kernel, shifted
from minigrad.ops.im2col import ConvGeometry

# PyTorch warns that its own asymmetric "same" padding copies the input.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@st.composite
def dense_cases(draw):
    """A dense stride-1 conv2d: x shape, w shape, padding (int pair or "same"), dilation.

    Kernels 1x2 to 4x4 (even and non-square), padding 0 to k per side, inputs from the
    smallest the dilated kernel fits into (an output side of 1) to a few pixels more."""
    kernel = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)).filter(lambda k: k[0] * k[1] > 1))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if draw(st.booleans()):
        padding = "same"
        pads = (0, 0)
    else:
        padding = tuple(draw(st.integers(0, k)) for k in kernel)
        pads = padding
    smallest = [
        max(1, d * (k - 1) + 1 - 2 * p) for k, d, p in zip(kernel, dilation, pads, strict=True)
    ]
    size = tuple(draw(st.integers(s, s + 3)) for s in smallest)
    c_in, c_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x_shape = (draw(st.integers(1, 3)), c_in, *size)
    return x_shape, (c_out, c_in, *kernel), padding, dilation


def _torch_conv(x, w, padding, dilation):
    return TF.conv2d(torch.tensor(x), torch.tensor(w), padding=padding, dilation=dilation).numpy()


def _assert_matches(ours, theirs, dtype, reduction):
    rtol, atol = tolerances(dtype, reduction)
    scale = max(1.0, float(np.abs(theirs).max()))
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * scale)


@settings(max_examples=25)
@given(case=dense_cases(), dtype=float_dtypes, layout=st.sampled_from(["contiguous", "strided"]))
@example(case=((1, 1, 3, 2), (1, 1, 3, 2), (0, 0), (1, 1)), dtype=np.float64, layout="contiguous")
@example(case=((2, 3, 2, 5), (4, 3, 4, 3), (1, 0), (1, 2)), dtype=np.float32, layout="strided")
def test_forward_matches_torch(case, dtype, layout):
    """Geometries as conv2d builds them; x also as a strided view (the stacked copy takes it)."""
    x_shape, w_shape, padding, dilation = case
    x, w = random_array(1, x_shape, dtype), random_array(2, w_shape, dtype)
    g = conv2d_geometry("conv2d", x_shape, w_shape, 1, padding, dilation, 1)
    assert shifted.supported(g, x)
    y = shifted.forward(with_layout(x, layout), w, g)
    reduction = w_shape[1] * w_shape[2] * w_shape[3]
    _assert_matches(y, _torch_conv(x, w, padding, dilation), dtype, reduction)


@settings(max_examples=15)
@given(
    kernel=st.tuples(st.integers(2, 4), st.integers(1, 4)),
    pads=st.tuples(*[st.integers(0, 4)] * 4),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    size=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    dtype=float_dtypes,
    seed=seeds,
)
def test_asymmetric_padding_matches_torch(kernel, pads, dilation, size, dtype, seed):
    """Top/left padding in the geometry, bottom/right implied by its output size, as the
    reversed kernel builds them (a "same" conv's input gradient pads more at the top)."""
    (kh, kw), (top, bottom, left, right), (dy, dx) = kernel, pads, dilation
    out_h, out_w = size[0] + top + bottom - dy * (kh - 1), size[1] + left + right - dx * (kw - 1)
    assume(min(out_h, out_w) >= 1)
    x, w = random_array(seed, (2, 3, *size), dtype), random_array(seed + 1, (2, 3, kh, kw), dtype)
    g = ConvGeometry(2, 3, *size, 2, out_h, out_w, kh, kw, 1, 1, top, left, dy, dx, 1)
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    _assert_matches(
        shifted.forward(x, w, g), _torch_conv(padded, w, 0, dilation), dtype, 3 * kh * kw
    )


@pytest.mark.parametrize("chunk", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_chunks_match_torch(monkeypatch, chunk, dtype):
    """With CHUNK_CHANNELS lowered, 5 channels take ceil(5/chunk) GEMMs per kernel offset,
    of at most ``chunk`` channels each, and the output still matches (one thread: one run
    of columns)."""
    monkeypatch.setattr(shifted, "CHUNK_CHANNELS", chunk)
    monkeypatch.setattr(parallel, "THREADS", 1)
    depths = []
    original = cblas.BoundGemm.__call__

    def recorded(gemm, shape, *args):
        depths.append(shape[2])
        return original(gemm, shape, *args)

    monkeypatch.setattr(cblas.BoundGemm, "__call__", recorded)
    x, w = random_array(0, (2, 5, 6, 7), dtype), random_array(1, (3, 5, 3, 2), dtype)
    g = conv2d_geometry("conv2d", x.shape, w.shape, 1, (1, 0), 1, 1)
    y = shifted.forward(x, w, g)
    _assert_matches(y, _torch_conv(x, w, (1, 0), 1), dtype, 30)
    assert len(depths) == 3 * 2 * math.ceil(5 / chunk)
    assert max(depths) <= chunk and sum(depths) == 5 * 3 * 2


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_split_the_output_columns(monkeypatch, threads):
    """Each CPU thread runs the GEMMs of its own run of output columns: every (offset,
    chunk) GEMM is cut into ``threads`` runs that tile the span, and the output matches."""
    monkeypatch.setattr(parallel, "THREADS", threads)
    monkeypatch.setattr(shifted, "CHUNK_CHANNELS", 2)
    monkeypatch.setattr(shifted, "MIN_RUN_COLUMNS", 1)
    runs = []
    original = cblas.BoundGemm.__call__

    def recorded(gemm, shape, offsets, *args):
        runs.append((offsets[2], shape[1]))
        return original(gemm, shape, offsets, *args)

    monkeypatch.setattr(cblas.BoundGemm, "__call__", recorded)
    x, w = random_array(0, (2, 5, 6, 7), np.float64), random_array(1, (3, 5, 3, 3), np.float64)
    g = conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    _assert_matches(shifted.forward(x, w, g), _torch_conv(x, w, 1, 1), np.float64, 45)
    span = shifted.StackedLayout(g).span
    starts = sorted(set(runs))
    assert len(starts) == threads
    assert [first for first, _ in starts] == [span * k // threads for k in range(threads)]
    assert sum(width for _, width in starts) == span
    assert len(runs) == threads * 9 * 3


@settings(max_examples=25)
@given(channels=st.integers(1, 1000), chunk=st.integers(1, 300))
@example(channels=128, chunk=128)
@example(channels=129, chunk=128)
def test_channel_chunks_cover_all_channels_in_equal_parts(channels, chunk):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shifted, "CHUNK_CHANNELS", chunk)
        chunks = shifted._channel_chunks(channels)
    assert chunks[0][0] == 0 and chunks[-1][1] == channels
    assert all(stop == first for (_, stop), (first, _) in zip(chunks, chunks[1:], strict=False))
    sizes = [stop - first for first, stop in chunks]
    assert max(sizes) <= chunk and max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert len(chunks) == math.ceil(channels / chunk)


@pytest.mark.parametrize(
    "kernel,padding,dilation,sides",
    [
        ((3, 3), 1, 1, (17, 17)),
        ((3, 3), 0, 1, (16, 16)),
        ((5, 3), (2, 1), 1, (18, 17)),
        ((3, 3), 2, 2, (18, 18)),
        ((3, 3), 3, 1, (20, 20)),
    ],
)
def test_neighbours_share_their_padding(kernel, padding, dilation, sides):
    """A padded row holds its left zeros and its values (the next row's left zeros pad it on
    the right): a 3x3 "same" conv of a 16x16 image lays each image out as 17x17, not 18x18.
    Padding wider than the kernel reaches makes more outputs than zeros and values (20 for
    a 3x3 kernel padded by 3), and the side holds them."""
    g = conv2d_geometry("conv2d", (2, 8, 16, 16), (4, 8, *kernel), 1, padding, dilation, 1)
    assert (shifted.StackedLayout(g).hp, shifted.StackedLayout(g).wp) == sides


@settings(max_examples=40)
@given(
    span=st.integers(1, 200_000),
    column_bytes=st.sampled_from([4, 128, 256, 1024]),
    threads=st.integers(1, 4),
)
@example(span=66_564, column_bytes=128, threads=2)
def test_column_runs_tile_the_span_in_cache_sized_runs(span, column_bytes, threads):
    """The runs tile the span in order, in equal shares per thread (an equal count each,
    lengths differing by one at most), each run's output fits in MAX_RUN_BYTES (to a column's
    rounding), and one run fewer per thread would not fit."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "THREADS", threads)
        used = shifted._run_threads(span)
        runs = shifted._column_runs(span, column_bytes, used)
    assert runs[0][0] == 0 and runs[-1][1] == span
    assert all(stop == first for (_, stop), (first, _) in zip(runs, runs[1:], strict=False))
    lengths = [stop - first for first, stop in runs]
    assert min(lengths) >= 1 and max(lengths) - min(lengths) <= 1
    assert 1 <= used <= threads and (used == 1 or span // used >= shifted.MIN_RUN_COLUMNS)
    assert len(runs) % used == 0
    assert max(lengths) * column_bytes <= shifted.MAX_RUN_BYTES + column_bytes
    fewer = len(runs) - used
    assert fewer == 0 or span * column_bytes > fewer * shifted.MAX_RUN_BYTES


@pytest.mark.parametrize("threads,span_columns", [(4, 600), (4, 900), (2, 5000)])
def test_each_thread_gets_one_equal_share_of_the_runs(monkeypatch, threads, span_columns):
    """The runs go to the threads in one contiguous share each, as many shares as
    :func:`shifted._run_threads` allows (not one per pool thread: 600 columns are two
    threads' worth), of equally many runs."""
    monkeypatch.setattr(parallel, "THREADS", threads)
    monkeypatch.setattr(shifted, "MAX_RUN_BYTES", 256 * 8)
    calls = []
    original = shifted.tile_parallel

    def recorded(fn, shares, shared):
        calls.append([len(share) for share in shares])
        return original(fn, shares, shared)

    monkeypatch.setattr(shifted, "tile_parallel", recorded)
    width = span_columns // 2 // 10 - 2  # 2 samples, 10 rows, pad 1: wp = width + 1
    x = random_array(0, (2, 3, 9, width), np.float64)
    w = random_array(1, (8, 3, 3, 3), np.float64)
    g = conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    _assert_matches(shifted.forward(x, w, g), _torch_conv(x, w, 1, 1), np.float64, 27)
    (counts,) = calls
    assert len(counts) == shifted._run_threads(shifted.StackedLayout(g).span)
    assert len(set(counts)) == 1


def test_without_blas_thread_control_the_runs_stay_on_the_calling_thread(monkeypatch):
    """Where BLAS cannot be held on one thread per caller, one thread runs every run of
    columns, however many the cache calls for, and the output matches."""
    monkeypatch.setattr(cblas, "can_run_single_threaded", lambda: False)
    monkeypatch.setattr(shifted, "MAX_RUN_BYTES", 64)
    calls = []
    original = shifted.tile_parallel

    def recorded(fn, shares, shared):
        calls.append(([len(share) for share in shares], shared))
        return original(fn, shares, shared)

    monkeypatch.setattr(shifted, "tile_parallel", recorded)
    x, w = random_array(0, (2, 5, 6, 7), np.float64), random_array(1, (3, 5, 3, 3), np.float64)
    g = conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    _assert_matches(shifted.forward(x, w, g), _torch_conv(x, w, 1, 1), np.float64, 45)
    ((counts, shared),) = calls
    assert len(counts) == 1 and counts[0] > 1 and shared is False


def test_float32_error_is_below_torchs():
    """The float32 output's norm-wise error from float64 (on the same float32 inputs) is below
    PyTorch's float32 conv2d's: each GEMM sums 64 products, not 576. Measured here: 1.41e-7
    against torch's 2.06e-7 (seeds 0-5: 1.38-1.41e-7 against 2.06-2.12e-7, ratio 0.65-0.69)."""
    x32, w32 = (
        random_array(0, (2, 64, 12, 12), np.float32),
        random_array(100, (32, 64, 3, 3), np.float32),
    )
    g = conv2d_geometry("conv2d", x32.shape, w32.shape, 1, 1, 1, 1)
    exact = _torch_conv(x32.astype(np.float64), w32.astype(np.float64), 1, 1)
    assert shifted.supported(g, x32) and shifted.pays(g)

    def error(y):
        return np.linalg.norm(y.astype(np.float64) - exact) / np.linalg.norm(exact)

    ours, theirs = error(shifted.forward(x32, w32, g)), error(_torch_conv(x32, w32, 1, 1))
    assert ours < 1.1 * theirs, (ours, theirs)
    assert error(shifted.forward(x32.astype(np.float64), w32.astype(np.float64), g)) < 1e-14


def _geometry(x_shape=(2, 3, 6, 6), w_shape=(4, 3, 3, 3), stride=1, groups=1):
    return conv2d_geometry("conv2d", x_shape, w_shape, stride, 1, 1, groups)


def test_supported_takes_dense_stride_1_float_convs_on_numpy_arrays():
    x = np.ones((2, 3, 6, 6), np.float32)
    assert shifted.supported(_geometry(), x)
    assert shifted.supported(_geometry(), x.astype(np.float64))
    assert shifted.supported(_geometry(w_shape=(4, 3, 1, 2)), x)


@pytest.mark.parametrize(
    "geometry",
    [
        _geometry(w_shape=(6, 1, 3, 3), groups=3),
        _geometry(x_shape=(2, 4, 6, 6), w_shape=(4, 2, 3, 3), groups=2),
        _geometry(stride=2),
        _geometry(stride=(1, 2)),
        _geometry(w_shape=(4, 3, 1, 1)),
        dataclasses.replace(_geometry(), batch=0),
        dataclasses.replace(_geometry(), in_channels=0),
        dataclasses.replace(_geometry(), out_channels=0),
    ],
    ids=["depthwise", "groups2", "stride2", "stride1x2", "1x1", "no-batch", "no-in", "no-out"],
)
def test_supported_is_false_for_other_convs(geometry):
    assert not shifted.supported(geometry, np.ones(geometry.in_shape, np.float32))


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.int64])
def test_supported_is_false_for_other_dtypes(dtype):
    assert not shifted.supported(_geometry(), np.ones((2, 3, 6, 6), dtype))


def test_supported_is_false_for_a_gpu_array():
    x = mg.ones(2, 3, 6, 6, device="gpu").data
    assert not isinstance(x, np.ndarray)
    assert not shifted.supported(_geometry(), x)


def test_pays_from_min_to_max_channels_and_up_to_max_wide_elements(monkeypatch):
    def channels(c):
        return _geometry(x_shape=(2, c, 6, 6), w_shape=(4, c, 3, 3))

    g = channels(shifted.MAX_CHANNELS)
    assert shifted.pays(g) and shifted.pays(channels(shifted.MIN_CHANNELS))
    assert not shifted.pays(channels(shifted.MAX_CHANNELS + 1))
    assert not shifted.pays(channels(shifted.MIN_CHANNELS - 1))
    wide = g.out_channels * g.batch * shifted.StackedLayout(g).flat
    monkeypatch.setattr(shifted, "MAX_WIDE_ELEMENTS", wide)
    assert shifted.pays(g)
    monkeypatch.setattr(shifted, "MAX_WIDE_ELEMENTS", wide - 1)
    assert not shifted.pays(g)


@pytest.fixture
def shifted_calls(monkeypatch):
    """The geometries of the convs that ran through ``shifted.forward``, with MIN_CHANNELS
    lowered to 1 so that these tests' few-channel convs qualify."""
    monkeypatch.setattr(shifted, "MIN_CHANNELS", 1)
    calls = []
    original = shifted.forward

    def spy(x, W, g):
        calls.append(g)
        return original(x, W, g)

    monkeypatch.setattr(shifted, "forward", spy)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d_forward_runs_through_it_and_its_backward_does_not(
    device, shifted_calls, dtype, bias
):
    """A dense 3x3 stride-1 conv with few channels: the forward runs through the shifted GEMMs
    on the CPU (never on the GPU), its input gradient (the reversed-kernel conv) does not
    (``shifted_windows=False``); all the gradients match PyTorch."""
    x, w = random_array(0, (2, 3, 6, 7), dtype), random_array(1, (4, 3, 3, 3), dtype)
    arrays = [x, w] + ([random_array(2, (4,), dtype)] if bias else [])
    check_parity(
        lambda *t: conv2d(*t, padding=1),
        lambda *t: TF.conv2d(*t, padding=1),
        arrays,
        device,
        reduction=27,
    )
    g = conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    assert shifted_calls == ([g] if device == "cpu" else [])


def test_conv2d_input_gradient_alone_does_not_run_through_it(shifted_calls):
    """The backward of a conv2d whose weight needs no gradient takes conv_grad_input alone:
    it too stays off the shifted GEMMs, and matches PyTorch."""
    x, w = random_array(0, (2, 3, 6, 7), np.float64), random_array(1, (4, 3, 3, 3), np.float64)
    mx = mg.tensor(x, requires_grad=True)
    y = conv2d(mx, mg.tensor(w), padding=1)
    gy = random_array(2, y.shape, np.float64)
    shifted_calls.clear()
    y.backward(mg.tensor(gy))
    tx = torch.tensor(x, requires_grad=True)
    TF.conv2d(tx, torch.tensor(w), padding=1).backward(torch.tensor(gy))
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert shifted_calls == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose2d_forward_runs_through_it(device, shifted_calls, dtype):
    """conv_transpose2d's output is conv2d's input gradient: with stride 1, the reversed-kernel
    conv through the shifted GEMMs on the CPU; its gradients (im2col's) match PyTorch too."""
    x, w = random_array(0, (2, 3, 5, 6), dtype), random_array(1, (3, 2, 3, 2), dtype)
    check_parity(
        lambda *t: conv_transpose2d(*t, padding=(1, 0), dilation=(2, 1)),
        lambda *t: TF.conv_transpose2d(*t, padding=(1, 0), dilation=(2, 1)),
        [x, w, random_array(2, (2,), dtype)],
        device,
        reduction=18,
    )
    assert [g.in_channels for g in shifted_calls] == ([3] if device == "cpu" else [])


def _weight_bound(monkeypatch):
    monkeypatch.setattr(reversed_kernel, "WEIGHT_BOUND_ELEMENTS", 1)
    monkeypatch.setattr(reversed_kernel, "WEIGHT_BOUND_RATIO", 2)


def _no_shifted_channels(monkeypatch):
    monkeypatch.setattr(shifted, "MAX_CHANNELS", 0)


@pytest.mark.parametrize(
    "x_shape,w_shape,args,patch",
    [
        ((2, 4, 3, 4), (6, 4, 3, 3), dict(padding=1), _weight_bound),
        ((2, 4, 6, 7), (4, 2, 3, 3), dict(padding=1, groups=2), None),
        ((2, 3, 7, 8), (4, 3, 3, 3), dict(padding=1, stride=2), None),
        ((2, 3, 6, 7), (4, 3, 3, 3), dict(padding=1), _no_shifted_channels),
    ],
    ids=["weight-bound", "groups2", "stride2", "max-channels-0"],
)
def test_other_convs_do_not_run_through_it(
    monkeypatch, shifted_calls, x_shape, w_shape, args, patch
):
    if patch is not None:
        patch(monkeypatch)
    x, w, b = (
        random_array(0, x_shape, np.float64),
        random_array(1, w_shape, np.float64),
        random_array(2, (w_shape[0],), np.float64),
    )
    check_parity(
        lambda *t: conv2d(*t, **args),
        lambda *t: TF.conv2d(*t, **args),
        [x, w, b],
        "cpu",
    )
    assert shifted_calls == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_infs_and_nans_land_where_torchs_do(shifted_calls, dtype, op):
    """An inf of each sign and a NaN in the input (inside, on the padded border) give the
    output's infs and NaNs of PyTorch through the shifted GEMMs: conv2d's forward, and
    conv_transpose2d's (stride 1, the reversed-kernel conv); the input gradients match too."""
    ours_op, torch_op = {
        "conv2d": (conv2d, TF.conv2d),
        "conv_transpose2d": (conv_transpose2d, TF.conv_transpose2d),
    }[op]
    x, w = random_array(0, (2, 3, 7, 8), dtype), random_array(1, (3, 4, 3, 3), dtype)
    if op == "conv2d":
        w = np.ascontiguousarray(w.transpose(1, 0, 2, 3))
    x[0, 0, 3, 3], x[0, 1, 3, 4], x[1, 2, 0, 7] = np.inf, -np.inf, np.nan
    gy = random_array(2, (2, 4, 7, 8), dtype)
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    y = ours_op(xt, wt, padding=1)
    y.backward(mg.tensor(gy))
    assert len(shifted_calls) == 1
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch_op(tx, tw, padding=1)
    ty.backward(torch.tensor(gy))
    rtol, atol = tolerances(dtype, 27)
    for ours, theirs in (
        (y.detach().numpy(), ty.detach().numpy()),
        (xt.grad.numpy(), tx.grad.numpy()),
    ):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs))
        np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs))
        finite = np.isfinite(theirs)
        scale = max(1.0, float(np.abs(theirs[finite]).max()))
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=rtol, atol=atol * scale)
    assert not np.all(np.isfinite(y.detach().numpy()))
