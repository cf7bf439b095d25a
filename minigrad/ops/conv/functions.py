"""The autograd Functions of the conv family and the functions users call.

``Conv2d`` runs :func:`~minigrad.ops.conv.dispatch.conv_forward` and its backward the two
gradient kernels; ``ConvTranspose2d`` is its adjoint: its forward is conv2d's input gradient,
its backward conv2d's forward and weight gradient (Chainer's composition: each kernel written
once). Each Function keeps x only for the weight's gradient and W only for the input's.
"""

from __future__ import annotations

from minigrad.autograd import Function
from minigrad.ops.conv.dispatch import (
    conv_forward,
    conv_forward_and_grad_weight,
    conv_grad_input,
    conv_grad_weight,
    conv_grads,
)
from minigrad.ops.conv.geometry import (
    _batched,
    _check_bias,
    _check_tensors,
    conv2d_geometry,
    conv_transpose2d_geometry,
)
from minigrad.ops.shape import squeeze
from minigrad.tensor import Tensor


def _add_bias(y, b):
    y += b.reshape(1, -1, 1, 1)
    return y


def _bias_grad(gy):
    return gy.sum(axis=(0, 2, 3))


def _save_for_grads(fn: Function, x, W) -> None:
    """Keep x only for the weight's gradient and W only for the input's (frozen weights keep
    no activations alive)."""
    need = fn.needs_input_grad
    fn.save_for_backward(x if need[1] else None, W if need[0] else None)


def _three_grads(fn: Function, gy, grad_input, grad_weight) -> tuple:
    """(gx, gW[, gb]) of a conv Function, each computed only when its input needs it."""
    need = fn.needs_input_grad
    grads = (grad_input() if need[0] else None, grad_weight() if need[1] else None)
    if len(need) == 2:
        return grads
    return (*grads, _bias_grad(gy) if need[2] else None)


class Conv2d(Function):
    """y = conv(x, W) + b; gx = conv_grad_input(gy), gW = gy col^T, gb = gy summed over N, H, W."""

    def forward(self, x, W, b=None, *, geometry):
        self.geometry = geometry
        _save_for_grads(self, x, W)
        y = conv_forward(x, W, geometry)
        return y if b is None else _add_bias(y, b)

    def backward(self, gy):
        x, W = self.saved
        g = self.geometry
        if all(self.needs_input_grad[:2]):
            gx, gw = conv_grads(x, W, gy, g)
            return _three_grads(self, gy, lambda: gx, lambda: gw)
        return _three_grads(
            self,
            gy,
            lambda: conv_grad_input(gy, W, g, shifted_windows=False),
            lambda: conv_grad_weight(x, gy, g),
        )


class ConvTranspose2d(Function):
    """The adjoint of Conv2d: y = conv_grad_input(x, W) + b; gx = conv(gy, W)."""

    def forward(self, x, W, b=None, *, geometry):
        self.geometry = geometry
        _save_for_grads(self, x, W)
        y = conv_grad_input(x, W, geometry)
        return y if b is None else _add_bias(y, b)

    def backward(self, gy):
        x, W = self.saved
        need = self.needs_input_grad
        gx, gw = conv_forward_and_grad_weight(
            gy, W if need[0] else None, x if need[1] else None, self.geometry
        )
        return _three_grads(self, gy, lambda: gx, lambda: gw)


def conv2d(
    input: Tensor,  # noqa: A002 - PyTorch's name
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    Args:
        input: (N, C_in, H, W), or (C_in, H, W) unbatched.
        weight: (C_out, C_in / groups, kh, kw).
        bias: (C_out,) or None.
        stride, dilation: an int or a pair (sy, sx), positive.
        padding: an int or a pair of zero paddings on both sides, or "valid" (none) or "same"
            (output size = input size, stride 1 only; an odd total puts the extra row/column at
            the bottom/right, as PyTorch).
        groups: split the channels into ``groups`` independent convolutions; groups = C_in is
            depthwise (C_out = k * C_in for a channel multiplier k).

    Returns:
        (N, C_out, Ho, Wo) with ``Ho = floor((H + 2*ph - dy*(kh-1) - 1) / sy) + 1`` (Wo likewise).

    Shapes:
        input (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw), bias (C_out,)
        -> output (N, C_out, Ho, Wo).

    Reference: :func:`minigrad.reference.conv2d_forward` and
    :func:`minigrad.reference.conv2d_backward` (im2col of the whole input, one matmul, col2im).
    This op gives the same numbers and adds:

    - an algorithm per geometry (:mod:`minigrad.ops.conv.dispatch`): 1x1 convs skip im2col;
      depthwise convs accumulate kh*kw strided-window products with no column buffer, in
      cache-sized blocks of planes on the CPU threads (one CUDA kernel each for the forward and
      the strided input gradient on a real GPU); 3x3 stride-1 convs with 64+ channels per
      group take Winograd F(2x2, 3x3), 2.25 times fewer multiplications;
    - im2col in tiles of samples or output rows (a fraction of the full column matrix, GEMMs
      still 2,048+ columns wide), in the "wide" layout for stride 1 (each kernel offset's window
      one contiguous slice), into scratch buffers each thread reuses;
    - the reversed-kernel input gradient: for stride 1, a conv of gy with the flipped kernel
      (faster than the col2im scatter, and Winograd-able); col2im in tiles for strided convs;
    - on the CPU, both gradients of a stride-1 conv from gy's columns (or Winograd transform)
      when the GEMM shape pays; the weight-gradient GEMM transposed when gy is the thinner
      operand;
    - on the CPU, a conv whose weight outnumbers its input (a small image with many
      channels) on compact channels-last columns, with none of the wide layout's extras,
      its two gradients side by side on two threads;
    - x kept for backward only when the weight needs a gradient, W only when x does;
    - CPU results with an inf or NaN computed again the plain way, so they land where
      PyTorch's do (:mod:`minigrad.ops.conv.nonfinite`).
    """
    op = "conv2d"
    _check_tensors(op, input, weight, bias)
    x, unbatched = _batched(op, input)
    g = conv2d_geometry(op, x.shape, weight.shape, stride, padding, dilation, groups)
    _check_bias(op, bias, g.out_channels)
    tensors = (x, weight) if bias is None else (x, weight, bias)
    y = Conv2d.apply(*tensors, geometry=g)
    return squeeze(y, 0) if unbatched else y


def conv_transpose2d(
    input: Tensor,  # noqa: A002 - PyTorch's name
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """2-D transposed convolution, the adjoint of conv2d, as ``F.conv_transpose2d`` of PyTorch.

    Args:
        input: (N, C_in, H, W), or (C_in, H, W) unbatched.
        weight: (C_in, C_out / groups, kh, kw), PyTorch's layout.
        bias: (C_out,) or None.
        stride, dilation: an int or a pair, positive.
        padding: an int or a pair: ``dilation * (k - 1) - padding`` zeros are added on each side
            of the (stride-dilated) input; equivalently, ``padding`` rows/columns are cropped from
            each side of the full output.
        output_padding: extra rows/columns at the bottom/right of the output, smaller than
            either stride or dilation; picks among the input sizes a strided conv2d maps to H.
        groups: blocks of channels convolved independently.

    Returns:
        (N, C_out, Ho, Wo) with ``Ho = (H - 1)*sy - 2*ph + dy*(kh - 1) + output_padding + 1``.

    Shapes:
        input (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out,)
        -> output (N, C_out, Ho, Wo).

    Reference: :func:`minigrad.reference.conv_transpose2d_forward` and
    :func:`minigrad.reference.conv_transpose2d_backward` (conv2d's input gradient; the backward
    from conv2d's forward and weight gradient). This op is built from the same kernels as
    :func:`conv2d`, so it adds their optimizations, and:

    - the forward is conv2d's input gradient: for stride 1 (and padding at most
      dilation*(kernel-1)) the conv of x with the reversed kernel (Winograd-able); otherwise
      col2im in tiles, a plain copy where the dilated kernel fits in the stride (disjoint
      windows, as in the usual 2x2 stride-2 upsampling), or the depthwise scatter;
    - on the im2col and Winograd paths the backward builds gy's columns (or transform) once for
      both gradients.
    """
    op = "conv_transpose2d"
    _check_tensors(op, input, weight, bias)
    x, unbatched = _batched(op, input)
    g = conv_transpose2d_geometry(
        op, x.shape, weight.shape, stride, padding, output_padding, dilation, groups
    )
    _check_bias(op, bias, g.in_channels)
    tensors = (x, weight) if bias is None else (x, weight, bias)
    y = ConvTranspose2d.apply(*tensors, geometry=g)
    return squeeze(y, 0) if unbatched else y
