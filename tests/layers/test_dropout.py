"""Dropout and Dropout2d: identity in eval mode (as torch.nn's), PyTorch's mask rule in training
(each element or channel zeroed or scaled by 1 / (1 - p), the kept fraction near 1 - p, the
gradient through the same mask), seeded masks, and errors."""

import numpy as np
import pytest
import torch
from helpers import float_dtypes, random_array, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import layers as L
import minigrad as mg


@settings(max_examples=10)
@given(
    name=st.sampled_from(["Dropout", "Dropout2d"]),
    p=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    dtype=float_dtypes,
    seed=seeds,
)
def test_eval_mode_matches_torch(device, parity, name, p, dtype, seed):
    x = random_array(seed, (2, 3, 4, 4), dtype)
    parity.run(
        getattr(L, name)(p), getattr(torch.nn, name)(p), [x], device, dtype=dtype, training=False
    )


@pytest.mark.parametrize("p", [0.0, 1.0])
@pytest.mark.parametrize("name", ["Dropout", "Dropout2d"])
def test_deterministic_probabilities_match_torch_in_training(device, parity, name, p):
    x = random_array(3, (2, 3, 4, 4), np.float32)
    parity.run(getattr(L, name)(p), getattr(torch.nn, name)(p), [x], device, training=True)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_rule(device, p, dtype):
    x = random_array(0, (64, 128), dtype) + 5  # no zeros in the input
    t = mg.tensor(x, device=device, requires_grad=True)
    y = L.Dropout(p)(t)
    y.sum().backward()
    out, grad = y.detach().numpy(), t.grad.numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(grad, kept / (1 - p), rtol=1e-6)
    fraction, sigma = kept.mean(), np.sqrt(p * (1 - p) / x.size)
    assert abs(fraction - (1 - p)) < 5 * sigma, f"kept {fraction}, expected {1 - p}"


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropout2d_drops_whole_channels(device, p):
    x = random_array(1, (32, 32, 3, 3), np.float32) + 5
    t = mg.tensor(x, device=device, requires_grad=True)
    y = L.Dropout2d(p)(t)
    (y * 2).sum().backward()
    out = y.detach().numpy()
    kept = (out != 0).all(axis=(2, 3))
    dropped = (out == 0).all(axis=(2, 3))
    assert (kept | dropped).all(), "a channel was partly dropped"
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(
        t.grad.numpy(), np.broadcast_to(2 * kept[..., None, None] / (1 - p), x.shape), rtol=1e-6
    )
    sigma = np.sqrt(p * (1 - p) / kept.size)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma


def test_module_mode_switches_dropout(device):
    layer = L.Dropout(0.5)
    x = mg.ones(100, device=device)
    assert (layer(x).numpy() == 0).any()
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert (layer(x).numpy() == 0).any()


def test_masks_follow_manual_seed(device):
    x = mg.ones(4, 50, device=device)
    mg.manual_seed(123)
    first = L.Dropout(0.5)(x).numpy()
    mg.manual_seed(123)
    np.testing.assert_array_equal(L.Dropout(0.5)(x).numpy(), first)


@pytest.mark.parametrize("name", ["Dropout", "Dropout2d"])
@pytest.mark.parametrize("kwargs", [{}, dict(p=0.1), dict(p=0.3, inplace=True)])
def test_repr_matches_torch(name, kwargs):
    assert repr(getattr(L, name)(**kwargs)) == repr(getattr(torch.nn, name)(**kwargs))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_bad_probability(p):
    with pytest.raises(
        ValueError, match=rf"Dropout: p \(dropout probability\) must be between 0 and 1, got {p}"
    ):
        L.Dropout(p)


def test_bad_input_dims():
    with pytest.raises(ValueError, match="dropout2d: expected a 4-D"):
        L.Dropout2d()(mg.ones(2, 3))
