"""max_pool2d, avg_pool2d and max_unpool2d against PyTorch: outputs, indices (ties included),
input gradients; the blocked multi-threaded CPU path and the overlapping windows' scatter;
float64 gradcheck; bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import REAL_GPU, check_parity, float_dtypes, layouts, random_array, seeds
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradcheck import gradcheck
from minigrad.ops import pooling
from minigrad.ops.pooling import avg_pool2d, max_pool, max_pool2d, max_unpool2d, pooled_size


def _values(seed, shape, dtype, ties: bool) -> np.ndarray:
    """Normal samples, or small integers (many equal values in each window) for ties."""
    x = random_array(seed, shape, dtype)
    return np.round(x * 1.5).astype(dtype) if ties else x


def _windows_see_the_input(size, kernel, stride, padding, dilation, ceil_mode) -> bool:
    """True when the output is not empty and no window lies wholly in the padding (PyTorch
    gives garbage indices there)."""
    out = pooled_size(size, kernel, stride, padding, dilation, ceil_mode)
    return out >= 1 and all(
        any(0 <= o * stride - padding + i * dilation < size for i in range(kernel))
        for o in range(out)
    )


@st.composite
def pool_cases(draw, dilation=True):
    """(shape, kwargs) for a pooling PyTorch accepts: odd and even sizes, stride above the
    kernel, padding up to half the kernel, dilation, ceil mode; ints or pairs."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    size = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilations = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    for axis in zip(size, kernel, stride, padding, dilations, strict=True):
        assume(_windows_see_the_input(*axis, ceil_mode))
    shape = (n, c) + size
    kwargs = {"kernel_size": kernel, "padding": padding, "ceil_mode": ceil_mode}
    if stride != kernel or draw(st.booleans()):
        kwargs["stride"] = stride
    if dilation:
        kwargs["dilation"] = dilations
    if kernel[0] == kernel[1] and draw(st.booleans()):
        kwargs["kernel_size"] = kernel[0]
    return shape, kwargs


@settings(max_examples=100)
@given(case=pool_cases(), dtype=float_dtypes, layout=layouts, ties=st.booleans(), seed=seeds)
def test_max_pool2d_matches_torch(device, case, dtype, layout, ties, seed):
    shape, kwargs = case
    x = _values(seed, shape, dtype, ties)
    ours = check_parity(
        lambda t: max_pool2d(t, return_indices=True, **kwargs),
        lambda t: TF.max_pool2d(t, return_indices=True, **kwargs),
        [x],
        device,
        layout=layout,
    )
    _, their_indices = TF.max_pool2d(torch.tensor(x), return_indices=True, **kwargs)
    np.testing.assert_array_equal(ours[1].numpy(), their_indices.numpy())
    assert ours[1].dtype == np.int64 and not ours[1].requires_grad


def test_max_pool2d_ties_take_the_first_maximum_like_torch(device):
    x = np.array(
        [
            [
                [
                    [1.0, 3.0, 3.0, 0.0],
                    [3.0, 2.0, 1.0, 3.0],
                    [5.0, 5.0, 2.0, 2.0],
                    [5.0, 5.0, 2.0, 2.0],
                ]
            ]
        ],
        dtype=np.float32,
    )
    ones = np.ones((2, 3, 5, 5), dtype=np.float64)
    for array, kwargs in [
        (x, {"kernel_size": 2}),
        (x, {"kernel_size": 3, "stride": 1}),
        (ones, {"kernel_size": 3, "stride": 2, "padding": 1}),
        (ones, {"kernel_size": 2, "stride": 1, "dilation": 2}),
    ]:
        ours = check_parity(
            lambda t, kw=kwargs: max_pool2d(t, return_indices=True, **kw),
            lambda t, kw=kwargs: TF.max_pool2d(t, return_indices=True, **kw),
            [array],
            device,
        )
        _, theirs = TF.max_pool2d(torch.tensor(array), return_indices=True, **kwargs)
        np.testing.assert_array_equal(ours[1].numpy(), theirs.numpy())
    _, indices = max_pool2d(mg.tensor(x, device=device), 2, return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), [[[[1, 2], [8, 10]]]])


@settings(max_examples=60)
@given(
    case=pool_cases(dilation=False),
    dtype=float_dtypes,
    layout=layouts,
    seed=seeds,
    count_include_pad=st.booleans(),
    divisor=st.sampled_from([None, None, 1, 3]),
)
def test_avg_pool2d_matches_torch(device, case, dtype, layout, seed, count_include_pad, divisor):
    shape, kwargs = case
    kwargs = dict(kwargs, count_include_pad=count_include_pad, divisor_override=divisor)
    x = random_array(seed, shape, dtype)
    check_parity(
        lambda t: avg_pool2d(t, **kwargs),
        lambda t: TF.avg_pool2d(t, **kwargs),
        [x],
        device,
        reduction=9,
        layout=layout,
    )


def _as_pair(value) -> tuple:
    return value if isinstance(value, tuple) else (value, value)


def _unpool_arguments(shape, kwargs) -> tuple:
    """(kernel, stride, padding) as pairs, and the input's (H, W) as output_size when
    PyTorch accepts it (within one stride of the default size), else None."""
    kernel = _as_pair(kwargs["kernel_size"])
    stride, padding = _as_pair(kwargs.get("stride", kernel)), _as_pair(kwargs["padding"])
    size = shape[-2:]
    for n, h, k, s, p in zip(size, shape[-2:], kernel, stride, padding, strict=True):
        pooled = pooled_size(h, k, s, p, 1, kwargs["ceil_mode"])
        default = (pooled - 1) * s - 2 * p + k
        if not default - s < n < default + s:
            return kernel, stride, padding, None
    return kernel, stride, padding, size


@settings(max_examples=50)
@given(case=pool_cases(dilation=False), dtype=float_dtypes, layout=layouts, seed=seeds)
def test_max_unpool2d_round_trip_matches_torch(device, case, dtype, layout, seed):
    shape, kwargs = case
    kernel, stride, padding, size = _unpool_arguments(shape, kwargs)
    assume(size is not None and all(s >= k for s, k in zip(stride, kernel, strict=True)))
    x = random_array(seed, shape, dtype)

    def round_trip(pool, unpool):
        def run(t):
            pooled, indices = pool(t, return_indices=True, **kwargs)
            return unpool(pooled, indices, kernel, stride, padding, output_size=size)

        return run

    check_parity(
        round_trip(max_pool2d, max_unpool2d),
        round_trip(TF.max_pool2d, TF.max_unpool2d),
        [x],
        device,
        layout=layout,
    )


@settings(max_examples=30)
@given(case=pool_cases(dilation=False), dtype=float_dtypes, seed=seeds)
def test_max_unpool2d_with_torch_indices_matches_torch(device, case, dtype, seed):
    shape, kwargs = case
    kernel, stride, padding, size = _unpool_arguments(shape, kwargs)
    assume(size is not None and all(s >= k for s, k in zip(stride, kernel, strict=True)))
    pooled, indices = TF.max_pool2d(
        torch.tensor(random_array(seed, shape, dtype)), return_indices=True, **kwargs
    )
    check_parity(
        lambda v, i: max_unpool2d(v, i, kernel, stride, padding, output_size=size),
        lambda v, i: TF.max_unpool2d(v, i, kernel, stride, padding, output_size=size),
        [pooled.numpy(), indices.numpy()],
        device,
    )


def test_max_unpool2d_default_size_and_four_entry_output_size(device):
    pooled, indices = TF.max_pool2d(
        torch.tensor(random_array(0, (2, 3, 7, 6), np.float32)), 2, return_indices=True
    )
    for size in [None, (2, 3, 7, 6), [7, 7]]:
        check_parity(
            lambda v, i, s=size: max_unpool2d(v, i, 2, output_size=s),
            lambda v, i, s=size: TF.max_unpool2d(v, i, 2, output_size=s),
            [pooled.numpy(), indices.numpy()],
            device,
        )


def test_three_dimensional_input_like_torch(device):
    x = random_array(1, (3, 7, 6), np.float32)
    ours = check_parity(
        lambda t: max_pool2d(t, 3, 2, 1, return_indices=True),
        lambda t: TF.max_pool2d(t, 3, 2, 1, return_indices=True),
        [x],
        device,
    )
    _, theirs = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(ours[1].numpy(), theirs.numpy())
    check_parity(
        lambda t: avg_pool2d(t, 2, ceil_mode=True),
        lambda t: TF.avg_pool2d(t, 2, ceil_mode=True),
        [x],
        device,
    )
    pooled, indices = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    check_parity(
        lambda v, i: max_unpool2d(v, i, 2),
        lambda v, i: TF.max_unpool2d(v, i, 2),
        [pooled.numpy(), indices.numpy()],
        device,
    )


@pytest.mark.parametrize("shape", [(3, 20, 66, 66), (2, 40, 70, 70)])
def test_many_blocks_on_worker_threads_match_torch(device, shape):
    """Shapes the CPU path cuts into several blocks (over batch, or over channels) that run
    on the worker threads: every forward, and the backward of windows that do not overlap
    (overlapping ones scatter on the CPU, see the test below)."""
    plane_bytes = shape[2] * shape[3] * 4
    blocks = pooling._plane_blocks(shape[0], shape[1], pooling.BLOCK_BYTES // plane_bytes)
    assert len(blocks) > 1
    x = random_array(2, shape, np.float32)
    ours = check_parity(
        lambda t: max_pool2d(t, 3, 2, 1, return_indices=True),
        lambda t: TF.max_pool2d(t, 3, 2, 1, return_indices=True),
        [x],
        device,
    )
    _, theirs = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(ours[1].numpy(), theirs.numpy())
    check_parity(lambda t: max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), [x], device)
    check_parity(
        lambda t: avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda t: TF.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        [x],
        device,
        reduction=9,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 3, "stride": 1, "padding": 1, "dilation": 2},
        {"kernel_size": (3, 2), "stride": (2, 1), "ceil_mode": True},
        {"kernel_size": 2, "stride": 1},
    ],
)
@pytest.mark.parametrize("ties", [False, True])
def test_the_overlapping_scatter_matches_the_blocked_backward(monkeypatch, kwargs, ties):
    """On the CPU overlapping windows send each gradient to its winner with one ``add.at``;
    the blocked per-offset backward (NumPy before 1.25) gives the same input gradient."""
    x = mg.tensor(_values(5, (2, 3, 9, 8), np.float64, ties), requires_grad=True)
    pooled = max_pool2d(x, **kwargs)
    gy = random_array(6, pooled.shape, np.float64)
    scattered = pooled.grad_fn.backward(gy)
    monkeypatch.setattr(max_pool, "_FAST_INDEXED_LOOPS", False)
    blocked = pooled.grad_fn.backward(gy)
    np.testing.assert_allclose(scattered, blocked, rtol=1e-13, atol=1e-15)


def _tie_free(shape, seed=3):
    """float64 values at least 0.01 apart, so finite differences never swap a maximum."""
    count = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(count).reshape(shape) * 0.01 + 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": (2, 3), "stride": 1, "dilation": (2, 1)},
    ],
)
def test_max_pool2d_gradcheck(device, kwargs):
    x = mg.tensor(_tie_free((1, 2, 5, 6)), device=device, requires_grad=True)
    assert gradcheck(lambda t: max_pool2d(t, **kwargs), [x])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
        {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 0), "divisor_override": 5},
    ],
)
def test_avg_pool2d_gradcheck(device, kwargs):
    x = mg.tensor(random_array(4, (1, 2, 5, 6), np.float64), device=device, requires_grad=True)
    assert gradcheck(lambda t: avg_pool2d(t, **kwargs), [x])


def test_max_unpool2d_gradcheck(device):
    x = mg.tensor(_tie_free((1, 2, 5, 6)), device=device)
    pooled, indices = max_pool2d(x, 2, return_indices=True)
    values = mg.tensor(pooled.numpy(), device=device, requires_grad=True)
    assert gradcheck(lambda v: max_unpool2d(v, indices, 2, output_size=(5, 6)), [values])


@pytest.mark.skipif(REAL_GPU, reason="counts transfers of the CPU stand-in")
def test_gpu_pooling_makes_no_host_transfers():
    from minigrad.testing import fake_cupy

    x = mg.tensor(random_array(5, (2, 3, 7, 6), np.float32), device="gpu", requires_grad=True)
    with fake_cupy.count_transfers() as transfers:
        pooled, indices = max_pool2d(x, 3, 2, 1, return_indices=True)
        restored = max_unpool2d(pooled, indices, 3, 2, 1, output_size=(7, 6))
        (
            avg_pool2d(restored, 2, ceil_mode=True, count_include_pad=False).sum()
            + max_pool2d(x, 2).sum()
        ).backward()
    assert transfers.to_host_calls == 0 and transfers.to_device_calls == 0, transfers


BAD_CASES = {
    "zero kernel": (
        lambda x, p, i: max_pool2d(x, 0),
        ValueError,
        "kernel_size must be positive, got 0",
    ),
    "zero stride": (
        lambda x, p, i: max_pool2d(x, 2, stride=0),
        ValueError,
        "stride must be positive, got 0",
    ),
    "padding over half": (
        lambda x, p, i: max_pool2d(x, 3, padding=2),
        ValueError,
        r"padding should be at most half of kernel_size, got padding=\(2, 2\)",
    ),
    "negative padding": (
        lambda x, p, i: max_pool2d(x, 2, padding=-1),
        ValueError,
        "padding must be non-negative",
    ),
    "zero dilation": (
        lambda x, p, i: max_pool2d(x, 2, dilation=(1, 0)),
        ValueError,
        r"dilation must be positive, got \(1, 0\)",
    ),
    "empty output": (
        lambda x, p, i: max_pool2d(x, 6),
        ValueError,
        r"spatial size \(5, 5\) gives output size \(0, 0\)",
    ),
    "three kernel sizes": (
        lambda x, p, i: max_pool2d(x, (2, 2, 2)),
        TypeError,
        "kernel_size must be an int or a tuple of two ints",
    ),
    "float kernel": (lambda x, p, i: max_pool2d(x, 2.5), TypeError, "got 2.5"),
    "2-d input": (
        lambda x, p, i: max_pool2d(mg.reshape(x, (10, 5)), 2),
        ValueError,
        r"4-D input .* got shape \(10, 5\)",
    ),
    "integer input": (
        lambda x, p, i: max_pool2d(i, 1),
        TypeError,
        "input must be a floating-point tensor, got dtype int64",
    ),
    "avg empty output": (lambda x, p, i: avg_pool2d(x, 7), ValueError, "output size"),
    "zero divisor": (
        lambda x, p, i: avg_pool2d(x, 2, divisor_override=0),
        ValueError,
        "divisor_override must not be zero",
    ),
    "avg padding over half": (
        lambda x, p, i: avg_pool2d(x, 3, padding=(0, 2)),
        ValueError,
        "padding should be at most half",
    ),
    "indices shape": (
        lambda x, p, i: max_unpool2d(p, i[:, :, :1], 2),
        ValueError,
        r"indices must have the input's shape \(1, 2, 2, 2\), got \(1, 2, 1, 2\)",
    ),
    "float indices": (
        lambda x, p, i: max_unpool2d(p, p, 2),
        TypeError,
        "indices must be an integer tensor, got dtype float32",
    ),
    "output size range": (
        lambda x, p, i: max_unpool2d(p, i, 2, output_size=(9, 9)),
        ValueError,
        r"invalid output_size \(9, 9\) \(dim 0 must be between 2 and 6",
    ),
    "output size length": (
        lambda x, p, i: max_unpool2d(p, i, 2, output_size=(4,)),
        ValueError,
        "output_size must hold 2 or 4 ints",
    ),
    "unpool empty output": (
        lambda x, p, i: max_unpool2d(p, i, 1, padding=(1, 0)),
        ValueError,
        r"output size \(0, 2\) must be positive",
    ),
    "unpool zero stride": (
        lambda x, p, i: max_unpool2d(p, i, 2, stride=0),
        ValueError,
        "stride must be positive",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_input_raises_naming_the_argument(device, name):
    fn, error, match = BAD_CASES[name]
    x = mg.tensor(random_array(6, (1, 2, 5, 5), np.float32), device=device)
    pooled, indices = max_pool2d(x, 2, return_indices=True)
    with pytest.raises(error, match=match):
        fn(x, pooled, indices)


def test_out_of_range_unpool_indices_raise_on_the_cpu():
    pooled = mg.tensor(random_array(7, (1, 2, 2, 2), np.float32))
    for bad in (16, -1):
        indices = mg.tensor(np.full((1, 2, 2, 2), bad, dtype=np.int64))
        with pytest.raises(ValueError, match=rf"indices must lie in \[0, 16\) .* from {bad}"):
            max_unpool2d(pooled, indices, 2)
