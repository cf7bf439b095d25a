"""minigrad.reference, the plain version of each fast op, as a second oracle: on hypothesis-drawn
shapes its outputs and gradients equal the fast op's (every algorithm path) and PyTorch's, in
float64 to 1e-10, on both devices; adam_step equals torch.optim.Adam step by step."""

import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import random_array, seeds
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import backend, parallel, reference
from minigrad.ops import im2col as im2col_ops
from minigrad.ops import winograd
from minigrad.ops.conv import conv2d, conv_transpose2d, depthwise
from minigrad.ops.normalization import batch_norm
from minigrad.ops.pooling import max_pool2d, max_unpool2d, pooled_size
from minigrad.ops.upsample import interpolate

TOLERANCE = 1e-10
EXAMPLES = 20


# --------------------------------------------------------------------------- the comparison


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def _run_minigrad(fn, arrays, gy, device) -> tuple:
    """(outputs, gradients of the float inputs) of a fast op for the upstream gradient gy."""
    tensors = [mg.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
    outputs = _as_tuple(fn(*tensors))
    (outputs[0] * mg.tensor(gy, device=device)).sum().backward()
    return [o.detach().numpy() for o in outputs], [
        t.grad.numpy() for t in tensors if t.requires_grad
    ]


def _run_torch(fn, arrays, gy) -> tuple:
    tensors = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    outputs = _as_tuple(fn(*tensors))
    (outputs[0] * torch.tensor(gy)).sum().backward()
    return [o.detach().numpy() for o in outputs], [
        t.grad.numpy() for t in tensors if t.grad is not None
    ]


def _assert_equal(got, expected, what: str) -> None:
    expected = backend.to_host(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, reference {expected.shape}"
    if expected.dtype.kind in "iu":
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE * scale, err_msg=what)


def _agree(outputs, grads, fast_fn, torch_fn, arrays, gy, device) -> None:
    """The reference's outputs and gradients (device arrays) against the fast op and torch."""
    for name, (got_outputs, got_grads) in (
        ("fast op", _run_minigrad(fast_fn, arrays, gy, device)),
        ("torch", _run_torch(torch_fn, arrays, gy)),
    ):
        assert len(got_outputs) == len(outputs) and len(got_grads) == len(grads), name
        for k, (got, expected) in enumerate(zip(got_outputs, outputs, strict=True)):
            _assert_equal(got, expected, f"{name}: output {k}")
        for k, (got, expected) in enumerate(zip(got_grads, grads, strict=True)):
            _assert_equal(got, expected, f"{name}: gradient {k}")


def _on(device, *arrays) -> list:
    return [None if a is None else backend.to_device(a, device) for a in arrays]


@contextlib.contextmanager
def _route(path: str):
    """Send the fast conv down one of its paths: as it chooses ("chosen"), Winograd for every
    3x3 stride-1 conv (and check that it ran), or tiles of one output row and blocks of one
    plane on two threads ("tiles")."""
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        if path == "winograd":
            original = winograd.forward_and_grad_weight
            patch.setattr(winograd, "MIN_CHANNELS", 1)
            patch.setattr(
                winograd,
                "forward_and_grad_weight",
                lambda *a, **k: calls.append(1) or original(*a, **k),
            )
        if path == "tiles":
            for name in ("MIN_TILE_COLUMNS", "CPU_TILE_BYTES", "GPU_TILE_BYTES"):
                patch.setattr(im2col_ops, name, 1)
            patch.setattr(im2col_ops, "MIN_PARALLEL_ELEMENTS", 0)
            patch.setattr(depthwise, "DEPTHWISE_TILE_BYTES", 1)
            patch.setattr(parallel, "THREADS", 2)
        yield
    assert calls or path != "winograd", "the Winograd route never ran Winograd"


paths = st.sampled_from(["chosen", "winograd", "tiles"])


def _conv_arguments(draw, path: str) -> tuple:
    """(kernel, stride, padding, dilation) pairs; 3x3, stride 1, dilation 1 for Winograd."""
    if path == "winograd":
        kernel, stride, dilation = (3, 3), (1, 1), (1, 1)
    else:
        kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    return kernel, stride, padding, dilation


# --------------------------------------------------------------------------- conv2d


@st.composite
def conv2d_cases(draw, path: str = "chosen"):
    """A conv2d: dense, grouped or depthwise, any kernel, stride, padding and dilation (for
    Winograd: 3x3 stride 1, two channels per group, so that no depthwise path takes it)."""
    groups = draw(st.integers(1, 3))
    per_group = 2 if path == "winograd" else draw(st.integers(1, 2))
    c_in, c_out = groups * per_group, groups * draw(st.integers(1, 2))
    kernel, stride, padding, dilation = _conv_arguments(draw, path)
    smallest = [
        max(1, d * (k - 1) + 1 - 2 * p) for k, d, p in zip(kernel, dilation, padding, strict=True)
    ]
    size = tuple(draw(st.integers(s, s + 4)) for s in smallest)
    return dict(
        x=(draw(st.integers(1, 2)), c_in, *size),
        w=(c_out, c_in // groups, *kernel),
        bias=draw(st.booleans()),
        args=dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
    )


@settings(max_examples=EXAMPLES)
@given(path_and_case=paths.flatmap(lambda p: st.tuples(st.just(p), conv2d_cases(p))), seed=seeds)
def test_conv2d_equals_the_fast_op_and_torch(device, path_and_case, seed):
    path, case = path_and_case
    args = case["args"]
    x = random_array(seed, case["x"], np.float64)
    w = random_array(seed + 1, case["w"], np.float64)
    b = random_array(seed + 2, (case["w"][0],), np.float64) if case["bias"] else None
    dx, dw, db = _on(device, x, w, b)
    y = reference.conv2d_forward(dx, dw, db, **args)
    gy = random_array(seed + 3, y.shape, np.float64)
    gx, gw, gb = reference.conv2d_backward(dx, dw, backend.to_device(gy, device), **args)
    arrays, grads = ([x, w], [gx, gw]) if b is None else ([x, w, b], [gx, gw, gb])
    with _route(path):
        _agree(
            [y],
            grads,
            lambda *t: conv2d(*t, **args),
            lambda *t: TF.conv2d(*t, **args),
            arrays,
            gy,
            device,
        )


@settings(max_examples=EXAMPLES)
@given(case=conv2d_cases(), seed=seeds)
def test_col2im_is_the_adjoint_of_im2col(device, case, seed):
    """<im2col(x), c> = <x, col2im(c)> for every x and c."""
    args = {k: v for k, v in case["args"].items() if k != "groups"}
    kh, kw = case["w"][2:]
    x = random_array(seed, case["x"], np.float64)
    cols = reference.im2col(backend.to_device(x, device), kh, kw, **args)
    c = random_array(seed + 1, cols.shape, np.float64)
    back = reference.col2im(backend.to_device(c, device), x.shape, **args)
    lhs, rhs = float((backend.to_host(cols) * c).sum()), float((x * backend.to_host(back)).sum())
    assert lhs == pytest.approx(rhs, rel=TOLERANCE, abs=TOLERANCE)


# --------------------------------------------------------------------------- conv_transpose2d


@st.composite
def conv_transpose2d_cases(draw, path: str = "chosen"):
    """A conv_transpose2d with a non-empty output; output_padding below stride or dilation
    (for Winograd: 3x3 stride 1, two channels per group on both sides)."""
    groups = draw(st.integers(1, 3))
    c_in = groups * (2 if path == "winograd" else draw(st.integers(1, 2)))
    c_out_per_group = 2 if path == "winograd" else draw(st.integers(1, 2))
    kernel, stride, padding, dilation = _conv_arguments(draw, path)
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    for n, k, s, p, d, o in zip(
        size, kernel, stride, padding, dilation, output_padding, strict=True
    ):
        assume((n - 1) * s - 2 * p + d * (k - 1) + o + 1 > 0)
    return dict(
        x=(draw(st.integers(1, 2)), c_in, *size),
        w=(c_in, c_out_per_group, *kernel),
        bias=draw(st.booleans()),
        args=dict(stride=stride, padding=padding, groups=groups, dilation=dilation),
        output_padding=output_padding,
    )


@settings(max_examples=EXAMPLES)
@given(
    path_and_case=paths.flatmap(lambda p: st.tuples(st.just(p), conv_transpose2d_cases(p))),
    seed=seeds,
)
def test_conv_transpose2d_equals_the_fast_op_and_torch(device, path_and_case, seed):
    path, case = path_and_case
    args, output_padding = case["args"], case["output_padding"]
    x = random_array(seed, case["x"], np.float64)
    w = random_array(seed + 1, case["w"], np.float64)
    out_channels = case["w"][1] * args["groups"]
    b = random_array(seed + 2, (out_channels,), np.float64) if case["bias"] else None
    dx, dw, db = _on(device, x, w, b)
    y = reference.conv_transpose2d_forward(dx, dw, db, output_padding=output_padding, **args)
    gy = random_array(seed + 3, y.shape, np.float64)
    gx, gw, gb = reference.conv_transpose2d_backward(dx, dw, backend.to_device(gy, device), **args)
    arrays, grads = ([x, w], [gx, gw]) if b is None else ([x, w, b], [gx, gw, gb])
    all_args = dict(args, output_padding=output_padding)
    with _route(path):
        _agree(
            [y],
            grads,
            lambda *t: conv_transpose2d(*t, **all_args),
            lambda *t: TF.conv_transpose2d(*t, **all_args),
            arrays,
            gy,
            device,
        )


# --------------------------------------------------------------------------- pooling


def _windows_see_the_input(size, kernel, stride, padding, dilation, ceil_mode) -> bool:
    """No window lies wholly in the padding (PyTorch's indices are garbage there)."""
    out = pooled_size(size, kernel, stride, padding, dilation, ceil_mode)
    return out >= 1 and all(
        any(0 <= o * stride - padding + i * dilation < size for i in range(kernel))
        for o in range(out)
    )


@st.composite
def pool_cases(draw):
    """(shape, kernel, stride, padding, dilation, ceil_mode) of a max pooling PyTorch accepts."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    shape += (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    ceil_mode = draw(st.booleans())
    for axis in zip(shape[2:], kernel, stride, padding, dilation, strict=True):
        assume(_windows_see_the_input(*axis, ceil_mode))
    return shape, kernel, stride, padding, dilation, ceil_mode


def _pool_input(seed, shape, ties: bool):
    """Normal values, or small integers (many equal values per window) to test the tie rule."""
    x = random_array(seed, shape, np.float64)
    return np.round(x * 1.5) if ties else x


@settings(max_examples=EXAMPLES)
@given(case=pool_cases(), ties=st.booleans(), seed=seeds)
def test_max_pool2d_equals_the_fast_op_and_torch(device, case, ties, seed):
    shape, kernel, stride, padding, dilation, ceil_mode = case
    args = (kernel, stride, padding, dilation, ceil_mode)
    x = _pool_input(seed, shape, ties)
    y, indices = reference.max_pool2d_forward(backend.to_device(x, device), *args)
    gy = random_array(seed + 1, y.shape, np.float64)
    gx = reference.max_pool2d_backward(backend.to_device(gy, device), indices, x.shape)
    _agree(
        [y, indices],
        [gx],
        lambda t: max_pool2d(t, *args, return_indices=True),
        lambda t: TF.max_pool2d(t, *args, return_indices=True),
        [x],
        gy,
        device,
    )


@settings(max_examples=EXAMPLES)
@given(case=pool_cases(), seed=seeds)
def test_max_unpool2d_equals_the_fast_op_and_torch(device, case, seed):
    """Unpooling the values and indices of a max pooling back to the pooled input's size."""
    shape, kernel, stride, padding, _, _ = case
    x = random_array(seed, shape, np.float64)
    for n, k, s, p in zip(shape[2:], kernel, stride, padding, strict=True):
        out = pooled_size(n, k, s, p, 1, False)
        default = (out - 1) * s - 2 * p + k
        assume(_windows_see_the_input(n, k, s, p, 1, False) and default - s < n < default + s)
    values, indices = (
        backend.to_host(a)
        for a in reference.max_pool2d_forward(backend.to_device(x, device), kernel, stride, padding)
    )
    args = (kernel, stride, padding, shape[2:])
    d_values, d_indices = _on(device, values, indices)
    y = reference.max_unpool2d_forward(d_values, d_indices, *args)
    gy = random_array(seed + 1, y.shape, np.float64)
    gx = reference.max_unpool2d_backward(backend.to_device(gy, device), d_indices)
    _agree(
        [y],
        [gx],
        lambda v, i: max_unpool2d(v, i, *args),
        lambda v, i: TF.max_unpool2d(v, i, *args),
        [values, indices],
        gy,
        device,
    )


# --------------------------------------------------------------------------- bilinear


@settings(max_examples=EXAMPLES)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    align_corners=st.booleans(),
    seed=seeds,
)
def test_bilinear_equals_the_fast_op_and_torch(device, shape, size, align_corners, seed):
    x = random_array(seed, shape, np.float64)
    y = reference.interpolate_bilinear(backend.to_device(x, device), size, align_corners)
    gy = random_array(seed + 1, y.shape, np.float64)
    gx = reference.interpolate_bilinear_backward(
        backend.to_device(gy, device), shape[2:], align_corners
    )
    args = dict(size=size, mode="bilinear", align_corners=align_corners)
    _agree(
        [y],
        [gx],
        lambda t: interpolate(t, **args),
        lambda t: TF.interpolate(t, **args),
        [x],
        gy,
        device,
    )


# --------------------------------------------------------------------------- batch norm


@settings(max_examples=EXAMPLES)
@given(
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple),
    affine=st.booleans(),
    eps=st.sampled_from([1e-5, 1e-3]),
    seed=seeds,
)
def test_batch_norm_equals_the_fast_op_and_torch(device, shape, affine, eps, seed):
    assume(np.prod(shape) // shape[1] > 1)
    x = random_array(seed, shape, np.float64)
    weight = random_array(seed + 1, shape[1:2], np.float64) if affine else None
    bias = random_array(seed + 2, shape[1:2], np.float64) if affine else None
    dx, dweight, dbias = _on(device, x, weight, bias)
    y = reference.batch_norm_forward(dx, dweight, dbias, eps)
    gy = random_array(seed + 3, shape, np.float64)
    gx, gweight, gbias = reference.batch_norm_backward(
        backend.to_device(gy, device), dx, dweight, eps
    )
    arrays, grads = ([x, weight, bias], [gx, gweight, gbias]) if affine else ([x], [gx])
    _agree(
        [y],
        grads,
        lambda t, *wb: batch_norm(t, None, None, *wb, training=True, eps=eps),
        lambda t, *wb: TF.batch_norm(t, None, None, *wb, training=True, eps=eps),
        arrays,
        gy,
        device,
    )


# --------------------------------------------------------------------------- Adam


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1),
        dict(lr=0.02, weight_decay=0.01, amsgrad=True),
    ],
    ids=["defaults", "weight_decay", "amsgrad"],
)
def test_adam_step_equals_torch_adam(device, options):
    """Five steps side by side: the parameter and every state array after each."""
    param = random_array(0, (3, 4), np.float64)
    theirs = torch.tensor(param, requires_grad=True)
    optimizer = torch.optim.Adam([theirs], **options)
    ours = backend.to_device(param, device)
    exp_avg, exp_avg_sq, max_exp_avg_sq = (backend.to_device(np.zeros_like(param), device),) * 3
    for step in range(1, 6):
        grad = random_array(step, param.shape, np.float64)
        theirs.grad = torch.tensor(grad)
        optimizer.step()
        ours, exp_avg, exp_avg_sq, max_exp_avg_sq = reference.adam_step(
            ours,
            backend.to_device(grad, device),
            exp_avg,
            exp_avg_sq,
            step,
            max_exp_avg_sq=max_exp_avg_sq,
            **options,
        )
        state = optimizer.state[theirs]
        _assert_equal(theirs.detach().numpy(), ours, f"param after step {step}")
        _assert_equal(state["exp_avg"].numpy(), exp_avg, f"exp_avg after step {step}")
        _assert_equal(state["exp_avg_sq"].numpy(), exp_avg_sq, f"exp_avg_sq after step {step}")
        if options.get("amsgrad"):
            _assert_equal(state["max_exp_avg_sq"].numpy(), max_exp_avg_sq, f"max after {step}")
        else:
            assert max_exp_avg_sq is None
