"""Finite-difference gradient checker (float64), as ``torch.autograd.gradcheck``.

The check projects the outputs on a fixed random direction ``v`` and compares, for every
element of every input that requires grad, the analytic ``d<v, f(x)>/dx`` from ``backward``
with the central difference ``(<v, f(x + eps)> - <v, f(x - eps)>) / (2 eps)``. One random
projection tests the full vector-Jacobian product at the cost of two evaluations per element.
"""

from __future__ import annotations

import numpy

from minigrad import backend
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message names the input and element."""


def _outputs(fn, inputs) -> list:
    out = fn(*inputs)
    out = out if isinstance(out, tuple | list) else (out,)
    return [o for o in out if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _projection(outputs, directions) -> float:
    return float(
        sum(backend.to_host((o.data * v).sum()) for o, v in zip(outputs, directions, strict=True))
    )


def gradcheck(
    fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0
) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central finite differences.

    Args:
        fn: maps tensors to a tensor (or a tuple whose float tensors are checked).
        inputs: tensors; those with ``requires_grad`` are checked. Float inputs must be float64.
        eps: the finite-difference step.
        atol, rtol: an element fails when ``|analytic - numeric| > atol + rtol * |numeric|``.

    Returns:
        True when every element passes; otherwise raises :class:`GradcheckError` with a report
        naming the input, its worst element and the analytic and numerical values.
    """
    inputs = [_private_copy(t) for t in inputs]
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != numpy.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need float64"
            )
    outputs = _outputs(fn, inputs)
    rng = numpy.random.default_rng(seed)
    directions = [o.xp.asarray(rng.standard_normal(o.shape)) for o in outputs]
    loss = None
    for o, v in zip(outputs, directions, strict=True):
        term = (o * Tensor._wrap(v)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    for i in checked:
        analytic = backend.to_host(inputs[i].grad.data) if inputs[i].grad is not None else 0
        numeric = _numerical_gradient(fn, inputs, i, directions, eps)
        _compare(i, inputs[i].shape, analytic + numpy.zeros_like(numeric), numeric, atol, rtol)
    return True


def _private_copy(value):
    """A contiguous copy of a tensor input (the caller's tensors are never touched)."""
    if not isinstance(value, Tensor):
        return value
    copy = Tensor._wrap(value.xp.array(value.data, order="C"))
    return copy.requires_grad_(value.requires_grad)


def _numerical_gradient(fn, inputs, i, directions, eps) -> numpy.ndarray:
    data = inputs[i].data
    flat = data.reshape(-1)
    grad = numpy.zeros(data.size)
    with no_grad():
        for k in range(data.size):
            original = float(backend.to_host(flat[k]))
            flat[k] = original + eps
            plus = _projection(_outputs(fn, inputs), directions)
            flat[k] = original - eps
            minus = _projection(_outputs(fn, inputs), directions)
            flat[k] = original
            grad[k] = (plus - minus) / (2 * eps)
    return grad.reshape(data.shape)


def _compare(i, shape, analytic, numeric, atol, rtol) -> None:
    error = numpy.abs(analytic - numeric) - (atol + rtol * numpy.abs(numeric))
    if error.size and error.max() > 0:
        worst = tuple(int(i) for i in numpy.unravel_index(int(error.argmax()), shape))
        raise GradcheckError(
            f"gradcheck: input {i} (shape {shape}) has a wrong gradient at element {worst}: "
            f"analytic {analytic[worst]:.10g}, numerical {numeric[worst]:.10g} "
            f"({int((error > 0).sum())} of {error.size} elements fail atol={atol}, rtol={rtol})"
        )
