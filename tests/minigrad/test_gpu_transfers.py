"""A training step on "gpu" moves nothing to the host but the loss scalar, and uploads nothing.

Counted with the fake_cupy stand-in's transfer counter, so this runs without a GPU. A small
network written with the ops (conv, batch norm, relu, max pool, bilinear upsample, conv,
cross-entropy) takes one plain gradient-descent step.
"""

import numpy as np
import pytest
from helpers import REAL_GPU

import minigrad as mg
import minigrad.functional as F
from minigrad.ops import winograd

pytestmark = pytest.mark.skipif(REAL_GPU, reason="counts transfers of the CPU stand-in")


def _network(device):
    rng = np.random.default_rng(0)

    def param(*shape):
        return mg.tensor(
            rng.standard_normal(shape).astype(np.float32) * 0.3, device=device, requires_grad=True
        )

    params = {
        "w1": param(4, 3, 3, 3),
        "b1": param(4),
        "gamma": param(4),
        "beta": param(4),
        "w2": param(3, 4, 1, 1),
        "b2": param(3),
    }
    stats = {"mean": mg.zeros(4, device=device), "var": mg.ones(4, device=device)}
    return params, stats


def _step(params, stats, x, target, lr=0.1):
    p = params
    h = F.conv2d(x, p["w1"], p["b1"], padding=1)
    h = F.batch_norm(h, stats["mean"], stats["var"], p["gamma"], p["beta"], training=True)
    h = F.relu(h)
    h, _ = F.max_pool2d(h, 2, return_indices=True)
    h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
    logits = F.conv2d(h, p["w2"], p["b2"])
    loss = F.cross_entropy(logits, target)
    loss.backward()
    with mg.no_grad():
        for t in params.values():
            t.data -= lr * t.grad.data
            t.grad = None
    return loss.item()


@pytest.mark.parametrize("winograd_channels", [None, 2])
def test_one_training_step_moves_only_the_loss_to_the_host(monkeypatch, winograd_channels):
    """Also with the 3x3 conv on the Winograd path (forced down to 2 channels per group)."""
    from minigrad.testing import fake_cupy

    if winograd_channels is not None:
        monkeypatch.setattr(winograd, "MIN_CHANNELS", winograd_channels)

    params, stats = _network("gpu")
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), device="gpu")
    target = mg.tensor(rng.integers(0, 3, (2, 8, 8)), device="gpu")
    _step(params, stats, x, target)  # warm-up: caches fill on the first step
    with fake_cupy.count_transfers() as transfers:
        loss = _step(params, stats, x, target)
    assert np.isfinite(loss)
    assert transfers.to_host_calls == 1, f"{transfers.to_host_calls} host transfers, expected 1"
    assert transfers.to_host_bytes == 4
    assert transfers.to_device_calls == 0, "a step should upload nothing (scalars are filled)"


def test_the_step_matches_the_same_step_on_cpu():
    results = []
    for device in ("cpu", "gpu"):
        params, stats = _network(device)
        rng = np.random.default_rng(1)
        x = mg.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), device=device)
        target = mg.tensor(rng.integers(0, 3, (2, 8, 8)), device=device)
        losses = [_step(params, stats, x, target) for _ in range(3)]
        results.append((losses, params["w1"].detach().numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-6)
    assert results[0][0][2] < results[0][0][0]
