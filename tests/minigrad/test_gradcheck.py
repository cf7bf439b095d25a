"""The finite-difference gradient checker accepts right gradients and names wrong ones."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function
from minigrad.gradcheck import GradcheckError, gradcheck


class WrongSquare(Function):
    """x**2 with a backward that is wrong at element 1 only."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        (x,) = self.saved
        g = 2 * x * gy
        g[1] += 1.0
        return g


def test_accepts_a_correct_gradient(device):
    x = mg.tensor(np.array([0.5, -1.0, 2.0]), device=device, requires_grad=True)
    assert gradcheck(lambda t: (t * t).exp(), [x])


def test_reports_input_element_and_both_values(device):
    x = mg.tensor(np.array([0.5, -1.0, 2.0]), device=device, requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 .* element \(1,\): analytic .*numerical"):
        gradcheck(WrongSquare.apply, [x])


def test_refuses_float32(device):
    x = mg.ones(2, device=device, requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2, [x])


def test_checks_only_inputs_that_require_grad(device):
    x = mg.tensor(np.array([1.0, 2.0]), device=device, requires_grad=True)
    c = mg.tensor(np.array([3.0, 4.0]), device=device)
    assert gradcheck(lambda a, b: a * b, [x, c])
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda a: a * 2, [c])


def test_leaves_the_callers_tensors_untouched(device):
    x = mg.tensor(np.array([[0.5, -1.0], [2.0, 3.0]]).T, device=device, requires_grad=True)
    before = x.data
    assert gradcheck(lambda t: t * t, [x])
    assert x.data is before and x.grad is None
