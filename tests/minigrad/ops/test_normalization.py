"""batch_norm and instance_norm against PyTorch: outputs, gradients of input, weight and bias,
and the running statistics after a step; float64 gradcheck; bad input."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import REAL_GPU, check_parity, float_dtypes, layouts, random_array, seeds
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradcheck import gradcheck
from minigrad.ops import normalization
from minigrad.ops.normalization import batch_norm, instance_norm

momenta = st.sampled_from([0.0, 0.1, 0.5, 1.0])
epsilons = st.sampled_from([1e-5, 1e-3, 0.1])


def _stats(seed, channels, dtype):
    """Random running statistics (positive variances) as numpy arrays."""
    mean = random_array(seed, (channels,), dtype)
    var = random_array(seed + 1, (channels,), dtype, 0.5, 2.0)
    return mean, var


def _compare_with_torch(ours_fn, torch_fn, x, affine, stats, device, training, layout="contiguous"):
    """check_parity on (x, weight?, bias?) and the running statistics afterwards."""
    weight, bias = affine
    arrays = [x] + [a for a in (weight, bias) if a is not None]
    ours_stats = [None if s is None else mg.tensor(s.copy(), device=device) for s in stats]
    torch_stats = [None if s is None else torch.tensor(s.copy()) for s in stats]

    def call(fn, stats_, tensors):
        x_, rest = tensors[0], list(tensors[1:])
        w = rest.pop(0) if weight is not None else None
        b = rest.pop(0) if bias is not None else None
        return fn(x_, *stats_, w, b)

    count = x.shape[0] * math.prod(x.shape[2:])
    check_parity(
        lambda *t: call(ours_fn, ours_stats, t),
        lambda *t: call(torch_fn, torch_stats, t),
        arrays,
        device,
        reduction=count,
        layout=layout,
    )
    for ours, theirs in zip(ours_stats, torch_stats, strict=True):
        if theirs is None:
            continue
        rtol = 1e-10 if x.dtype == np.float64 else 1e-5
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=rtol, atol=rtol)
        if not training:
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@st.composite
def _cases(draw, min_spatial_dims=0):
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 5), min_size=min_spatial_dims, max_size=2)))
    return (n, c) + spatial


@settings(max_examples=40)
@given(
    shape=_cases(),
    dtype=float_dtypes,
    layout=layouts,
    seed=seeds,
    momentum=momenta,
    eps=epsilons,
    training=st.booleans(),
    has_weight=st.booleans(),
    has_bias=st.booleans(),
    has_stats=st.booleans(),
)
def test_batch_norm_matches_torch(
    device, shape, dtype, layout, seed, momentum, eps, training, has_weight, has_bias, has_stats
):
    assume(not training or shape[0] * math.prod(shape[2:]) > 1)
    has_stats = has_stats or not training
    c = shape[1]
    x = random_array(seed, shape, dtype) * 2 + 0.5
    weight = random_array(seed + 1, (c,), dtype) if has_weight else None
    bias = random_array(seed + 2, (c,), dtype) if has_bias else None
    stats = _stats(seed + 3, c, dtype) if has_stats else (None, None)

    def ours(x_, rm, rv, w, b):
        return batch_norm(x_, rm, rv, w, b, training=training, momentum=momentum, eps=eps)

    def theirs(x_, rm, rv, w, b):
        return TF.batch_norm(x_, rm, rv, w, b, training=training, momentum=momentum, eps=eps)

    _compare_with_torch(ours, theirs, x, (weight, bias), stats, device, training, layout)


@pytest.mark.parametrize(("split", "reused"), [(1 << 30, True), (1, False)])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_a_one_block_backward_reuses_the_centred_input(monkeypatch, split, reused, norm):
    """One block: the input gradient takes the centred input from the sums' pass; cut into
    blocks (the split threshold lowered to every input): each block is centred again."""
    monkeypatch.setattr(normalization, "_SPLIT_MIN_ELEMENTS", split)
    monkeypatch.setattr(normalization, "_BLOCK_ELEMENTS", 16)
    given_centred = []
    original = normalization._input_grad

    def recording(*args, centered=None):
        given_centred.append(centered is not None)
        return original(*args, centered=centered)

    monkeypatch.setattr(normalization, "_input_grad", recording)
    x = random_array(3, (2, 3, 4, 5), np.float64)
    affine = (random_array(4, (3,), np.float64), random_array(5, (3,), np.float64))
    _compare_with_torch(*_train_both_ways(norm), x, affine, _stats(6, 3, np.float64), "cpu", True)
    assert given_centred == [reused]


@settings(max_examples=30)
@given(
    shape=_cases(min_spatial_dims=1),
    dtype=float_dtypes,
    seed=seeds,
    momentum=momenta,
    eps=epsilons,
    use_input_stats=st.booleans(),
    has_affine=st.booleans(),
    has_stats=st.booleans(),
)
def test_instance_norm_matches_torch(
    device, shape, dtype, seed, momentum, eps, use_input_stats, has_affine, has_stats
):
    assume(not use_input_stats or math.prod(shape[2:]) > 1)
    has_stats = has_stats or not use_input_stats
    c = shape[1]
    x = random_array(seed, shape, dtype) * 3 - 1
    weight = random_array(seed + 1, (c,), dtype) if has_affine else None
    bias = random_array(seed + 2, (c,), dtype) if has_affine else None
    stats = _stats(seed + 3, c, dtype) if has_stats else (None, None)
    kwargs = {"use_input_stats": use_input_stats, "momentum": momentum, "eps": eps}

    def ours(x_, rm, rv, w, b):
        return instance_norm(x_, rm, rv, w, b, **kwargs)

    def theirs(x_, rm, rv, w, b):
        return TF.instance_norm(x_, rm, rv, w, b, **kwargs)

    _compare_with_torch(ours, theirs, x, (weight, bias), stats, device, use_input_stats)


def _train_both_ways(norm):
    """(ours, torch's) normalization in training mode, taking (x, rm, rv, w, b)."""
    if norm == "batch":
        return (
            lambda *a: batch_norm(*a, training=True),
            lambda *a: TF.batch_norm(*a, training=True),
        )
    return instance_norm, TF.instance_norm


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((3, 8, 96, 128), np.float32), ((2, 12, 96, 128), np.float64), ((80, 4, 32, 32), np.float64)],
)
def test_large_inputs_cut_into_blocks_on_two_threads_match_torch(
    device, monkeypatch, norm, shape, dtype
):
    """Past ``_SPLIT_MIN_ELEMENTS`` values (here lowered to 2**18, under these inputs) the host
    path cuts the input into blocks of whole samples, or of channel runs of one sample,
    shared by two threads."""
    monkeypatch.setattr(normalization, "_SPLIT_MIN_ELEMENTS", 1 << 18)
    x = random_array(7, shape, dtype) * 1.5 + 2
    c = shape[1]
    affine = (random_array(8, (c,), dtype), random_array(9, (c,), dtype))
    _compare_with_torch(*_train_both_ways(norm), x, affine, _stats(10, c, dtype), device, True)


@settings(max_examples=30)
@given(
    shape=_cases(min_spatial_dims=1),
    seed=seeds,
    block=st.sampled_from([1, 5, 12, 40]),
    norm=st.sampled_from(["batch", "instance"]),
)
def test_any_block_size_matches_torch(device, shape, seed, block, norm):
    """Tiny blocks on tiny inputs reach every way of cutting (several samples, channel runs,
    ragged last blocks) and the two-thread split, cheaply; lanes dotted in pieces of up to 4
    values reach the pieces' float64 sum (lanes of a prime length in pieces of one)."""
    assume(math.prod(shape[2:]) > 1)
    c = shape[1]
    x = random_array(seed, shape, np.float64) * 2 - 1
    affine = (random_array(seed + 1, (c,), np.float64), random_array(seed + 2, (c,), np.float64))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(normalization, "_BLOCK_ELEMENTS", block)
        patch.setattr(normalization, "_SPLIT_MIN_ELEMENTS", 1)
        patch.setattr(normalization, "_MATMUL_MIN_LENGTH", 3)
        patch.setattr(normalization, "_DOT_PIECE", 4)
        _compare_with_torch(
            *_train_both_ways(norm), x, affine, _stats(seed + 3, c, np.float64), device, True
        )


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "needs", [(True, False, False), (False, True, False), (False, False, True)]
)
def test_gradients_only_for_inputs_that_require_them(device, training, needs):
    arrays = [random_array(0, (3, 2, 4), np.float64)] + [
        random_array(k, (2,), np.float64) for k in (1, 2)
    ]
    ours = [
        mg.tensor(a, device=device, requires_grad=r) for a, r in zip(arrays, needs, strict=True)
    ]
    theirs = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, needs, strict=True)]
    stats = _stats(3, 2, np.float64)
    batch_norm(
        ours[0], *[mg.tensor(s, device=device) for s in stats], ours[1], ours[2], training=training
    ).sum().backward()
    TF.batch_norm(
        theirs[0], *[torch.tensor(s) for s in stats], theirs[1], theirs[2], training=training
    ).sum().backward()
    for o, t in zip(ours, theirs, strict=True):
        assert (o.grad is None) == (t.grad is None)
        if t.grad is not None:
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_running_stats_updated_in_place_on_their_arrays(device):
    x = mg.tensor(random_array(0, (4, 3, 2, 2), np.float32), device=device)
    rm, rv = mg.zeros(3, device=device), mg.ones(3, device=device)
    mean_array, var_array = rm.data, rv.data
    with mg.no_grad():
        batch_norm(x, rm, rv, training=True, momentum=0.25)
    assert rm.data is mean_array and rv.data is var_array
    xs = x.numpy()
    np.testing.assert_allclose(rm.numpy(), 0.25 * xs.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-7)
    unbiased = xs.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(rv.numpy(), 0.75 + 0.25 * unbiased, rtol=1e-5)


def test_eval_mode_leaves_running_stats_alone(device):
    x = mg.tensor(random_array(0, (2, 3, 4), np.float64), device=device, requires_grad=True)
    rm, rv = (
        mg.zeros(3, device=device, dtype=mg.float64),
        mg.ones(3, device=device, dtype=mg.float64),
    )
    batch_norm(x, rm, rv, training=False).sum().backward()
    np.testing.assert_array_equal(rm.numpy(), np.zeros(3))
    np.testing.assert_array_equal(rv.numpy(), np.ones(3))


def _tiny(device, shape, seed):
    return mg.tensor(random_array(seed, shape, np.float64), device=device, requires_grad=True)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(device, training):
    x, w, b = _tiny(device, (2, 3, 2, 2), 0), _tiny(device, (3,), 1), _tiny(device, (3,), 2)
    rm = mg.tensor(np.full(3, 0.3), device=device)
    rv = mg.tensor(np.full(3, 1.7), device=device)
    assert gradcheck(
        lambda *t: batch_norm(t[0], rm, rv, t[1], t[2], training=training, momentum=0.0), [x, w, b]
    )


def test_batch_norm_2d_input_gradcheck(device):
    x, w = _tiny(device, (4, 3), 3), _tiny(device, (3,), 4)
    assert gradcheck(lambda a, b: batch_norm(a, None, None, b, None, training=True), [x, w])


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_instance_norm_gradcheck(device, use_input_stats):
    x, w, b = _tiny(device, (2, 3, 3), 5), _tiny(device, (3,), 6), _tiny(device, (3,), 7)
    rm = mg.tensor(np.full(3, -0.2), device=device)
    rv = mg.tensor(np.full(3, 0.8), device=device)
    assert gradcheck(
        lambda *t: instance_norm(
            t[0], rm, rv, t[1], t[2], momentum=0.0, use_input_stats=use_input_stats
        ),
        [x, w, b],
    )


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1)])
def test_training_with_one_value_per_channel_raises(device, shape):
    x = mg.ones(*shape, device=device)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        batch_norm(x, None, None, training=True)


def test_instance_norm_with_one_spatial_value_raises(device):
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        instance_norm(mg.ones(2, 3, 1, 1, device=device))


def test_parameter_of_wrong_shape_names_both_shapes(device):
    x = mg.ones(2, 3, 4, 4, device=device)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\).*\(2, 3, 4, 4\).*\(4,\)"):
        batch_norm(x, None, None, weight=mg.ones(4, device=device), training=True)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        batch_norm(x, mg.zeros(3, device=device), mg.ones(2, device=device))


def test_eval_without_running_stats_raises(device):
    with pytest.raises(ValueError, match="running_mean and running_var"):
        batch_norm(mg.ones(2, 3, device=device), None, None, training=False)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        instance_norm(mg.ones(2, 3, 4, device=device), use_input_stats=False)


def test_too_few_dims_raise(device):
    with pytest.raises(ValueError, match=r"at least 2 dims, got shape \(3,\)"):
        batch_norm(mg.ones(3, device=device), None, None, training=True)
    with pytest.raises(ValueError, match=r"at least 3 dims, got shape \(2, 3\)"):
        instance_norm(mg.ones(2, 3, device=device))


def test_weight_dtype_must_match_input(device):
    x = mg.ones(2, 3, 4, device=device)
    w = mg.ones(3, dtype=mg.float64, device=device)
    with pytest.raises(TypeError, match="weight has dtype float64 but input has dtype float32"):
        batch_norm(x, None, None, w, training=True)


@pytest.mark.skipif(REAL_GPU, reason="counts transfers of the CPU stand-in")
def test_gpu_step_makes_no_host_transfers():
    from minigrad.testing import fake_cupy

    x = mg.tensor(random_array(0, (2, 3, 4, 4), np.float32), device="gpu", requires_grad=True)
    w, b = (
        mg.ones(3, device="gpu", requires_grad=True),
        mg.zeros(3, device="gpu", requires_grad=True),
    )
    rm, rv = mg.zeros(3, device="gpu"), mg.ones(3, device="gpu")
    fake_cupy.transfers.reset()
    (batch_norm(x, rm, rv, w, b, training=True) + instance_norm(x, rm, rv, w, b)).sum().backward()
    batch_norm(x, rm, rv, w, b).sum().backward()
    assert fake_cupy.transfers.to_host_calls == 0
    assert fake_cupy.transfers.to_device_calls == 0


@pytest.mark.parametrize(("shape", "offset"), [((4, 64, 32, 32), 0.0), ((4, 64, 32, 32), 3.0)])
def test_float32_batch_norm_rounds_no_worse_than_torch(shape, offset):
    """Float32 training-mode output against the float64 result of the same float32 input:
    with the statistics summed in float32 ours was 1.5-1.6x further off than PyTorch's
    (which sums in double on the CPU); within 1.35x with them summed in float64."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2 + offset).astype(np.float32)
    w, b = (rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    x64, w64, b64 = (torch.tensor(a, dtype=torch.float64) for a in (x, w, b))
    exact = TF.batch_norm(x64, None, None, w64, b64, True).numpy()
    theirs = TF.batch_norm(torch.tensor(x), None, None, torch.tensor(w), torch.tensor(b), True)
    ours = batch_norm(mg.tensor(x), None, None, mg.tensor(w), mg.tensor(b), training=True)

    def error(y):
        return np.linalg.norm(y - exact) / np.linalg.norm(exact)

    assert ours.dtype == np.float32
    assert error(ours.numpy()) <= 1.35 * error(theirs.numpy())


@pytest.mark.parametrize("instance", [False, True])
def test_float16_statistics_do_not_overflow(device, instance):
    """A float16 block's sums pass 65504 long before its statistics do (1024 values near 100):
    they are taken in float32, and output and gradients stay finite and close to float64's."""
    rng = np.random.default_rng(0)
    x = (100 + rng.standard_normal((8, 4, 32, 32))).astype(np.float16)
    gy = rng.standard_normal(x.shape).astype(np.float16)
    ours_fn = (
        (lambda t: mg.functional.instance_norm(t))
        if instance
        else (lambda t: mg.functional.batch_norm(t, None, None, training=True))
    )
    theirs_fn = (
        (lambda t: torch.nn.functional.instance_norm(t))
        if instance
        else (lambda t: torch.nn.functional.batch_norm(t, None, None, training=True))
    )
    xt = mg.tensor(x, device=device, requires_grad=True)
    y = ours_fn(xt)
    y.backward(mg.tensor(gy, device=device))
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    ty = theirs_fn(tx)
    ty.backward(torch.tensor(gy.astype(np.float64)))
    assert y.dtype == mg.float16 and xt.grad.dtype == mg.float16
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), atol=0.1)
    np.testing.assert_allclose(xt.grad.cpu().numpy(), tx.grad.numpy(), atol=0.1)


@pytest.mark.parametrize("shape", [(2, 32, 32, 32), (2, 512, 2, 2), (3, 8, 96, 128)])
@pytest.mark.parametrize("split", [False, True])
def test_float32_batch_means_are_exact_in_float64(monkeypatch, shape, split):
    """A float32 batch's means are summed in float64, as PyTorch's CPU kernels do: they equal
    the float64 means of the same values. (Float32 lane sums put them about 7e-8 off, and an
    FCN's float32 gradients 1.3-1.5x further from float64 than PyTorch's.) The inputs are
    ReLU outputs, whose mean is as large as their spread."""
    if split:
        monkeypatch.setattr(normalization, "_SPLIT_MIN_ELEMENTS", 1)
        monkeypatch.setattr(normalization, "_BLOCK_ELEMENTS", 4096)
    x = np.maximum(random_array(3, shape, np.float32) * 2 + 0.3, 0)
    geo = normalization._Blocks(shape, False, True)
    x3 = x.reshape(geo.view)
    mean = normalization._moments(x3, geo, normalization._statistics_dtype(x3))[0]
    np.testing.assert_allclose(mean[0], x.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-13)


@pytest.mark.parametrize("per_instance", [False, True])
@pytest.mark.parametrize("length", [7, 16, 257, 4096, 12288, 2 * 7919])
def test_lane_sums_in_the_block_dtype_stay_close_to_float64(per_instance, length):
    """A float32 lane sum (the output gradient's, in the backward) dots its lanes with ones
    in pieces whose dots are added in float64: it stays as close to the float64 sum as
    NumPy's pairwise float32 sum, over short, ragged and long lanes (2 * 7919 has no piece
    and keeps the pairwise sum). A float64 sum of float32 values (an einsum) is the float64
    sum itself."""
    shape = (3, 5, length)
    x = np.abs(random_array(4, shape, np.float32)) + np.float32(0.5)
    geo = normalization._Blocks(shape, per_instance, True)
    exact = x.astype(np.float64).sum(axis=2 if per_instance else (0, 2))
    pairwise = x.sum(axis=2 if per_instance else (0, 2))
    ours = geo.lane_sum(x)
    assert ours.dtype == np.float32
    bound = max(np.abs(pairwise - exact).max() / np.abs(exact).max(), 2**-24)
    assert np.abs(ours - exact).max() / np.abs(exact).max() <= 1.5 * bound
    np.testing.assert_allclose(geo.lane_sum(x, np.float64), exact, rtol=1e-14)


@pytest.mark.parametrize("offset", [50.0, 300.0])
def test_a_float32_output_rounds_like_the_output_not_like_its_mean(offset):
    """A one-block input's output comes from its centred values: with a mean far above the
    spread, ``x * scale + shift`` without a fused multiply-add was 1.6e-6 from float64 at
    a mean of 50 (PyTorch's 1.2e-6); from the centred values it is the output's own rounding."""
    x = random_array(11, (4, 8, 16, 16), np.float32) * 2 + np.float32(offset)
    weight = np.linspace(0.5, 1.5, 8).astype(np.float32)
    ours = batch_norm(mg.tensor(x), None, None, mg.tensor(weight), None, training=True)
    exact = TF.batch_norm(
        torch.tensor(x, dtype=torch.float64),
        None,
        None,
        torch.tensor(weight, dtype=torch.float64),
        training=True,
    ).numpy()
    error = np.linalg.norm(ours.numpy() - exact) / np.linalg.norm(exact)
    assert error < 2e-7, error


@pytest.mark.parametrize(
    ("length", "piece"),
    [(64, 64), (256, 256), (4096, 256), (9216, 256), (10000, 250), (16129, 127), (257, 257)],
)
def test_lanes_are_dotted_in_pieces_of_a_divisor(length, piece):
    """The largest divisor up to 256 (127 * 127 has 127), or the whole lane when that divisor
    is under 32 (a prime)."""
    assert normalization._dot_piece(length) == piece


def test_long_lanes_of_relu_outputs_normalize_as_closely_as_torch():
    """Dotted over whole 4096-value lanes in float32, the centred sum of squares put the
    variance 1.6e-7 off: the output and input gradient of a batch norm of ReLU outputs came
    out 2.1e-7 from float64 (PyTorch's, which sums in double, 6e-8). In pieces, as close."""
    x = np.maximum(random_array(12, (4, 8, 64, 64), np.float32) * 2 + 0.3, 0)
    gy = random_array(13, x.shape, np.float32)
    xt = mg.tensor(x, requires_grad=True)
    y = batch_norm(xt, None, None, training=True)
    y.backward(mg.tensor(gy))
    x64 = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y64 = TF.batch_norm(x64, None, None, training=True)
    y64.backward(torch.tensor(gy, dtype=torch.float64))
    for ours, exact in ((y.detach().numpy(), y64.detach().numpy()), (xt.grad.numpy(), x64.grad)):
        exact = np.asarray(exact)
        assert np.linalg.norm(ours - exact) / np.linalg.norm(exact) < 1e-7
