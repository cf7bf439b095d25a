"""detect_anomaly(): the first NaN or Inf raises naming the op, the phase, the input shapes and
the test's own line; where PyTorch's anomaly mode raises, so does ours, at the same op; a run
without anomalies is bit for bit the run without the check; nothing stays hooked."""

import sys
import warnings

import numpy as np
import pytest
import torch

import minigrad as mg
import minigrad.functional as F
from minigrad import autograd, debug
from minigrad.autograd import Function


def _line() -> int:
    """The caller's line number."""
    return sys._getframe(1).f_lineno


def _site(line: int) -> str:
    return f"{__file__}:{line} in "


@pytest.fixture(autouse=True)
def _quiet_numpy():
    """log(0) and 1 / 0 are what these tests are about: NumPy must not turn them into errors."""
    with np.errstate(divide="ignore", invalid="ignore"):
        yield
    assert autograd._observers == []


def test_log_of_zero_raises_in_the_forward_naming_log(device):
    x = mg.tensor([1.0, 0.0, 2.0], device=device, requires_grad=True)
    with debug.detect_anomaly(), pytest.raises(debug.AnomalyError) as caught:
        y = x * 2
        line = _line() + 1
        mg.log(y)
    error = caught.value
    assert (error.op, error.phase, error.input_shapes) == ("Log", "forward", ((3,),))
    assert error.called_at.startswith(_site(line) + "test_log_of_zero")
    message = str(error)
    assert "Log (forward) produced 1 Inf value in output 0 of shape (3,)" in message
    assert "input shapes ((3,),)" in message and "mg.log(y)" in message


def test_sqrt_of_zero_raises_in_the_backward_at_the_forward_line(device):
    x = mg.tensor([4.0, 0.0], dtype=mg.float64, device=device, requires_grad=True)
    with debug.detect_anomaly():
        line = _line() + 1
        y = mg.sqrt(x)
        loss = (y * 3).sum()
        with pytest.raises(debug.AnomalyError) as caught:
            loss.backward()
    error = caught.value
    assert (error.op, error.phase) == ("Sqrt", "backward")
    assert error.called_at.startswith(_site(line))
    assert "Sqrt (backward) produced 1 Inf value in the gradient of input 0" in str(error)
    assert "y = mg.sqrt(x)" in str(error)


def test_nan_is_named_and_the_first_bad_op_raises(device):
    x = mg.tensor([0.0, 1.0], device=device, requires_grad=True)
    with debug.detect_anomaly(), pytest.raises(debug.AnomalyError) as caught:
        z = x - x
        (z / z).exp()  # Div makes the NaN, exp only passes it on
    assert caught.value.op == "Div"
    assert "2 NaN values in output 0" in str(caught.value)


def test_where_torch_anomaly_mode_raises_ours_raises_at_the_same_op(device):
    """0 * sqrt(0): the forward is finite, sqrt's backward gives 0 / 0 = NaN."""
    tx = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns on entry, and prints the stack
        with torch.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="SqrtBackward0"):
            (torch.sqrt(tx) * 0).sum().backward()
    x = mg.tensor([0.0, 1.0], dtype=mg.float64, device=device, requires_grad=True)
    with debug.detect_anomaly(), pytest.raises(debug.AnomalyError) as caught:
        (mg.sqrt(x) * 0).sum().backward()
    assert (caught.value.op, caught.value.phase) == ("Sqrt", "backward")
    assert "1 NaN value in the gradient of input 0" in str(caught.value)


def _step(device, anomaly: bool):
    """A small training step; its loss, logits and gradients as host arrays."""
    rng = np.random.default_rng(1)
    w = mg.tensor(rng.standard_normal((8, 3, 3, 3)), mg.float32, device, requires_grad=True)
    g = mg.ones(8, device=device, requires_grad=True)
    b = mg.zeros(8, device=device, requires_grad=True)
    x = mg.tensor(rng.standard_normal((2, 3, 12, 12)), mg.float32, device)
    target = mg.tensor(rng.integers(0, 8, (2, 6, 6)), device=device)
    with debug.detect_anomaly() if anomaly else mg.enable_grad():
        h = F.relu(F.batch_norm(F.conv2d(x, w, padding=1), None, None, g, b, training=True))
        logits = F.max_pool2d(h, 2)
        loss = F.cross_entropy(logits, target) + (mg.sigmoid(logits) ** 2).mean()
        loss.backward()
    return [
        loss.detach().numpy(),
        logits.detach().numpy(),
        w.grad.numpy(),
        g.grad.numpy(),
        b.grad.numpy(),
    ]


def test_without_anomalies_the_results_are_bit_for_bit_the_same(device):
    for plain, checked in zip(_step(device, False), _step(device, True), strict=True):
        assert plain.dtype == checked.dtype and plain.tobytes() == checked.tobytes()


def test_integer_outputs_and_extras_are_not_checked(device):
    x = mg.tensor([[1.0, 5.0], [3.0, 2.0]], device=device, requires_grad=True)
    with debug.detect_anomaly():
        assert mg.argmax(x, dim=1).tolist() == [1, 0]
        values, indices = F.max_pool2d(x.reshape(1, 1, 2, 2), 2, return_indices=True)
        assert indices.tolist() == [[[[1]]]]


def test_nothing_stays_hooked_after_the_block_even_after_an_error():
    x = mg.tensor([0.0], requires_grad=True)
    with pytest.raises(debug.AnomalyError), debug.detect_anomaly():
        mg.log(x)
    assert autograd._observers == []
    assert mg.log(x).tolist() == [-np.inf]  # no check any more


def test_check_nan_false_only_records_where_ops_were_called():
    x = mg.tensor([0.0], requires_grad=True)
    with debug.detect_anomaly(check_nan=False):
        y = mg.log(x)
        line = _line() + 1
        z = _FailingBackward.apply(y)
        with pytest.raises(ZeroDivisionError) as caught:
            z.sum().backward()
    assert y.tolist() == [-np.inf]
    (note,) = caught.value.__notes__
    assert note.startswith("detect_anomaly: raised in the backward of _FailingBackward")
    assert _site(line) in note and "_FailingBackward.apply(y)" in note


class _FailingBackward(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        raise ZeroDivisionError("backward failed")


def test_a_backward_of_an_op_run_outside_the_block_has_no_call_site():
    x = mg.tensor([0.0], requires_grad=True)
    y = mg.sqrt(x)
    with debug.detect_anomaly(), pytest.raises(debug.AnomalyError) as caught:
        y.sum().backward()
    assert caught.value.called_at is None
    assert "its forward ran outside detect_anomaly" in str(caught.value)


def test_works_inside_a_profile():
    x = mg.tensor([0.0], requires_grad=True)
    with debug.profile() as prof, debug.detect_anomaly():
        mg.exp(x)
        with pytest.raises(debug.AnomalyError, match="Log"):
            mg.log(x)
    assert [e.name for e in prof.events] == ["Exp"]
