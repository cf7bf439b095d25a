"""cross_entropy, nll_loss and binary_cross_entropy_with_logits against PyTorch (values and
gradients), float64 gradcheck, numerical stability, and the errors for bad targets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import REAL_GPU, check_parity, float_dtypes, layouts, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradcheck import gradcheck
from minigrad.ops.loss import binary_cross_entropy_with_logits, cross_entropy, nll_loss

reductions = st.sampled_from(["mean", "sum", "none"])


@st.composite
def _class_problem(draw):
    """(input shape, target shape, classes, ignore_index) for (N, C, d1..dk) or (C,) inputs."""
    c = draw(st.integers(1, 5))
    if draw(st.integers(0, 9)) == 0:
        return (c,), (), c, draw(st.sampled_from([-100, 0]))
    n = draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 4), max_size=2)))
    ignore_index = draw(st.sampled_from([-100, -1, 0, c - 1]))
    return (n, c) + spatial, (n,) + spatial, c, ignore_index


def _targets(seed, shape, classes, ignore_index):
    """Random classes with about a fifth of the entries set to ``ignore_index``."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, classes, size=shape)
    return np.where(rng.random(shape) < 0.2, ignore_index, target).astype(np.int64)


def _check_cross_entropy(x, target, weight, device, layout, kwargs) -> None:
    """cross_entropy against PyTorch's for one input, target and optional class weights."""
    ours_w = None if weight is None else mg.tensor(weight, device=device)
    torch_w = None if weight is None else torch.tensor(weight)
    check_parity(
        lambda a, t: cross_entropy(a, t, weight=ours_w, **kwargs),
        lambda a, t: TF.cross_entropy(a, t, weight=torch_w, **kwargs),
        [x, target],
        device,
        reduction=x.size,
        layout=layout,
    )


@settings(max_examples=60)
@given(
    problem=_class_problem(),
    dtype=float_dtypes,
    layout=layouts,
    seed=seeds,
    reduction=reductions,
    weighted=st.booleans(),
    label_smoothing=st.sampled_from([0.0, 0.0, 0.1, 0.45, 1.0]),
)
def test_cross_entropy_matches_torch(
    device, problem, dtype, layout, seed, reduction, weighted, label_smoothing
):
    shape, target_shape, classes, ignore_index = problem
    x = random_array(seed, shape, dtype) * 3
    target = _targets(seed + 1, target_shape, classes, ignore_index)
    weight = random_array(seed + 2, (classes,), dtype, 0.1, 2.0) if weighted else None
    kwargs = {
        "ignore_index": ignore_index,
        "reduction": reduction,
        "label_smoothing": label_smoothing,
    }
    _check_cross_entropy(x, target, weight, device, layout, kwargs)


@settings(max_examples=40)
@given(
    problem=_class_problem(),
    dtype=float_dtypes,
    layout=layouts,
    seed=seeds,
    reduction=reductions,
    weighted=st.booleans(),
    label_smoothing=st.sampled_from([0.0, 0.2, 1.0]),
    normalized=st.booleans(),
)
def test_cross_entropy_with_probabilities_matches_torch(
    device, problem, dtype, layout, seed, reduction, weighted, label_smoothing, normalized
):
    shape, _, classes, _ = problem
    x = random_array(seed, shape, dtype) * 3
    probabilities = random_array(seed + 1, shape, dtype, 0.0, 1.0)
    if normalized:
        probabilities /= probabilities.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    weight = random_array(seed + 2, (classes,), dtype, 0.1, 2.0) if weighted else None
    kwargs = {"reduction": reduction, "label_smoothing": label_smoothing}
    _check_cross_entropy(x, probabilities, weight, device, layout, kwargs)


@settings(max_examples=40)
@given(
    problem=_class_problem(),
    dtype=float_dtypes,
    seed=seeds,
    reduction=reductions,
    weighted=st.booleans(),
)
def test_nll_loss_matches_torch(device, problem, dtype, seed, reduction, weighted):
    shape, target_shape, classes, ignore_index = problem
    x = random_array(seed, shape, dtype)
    target = _targets(seed + 1, target_shape, classes, ignore_index)
    weight = random_array(seed + 2, (classes,), dtype, 0.1, 2.0) if weighted else None
    ours_w = None if weight is None else mg.tensor(weight, device=device)
    torch_w = None if weight is None else torch.tensor(weight)
    check_parity(
        lambda a, t: nll_loss(a, t, ours_w, ignore_index=ignore_index, reduction=reduction),
        lambda a, t: TF.nll_loss(a, t, torch_w, ignore_index=ignore_index, reduction=reduction),
        [x, target],
        device,
        reduction=x.size,
    )


@st.composite
def _binary_problem(draw):
    """(input shape, weight shape or None, pos_weight shape or None) broadcasting as in torch."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))

    def broadcastable():
        if not draw(st.booleans()):
            return None
        keep = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
        trimmed = tuple(n if k else 1 for n, k in zip(shape, keep, strict=True))
        return trimmed[draw(st.integers(0, len(shape))) :]

    return shape, broadcastable(), broadcastable()


@settings(max_examples=60)
@given(
    problem=_binary_problem(), dtype=float_dtypes, layout=layouts, seed=seeds, reduction=reductions
)
def test_binary_cross_entropy_with_logits_matches_torch(
    device, problem, dtype, layout, seed, reduction
):
    shape, weight_shape, pos_weight_shape = problem
    x = random_array(seed, shape, dtype) * 4
    target = random_array(seed + 1, shape, dtype, 0.0, 1.0)
    weight = None if weight_shape is None else random_array(seed + 2, weight_shape, dtype, 0, 2)
    pos_weight = (
        None if pos_weight_shape is None else random_array(seed + 3, pos_weight_shape, dtype, 0, 3)
    )

    def extras(make):
        return {
            "weight": None if weight is None else make(weight),
            "pos_weight": None if pos_weight is None else make(pos_weight),
        }

    ours_extras = extras(lambda a: mg.tensor(a, device=device))
    torch_extras = extras(torch.tensor)
    check_parity(
        lambda a, t: binary_cross_entropy_with_logits(a, t, reduction=reduction, **ours_extras),
        lambda a, t: TF.binary_cross_entropy_with_logits(a, t, reduction=reduction, **torch_extras),
        [x, target],
        device,
        reduction=x.size,
        layout=layout,
    )


def test_per_class_pos_weight_on_segmentation_logits(device):
    x = random_array(0, (2, 3, 4, 5), np.float32) * 5
    target = (random_array(1, x.shape, np.float32) > 0).astype(np.float32)
    pos_weight = np.array([1.0, 3.0, 0.5], dtype=np.float32).reshape(3, 1, 1)
    check_parity(
        lambda a, t: binary_cross_entropy_with_logits(
            a, t, pos_weight=mg.tensor(pos_weight, device=device)
        ),
        lambda a, t: TF.binary_cross_entropy_with_logits(a, t, pos_weight=torch.tensor(pos_weight)),
        [x, target],
        device,
        reduction=x.size,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_stay_finite_and_match_torch(device, dtype):
    x = np.array([[-1e4, 0.0, 1e4], [800.0, -800.0, 30.0], [-90.0, 90.0, 0.5]], dtype=dtype)
    target = np.array([0, 1, 2])
    check_parity(
        lambda a, t: cross_entropy(a, t, label_smoothing=0.1),
        lambda a, t: TF.cross_entropy(a, t, label_smoothing=0.1),
        [x, target],
        device,
    )
    probabilities = np.array([[1.0, 0.0, 0.5]] * 3, dtype=dtype)
    pos_weight = np.array([2.0, 0.5, 1.0], dtype=dtype)
    out = check_parity(
        lambda a, t: binary_cross_entropy_with_logits(
            a, t, pos_weight=mg.tensor(pos_weight, device=device), reduction="none"
        ),
        lambda a, t: TF.binary_cross_entropy_with_logits(
            a, t, pos_weight=torch.tensor(pos_weight), reduction="none"
        ),
        [x, probabilities],
        device,
    )
    assert np.all(np.isfinite(out[0].detach().numpy()))


def test_all_targets_ignored_gives_nan_mean_and_zero_gradient(device):
    x = random_array(0, (2, 3), np.float64)
    target = np.array([-100, -100])
    for smoothing in (0.0, 0.3):
        (out,) = check_parity(
            lambda a, t, s=smoothing: cross_entropy(a, t, label_smoothing=s),
            lambda a, t, s=smoothing: TF.cross_entropy(a, t, label_smoothing=s),
            [x, target],
            device,
        )
        assert np.isnan(out.detach().numpy())


def _tiny(device, shape, seed, low=None, high=None):
    return mg.tensor(
        random_array(seed, shape, np.float64, low, high), device=device, requires_grad=True
    )


@pytest.mark.parametrize("shape", [(0, 4), (0, 4, 3, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_batch_matches_torch(device, shape, reduction):
    """N = 0: NaN for the mean, 0 for the sum, an empty tensor for none; empty gradients."""
    x = np.zeros(shape)
    labels = np.zeros(shape[:1] + shape[2:], dtype=np.int64)
    for ours, theirs, target in [
        (cross_entropy, TF.cross_entropy, labels),
        (nll_loss, TF.nll_loss, labels),
        (cross_entropy, TF.cross_entropy, np.zeros(shape)),
    ]:
        check_parity(
            lambda a, t, f=ours: f(a, t, reduction=reduction),
            lambda a, t, f=theirs: f(a, t, reduction=reduction),
            [x, target],
            device,
        )


def test_constant_probability_target_gets_no_gradient(device):
    x = random_array(0, (2, 3, 4), np.float64)
    q = random_array(1, (2, 3, 4), np.float64, 0.0, 1.0)
    ours_x, ours_q = mg.tensor(x, device=device, requires_grad=True), mg.tensor(q, device=device)
    cross_entropy(ours_x, ours_q, label_smoothing=0.1).backward()
    theirs_x = torch.tensor(x, requires_grad=True)
    TF.cross_entropy(theirs_x, torch.tensor(q), label_smoothing=0.1).backward()
    assert ours_q.grad is None
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradcheck(device, reduction):
    x = _tiny(device, (2, 3, 2, 2), 0)
    target = mg.tensor(np.array([[[0, 2], [1, -100]], [[2, 2], [0, 1]]]), device=device)
    weight = mg.tensor(np.array([0.5, 2.0, 1.0]), device=device)
    assert gradcheck(
        lambda a: cross_entropy(a, target, weight, reduction=reduction, label_smoothing=0.2), [x]
    )


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_with_probabilities_gradcheck(device, reduction):
    x = _tiny(device, (2, 3, 2), 4)
    probabilities = _tiny(device, (2, 3, 2), 5, 0.0, 1.0)
    weight = mg.tensor(np.array([0.5, 2.0, 1.0]), device=device)
    assert gradcheck(
        lambda a, q: cross_entropy(a, q, weight, reduction=reduction, label_smoothing=0.3),
        [x, probabilities],
    )


def test_nll_loss_gradcheck(device):
    x = _tiny(device, (3, 4), 1)
    target = mg.tensor(np.array([3, -100, 0]), device=device)
    assert gradcheck(
        lambda a: nll_loss(a, target, mg.tensor(np.arange(1.0, 5.0), device=device)), [x]
    )


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_binary_cross_entropy_with_logits_gradcheck(device, reduction):
    x = _tiny(device, (2, 3, 2), 2)
    target = _tiny(device, (2, 3, 2), 3, 0.0, 1.0)
    pos_weight = mg.tensor(np.array([[0.5], [1.0], [3.0]]), device=device)
    weight = mg.tensor(np.array([0.2, 1.5]), device=device)
    assert gradcheck(
        lambda a, t: binary_cross_entropy_with_logits(a, t, weight, pos_weight, reduction),
        [x, target],
    )


@pytest.mark.parametrize("fn", [cross_entropy, nll_loss])
def test_target_out_of_range_names_value_and_position(fn):
    x = mg.zeros(2, 3, 2, 2)
    target = mg.tensor(np.array([[[0, 1], [2, 0]], [[1, 5], [-3, 0]]]))
    with pytest.raises(ValueError, match=r"target 5 at position \(1, 0, 1\) is out of bounds"):
        fn(x, target)
    negative = mg.tensor(np.array([[[0, 1], [2, 0]], [[1, 1], [-3, 0]]]))
    with pytest.raises(ValueError, match=r"target -3 at position \(1, 1, 0\).*\[0, 2\]"):
        fn(x, negative)


def test_ignore_index_outside_class_range_is_allowed(device):
    x = mg.zeros(2, 3, device=device, requires_grad=True)
    loss = cross_entropy(x, mg.tensor(np.array([7, 1]), device=device), ignore_index=7)
    np.testing.assert_allclose(loss.detach().numpy(), np.log(3), rtol=1e-6)


@pytest.mark.parametrize("fn", [cross_entropy, nll_loss])
def test_shape_mismatch_names_both_shapes(device, fn):
    x = mg.zeros(2, 3, 4, 5, device=device)
    target = mg.zeros(2, 5, 4, dtype=mg.int64, device=device)
    with pytest.raises(ValueError, match=r"\(2, 5, 4\).*\(2, 3, 4, 5\).*\(2, 4, 5\)"):
        fn(x, target)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        fn(mg.zeros(2, 3, device=device), mg.zeros(3, dtype=mg.int64, device=device))


def test_nll_loss_float_target_raises(device):
    with pytest.raises(TypeError, match="integer class indices.*float32"):
        nll_loss(mg.zeros(2, 3, device=device), mg.zeros(2, device=device))


def test_cross_entropy_bad_probability_targets_raise(device):
    x = mg.zeros(2, 3, device=device)
    with pytest.raises(ValueError, match=r"probability target of shape \(2,\).*shape \(2, 3\)"):
        cross_entropy(x, mg.zeros(2, device=device))
    with pytest.raises(TypeError, match="input float32 and target float64"):
        cross_entropy(x, mg.zeros(2, 3, dtype=mg.float64, device=device))
    with pytest.raises(ValueError, match="ignore_index is not supported.*ignore_index=0"):
        cross_entropy(x, mg.zeros(2, 3, device=device), ignore_index=0)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\).*got \(2,\)"):
        cross_entropy(x, mg.zeros(2, 3, device=device), weight=mg.ones(2, device=device))


def test_bad_arguments_raise(device):
    x = mg.zeros(2, 3, device=device)
    target = mg.zeros(2, dtype=mg.int64, device=device)
    with pytest.raises(ValueError, match="'average' is not a valid value for reduction"):
        cross_entropy(x, target, reduction="average")
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0, got 1.5"):
        cross_entropy(x, target, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\).*got \(2,\)"):
        cross_entropy(x, target, weight=mg.ones(2, device=device))
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        cross_entropy(x, target, weight=mg.ones(3, device=device, requires_grad=True))


def test_binary_bad_arguments_raise(device):
    x = mg.zeros(2, 3, device=device)
    with pytest.raises(
        ValueError,
        match=r"target size \(3, 2\) must be the same as input size "
        r"\(2, 3\)",
    ):
        binary_cross_entropy_with_logits(x, mg.zeros(3, 2, device=device))
    with pytest.raises(TypeError, match="float32 and int64"):
        binary_cross_entropy_with_logits(x, mg.zeros(2, 3, dtype=mg.int64, device=device))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2, 1, 3\) does not broadcast"):
        binary_cross_entropy_with_logits(x, x, pos_weight=mg.ones(2, 1, 3, device=device))
    with pytest.raises(RuntimeError, match="argument 'pos_weight'"):
        binary_cross_entropy_with_logits(
            x, x, pos_weight=mg.ones(3, device=device, requires_grad=True)
        )


@pytest.mark.skipif(REAL_GPU, reason="counts transfers of the CPU stand-in")
def test_gpu_losses_make_no_host_transfers():
    from minigrad.testing import fake_cupy

    x = mg.tensor(random_array(0, (2, 3, 4, 4), np.float32), device="gpu", requires_grad=True)
    target = mg.tensor(_targets(1, (2, 4, 4), 3, -100), device="gpu")
    weight = mg.tensor(np.array([1.0, 2.0, 0.5], dtype=np.float32), device="gpu")
    half = mg.full(x.shape, 0.5, device="gpu")
    fake_cupy.transfers.reset()
    loss = cross_entropy(x, target, weight, label_smoothing=0.1) + nll_loss(x, target)
    loss = loss + binary_cross_entropy_with_logits(x, half)
    loss = loss + cross_entropy(x, half, weight, label_smoothing=0.1)
    loss.backward()
    assert fake_cupy.transfers.to_host_calls == 0
    assert fake_cupy.transfers.to_device_calls == 0
