"""PyTorch interop both ways: a torch state dict loads into ours as it is (torch tensors, duck
typed); ``mg.save(model.state_dict())`` loads with ``safetensors.torch.load_file`` straight
into the twin torch.nn model (strict) and gives its outputs; a torch model saved with
``safetensors.torch.save_file`` loads into ours through ``mg.load``."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import layers as L
import minigrad as mg
from minigrad.serialization import load, save


def twin(nn):
    """A small segmentation-style model, the same in layers and torch.nn."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding="same", padding_mode="reflect", bias=False),
        nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
        nn.LeakyReLU(0.1),
        nn.ConvTranspose2d(4, 2, 2, stride=2),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
    )


X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)


def trained(model, framework):
    """The model after two training forwards (running statistics moved off their defaults)
    and a nudge to its weights, in eval mode."""
    for step in range(2):
        x = X + step
        model(mg.tensor(x) if framework == "ours" else torch.tensor(x))
    for _, p in model.named_parameters():
        if framework == "ours":
            p.data += 0.1
        else:
            with torch.no_grad():
                p += 0.1
    return model.eval()


def outputs(ours, theirs, device="cpu"):
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.tensor(X)).numpy()
    with mg.no_grad():
        got = ours(mg.tensor(X, device=device)).numpy()
    return got, expected


def assert_same_outputs(ours, theirs, device="cpu"):
    got, expected = outputs(ours, theirs, device)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_torch_state_dict_loads_as_it_is(device):
    theirs = trained(twin(torch.nn), "torch")
    ours = twin(L).to(device)
    result = ours.load_state_dict(theirs.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert ours[1].num_batches_tracked.item() == 2 and ours[1].num_batches_tracked.dtype == np.int64
    assert_same_outputs(ours, theirs, device)


def test_keep_vars_torch_state_dict_loads():
    """torch's keep_vars=True hands Parameters that require grad: taken as they are."""
    theirs = twin(torch.nn)
    ours = twin(L)
    state = theirs.state_dict(keep_vars=True)
    assert state["0.weight"].requires_grad
    ours.load_state_dict(state)
    assert_same_outputs(ours, theirs)


def test_our_checkpoint_loads_into_torch_with_safetensors(tmp_path, device):
    ours = trained(twin(L), "ours").to(device)
    path = tmp_path / "m.safetensors"
    save(ours.state_dict(), path)
    state = load_file(str(path))
    theirs = twin(torch.nn)
    theirs.load_state_dict(state, strict=True)
    assert sorted(state) == sorted(theirs.state_dict())  # safetensors keeps no key order
    assert (
        state["1.num_batches_tracked"].dtype == torch.int64
        and state["1.num_batches_tracked"].shape == ()
    )
    assert state["0.weight"].dtype == torch.float32
    assert_same_outputs(ours, theirs, device)


def test_torch_checkpoint_loads_into_ours_with_mg_load(tmp_path, device):
    theirs = trained(twin(torch.nn), "torch")
    path = tmp_path / "torch.safetensors"
    save_file(theirs.state_dict(), str(path))
    ours = twin(L).to(device)
    state = load(path, device=device)
    assert sorted(state) == sorted(theirs.state_dict())  # safetensors keeps no key order
    ours.load_state_dict(state)
    assert_same_outputs(ours, theirs, device)


def test_our_checkpoint_round_trips_bit_for_bit(tmp_path):
    ours = trained(twin(L), "ours")
    path = tmp_path / "ours.safetensors"
    mg.save(ours.state_dict(), path)
    fresh = twin(L)
    fresh.load_state_dict(mg.load(path))
    for (key, a), (_, b) in zip(ours.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert a.dtype == b.dtype, key
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=key)
    got, expected = outputs(fresh, twin(torch.nn))  # shapes only: torch's weights differ
    assert got.shape == expected.shape


def test_float64_state_dict_casts_into_a_float32_model(tmp_path):
    theirs = twin(torch.nn).double()
    path = tmp_path / "f64.safetensors"
    save_file(theirs.state_dict(), str(path))
    ours = twin(L)
    ours.load_state_dict(mg.load(path))
    assert ours[0].weight.dtype == np.float32
    np.testing.assert_array_equal(
        ours[0].weight.detach().numpy(), theirs[0].weight.detach().float().numpy()
    )


def test_mismatched_checkpoint_is_named():
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3))
    with pytest.raises(
        RuntimeError, match=r"size mismatch for 0.weight: copying a param with shape \(5, 3, 3, 3\)"
    ):
        twin(L).load_state_dict(theirs.state_dict(), strict=False)


def test_layers_never_import_torch():
    """Loading our own state dict (no torch tensor given) leaves torch unimported."""
    code = (
        "import sys, layers, minigrad as mg\n"
        "m = layers.Sequential(layers.Conv2d(1, 2, 3), layers.BatchNorm2d(2))\n"
        "m.load_state_dict(m.state_dict())\n"
        "m(mg.zeros(1, 1, 4, 4))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
