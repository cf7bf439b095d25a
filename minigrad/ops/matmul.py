"""Matrix products: ``matmul`` (batched, broadcast, 1-D rules of torch.matmul) and ``linear``."""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.ops.elementwise import add, broadcast_shape
from minigrad.ops.shape import squeeze, unsqueeze
from minigrad.tensor import Tensor


class MatMul(Function):
    """``a @ b`` for a, b with ndim >= 2; batch dims broadcast, their gradients are summed back.

    Shapes: a (*, n, k), b (*, k, m) -> (*, n, m); ga = gy @ b^T, gb = a^T @ gy.
    """

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, gy):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        ga = gy @ b.swapaxes(-1, -2) if need_a else None
        gb = a.swapaxes(-1, -2) @ gy if need_b else None
        return ga, gb


def _check_operands(a: Tensor, b: Tensor) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both arguments need at least 1 dimension, got shapes {a.shape} and {b.shape}"
        )
    if a.dtype != b.dtype:
        raise TypeError(
            f"matmul: expected both operands to have the same dtype, got {a.dtype} and {b.dtype}"
        )
    inner_a, inner_b = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if inner_a != inner_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied ({inner_a} != {inner_b})"
        )
    if a.ndim > 2 or b.ndim > 2:
        broadcast_shape("matmul (batch dims)", a.shape[:-2], b.shape[:-2] if b.ndim > 1 else ())


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """``torch.matmul``: 1-D operands are promoted to matrices and the added dim removed."""
    _check_operands(a, b)
    vector_a, vector_b = a.ndim == 1, b.ndim == 1
    out = MatMul.apply(unsqueeze(a, 0) if vector_a else a, unsqueeze(b, -1) if vector_b else b)
    if vector_b:
        out = squeeze(out, -1)
    if vector_a:
        out = squeeze(out, -2 if out.ndim > 1 else 0)
    return out


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x W^T + b`` with PyTorch's layout: x (*, in), W (out, in), b (out,) -> (*, out).

    Leading dims are folded into one, so forward and backward are single 2-D GEMMs.
    """
    if input.ndim > 2:
        lead = input.shape[:-1]
        y = matmul(input.reshape(-1, input.shape[-1]), weight.transpose(0, 1))
        y = y.reshape(*lead, weight.shape[0])
    else:
        y = matmul(input, weight.transpose(0, 1))
    return y if bias is None else add(y, bias)
