"""The U-Net family against its PyTorch twins (tests/reference/models.py): parameter counts,
and with the same weights loaded through the state dict, equal logits, input gradient and
every parameter gradient, in train and eval mode."""

import numpy as np
import pytest
import torch
from reference import models as twins
from reference.decisions import Decisions, Minigrad, Torch

import minigrad as mg
from segmentation import models

FULL_SIZE_COUNTS = [
    ("UNet", {}, 31_037_763),
    ("UNet", {"bilinear": True}, 17_263_107),
    ("FastUNet", {}, 3_898_462),
    ("ResNet34UNet", {}, 24_451_651),
    ("FCN", {}, None),
    ("SegNet", {}, None),
    ("SegNet", {"depth": 6}, None),
]

# (name, kwargs, batch, input side): small enough for the CPU, every option exercised once.
SMALL = [
    ("UNet", {"base_channels": 4}, 2, 32),
    ("UNet", {"base_channels": 4, "bilinear": True}, 2, 32),
    ("UNet", {"base_channels": 4, "norm": "instance", "head_kernel": 3}, 2, 32),
    ("FastUNet", {"base_channels": 4}, 2, 32),
    ("ResNet34UNet", {}, 2, 64),
    ("FCN", {}, 2, 32),
    ("SegNet", {"depth": 2}, 2, 16),
    ("SegNet", {"depth": 3}, 2, 64),
]


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "kwargs", "expected"), FULL_SIZE_COUNTS)
def test_parameter_count_equals_the_twin_and_the_pinned_figure(name, kwargs, expected):
    ours = getattr(models, name)(**kwargs)
    theirs = getattr(twins, name)(**kwargs)
    assert _count(ours) == sum(p.numel() for p in theirs.parameters())
    if expected is not None:
        assert _count(ours) == expected
    assert list(ours.state_dict()) == list(theirs.state_dict())


def _relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-30))


def _pair(name, kwargs, dtype, device):
    """Our model and its twin with the twin's weights, both in ``dtype``."""
    torch.manual_seed(0)
    theirs = getattr(twins, name)(**kwargs).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    ours = getattr(models, name)(**kwargs).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours.to(device), theirs


def _step(ours, theirs, x, device, tol):
    """One forward and backward of both on the same input and upstream gradient.

    The twin takes our forward's branch (our ReLU masks and max-pool indices, imposed by
    :class:`Decisions`): where a ReLU input within rounding of 0 falls on the other side in
    the two float32 runs, the gradients differ by that unit's whole contribution (1e-3 of the
    input gradient for one element of a ResNet34-U-Net at 64x64), which measures nothing but
    where rounding fell. In float64 no decision flips."""
    xo = mg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    with Decisions(Minigrad, ours) as ours_branch:
        yo = ours(xo)
    with Decisions(Torch, theirs, imposed=ours_branch) as their_branch:
        yt = theirs(xt)
    decisions = sum(a.size for a in ours_branch.masks + ours_branch.indices)
    flips = sum(their_branch.flips.values())
    assert flips <= (0 if x.dtype == np.float64 else max(4, decisions // 10**5)), (
        f"the twin would have taken {flips} of {decisions} decisions otherwise"
    )
    assert yo.shape == tuple(yt.shape)
    assert _relative_error(yo.detach().numpy(), yt.detach().numpy()) < tol, "logits"
    g = np.random.default_rng(1).standard_normal(yt.shape).astype(x.dtype)
    (yo * mg.tensor(g, device=device)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    assert _relative_error(xo.grad.numpy(), xt.grad.numpy()) < tol, "input gradient"
    their_grads = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
    # A bias feeding a batch norm has a gradient of pure rounding noise in both frameworks:
    # errors are measured against at least a thousandth of the largest gradient's norm.
    floor = 1e-3 * max(np.linalg.norm(g) for g in their_grads.values())
    for key, param in ours.named_parameters():
        assert param.grad is not None, f"{key}: no gradient"
        diff = np.linalg.norm(param.grad.numpy() - their_grads[key])
        error = diff / max(np.linalg.norm(their_grads[key]), floor)
        assert error < tol, f"gradient of {key}: relative error {error:.2e}"


@pytest.mark.parametrize(("name", "kwargs", "batch", "side"), SMALL, ids=lambda v: str(v))
def test_logits_and_gradients_equal_the_twin_in_train_then_eval_mode(
    name, kwargs, batch, side, device
):
    if name == "ResNet34UNet" and device != "cpu":
        pytest.skip("21M parameters: the smaller models cover its ops on the GPU path")
    ours, theirs = _pair(name, kwargs, np.float32, device)
    x = np.random.default_rng(0).standard_normal((batch, 3, side, side)).astype(np.float32)
    _step(ours, theirs, x, device, 1e-3)
    for key, value in theirs.state_dict().items():
        if "running" in key:
            np.testing.assert_allclose(
                ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-6
            )
    ours.eval(), theirs.eval()
    ours.zero_grad(), theirs.zero_grad()
    _step(ours, theirs, x, device, 1e-3)


@pytest.mark.parametrize(
    ("name", "kwargs", "side"),
    [("UNet", {"base_channels": 2}, 16), ("FastUNet", {"base_channels": 2}, 16)],
)
def test_float64_matches_tightly(name, kwargs, side):
    ours, theirs = _pair(name, kwargs, np.float64, "cpu")
    x = np.random.default_rng(0).standard_normal((2, 3, side, side))
    _step(ours, theirs, x, "cpu", 1e-10)


@pytest.mark.parametrize(
    ("name", "kwargs", "shape"),
    [
        ("UNet", {"base_channels": 2}, (33, 35)),
        ("FastUNet", {"base_channels": 2}, (37, 41)),
        ("ResNet34UNet", {}, (45, 50)),
    ],
)
def test_odd_sizes_give_logits_of_the_input_size_equal_to_the_twin(name, kwargs, shape):
    """In float64: at batch 1 the deepest batch norms see a handful of values, and float32
    rounding alone moves either framework by up to 1e-2 there; the padding and cropping
    under test are exact."""
    ours, theirs = _pair(name, kwargs, np.float64, "cpu")
    x = np.random.default_rng(0).standard_normal((1, 3, *shape))
    _step(ours, theirs, x, "cpu", 1e-9)


@pytest.mark.parametrize(
    ("model", "side", "divisor"),
    [(models.FCN(), 48, 32), (models.SegNet(depth=2), 12, 8), (models.SegNet(), 64, 128)],
)
def test_sizes_the_architecture_cannot_take_name_the_divisor(model, side, divisor):
    with pytest.raises(ValueError, match=rf"{side}x{side} must be divisible by {divisor}"):
        model(mg.zeros(1, 3, side, side))


def test_wrong_channel_count_and_tiny_inputs_are_named():
    model = models.FastUNet(base_channels=2)
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        model(mg.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="at least 16"):
        model(mg.zeros(1, 3, 8, 8))


def test_resnet34_unet_loads_a_torchvision_encoder_and_ignores_fc():
    twin = twins.ResNet34UNet()
    encoder = {k: v for k, v in twin.state_dict().items() if not k.startswith(("up", "head"))}
    encoder["fc.weight"], encoder["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    ours = models.ResNet34UNet()
    ours.load_encoder(encoder)
    np.testing.assert_array_equal(
        ours.layer4[2].conv2.weight.detach().numpy(), twin.layer4[2].conv2.weight.detach().numpy()
    )
    del encoder["layer1.0.conv1.weight"]
    encoder["stray"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match=r"missing keys: \['layer1.0.conv1.weight'\].*'stray'"):
        ours.load_encoder(encoder)


def test_fast_unet_reordered_reduce_conv_commutes_with_the_upsampling():
    """Our decoder runs the 1x1 conv before the bilinear upsampling; the twin after it."""
    ours, theirs = _pair("FastUNet", {"base_channels": 4}, np.float64, "cpu")
    ours.eval(), theirs.eval()
    x = np.random.default_rng(3).standard_normal((1, 3, 48, 40))
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    with mg.no_grad():
        got = ours(mg.tensor(x)).numpy()
    assert _relative_error(got, expected) < 1e-12


def test_ten_adam_steps_of_a_small_fast_unet_follow_pytorch_step_by_step():
    """Same initial weights, data and Adam settings: the losses agree at every step."""
    import minigrad.functional as F
    from minigrad import optim

    ours, theirs = _pair("FastUNet", {"base_channels": 4}, np.float32, "cpu")
    our_opt = optim.Adam(ours.parameters(), lr=1e-3)
    their_opt = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 3, size=(2, 32, 32))
    ours_losses, their_losses = [], []
    for _ in range(10):
        our_opt.zero_grad()
        loss = F.cross_entropy(ours(mg.tensor(x)), mg.tensor(y))
        loss.backward()
        our_opt.step()
        ours_losses.append(loss.item())
        their_opt.zero_grad()
        their_loss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        their_loss.backward()
        their_opt.step()
        their_losses.append(their_loss.item())
    np.testing.assert_allclose(ours_losses, their_losses, rtol=2e-4)
    assert ours_losses[-1] < ours_losses[0]


@pytest.mark.parametrize(
    ("model", "shape", "message"),
    [
        (models.FCN(), (1, 1, 32, 32), "FCN: expected 3 input channels, got 1"),
        (models.SegNet(depth=2), (1, 3, 8), r"SegNet: expected input of shape \(N, C, H, W\)"),
        (models.SegNet(depth=2), (1, 3, 0, 0), "SegNet: input size 0x0 is too small"),
    ],
)
def test_fcn_and_segnet_name_a_bad_input_shape(model, shape, message):
    with pytest.raises(ValueError, match=message):
        model(mg.zeros(*shape))
