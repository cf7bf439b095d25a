"""conv2d and conv_transpose2d against PyTorch (output, input/weight/bias gradients), float64
gradcheck, the tiled and threaded CPU paths, and bad input."""

import contextlib
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import check_parity, float_dtypes, layouts, random_array, seeds
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import parallel
from minigrad.gradcheck import gradcheck
from minigrad.ops import im2col, winograd
from minigrad.ops.conv import (
    conv2d,
    conv_transpose2d,
    depthwise,
    dispatch,
    functions,
    gemm,
    pixel_major,
    reversed_kernel,
    shifted,
)

# PyTorch warns that its own asymmetric "same" padding copies the input; ours does not care.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@st.composite
def conv2d_cases(draw):
    """Arguments of a conv2d: dense, grouped or depthwise (with a channel multiplier)."""
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    groups = 1 if kind == "dense" else draw(st.integers(2, 3 if kind == "grouped" else 4))
    c_in = groups if kind == "depthwise" else groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(
        st.one_of(
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 3)),
            st.sampled_from(["same", "valid"]),
        )
    )
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    pads = (0, 0) if isinstance(padding, str) else np.broadcast_to(padding, 2)
    # the smallest input the (dilated) kernel fits into, then a few sizes more
    smallest = [
        max(1, d * (k - 1) + 1 - 2 * p) for k, d, p in zip(kernel, dilation, pads, strict=True)
    ]
    size = tuple(draw(st.integers(s, s + 4)) for s in smallest)
    batch = draw(st.integers(1, 2))
    return dict(
        x=(batch, c_in, *size),
        w=(c_out, c_in // groups, *kernel),
        bias=draw(st.booleans()),
        args=dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
    )


@st.composite
def conv_transpose2d_cases(draw):
    """Arguments of a conv_transpose2d whose output is not empty."""
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 1)))
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    size = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    out = [
        (n - 1) * s - 2 * p + d * (k - 1) + o + 1
        for n, s, p, d, k, o in zip(
            size, stride, padding, dilation, kernel, output_padding, strict=True
        )
    ]
    assume(min(out) > 0)
    batch = draw(st.integers(1, 2))
    return dict(
        x=(batch, c_in, *size),
        w=(c_in, c_out // groups, *kernel),
        bias=draw(st.booleans()),
        args=dict(
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            groups=groups,
            dilation=dilation,
        ),
    )


def _reduction(case, transpose: bool) -> int:
    """The longest sum inside the op, for float32 tolerances: per output, or per weight."""
    x, w = case["x"], case["w"]
    per_output = (w[0] if transpose else w[1]) * w[2] * w[3]
    per_weight = x[0] * x[2] * x[3] * (w[2] * w[3] if transpose else 1)
    return max(per_output, per_weight, 1)


def _check(case, dtype, seed, device, layout="contiguous", transpose=False):
    ours, theirs = (conv_transpose2d, TF.conv_transpose2d) if transpose else (conv2d, TF.conv2d)
    args = case["args"]
    n_out = case["w"][1] * args["groups"] if transpose else case["w"][0]
    arrays = [random_array(seed, case["x"], dtype), random_array(seed + 1, case["w"], dtype)]
    if case["bias"]:
        arrays.append(random_array(seed + 2, (n_out,), dtype))
    check_parity(
        lambda *t: ours(*t, **args),
        lambda *t: theirs(*t, **args),
        arrays,
        device,
        reduction=_reduction(case, transpose),
        layout=layout,
    )


@settings(max_examples=40)
@given(case=conv2d_cases(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_conv2d_matches_torch(device, case, dtype, layout, seed):
    _check(case, dtype, seed, device, layout)


@settings(max_examples=30)
@given(case=conv_transpose2d_cases(), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_conv_transpose2d_matches_torch(device, case, dtype, layout, seed):
    _check(case, dtype, seed, device, layout, transpose=True)


@contextlib.contextmanager
def tiny_tiles():
    """Force the CPU paths to tile (bands of one output row, one plane) and to use threads,
    which share im2col's tiles; dense stride-1 convs take those tiles, not the shifted-window
    GEMMs (which have none)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shifted, "MAX_CHANNELS", 0)
        patch.setattr(im2col, "MIN_TILE_COLUMNS", 1)
        patch.setattr(im2col, "CPU_TILE_BYTES", 1)
        patch.setattr(im2col, "GPU_TILE_BYTES", 1)
        patch.setattr(im2col, "MIN_PARALLEL_ELEMENTS", 0)
        patch.setattr(parallel, "THREADS", 2)
        patch.setattr(depthwise, "DEPTHWISE_TILE_BYTES", 1)
        yield


@settings(max_examples=12)
@given(case=conv2d_cases(), dtype=float_dtypes, seed=seeds)
def test_conv2d_in_row_bands_and_threads_matches_torch(device, case, dtype, seed):
    with tiny_tiles():
        _check(case, dtype, seed, device)


@settings(max_examples=8)
@given(case=conv_transpose2d_cases(), dtype=float_dtypes, seed=seeds)
def test_conv_transpose2d_in_row_bands_and_threads_matches_torch(device, case, dtype, seed):
    with tiny_tiles():
        _check(case, dtype, seed, device, transpose=True)


@settings(max_examples=20)
@given(case=conv2d_cases(), dtype=float_dtypes, seed=seeds, tiles=st.booleans())
def test_conv2d_with_columns_from_phases_matches_torch(device, case, dtype, seed, tiles):
    """Every strided conv reads its im2col windows from the input's phases (forward and
    weight gradient), whole or in row bands shared by threads."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(im2col, "MIN_OFFSETS_PER_PHASE", 0)
        with tiny_tiles() if tiles else contextlib.nullcontext():
            _check(case, dtype, seed, device)


def test_a_large_strided_kernel_reads_phases(monkeypatch):
    """ResNet's 7x7 stride-2 stem reads its windows from phases; a 3x3 stride-2 conv (2.25
    offsets per phase) from the strided image."""
    made = []
    original = im2col.Phases.__init__
    monkeypatch.setattr(
        im2col.Phases, "__init__", lambda self, *a, **k: made.append(1) or original(self, *a, **k)
    )
    x = random_array(0, (2, 3, 20, 20), np.float32)
    for kernel, expected in ((7, True), (3, False)):
        made.clear()
        w = random_array(1, (4, 3, kernel, kernel), np.float32)
        ours = conv2d(mg.tensor(x), mg.tensor(w), stride=2, padding=kernel // 2)
        theirs = TF.conv2d(torch.tensor(x), torch.tensor(w), stride=2, padding=kernel // 2)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
        assert bool(made) == expected


@pytest.mark.parametrize(
    ("side", "multiplier", "wide"), [(6, 1, True), (9, 2, True), (48, 1, False)]
)
def test_depthwise_weight_gradient_dots_whole_rows_on_small_planes(
    monkeypatch, side, multiplier, wide
):
    """Stride-1 planes of up to WIDE_DOTS_MAX_PLANE wide outputs take the batched BLAS dots
    over whole wide rows, larger ones the cropped einsum; both give PyTorch's gradient."""
    calls = []
    original = depthwise._wide_plane_dots
    monkeypatch.setattr(depthwise, "_wide_plane_dots", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(depthwise, "WIDE_DOTS_MAX_PLANE", 48 * 50 - 1)
    x = random_array(0, (2, 3, side, side), np.float64)
    w = random_array(1, (3 * multiplier, 1, 3, 3), np.float64)
    gy = random_array(2, (2, 3 * multiplier, side, side), np.float64)
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    conv2d(xt, wt, padding=1, groups=3).backward(mg.tensor(gy))
    tw = torch.tensor(w, requires_grad=True)
    TF.conv2d(torch.tensor(x), tw, padding=1, groups=3).backward(torch.tensor(gy))
    np.testing.assert_allclose(wt.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-10)
    assert bool(calls) == wide


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_share_the_tiles_and_add_the_weight_gradient_in_order(monkeypatch, threads):
    """With two threads each runs its half of the tiles (BLAS single-threaded meanwhile) and
    the two partial weight gradients are added in part order: the same sums as on one
    thread, up to that order, and the same bits from run to run."""
    monkeypatch.setattr(shifted, "MAX_CHANNELS", 0)
    monkeypatch.setattr(im2col, "CPU_TILE_BYTES", 1)
    monkeypatch.setattr(im2col, "MIN_TILE_COLUMNS", 16)
    monkeypatch.setattr(parallel, "THREADS", threads)
    parts = []
    original = im2col.tile_parallel

    def counted(fn, tiles, like):
        results = original(fn, tiles, like)
        parts.append(len(results))
        return results

    monkeypatch.setattr(gemm, "tile_parallel", counted)
    x, w = random_array(0, (3, 4, 9, 11), np.float64), random_array(1, (5, 4, 3, 3), np.float64)
    runs = []
    for _ in range(2):
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        conv2d(xt, wt, padding=1).sum().backward()
        runs.append((xt.grad.numpy(), wt.grad.numpy()))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    TF.conv2d(tx, tw, padding=1).sum().backward()
    np.testing.assert_allclose(runs[0][0], tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(runs[0][1], tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert parts and set(parts) == {threads}


def test_plan_tiles_groups_samples_or_cuts_rows():
    assert [t.size for t in im2col.plan_tiles(5, 4, 5, 40)] == [(2, 4), (2, 4), (1, 4)]
    assert [(t.n0, t.rows) for t in im2col.plan_tiles(2, 5, 5, 12)] == [
        (0, (0, 2)),
        (0, (2, 4)),
        (0, (4, 5)),
        (1, (0, 2)),
        (1, (2, 4)),
        (1, (4, 5)),
    ]


@pytest.mark.parametrize("samples_per_tile", [1, 2])
def test_conv2d_tiles_of_whole_samples_match_torch(device, monkeypatch, samples_per_tile):
    """Tiles of one or two whole samples (and a smaller last tile) out of a batch of 5."""
    case = dict(
        x=(5, 4, 4, 3),
        w=(3, 4, 3, 3),
        bias=True,
        args=dict(stride=1, padding=1, dilation=1, groups=1),
    )
    columns = samples_per_tile * 4 * (3 + 2)  # Ho * wp: the wide layout pads each row to 5
    monkeypatch.setattr(im2col, "MIN_TILE_COLUMNS", columns)
    monkeypatch.setattr(im2col, "CPU_TILE_BYTES", 1)
    monkeypatch.setattr(im2col, "GPU_TILE_BYTES", columns * 4 * 3 * 3 * 8)
    _check(case, np.float64, 0, device)


def test_unbatched_input_matches_torch(device):
    x, w = random_array(0, (3, 5, 6), np.float64), random_array(1, (4, 3, 3, 3), np.float64)
    check_parity(
        lambda a, b: conv2d(a, b, padding=1),
        lambda a, b: TF.conv2d(a, b, padding=1),
        [x, w],
        device,
    )
    wt = random_array(2, (3, 2, 2, 2), np.float64)
    check_parity(
        lambda a, b: conv_transpose2d(a, b, stride=2),
        lambda a, b: TF.conv_transpose2d(a, b, stride=2),
        [x, wt],
        device,
    )


@pytest.mark.parametrize("groups", [1, 2])
def test_empty_batch_matches_torch(device, groups):
    x, w = np.zeros((0, 2, 5, 5)), random_array(1, (4, 2 // groups, 3, 3), np.float64)
    check_parity(
        lambda a, b: conv2d(a, b, padding=1, groups=groups),
        lambda a, b: TF.conv2d(a, b, padding=1, groups=groups),
        [x, w],
        device,
    )
    wt = random_array(2, (2, 3, 2, 2), np.float64)
    check_parity(
        lambda a, b: conv_transpose2d(a, b, stride=2),
        lambda a, b: TF.conv_transpose2d(a, b, stride=2),
        [x, wt],
        device,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("thin_rows", [0, 10**9], ids=["gy-col-T", "col-gy-T"])
@pytest.mark.parametrize("groups", [1, 2])
def test_weight_gradient_gemm_either_way_round_matches_torch(
    device, monkeypatch, dtype, thin_rows, groups
):
    """The im2col weight gradient, written as ``gy @ col^T`` or as its transpose ``col @ gy^T``
    (``THIN_ROWS`` forced each way, on both devices), matches PyTorch."""
    monkeypatch.setattr(gemm, "THIN_ROWS", thin_rows)
    monkeypatch.setattr(gemm, "GPU_THIN_ROWS", thin_rows)
    x = random_array(0, (2, 4, 7, 6), dtype)
    w = random_array(1, (6, 4 // groups, 3, 3), dtype)
    check_parity(
        lambda a, b: conv2d(a, b, stride=2, padding=1, groups=groups),
        lambda a, b: TF.conv2d(a, b, stride=2, padding=1, groups=groups),
        [x, w],
        device,
        reduction=36,
    )


def test_only_weight_gradient_when_input_needs_none(device):
    x, w = random_array(0, (2, 3, 5, 5), np.float64), random_array(1, (4, 3, 3, 3), np.float64)
    weight = mg.tensor(w, device=device, requires_grad=True)
    conv2d(mg.tensor(x, device=device), weight, stride=2).sum().backward()
    expected = torch.tensor(w, requires_grad=True)
    TF.conv2d(torch.tensor(x), expected, stride=2).sum().backward()
    np.testing.assert_allclose(weight.grad.numpy(), expected.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize(
    "needs", [(True, False, False), (False, True, False), (False, False, True)]
)
def test_conv_transpose2d_gradients_for_any_subset_of_inputs(device, monkeypatch, needs):
    """The backward shares one im2col between the input and weight gradients; with only one
    of them (or only the bias) it computes just that, and with only the bias no columns."""
    arrays = [
        random_array(0, (2, 4, 3, 3), np.float64),
        random_array(1, (4, 3, 2, 2), np.float64),
        random_array(2, (3,), np.float64),
    ]
    im2col_calls = []
    monkeypatch.setattr(gemm, "im2col", lambda *a: im2col_calls.append(1) or im2col.im2col(*a))
    ours = [
        mg.tensor(a, device=device, requires_grad=r) for a, r in zip(arrays, needs, strict=True)
    ]
    theirs = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, needs, strict=True)]
    conv_transpose2d(*ours, stride=2).sum().backward()
    TF.conv_transpose2d(*theirs, stride=2).sum().backward()
    for o, t in zip(ours, theirs, strict=True):
        assert (o.grad is None) == (t.grad is None)
        if t.grad is not None:
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-10)
    assert im2col_calls if needs[:2] != (False, False) else not im2col_calls


BACKWARD_SHARING_CASES = {
    # name: (x shape, w shape, conv2d arguments, whether gy's columns serve both gradients)
    "grouped": ((2, 6, 5, 7), (6, 3, 3, 3), dict(padding=1, groups=2), True),
    "dilated_same": ((2, 6, 5, 7), (6, 2, 3, 3), dict(padding="same", dilation=2, groups=3), True),
    "even_kernel_same": ((2, 4, 5, 6), (4, 4, 2, 4), dict(padding="same"), True),
    "one_output_per_group": ((2, 6, 5, 5), (3, 2, 3, 3), dict(padding=1, groups=3), True),
    "empty_batch": ((0, 4, 5, 5), (4, 4, 3, 3), dict(padding=1), True),
    "few_input_channels": ((2, 2, 5, 5), (8, 2, 3, 3), dict(padding=1), False),
    "valid_large_kernel": ((2, 4, 6, 6), (4, 4, 3, 3), dict(padding=0, dilation=(2, 1)), False),
    "pad_beyond_kernel": ((2, 4, 5, 5), (4, 4, 3, 3), dict(padding=3), False),
    "strided": ((2, 4, 5, 5), (4, 4, 3, 3), dict(padding=1, stride=2), False),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", BACKWARD_SHARING_CASES, ids=str)
def test_conv2d_backward_shares_gy_columns_when_it_pays(device, monkeypatch, case, dtype):
    """With both x and W needing a gradient, a stride-1 conv on the CPU takes the weight
    gradient from gy's columns when its GEMM keeps its shape (``conv_grads``); else, and on
    the GPU, from x's (``conv_grad_weight``). Either way both match PyTorch."""
    x_shape, w_shape, args, shared = BACKWARD_SHARING_CASES[case]
    x, w = random_array(0, x_shape, dtype), random_array(1, w_shape, dtype)
    separate_calls = []
    original = dispatch.conv_grad_weight

    def counted(*args):
        separate_calls.append(1)
        return original(*args)

    for module in (dispatch, functions):
        monkeypatch.setattr(module, "conv_grad_weight", counted)
    check_parity(
        lambda a, b: conv2d(a, b, **args),
        lambda a, b: TF.conv2d(a, b, **args),
        [x, w],
        device,
        reduction=w_shape[1] * 9,
    )
    assert len(separate_calls) == (0 if shared and device == "cpu" else 1)


GRADCHECK_CASES = {
    "dense": ((1, 2, 4, 5), (3, 2, 3, 3), dict(padding=1)),
    "strided_dilated": (
        (2, 2, 5, 5),
        (2, 2, 2, 3),
        dict(stride=(2, 1), padding=(1, 2), dilation=2),
    ),
    "grouped": ((1, 4, 4, 4), (4, 2, 3, 2), dict(groups=2, padding=1)),
    "depthwise": ((1, 2, 4, 4), (4, 1, 3, 3), dict(groups=2, padding="same")),
    "depthwise_strided": ((1, 2, 5, 4), (2, 1, 3, 3), dict(groups=2, stride=2, padding=1)),
    "pointwise": ((2, 3, 3, 3), (2, 3, 1, 1), dict()),
}

GRADCHECK_TRANSPOSE_CASES = {
    "dense": ((1, 2, 3, 3), (2, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "grouped_dilated": ((1, 4, 3, 2), (4, 1, 2, 3), dict(groups=2, dilation=2, output_padding=1)),
    "depthwise": ((1, 2, 3, 3), (2, 1, 3, 3), dict(groups=2, stride=2)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK_CASES))
def test_conv2d_gradcheck(device, name):
    x_shape, w_shape, args = GRADCHECK_CASES[name]
    tensors = [
        mg.tensor(random_array(k, s, np.float64), device=device, requires_grad=True)
        for k, s in enumerate((x_shape, w_shape, (w_shape[0],)))
    ]
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, **args), tensors)


@pytest.mark.parametrize("name", sorted(GRADCHECK_TRANSPOSE_CASES))
def test_conv_transpose2d_gradcheck(device, name):
    x_shape, w_shape, args = GRADCHECK_TRANSPOSE_CASES[name]
    bias_shape = (w_shape[1] * args.get("groups", 1),)
    tensors = [
        mg.tensor(random_array(k, s, np.float64), device=device, requires_grad=True)
        for k, s in enumerate((x_shape, w_shape, bias_shape))
    ]
    assert gradcheck(lambda x, w, b: conv_transpose2d(x, w, b, **args), tensors)


def _tensors(x_shape, w_shape, dtype=np.float32, w_dtype=None, bias_shape=None, device="cpu"):
    x = mg.tensor(np.zeros(x_shape, dtype), device=device)
    w = mg.tensor(np.zeros(w_shape, w_dtype or dtype), device=device)
    b = None if bias_shape is None else mg.tensor(np.zeros(bias_shape, dtype), device=device)
    return x, w, b


CONV2D_ERRORS = [
    (
        ((2, 3, 5, 5), (4, 3, 3, 3)),
        dict(groups=2),
        ValueError,
        r"input channels \(3\).*groups \(2\)",
    ),
    (
        ((2, 4, 5, 5), (3, 2, 3, 3)),
        dict(groups=2),
        ValueError,
        r"output channels \(3\).*groups \(2\)",
    ),
    (((2, 3, 5, 5), (4, 2, 3, 3)), {}, ValueError, r"expects input with 2 channels.*got 3"),
    (((2, 1, 3, 5, 5), (4, 3, 3, 3)), {}, ValueError, r"4-D input.*got shape \(2, 1, 3, 5, 5\)"),
    (((5, 5), (4, 3, 3, 3)), {}, ValueError, r"4-D input"),
    (((2, 3, 5, 5), (4, 3, 3)), {}, ValueError, r"weight must be 4-D.*\(4, 3, 3\)"),
    (
        ((2, 3, 2, 5), (4, 3, 3, 3)),
        {},
        ValueError,
        r"output height .*\(2 \+ 0 - 1\*\(3-1\) - 1\) / 1\) \+ 1 = 0",
    ),
    (((2, 3, 5, 5), (4, 3, 3, 3)), dict(dilation=(1, 3)), ValueError, r"output width .* = -1"),
    (((2, 3, 5, 5), (4, 3, 3, 3)), dict(stride=0), ValueError, r"stride must be positive, got 0"),
    (
        ((2, 3, 5, 5), (4, 3, 3, 3)),
        dict(dilation=(1, -1)),
        ValueError,
        r"dilation must be positive",
    ),
    (((2, 3, 5, 5), (4, 3, 3, 3)), dict(padding=-1), ValueError, r"padding must be non-negative"),
    (((2, 3, 5, 5), (4, 3, 3, 3)), dict(padding="full"), ValueError, r"padding must be 'valid'"),
    (
        ((2, 3, 5, 5), (4, 3, 3, 3)),
        dict(padding="same", stride=2),
        ValueError,
        r"'same' needs stride 1",
    ),
    (
        ((2, 3, 5, 5), (4, 3, 3, 3)),
        dict(stride=(1, 2, 3)),
        TypeError,
        r"stride must be an int or a tuple of two ints",
    ),
    (
        ((2, 3, 5, 5), (4, 3, 3, 3)),
        dict(groups=0),
        ValueError,
        r"groups must be a positive int, got 0",
    ),
]


@pytest.mark.parametrize(("shapes", "args", "error", "match"), CONV2D_ERRORS)
def test_conv2d_bad_input_raises(device, shapes, args, error, match):
    x, w, _ = _tensors(*shapes, device=device)
    with pytest.raises(error, match=match):
        conv2d(x, w, **args)


def test_conv2d_bad_dtype_and_bias_raise(device):
    x, w, b = _tensors((1, 3, 5, 5), (4, 3, 3, 3), w_dtype=np.float64, device=device)
    with pytest.raises(
        TypeError, match="input and weight must have the same dtype, got float32 and float64"
    ):
        conv2d(x, w)
    x, w, b = _tensors((1, 3, 5, 5), (4, 3, 3, 3), bias_shape=(3,), device=device)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\).*got \(3,\)"):
        conv2d(x, w, b)
    x, w, b = _tensors((1, 3, 5, 5), (4, 3, 3, 3), bias_shape=(4,), device=device)
    with pytest.raises(TypeError, match="input and bias must have the same dtype"):
        conv2d(x, w, b.to(dtype=mg.float64))
    with pytest.raises(TypeError, match="input must be a floating tensor, got dtype int64"):
        conv2d(mg.tensor(np.zeros((1, 3, 5, 5), np.int64), device=device), w)


CONV_TRANSPOSE2D_ERRORS = [
    (((2, 3, 5, 5), (4, 3, 3, 3)), {}, ValueError, r"expects input with 4 channels.*got 3"),
    (
        ((2, 4, 5, 5), (4, 3, 3, 3)),
        dict(groups=3),
        ValueError,
        r"input channels \(4\).*groups \(3\)",
    ),
    (
        ((2, 4, 5, 5), (4, 3, 3, 3)),
        dict(stride=2, output_padding=2),
        ValueError,
        r"smaller than either stride or dilation.*output_padding=2, stride=2",
    ),
    (
        ((2, 4, 5, 5), (4, 3, 3, 3)),
        dict(output_padding=-1, stride=2),
        ValueError,
        r"output_padding must be non-negative",
    ),
    (
        ((2, 4, 1, 5), (4, 3, 3, 3)),
        dict(padding=(2, 0)),
        ValueError,
        r"output height .*\(1-1\)\*1 - 2\*2 \+ 1\*\(3-1\) \+ 0 \+ 1 = -1",
    ),
    (
        ((2, 4, 5, 5), (4, 3, 3, 3)),
        dict(padding="same"),
        ValueError,
        r"padding must be an int or a pair",
    ),
    (((2, 4, 5, 5), (4, 3, 3, 3)), dict(dilation=0), ValueError, r"dilation must be positive"),
    (((4, 5), (4, 3, 3, 3)), {}, ValueError, r"4-D input"),
]


@pytest.mark.parametrize(("shapes", "args", "error", "match"), CONV_TRANSPOSE2D_ERRORS)
def test_conv_transpose2d_bad_input_raises(device, shapes, args, error, match):
    x, w, _ = _tensors(*shapes, device=device)
    with pytest.raises(error, match=match):
        conv_transpose2d(x, w, **args)


def test_conv_transpose2d_bias_of_wrong_shape_raises(device):
    x, w, b = _tensors((1, 4, 5, 5), (4, 3, 3, 3), bias_shape=(6,), device=device)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\).*got \(6,\)"):
        conv_transpose2d(x, w, b, groups=1)


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("transpose", [False, True])
def test_empty_batch_with_bias_matches_torch(device, kernel, transpose):
    x = np.zeros((0, 3, 5, 5))
    w = random_array(0, (3, 4, kernel, kernel) if transpose else (4, 3, kernel, kernel), np.float64)
    b = random_array(1, (4,), np.float64)
    ours, theirs = (conv_transpose2d, TF.conv_transpose2d) if transpose else (conv2d, TF.conv2d)
    check_parity(ours, theirs, [x, w, b], device)


@pytest.mark.parametrize("input_grad", [False, True])
@pytest.mark.parametrize(
    "groups,w_shape", [(1, (3, 2, 3, 3)), (2, (4, 1, 3, 3)), (1, (16, 2, 3, 3))]
)
def test_an_inf_the_kernel_never_reads_leaves_the_weight_gradient_finite(
    device, groups, w_shape, input_grad
):
    """The inf sits where the wide layout's extra columns read it; with ``input_grad`` the
    backward takes the shared-columns path (``conv_grads``, CPU), whose columns are gy's.
    With 16 output channels the weight outnumbers x, whose sum is checked first."""
    x = random_array(0, (1, 2, 5, 6), np.float64)
    x[0, 0, 2, 0] = np.inf
    w = random_array(1, w_shape, np.float64)
    xt = mg.tensor(x, device=device, requires_grad=input_grad)
    wt = mg.tensor(w, device=device, requires_grad=True)
    y = conv2d(xt, wt, groups=groups)
    y.backward(mg.ones(y.shape, dtype=mg.float64, device=device))
    tx, tw = torch.tensor(x, requires_grad=input_grad), torch.tensor(w, requires_grad=True)
    TF.conv2d(tx, tw, groups=groups).sum().backward()
    grads = [(wt.grad, tw.grad)] + ([(xt.grad, tx.grad)] if input_grad else [])
    for ours, theirs in grads:
        finite = np.isfinite(theirs.numpy())
        np.testing.assert_array_equal(np.isfinite(ours.numpy()), finite)
        np.testing.assert_allclose(ours.numpy()[finite], theirs.numpy()[finite], rtol=1e-10)


def test_a_zero_sized_kernel_is_named(device):
    x = mg.ones(1, 3, 5, 5, device=device)
    with pytest.raises(ValueError, match=r"every size of weight must be at least 1"):
        conv2d(x, mg.ones(4, 3, 0, 3, device=device))


def test_numpy_integer_groups_are_accepted(device):
    x, w = random_array(0, (1, 4, 5, 5), np.float64), random_array(1, (4, 2, 3, 3), np.float64)
    check_parity(
        lambda a, b: conv2d(a, b, groups=np.int64(2)),
        lambda a, b: TF.conv2d(a, b, groups=2),
        [x, w],
        device,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("stride", "weight_grad_on_caller"), [(1, False), (2, True)], ids=["pixel-major", "im2col"]
)
def test_weight_bound_gradients_run_side_by_side(monkeypatch, dtype, stride, weight_grad_on_caller):
    """On the CPU a weight-bound conv's two gradients run at once, each on its own thread
    with BLAS single-threaded, and still match PyTorch. On the pixel-major path (stride 1)
    the calling thread takes the input gradient and the worker writes the weight gradient
    into an array it is given; a strided conv's weight gradient (im2col's) stays on the
    calling thread."""
    if not dispatch.cblas.can_run_single_threaded():
        pytest.skip("NumPy's BLAS cannot be held on one thread here")
    monkeypatch.setattr(reversed_kernel, "WEIGHT_BOUND_ELEMENTS", 1)
    monkeypatch.setattr(reversed_kernel, "WEIGHT_BOUND_RATIO", 2)
    monkeypatch.setattr(parallel, "THREADS", 2)
    threads, given_arrays, single = {}, [], []
    original_single = dispatch.cblas.single_threaded

    @contextlib.contextmanager
    def recording_single_threaded():
        single.append(1)
        with original_single():
            yield

    def recorded(name, fn):
        def run(*args, **kwargs):
            threads[name] = threading.current_thread().name
            if "out" in kwargs:
                given_arrays.append(kwargs["out"])
            return fn(*args, **kwargs)

        return run

    monkeypatch.setattr(dispatch.cblas, "single_threaded", recording_single_threaded)
    for name in ("conv_grad_input", "conv_grad_weight"):
        monkeypatch.setattr(dispatch, name, recorded(name, getattr(dispatch, name)))
    pixel_grad = recorded("pixel_major.grad_weight", dispatch.pixel_major.grad_weight)
    monkeypatch.setattr(dispatch.pixel_major, "grad_weight", pixel_grad)
    x, w = random_array(0, (2, 4, 3, 4), dtype), random_array(1, (6, 4, 3, 3), dtype)
    check_parity(
        lambda a, b: conv2d(a, b, stride=stride, padding=1),
        lambda a, b: TF.conv2d(a, b, stride=stride, padding=1),
        [x, w],
        "cpu",
        reduction=36,
    )
    assert len(set(threads.values())) == 2 and single
    caller = threading.current_thread().name
    if weight_grad_on_caller:
        assert threads["conv_grad_weight"] == caller and not given_arrays
    else:
        assert threads["conv_grad_input"] == caller
        assert threads["pixel_major.grad_weight"] != caller and len(given_arrays) == 1


def test_a_frozen_weight_keeps_no_activation_alive(device):
    x = mg.ones(1, 2, 4, 4, device=device, requires_grad=True)
    y = conv2d(x, mg.ones(3, 2, 3, 3, device=device))
    saved_x, saved_w = y.grad_fn.saved
    assert saved_x is None and saved_w is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", [1, "same", 0])
def test_conv2d_weight_bound_backward_takes_col2im(device, monkeypatch, padding, dtype):
    """A stride-1 conv whose weight outnumbers its input (a small image with many channels)
    takes its input gradient by col2im (on the CPU, from the compact pixel-major columns)
    and its weight gradient from x's columns, neither through the reversed kernel nor
    Winograd (even with the channel floor lowered); both match PyTorch."""
    monkeypatch.setattr(reversed_kernel, "WEIGHT_BOUND_ELEMENTS", 1)
    monkeypatch.setattr(reversed_kernel, "WEIGHT_BOUND_RATIO", 2)
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 2)
    monkeypatch.setattr(winograd, "forward_and_grad_weight", None)  # never called
    calls = []
    name = "grad_input" if device == "cpu" else "_gemm_grad_input"
    owner = pixel_major if device == "cpu" else dispatch
    original = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(dispatch, "_grads_from_gy", None)  # never called
    x, w = random_array(0, (2, 4, 3, 4), dtype), random_array(1, (6, 4, 3, 3), dtype)
    check_parity(
        lambda a, b: conv2d(a, b, padding=padding),
        lambda a, b: TF.conv2d(a, b, padding=padding),
        [x, w],
        device,
        reduction=36,
    )
    assert calls
