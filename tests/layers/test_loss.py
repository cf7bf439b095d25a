"""CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss, MSELoss and L1Loss against torch.nn's: the
loss and the gradients of input (and of a floating target), with drawn weights,
ignore_index, reduction, label_smoothing and pos_weight, float32 and float64; buffers,
the legacy size_average/reduce mapping, repr and errors."""

import math

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L
import minigrad as mg

reductions = st.sampled_from(["mean", "sum", "none"])


def _pair(name, kwargs, weight=None, pos_weight=None):
    """Our loss and torch's, with the same optional weight / pos_weight buffers."""
    ours, theirs = dict(kwargs), dict(kwargs)
    for key, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is not None:
            ours[key], theirs[key] = mg.tensor(value), torch.tensor(value)
    return getattr(L, name)(**ours), getattr(torch.nn, name)(**theirs)


@st.composite
def class_cases(draw):
    """Logits (N, C, *d) and integer targets with some ignore_index entries."""
    classes = draw(st.integers(2, 4))
    shape = (draw(st.integers(1, 3)), classes, *draw(st.lists(st.integers(1, 3), max_size=2)))
    seed = draw(seeds)
    ignore_index = draw(st.sampled_from([-100, 1]))
    target = np.random.default_rng(seed).integers(0, classes, size=(shape[0], *shape[2:]))
    target.flat[0] = 0  # at least one counted target, so "mean" is not 0 / 0
    if draw(st.booleans()) and target.size > 1:
        target.flat[-1] = ignore_index
    weight = random_array(seed, (classes,), np.float32, 0.5, 2.0) if draw(st.booleans()) else None
    return shape, target, seed, ignore_index, weight


@settings(max_examples=20)
@given(
    case=class_cases(),
    dtype=float_dtypes,
    reduction=reductions,
    smoothing=st.sampled_from([0.0, 0.2]),
)
def test_cross_entropy_loss_matches_torch(device, parity, case, dtype, reduction, smoothing):
    shape, target, seed, ignore_index, weight = case
    kwargs = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    ours, theirs = _pair("CrossEntropyLoss", kwargs, weight=weight)
    x = random_array(seed, shape, dtype)
    parity.run(ours, theirs, [x, target], device, dtype=dtype, reduction=x.size, seed=seed)


@settings(max_examples=10)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(2, 4), st.integers(1, 3)),
    dtype=float_dtypes,
    reduction=reductions,
    seed=seeds,
    weighted=st.booleans(),
)
def test_cross_entropy_loss_with_probabilities_matches_torch(
    device, parity, shape, dtype, reduction, seed, weighted
):
    weight = random_array(seed, (shape[1],), np.float32, 0.5, 2.0) if weighted else None
    ours, theirs = _pair(
        "CrossEntropyLoss", dict(reduction=reduction, label_smoothing=0.1), weight=weight
    )
    x = random_array(seed, shape, dtype)
    p = torch.softmax(torch.tensor(random_array(seed + 1, shape, dtype)), 1).numpy()
    parity.run(ours, theirs, [x, p], device, dtype=dtype, reduction=x.size, seed=seed)


@settings(max_examples=15)
@given(case=class_cases(), dtype=float_dtypes, reduction=reductions)
def test_nll_loss_matches_torch(device, parity, case, dtype, reduction):
    shape, target, seed, ignore_index, weight = case
    ours, theirs = _pair(
        "NLLLoss", dict(ignore_index=ignore_index, reduction=reduction), weight=weight
    )
    x = torch.log_softmax(torch.tensor(random_array(seed, shape, dtype)), 1).numpy()
    parity.run(ours, theirs, [x, target], device, dtype=dtype, reduction=x.size, seed=seed)


@settings(max_examples=15)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    dtype=float_dtypes,
    reduction=reductions,
    seed=seeds,
    weighted=st.booleans(),
    positive=st.sampled_from([None, "scalar", "per_class"]),
)
def test_bce_with_logits_loss_matches_torch(
    device, parity, shape, dtype, reduction, seed, weighted, positive
):
    weight = random_array(seed, shape[-1:], np.float32, 0.5, 2.0) if weighted else None
    pos_shape = {None: None, "scalar": (1,), "per_class": (shape[1], 1)}[positive]
    pos_weight = (
        None if pos_shape is None else random_array(seed + 2, pos_shape, np.float32, 0.5, 3.0)
    )
    ours, theirs = _pair("BCEWithLogitsLoss", dict(reduction=reduction), weight, pos_weight)
    x = random_array(seed, shape, dtype) * 3
    t = random_array(seed + 1, shape, dtype, 0.0, 1.0)
    parity.run(ours, theirs, [x, t], device, dtype=dtype, reduction=x.size, seed=seed)


@settings(max_examples=15)
@given(
    name=st.sampled_from(["MSELoss", "L1Loss"]),
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    dtype=float_dtypes,
    reduction=reductions,
    seed=seeds,
    ties=st.booleans(),
)
def test_regression_losses_match_torch(device, parity, name, shape, dtype, reduction, seed, ties):
    x = random_array(seed, shape, dtype)
    t = x.copy() if ties else random_array(seed + 1, shape, dtype)  # |x - t| at 0: gradient 0
    ours, theirs = _pair(name, dict(reduction=reduction))
    parity.run(
        ours, theirs, [x, t], device, dtype=dtype, reduction=max(1, math.prod(shape)), seed=seed
    )


def test_regression_losses_warn_on_broadcasting_as_torch(device, parity):
    x, t = random_array(0, (3, 2), np.float64), random_array(1, (2,), np.float64)
    with pytest.warns(UserWarning, match="Using a target size"):
        parity.run(L.MSELoss(), torch.nn.MSELoss(), [x, t], device, dtype=np.float64)


def test_weights_are_buffers_that_move_with_the_module(device):
    loss = L.CrossEntropyLoss(weight=mg.tensor([1.0, 2.0]))
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]))
    assert list(loss.state_dict()) == list(theirs.state_dict()) == ["weight"]
    bce = L.BCEWithLogitsLoss(weight=mg.ones(2), pos_weight=mg.ones(2))
    their_bce = torch.nn.BCEWithLogitsLoss(weight=torch.ones(2), pos_weight=torch.ones(2))
    assert list(bce.state_dict()) == list(their_bce.state_dict()) == ["weight", "pos_weight"]
    assert list(L.CrossEntropyLoss().state_dict()) == list(torch.nn.CrossEntropyLoss().state_dict())
    loss.to(device)
    assert loss.weight.device == mg.backend.canonical_device(device)
    logits = mg.tensor([[0.0, 1.0]], device=device)
    assert loss(logits, mg.tensor([1], device=device)).device == mg.backend.canonical_device(device)


@pytest.mark.parametrize(
    "size_average, reduce, expected",
    [(None, False, "none"), (False, None, "sum"), (True, True, "mean")],
)
@pytest.mark.parametrize(
    "name", ["CrossEntropyLoss", "MSELoss", "L1Loss", "NLLLoss", "BCEWithLogitsLoss"]
)
def test_legacy_reduction_arguments_map_as_torch(name, size_average, reduce, expected):
    with pytest.warns(UserWarning, match=f"please use reduction='{expected}'"):
        ours = getattr(L, name)(size_average=size_average, reduce=reduce)
    with pytest.warns(UserWarning):
        theirs = getattr(torch.nn, name)(size_average=size_average, reduce=reduce)
    assert ours.reduction == theirs.reduction == expected


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: L.MSELoss(reduction="average"),
            ValueError,
            "MSELoss: reduction must be one of .*got 'average'",
        ),
        (
            lambda: L.CrossEntropyLoss(label_smoothing=1.5),
            ValueError,
            "label_smoothing must be between 0.0 and 1.0",
        ),
        (lambda: L.CrossEntropyLoss(ignore_index=1.0), TypeError, "ignore_index must be an int"),
        (lambda: L.NLLLoss(weight=[1.0, 2.0]), TypeError, "cannot assign list as buffer 'weight'"),
        (lambda: L.L1Loss()(mg.zeros(2), [0.0, 1.0]), TypeError, "L1Loss: target must be a Tensor"),
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_repr_matches_torch():
    for name in ("CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss"):
        assert repr(getattr(L, name)()) == repr(getattr(torch.nn, name)())
