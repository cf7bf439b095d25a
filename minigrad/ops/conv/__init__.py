"""Convolutions: ``conv2d`` (im2col + GEMM) and ``conv_transpose2d`` (its adjoint).

The plain version of each is :func:`minigrad.reference.conv2d_forward` (and the functions next
to it); this package is the fast one. Read it in this order:

- :mod:`~minigrad.ops.conv.geometry`: the arguments, checked, and the sizes of the conv;
- :mod:`~minigrad.ops.conv.dispatch`: which algorithm runs each of the three array kernels
  (the conv2d output, its input gradient, which is also the conv_transpose2d output, and the
  weight gradient shared by both), on one screen;
- the algorithms, one file each:

  - :mod:`~minigrad.ops.conv.pointwise` (1x1, stride 1, no padding): no im2col, the input
    reshaped is the GEMM operand;
  - :mod:`~minigrad.ops.conv.depthwise` (groups == in_channels, any channel multiplier): kh*kw
    strided-window multiply-adds in cache-sized blocks split between threads, no column
    buffer; on a real GPU one CUDA kernel (:mod:`minigrad.kernels.depthwise`);
  - :mod:`minigrad.ops.winograd`: F(2x2, 3x3) for 3x3 stride-1 convs with many channels per
    group (2.25 times fewer multiplications), forward and weight gradient;
  - :mod:`~minigrad.ops.conv.gemm` (dense and grouped): im2col of a tile of samples or rows
    into columns (C*kh*kw, n*R*wq) and one GEMM per group (:mod:`minigrad.ops.im2col` holds
    the padded "wide" layout, im2col/col2im, the tiles and the scratch buffers);
  - :mod:`~minigrad.ops.conv.pixel_major` (weight-bound convs on the CPU: a small image
    with many channels): compact channels-last columns, none of the wide layout's extras;
  - :mod:`~minigrad.ops.conv.reversed_kernel`: the input gradient of a stride-1 conv as a
    conv of gy with the reversed kernel (faster than the col2im scatter), and both gradients
    from gy's columns;
  - :mod:`~minigrad.ops.conv.sub_pixel`: the input gradient of a strided conv (the
    conv_transpose2d output) as one stride-1 conv of gy per output phase;

- :mod:`~minigrad.ops.conv.nonfinite`: the fast paths' CPU results checked for inf and NaN,
  and recomputed the plain way where PyTorch would put them elsewhere;

- :mod:`~minigrad.ops.conv.functions`: the autograd Functions and ``conv2d`` /
  ``conv_transpose2d``.
"""

from __future__ import annotations

from minigrad.ops.conv.dispatch import (
    conv_forward,
    conv_forward_and_grad_weight,
    conv_grad_input,
    conv_grad_weight,
    conv_grads,
)
from minigrad.ops.conv.functions import Conv2d, ConvTranspose2d, conv2d, conv_transpose2d
from minigrad.ops.conv.geometry import conv2d_geometry, conv_transpose2d_geometry
from minigrad.ops.conv.reversed_kernel import _backward_shares_gy as _backward_shares_gy
from minigrad.ops.conv.reversed_kernel import _reversed_geometry as _reversed_geometry

__all__ = [
    "Conv2d",
    "ConvTranspose2d",
    "conv2d",
    "conv2d_geometry",
    "conv_forward",
    "conv_forward_and_grad_weight",
    "conv_grad_input",
    "conv_grad_weight",
    "conv_grads",
    "conv_transpose2d",
    "conv_transpose2d_geometry",
]
