"""The pointwise path: a 1x1, stride-1, unpadded conv is a GEMM of the weight and the input.

No im2col: the input (N, C, H, W) reshaped to (N, G, C/G, H*W) is already the right operand,
so each gradient is one batched matmul as well, ``W^T @ gy`` and ``sum_N gy @ x^T``.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.ops.conv.gemm import _grouped_weight
from minigrad.ops.im2col import ConvGeometry


def _is_pointwise(g: ConvGeometry) -> bool:
    same_size = (g.out_h, g.out_w) == (g.in_h, g.in_w)
    return (g.kh, g.kw, g.sy, g.sx, g.pad_h, g.pad_w) == (1, 1, 1, 1, 0, 0) and same_size


def _pixels(array, g: ConvGeometry):
    """(N, C, h, w) as (N, G, C/G, h*w)."""
    xp = backend.get_array_module(array)
    n, c, h, w = array.shape
    return xp.ascontiguousarray(array).reshape(n, g.groups, c // g.groups, h * w)


def _pointwise(w, pixels, shape):
    """``w @ pixels`` (G, a, b) @ (N, G, b, h*w) written into a new (N, G*a, h, w) array."""
    xp = backend.get_array_module(pixels)
    out = xp.empty(shape, dtype=pixels.dtype)
    xp.matmul(w, pixels, out=out.reshape(pixels.shape[:2] + (w.shape[1], shape[2] * shape[3])))
    return out


def _pointwise_forward(x, W, g: ConvGeometry):
    return _pointwise(_grouped_weight(W, g), _pixels(x, g), g.out_shape)


def _pointwise_grad_input(gy, W, g: ConvGeometry):
    return _pointwise(_grouped_weight(W, g).swapaxes(1, 2), _pixels(gy, g), g.in_shape)


def _pointwise_grad_weight(x, gy, g: ConvGeometry):
    per_sample = _pixels(gy, g) @ _pixels(x, g).swapaxes(2, 3)
    return per_sample.sum(axis=0).reshape(g.weight_shape)
