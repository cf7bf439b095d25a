"""Tensor construction, dtype inference, conversion and device moves, as in PyTorch."""

import numpy as np
import pytest
import torch

import minigrad as mg


def test_dtype_inference_follows_torch():
    assert mg.tensor(1.5).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor([True]).dtype == np.bool_
    assert mg.tensor(np.zeros(2, dtype=np.float64)).dtype == np.float64
    assert mg.tensor(np.zeros(2, dtype=np.int32)).dtype == np.int32
    assert mg.tensor([1.0], dtype=mg.float64).dtype == np.float64
    assert mg.zeros(2, 3).dtype == np.float32 and mg.zeros(2, 3).shape == (2, 3)
    assert mg.arange(4).dtype == np.int64 and mg.arange(0.0, 1.0, 0.5).dtype == np.float32


def test_a_torch_tensor_converts():
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    np.testing.assert_array_equal(mg.tensor(t).numpy(), t.numpy())


def test_factories_and_moves(device):
    x = mg.randn(2, 3, device=device)
    assert x.device == "gpu" if device == "gpu" else x.device == "cpu"
    assert isinstance(x.numpy(), np.ndarray)
    assert mg.full((2,), 3.0, device=device).numpy().tolist() == [3.0, 3.0]
    moved = x.to("cpu").to(device)
    np.testing.assert_array_equal(moved.numpy(), x.numpy())
    assert x.to(mg.float64).dtype == np.float64
    assert mg.ones(1, device=device).item() == 1.0


def test_moves_are_differentiable(device):
    x = mg.tensor([1.0, 2.0], device="cpu", requires_grad=True)
    y = (x.to(device) * 3).to(mg.float64).sum()
    y.backward()
    assert x.grad.device == "cpu" and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_manual_seed_makes_random_tensors_reproducible(device):
    mg.manual_seed(7)
    a = mg.randn(4, device=device).numpy()
    mg.manual_seed(7)
    b = mg.randn(4, device=device).numpy()
    np.testing.assert_array_equal(a, b)
    assert mg.rand(3, device=device, dtype=mg.float64).dtype == np.float64


def test_numpy_needs_detach_when_tracking():
    x = mg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()


def test_item_needs_a_single_value():
    with pytest.raises(ValueError, match="2 elements"):
        mg.ones(2).item()


def test_unknown_device_is_named():
    with pytest.raises(mg.DeviceError, match="'tpu'"):
        mg.zeros(2, device="tpu")


def test_tensor_copies_its_input_like_torch():
    a = np.zeros(3, dtype=np.float32)
    t = mg.tensor(a)
    t.data += 1
    assert a.sum() == 0
    source = torch.zeros(3)
    mg.tensor(source).data += 1
    assert source.sum().item() == 0


def test_torch_tensors_convert_on_the_cpu_device():
    t = mg.tensor(torch.ones(2, dtype=torch.float64), device="cpu")
    assert t.device == "cpu" and t.dtype == np.float64


def test_ops_refuse_raw_arrays_with_a_clear_error():
    import minigrad.functional as F

    with pytest.raises(TypeError, match="argument 0 must be a Tensor, got ndarray"):
        F.relu(np.ones(3))


def test_factories_treat_dtype_none_as_float32():
    for factory in (mg.zeros, mg.ones, mg.empty, mg.randn, mg.rand):
        assert factory(2, dtype=None).dtype == np.float32


def test_to_the_same_dtype_and_device_returns_self(device):
    x = mg.ones(2, device=device)
    assert x.to(device) is x and x.float() is x and x.to(device, dtype=mg.float64) is not x


def test_comparing_with_none_is_false():
    x = mg.ones(2)
    assert (x == None) is False  # noqa: E711 - the point of the test
    assert x in [x]


def test_as_tensor_matches_torch_signature(device):
    x = mg.ones(2, device=device)
    assert mg.as_tensor(x) is x
    assert mg.as_tensor([1.0, 2.0], dtype=mg.float64, device=device).dtype == np.float64
