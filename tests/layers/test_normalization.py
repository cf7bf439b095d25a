"""BatchNorm2d and InstanceNorm2d against torch.nn's over several steps: outputs, input,
weight and bias gradients, and the buffers (running_mean, running_var, num_batches_tracked)
after each run, with momentum 0.1, 0.5 and None (cumulative average), affine or not, tracked
statistics or not, train and eval, float32 and float64; buffers, repr and errors."""

import math

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L
import minigrad as mg

norm_options = dict(
    momentum=st.sampled_from([0.1, 0.5, None]),
    affine=st.booleans(),
    track_running_stats=st.booleans(),
    eps=st.sampled_from([1e-5, 1e-2]),
)


def _batches(seed, shape):
    """A different batch at each step, shifted and scaled so the running statistics move."""
    return lambda step: [random_array(seed + step, shape, np.float64) * (1 + step) + step]


@settings(max_examples=20)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
    dtype=float_dtypes,
    seed=seeds,
    training=st.booleans(),
    direction=st.sampled_from(["to_torch", "from_torch"]),
    **norm_options,
)
def test_batch_norm2d_matches_torch(
    device,
    parity,
    shape,
    dtype,
    seed,
    training,
    direction,
    momentum,
    affine,
    track_running_stats,
    eps,
):
    if (training or not track_running_stats) and shape[0] * shape[2] * shape[3] == 1:
        shape = (2, *shape[1:])  # torch and we refuse one value per channel for batch stats
    kwargs = dict(
        eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats
    )
    ours, theirs = L.BatchNorm2d(shape[1], **kwargs), torch.nn.BatchNorm2d(shape[1], **kwargs)
    if affine:  # weights other than the ones/zeros defaults, so their copy is tested
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-1, 1)
        ours.load_state_dict(theirs.state_dict())
    out = parity.run(
        ours,
        theirs,
        _batches(seed, shape),
        device,
        dtype=dtype,
        training=training,
        direction=direction,
        reduction=shape[0] * shape[2] * shape[3],
        seed=seed,
        steps=3,
    )
    if track_running_stats:
        assert int(out.ours.num_batches_tracked.item()) == (3 if training else 0)
        assert out.ours.num_batches_tracked.dtype == np.int64
        assert out.ours.num_batches_tracked.shape == ()


@settings(max_examples=15)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(2, 4)),
    dtype=float_dtypes,
    seed=seeds,
    training=st.booleans(),
    unbatched=st.booleans(),
    **norm_options,
)
def test_instance_norm2d_matches_torch(
    device,
    parity,
    shape,
    dtype,
    seed,
    training,
    unbatched,
    momentum,
    affine,
    track_running_stats,
    eps,
):
    shape = shape[1:] if unbatched else shape
    kwargs = dict(
        eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats
    )
    channels = shape[-3]
    ours, theirs = L.InstanceNorm2d(channels, **kwargs), torch.nn.InstanceNorm2d(channels, **kwargs)
    parity.run(
        ours,
        theirs,
        _batches(seed, shape),
        device,
        dtype=dtype,
        training=training,
        reduction=math.prod(shape[-2:]),
        seed=seed,
        steps=2,
    )


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track_running_stats", [True, False])
def test_batch_norm2d_options_over_train_then_eval(
    device, parity, momentum, affine, track_running_stats
):
    """Every option combination: four training steps, then the state after them in eval."""
    kwargs = dict(momentum=momentum, affine=affine, track_running_stats=track_running_stats)
    ours, theirs = L.BatchNorm2d(3, **kwargs), torch.nn.BatchNorm2d(3, **kwargs)
    batches = _batches(7, (2, 3, 3, 2))
    parity.run(ours, theirs, batches, device, training=True, reduction=12, steps=4)
    parity.run(ours, theirs, batches, device, training=False, reduction=12, steps=1)
    if track_running_stats:
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 4


def test_cumulative_average_is_the_mean_of_the_batch_statistics(device):
    """momentum=None: after k steps running_mean is the plain mean of the k batch means."""
    layer = L.BatchNorm2d(2, momentum=None).to(device)
    means = []
    for step in range(4):
        x = random_array(step, (3, 2, 2, 2), np.float64) + step
        means.append(x.mean(axis=(0, 2, 3)))
        layer(mg.tensor(x.astype(np.float32), device=device))
    np.testing.assert_allclose(layer.running_mean.numpy(), np.mean(means, axis=0), rtol=1e-5)
    assert layer.num_batches_tracked.item() == 4


def test_eval_uses_running_statistics(device):
    layer = L.BatchNorm2d(1, affine=False).to(device)
    layer.running_mean.data[...] = 2.0
    layer.running_var.data[...] = 4.0
    layer.eval()
    x = mg.full((2, 1, 2, 2), 6.0, device=device)
    np.testing.assert_allclose(layer(x).detach().numpy(), (6 - 2) / math.sqrt(4 + 1e-5), rtol=1e-6)
    assert layer.num_batches_tracked.item() == 0
    np.testing.assert_array_equal(layer.running_mean.numpy(), [2.0])


def test_untracked_statistics_use_the_batch_in_eval(device):
    layer = L.BatchNorm2d(2, track_running_stats=False).eval().to(device)
    x = mg.tensor(random_array(1, (4, 2, 3, 3), np.float32), device=device)
    y = layer(x).detach().numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)


@pytest.mark.parametrize("name", ["BatchNorm2d", "InstanceNorm2d"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(affine=False),
        dict(track_running_stats=False),
        dict(momentum=None, eps=1e-3),
        dict(affine=True, bias=False),
    ],
)
def test_state_repr_and_defaults_match_torch(name, kwargs):
    ours, theirs = getattr(L, name)(3, **kwargs), getattr(torch.nn, name)(3, **kwargs)
    assert repr(ours) == repr(theirs)
    our_state, their_state = ours.state_dict(), theirs.state_dict()
    assert list(our_state) == list(their_state)
    for key, value in their_state.items():
        assert our_state[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(our_state[key].numpy(), value.numpy(), err_msg=key)
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]


def test_reset_running_stats():
    layer = L.BatchNorm2d(2)
    layer(mg.tensor(random_array(0, (2, 2, 2, 2), np.float32) + 3))
    layer.reset_running_stats()
    np.testing.assert_array_equal(layer.running_mean.numpy(), [0, 0])
    np.testing.assert_array_equal(layer.running_var.numpy(), [1, 1])
    assert layer.num_batches_tracked.item() == 0


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: L.BatchNorm2d(0),
            ValueError,
            "BatchNorm2d: num_features must be at least 1, got 0",
        ),
        (lambda: L.BatchNorm2d(2.5), TypeError, "num_features must be an int, got 2.5"),
        (lambda: L.BatchNorm2d(2, eps=-1), ValueError, "eps must be at least 0"),
        (lambda: L.BatchNorm2d(2, momentum="fast"), TypeError, "momentum must be a number"),
        (lambda: L.BatchNorm2d(2, affine=None), TypeError, "affine must be True or False"),
        (
            lambda: L.InstanceNorm2d(2, track_running_stats=1),
            TypeError,
            "track_running_stats must be True or False",
        ),
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input .* got 3D"):
        L.BatchNorm2d(2)(mg.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="num_features=2 channels at dim 1, got 3"):
        L.BatchNorm2d(2)(mg.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="InstanceNorm2d: expected 3D .* got 2D"):
        L.InstanceNorm2d(2)(mg.zeros(2, 3))
    with pytest.raises(ValueError, match="num_features=2 channels at dim 1, got 3"):
        L.InstanceNorm2d(2, affine=True)(mg.zeros(1, 3, 3, 3))
    with pytest.warns(UserWarning, match="num_features is unused since affine=False"):
        L.InstanceNorm2d(2)(mg.tensor(random_array(0, (1, 3, 3, 3), np.float32)))
