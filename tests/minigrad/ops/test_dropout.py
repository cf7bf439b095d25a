"""dropout and dropout2d: the masks cannot match PyTorch's random stream, so the tests check
their statistics, the 1 / (1 - p) scaling, that the gradient goes through the same mask,
reproducibility under manual_seed, the channel structure of dropout2d, and PyTorch parity
where the result is deterministic (p = 0, p = 1, eval mode)."""

import numpy as np
import pytest
import torch.nn.functional as TF
from helpers import REAL_GPU, check_parity, float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.gradcheck import gradcheck
from minigrad.ops.dropout import dropout, dropout2d

probabilities = st.floats(0.05, 0.95)


def _positive(seed, shape, dtype, device, requires_grad=True):
    """Values in [0.5, 2]: never zero, so a zero in the output means dropped."""
    array = random_array(seed, shape, dtype, 0.5, 2.0)
    return array, mg.tensor(array, device=device, requires_grad=requires_grad)


@settings(max_examples=10)
@given(p=probabilities, dtype=float_dtypes, seed=seeds)
def test_dropout_keeps_a_fraction_near_one_minus_p_scaled(device, p, dtype, seed):
    mg.manual_seed(seed)
    x, t = _positive(seed, (200, 500), dtype, device)
    y = dropout(t, p=p).detach().numpy()
    kept = y != 0
    # 1e5 draws: the kept fraction's standard deviation is below 0.0016; allow 6 of them.
    assert abs(kept.mean() - (1 - p)) < 0.01
    scale = dtype(1 / (1 - p))
    np.testing.assert_array_equal(y[kept], x[kept] * scale)
    assert y.dtype == dtype


@settings(max_examples=10)
@given(p=probabilities, dtype=float_dtypes, seed=seeds)
def test_dropout_gradient_goes_through_the_same_mask(device, p, dtype, seed):
    mg.manual_seed(seed)
    x, t = _positive(seed, (6, 7, 5), dtype, device)
    y = dropout(t, p=p)
    gy = random_array(seed + 1, x.shape, dtype)
    y.backward(mg.tensor(gy, device=device))
    mask = (y.detach().numpy() != 0) * dtype(1 / (1 - p))
    np.testing.assert_allclose(t.grad.numpy(), gy * mask, rtol=1e-6)
    np.testing.assert_allclose(y.detach().numpy(), x * mask, rtol=1e-6)


@settings(max_examples=10)
@given(p=probabilities, seed=seeds, inplace=st.booleans())
def test_dropout2d_zeroes_whole_channels(device, p, seed, inplace):
    mg.manual_seed(seed)
    x, t = _positive(seed, (40, 100, 3, 2), np.float32, device)
    y = dropout2d(t, p=p, inplace=inplace).detach().numpy()
    kept = y != 0
    per_channel = kept.reshape(40, 100, -1)
    assert np.all(per_channel.all(axis=2) | ~per_channel.any(axis=2)), "a channel partly dropped"
    # 4000 channel draws: standard deviation below 0.008; allow 6 of them.
    assert abs(per_channel[:, :, 0].mean() - (1 - p)) < 0.05
    np.testing.assert_array_equal(y[kept], x[kept] * np.float32(1 / (1 - p)))


def test_dropout2d_gradient_goes_through_the_channel_mask(device):
    mg.manual_seed(3)
    x, t = _positive(0, (2, 6, 3, 4), np.float64, device)
    y = dropout2d(t, p=0.4)
    gy = random_array(1, x.shape, np.float64)
    y.backward(mg.tensor(gy, device=device))
    mask = (y.detach().numpy() != 0) / 0.6
    np.testing.assert_allclose(t.grad.numpy(), gy * mask, rtol=1e-12)


def test_dropout2d_reads_3d_input_as_n_c_l(device):
    mg.manual_seed(1)
    _, t = _positive(0, (30, 20, 6), np.float32, device)
    kept = dropout2d(t, p=0.5).detach().numpy() != 0
    assert np.all(kept.all(axis=2) | ~kept.any(axis=2))
    assert 0 < kept.mean() < 1


@pytest.mark.parametrize("fn", [dropout, dropout2d])
def test_manual_seed_makes_masks_reproducible(device, fn):
    _, t = _positive(0, (4, 8, 5, 5), np.float32, device, requires_grad=False)
    mg.manual_seed(123)
    first = fn(t, p=0.5).numpy()
    second = fn(t, p=0.5).numpy()
    mg.manual_seed(123)
    again = fn(t, p=0.5).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second), "successive calls drew the same mask"


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
@pytest.mark.parametrize(("p", "training"), [(0.0, True), (1.0, True), (0.5, False), (1.0, False)])
@settings(max_examples=3)
@given(dtype=float_dtypes, seed=seeds)
def test_deterministic_cases_match_torch(device, name, p, training, dtype, seed):
    ours, theirs = {"dropout": (dropout, TF.dropout), "dropout2d": (dropout2d, TF.dropout2d)}[name]
    x = random_array(seed, (2, 3, 4, 5), dtype)
    check_parity(
        lambda t: ours(t, p=p, training=training),
        lambda t: theirs(t, p=p, training=training),
        [x],
        device,
    )


def test_gradcheck(device):
    def fixed_mask(fn):
        def run(t):
            mg.manual_seed(5)
            return fn(t, p=0.3)

        return run

    for fn, shape in [(dropout, (3, 4)), (dropout2d, (2, 3, 2, 2))]:
        t = mg.tensor(random_array(2, shape, np.float64), device=device, requires_grad=True)
        assert gradcheck(fixed_mask(fn), [t])


@pytest.mark.parametrize("fn", [dropout, dropout2d])
@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_probability_outside_unit_interval_raises(device, fn, p):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        fn(mg.ones(2, 3, 4, 4, device=device), p=p)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4, 5, 6)])
def test_dropout2d_rejects_other_ranks(device, shape):
    with pytest.raises(ValueError, match=r"dropout2d: expected a 4-D .* got shape"):
        dropout2d(mg.ones(*shape, device=device))


def test_inplace_writes_into_input_under_no_grad(device):
    mg.manual_seed(0)
    _, t = _positive(0, (8, 9), np.float32, device, requires_grad=False)
    with mg.no_grad():
        out = dropout(t, p=0.5, inplace=True)
    assert out is t
    assert np.any(t.numpy() == 0)


def test_inplace_in_grad_mode_leaves_input_untouched(device):
    """``b`` may be saved by another op (``a * b``): overwriting it would corrupt a.grad."""
    a = mg.ones(4, device=device, requires_grad=True)
    b = mg.full((4,), 2.0, device=device)
    y = a * b
    dropout(b, p=0.5, inplace=True)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full(4, 2.0, dtype=np.float32))


def test_inplace_with_graph_leaves_input_untouched(device):
    mg.manual_seed(0)
    x, t = _positive(0, (8, 9), np.float32, device)
    out = dropout(t, p=0.5, inplace=True)
    assert out is not t and out.requires_grad
    np.testing.assert_array_equal(t.detach().numpy(), x)


def test_integer_input_raises(device):
    with pytest.raises(TypeError, match="floating-point"):
        dropout(mg.arange(6, device=device))


@pytest.mark.skipif(REAL_GPU, reason="counts transfers of the CPU stand-in")
def test_gpu_dropout_makes_no_host_transfers():
    from minigrad.testing import fake_cupy

    t = mg.ones(2, 3, 4, 4, device="gpu", requires_grad=True)
    fake_cupy.transfers.reset()
    (dropout(t) + dropout2d(t)).sum().backward()
    assert fake_cupy.transfers.to_host_calls == 0
    assert fake_cupy.transfers.to_device_calls == 0
