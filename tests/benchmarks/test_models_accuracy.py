"""benchmarks.models --accuracy: the decision-matched gradient error.

``Decisions`` records the ReLU masks and max-pool indices of a float32 step and imposes them
on the float64 step, for minigrad and for PyTorch alike. Checked here on small models (a
FastUNet of base 4, a SegNet of depth 2 whose pools return indices, and a 1x1-conv net with
an overlapping padded pool and an in-place ReLU):

- imposing a float64 run's own decisions on itself reproduces its gradients exactly (the mask
  products and index gathers are the ReLU and the max pool on that branch);
- with float32 decisions imposed, the float64 ReLU outputs are nonzero exactly where the
  float32 masks are, and the matched error is rounding-sized (< 1e-4);
- on a net built so that float32 rounds one channel's ReLU inputs from k * 2^-30 to 0 (a
  flip at every element) and ties another channel's pool windows, the raw error is large,
  the matched one rounding-sized, and the flips are counted;
- an imposed mask and imposed pool indices act as such on single layers (an in-place ReLU
  made the identity, pool outputs, indices and gradients routed to each window's corner);
- decisions of another model, or of a run with more or fewer calls, are refused;
- parameters whose float64 gradient is zero up to rounding are left out of the mean;
- the printed report carries both figures, their ratios and the mean flips, and the batch
  side fits every model's input divisor (SegNet needs 128).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import layers
import minigrad as mg
from benchmarks import models as bm
from segmentation import models
from tests.reference import models as twins
from tests.reference.decisions import Decisions, Minigrad, Torch

FRAMEWORKS = {"minigrad": Minigrad, "torch": Torch}


def _pair(name: str, dtype, **kwargs):
    """Our model and its twin, same weights (seed 0), both in ``dtype``."""
    torch.manual_seed(0)
    theirs = getattr(twins, name)(**kwargs)
    if dtype == np.float64:
        theirs = theirs.double()
    ours = getattr(models, name)(**kwargs).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return {"minigrad": ours, "torch": theirs}


SMALL = {
    "fast_unet": ("FastUNet", {"base_channels": 4}, 32),
    "segnet": ("SegNet", {"depth": 2}, 32),
}


def _small(key: str):
    """Float32 and float64 pairs of a small model, and a float64 batch (2 images)."""
    name, kwargs, side = SMALL[key]
    x, y = bm.make_batch(1, batch=2, side=side, dtype=np.float64)
    return _pair(name, np.float32, **kwargs), _pair(name, np.float64, **kwargs), x, y


def _relu_outputs(framework, model) -> tuple[list, list]:
    """Hooks (registered after any others) that keep each ReLU call's output as an array."""
    outputs = []
    handles = [
        m.register_forward_hook(lambda m, a, out: outputs.append(framework.array(out).copy()))
        for m in model.modules()
        if isinstance(m, framework.relu)
    ]
    return outputs, handles


def _relative(a: dict, b: dict) -> float:
    return max(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-300) for k in b)


@pytest.mark.parametrize("key", list(SMALL))
@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_imposing_a_runs_own_decisions_reproduces_its_gradients(key, framework):
    fw = FRAMEWORKS[framework]
    _, pair64, x, y = _small(key)
    model = pair64[framework]
    with Decisions(fw, model) as own:
        free = own.gradients(x, y)
    with Decisions(fw, model, imposed=own) as replay:
        replayed = replay.gradients(x, y)
    assert len(own.masks) > 0 and len(own.indices) > 0
    assert replay.flips == {"relu": 0, "max_pool": 0}
    assert _relative(replayed, free) < 1e-12


@pytest.mark.parametrize("key", list(SMALL))
@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_float32_decisions_imposed_on_float64_give_rounding_sized_error(key, framework):
    fw = FRAMEWORKS[framework]
    pair32, pair64, x, y = _small(key)
    with Decisions(fw, pair32[framework]) as taken:
        grads = taken.gradients(x.astype(np.float32), y)
    with Decisions(fw, pair64[framework], imposed=taken) as matched:
        outputs, handles = _relu_outputs(fw, pair64[framework])
        exact = matched.gradients(x, y)
    for h in handles:
        h.remove()
    assert len(outputs) == len(taken.masks)
    for out, mask in zip(outputs, taken.masks, strict=True):
        np.testing.assert_array_equal(out != 0, mask)
    assert bm._geometric_mean_error(grads, exact) < 1e-4


def _flip_net(framework: str, dtype):
    """1x1 conv (3 -> 4), ReLU(inplace=True), 3x3 stride-2 max pool with padding 1, 1x1 conv
    (4 -> 3); channels 0 and 1 of the first conv are ``x[:, 0] - 1`` and ``x[:, 0]``."""
    torch.manual_seed(0)
    theirs = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1), nn.Conv2d(4, 3, 1)
    )
    with torch.no_grad():
        theirs[0].weight[:2] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
        theirs[0].bias[:2] = torch.tensor([-1.0, 0.0])
    if dtype == np.float64:
        theirs = theirs.double()
    if framework == "torch":
        return theirs
    ours = layers.Sequential(
        layers.Conv2d(3, 4, 1),
        layers.ReLU(inplace=True),
        layers.MaxPool2d(3, 2, 1),
        layers.Conv2d(4, 3, 1),
    ).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours


def _flip_batch():
    """Channel 0 is 1 + k * 2^-30 (k in 1..7): float32 rounds it to 1, so the first conv's
    channel 0 is 0 in float32 (ReLU mask 0) and k * 2^-30 in float64 (every element flips);
    its channel 1 is 1 in float32 (pool windows all tied: the first wins) and 1 + k * 2^-30
    in float64 (the largest k wins)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8))
    x[:, 0] = 1.0 + rng.integers(1, 8, size=(2, 8, 8)) * 2.0**-30
    return x, rng.integers(0, 3, size=(2, 4, 4))


def _with_extra_relu(framework: str, model):
    """``model`` then one more ReLU: a model that makes one more ReLU call."""
    return (
        nn.Sequential(model, nn.ReLU())
        if framework == "torch"
        else layers.Sequential(model, layers.ReLU())
    )


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_a_forced_flip_spoils_the_raw_error_and_not_the_matched_one(framework):
    fw = FRAMEWORKS[framework]
    x, y = _flip_batch()
    figures = bm.framework_accuracy(
        fw, _flip_net(framework, np.float32), _flip_net(framework, np.float64), x, y
    )
    assert figures["flips"]["relu"] == 2 * 8 * 8
    assert figures["flips"]["max_pool"] >= 2 * 4 * 4 // 2
    assert figures["raw"] > 2e-5
    assert figures["matched"] < 1e-6


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_a_forced_flip_is_imposed_on_the_relu_output(framework):
    fw = FRAMEWORKS[framework]
    x, y = _flip_batch()
    with Decisions(fw, _flip_net(framework, np.float32)) as taken:
        taken.gradients(x.astype(np.float32), y)
    model64 = _flip_net(framework, np.float64)
    free, handles = _relu_outputs(fw, model64)
    fw.gradients(model64, x, y)
    for h in handles:
        h.remove()
    with Decisions(fw, model64, imposed=taken):
        imposed, handles = _relu_outputs(fw, model64)
        fw.gradients(model64, x, y)
    for h in handles:
        h.remove()
    (mask,) = taken.masks
    assert not mask[:, 0].any() and (free[0][:, 0] > 0).all()
    np.testing.assert_array_equal(imposed[0] != 0, mask)


def _tensor(framework: str, x: np.ndarray):
    return (
        torch.tensor(x, requires_grad=True)
        if framework == "torch"
        else mg.tensor(x, requires_grad=True)
    )


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_an_imposed_relu_mask_overrides_an_in_place_relu(framework):
    fw = FRAMEWORKS[framework]
    relu = nn.ReLU(inplace=True) if framework == "torch" else layers.ReLU(inplace=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    with Decisions(fw, relu) as taken:
        relu(_tensor(framework, x) * 1.0)
    taken.masks[0] = np.ones_like(taken.masks[0])
    inp = _tensor(framework, x)
    with Decisions(fw, relu, imposed=taken) as imposed:
        hidden = inp * 1.0
        out = relu(hidden)
    out.sum().backward()
    assert imposed.flips["relu"] == np.count_nonzero(x <= 0) > 0
    np.testing.assert_array_equal(fw.array(out), x)
    np.testing.assert_array_equal(fw.array(hidden), x)
    np.testing.assert_array_equal(inp.grad.numpy(), np.ones_like(x))


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_imposed_pool_indices_route_the_values_the_indices_and_the_gradient(framework):
    fw = FRAMEWORKS[framework]
    pool = (
        nn.MaxPool2d(2, return_indices=True)
        if framework == "torch"
        else layers.MaxPool2d(2, return_indices=True)
    )
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 6))
    with Decisions(fw, pool) as taken:
        pool(_tensor(framework, x))
    rows, cols = np.meshgrid(np.arange(2) * 2 + 1, np.arange(3) * 2 + 1, indexing="ij")
    corners = np.broadcast_to(rows * 6 + cols, (2, 3, 2, 3)).copy()
    taken.indices[0] = corners
    inp = _tensor(framework, x)
    with Decisions(fw, pool, imposed=taken):
        out, indices = pool(inp)
    out.sum().backward()
    np.testing.assert_array_equal(fw.array(indices), corners)
    np.testing.assert_array_equal(fw.array(out), x[:, :, 1::2, 1::2])
    routed = np.zeros_like(x)
    routed[:, :, 1::2, 1::2] = 1
    np.testing.assert_array_equal(inp.grad.numpy(), routed)


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_decisions_of_another_model_are_refused(framework):
    fw = FRAMEWORKS[framework]
    x, y = _flip_batch()
    with Decisions(fw, _flip_net(framework, np.float64)) as taken:
        taken.gradients(x, y)
    pair32, _, x_small, y_small = _small("fast_unet")
    with Decisions(fw, pair32[framework], imposed=taken) as wrong:
        with pytest.raises(RuntimeError, match=r"Decisions: relu call 0 has shape"):
            wrong.gradients(x_small.astype(np.float32), y_small)


def test_parameters_with_a_rounding_sized_exact_gradient_are_left_out():
    exact = {"w": np.array([3.0, 4.0]), "b": np.array([1e-17]), "z": np.zeros(2)}
    grads = {"w": np.array([3.0, 4.0 + 5e-6]), "b": np.array([1e-9]), "z": np.ones(2)}
    assert bm._geometric_mean_error(grads, exact) == pytest.approx(1e-6, rel=1e-9)
    exact["b"] = np.array([1e-6])
    assert bm._geometric_mean_error(grads, exact) == pytest.approx((1e-6 * 999e-3) ** 0.5)


def test_print_accuracy_reports_both_figures_their_ratios_and_the_flips(capsys):
    rows = [
        {
            "model": "m",
            "seed": s,
            "minigrad": 4e-4,
            "torch": 1e-4,
            "minigrad_matched": 1.1e-6,
            "torch_matched": 1e-6,
            "minigrad_flips": {"relu": 2 * s, "max_pool": 0},
            "torch_flips": {"relu": 1, "max_pool": 1},
        }
        for s in range(2)
    ]
    bm.print_accuracy(rows, ["m"])
    out = capsys.readouterr().out
    assert "raw      minigrad 4.00e-04  torch 1.00e-04  ratio 4.00" in out
    assert "matched  minigrad 1.10e-06  torch 1.00e-06  ratio 1.10" in out
    assert "flips    minigrad ReLU 1.0  max pool 0.0" in out
    assert "flips    torch    ReLU 1.0  max pool 1.0" in out


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_decisions_for_fewer_or_more_calls_are_refused(framework):
    fw = FRAMEWORKS[framework]
    x, y = _flip_batch()
    net = _flip_net(framework, np.float64)
    longer = _with_extra_relu(framework, _flip_net(framework, np.float64))
    with Decisions(fw, net) as short_run:
        short_run.gradients(x, y)
    with Decisions(fw, longer) as long_run:
        long_run.gradients(x, y)
    with Decisions(fw, longer, imposed=short_run) as imposed:
        with pytest.raises(
            RuntimeError, match=r"relu call 1 has no imposed decision \(the imposed run made 1\)"
        ):
            imposed.gradients(x, y)
    with Decisions(fw, net, imposed=long_run) as imposed:
        with pytest.raises(
            RuntimeError,
            match=r"this run met \(1, 1\) \(ReLU, max-pool\) calls, the imposed run \(2, 1\)",
        ):
            imposed.gradients(x, y)


def test_the_accuracy_batch_fits_each_models_divisor():
    sides = {key: bm._accuracy_side(getattr(models, name)()) for key, name in bm.MODELS.items()}
    assert sides == {"fast_unet": 64, "unet": 64, "resnet34_unet": 64, "fcn": 64, "segnet": 128}
