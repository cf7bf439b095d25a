"""The input gradient of a stride-1 conv as another stride-1 conv, with the reversed kernel.

``gx[h] = sum_i gy[h + p - i*d] W[i]`` is a correlation of gy with the kernel flipped and its
in/out channels swapped within each group: a conv2d, which runs faster than the col2im
scatter (and can take the Winograd path). :func:`_backward_shares_gy` says when the weight
gradient should come from that same conv's columns too.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.ops import winograd
from minigrad.ops.conv.depthwise import _is_depthwise
from minigrad.ops.conv.gemm import _gemm_columns_pass
from minigrad.ops.conv.nonfinite import _finite_on_cpu, _gemm_pass
from minigrad.ops.conv.pointwise import _is_pointwise
from minigrad.ops.im2col import ConvGeometry

WEIGHT_BOUND_ELEMENTS = 1 << 19
WEIGHT_BOUND_RATIO = 8


def _weight_bound(g: ConvGeometry) -> bool:
    """Whether the weight is large (WEIGHT_BOUND_ELEMENTS or more) and has WEIGHT_BOUND_RATIO times
    the input's elements or more (small images, many channels, as in a U-Net's bottleneck):
    there the reversed kernel's weight-sized copies (on the im2col path W reversed, and the
    weight gradient reversed back) and Winograd's (the transformed weight or weight gradient,
    16/9 of the weight) cost more than they save, and the col2im scatter of the small image is
    cheap. Measured in a UNet step (batch 4): at 8x8, 1024 channels (ratio 36), the conv's
    forward and backward 225 ms -> 87 ms; at 16x16, 512 channels (ratio 4.5) they are faster
    with Winograd and the reversed kernel (122 ms against 146). With OpenBLAS's AVX-512 kernels
    the ResNet34's 256-channel convs at 8x8 (ratio 9) also gain: both gradients 4.1-8.9 ms ->
    3.2-4.1, and 512 -> 256 at 8x8 9.5-21 ms -> 7.8-7.9."""
    weight = g.out_channels * g.col_rows // g.groups
    image = g.batch * g.in_channels * g.in_h * g.in_w
    return weight >= WEIGHT_BOUND_ELEMENTS and weight >= WEIGHT_BOUND_RATIO * image


def _reversed_geometry(g: ConvGeometry) -> ConvGeometry | None:
    """The stride-1 conv2d that computes the input gradient of a stride-1 conv2d.

    ``gx[h] = sum_i gy[h + p - i*d] W[i]`` is a correlation of gy with the kernel flipped and
    its in/out channels swapped within each group (:func:`_reversed_weight`), zero-padded by
    ``d*(k-1) - p``. Returns its geometry, gy (N, Co, Ho, Wo) -> (N, C, H, W), or None when the
    conv has a stride, pads more than that, or is :func:`_weight_bound` (col2im then).
    """
    pad_h, pad_w = g.dy * (g.kh - 1) - g.pad_h, g.dx * (g.kw - 1) - g.pad_w
    if (g.sy, g.sx) != (1, 1) or min(pad_h, pad_w) < 0 or _weight_bound(g):
        return None
    return ConvGeometry(
        g.batch,
        g.out_channels,
        g.out_h,
        g.out_w,
        g.in_channels,
        g.in_h,
        g.in_w,
        g.kh,
        g.kw,
        1,
        1,
        pad_h,
        pad_w,
        g.dy,
        g.dx,
        g.groups,
    )


def _reversed_weight(W, g: ConvGeometry):
    """The weight of the reversed conv: W (Co, C/groups, kh, kw) with its kernel flipped and
    its in/out channels swapped within each group, (C, Co/groups, kh, kw). Its own reversal
    (with the reversed geometry) is W again."""
    xp = backend.get_array_module(W)
    groups, c_out, c_in = g.groups, g.out_channels // g.groups, g.in_channels // g.groups
    w = W.reshape(groups, c_out, c_in, g.kh, g.kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    return xp.ascontiguousarray(w).reshape(g.in_channels, c_out, g.kh, g.kw)


def _backward_shares_gy(g: ConvGeometry, reversed_g: ConvGeometry | None) -> bool:
    """Whether :func:`conv_grads` should take both gradients from gy's columns (or transform).

    That saves building x's, but the weight-gradient GEMM changes shape, from (Co/groups)
    x (C/groups * kh * kw) to (Co/groups * kh * kw) x (C/groups), summed over x's positions
    instead of gy's. It pays when its thinner side is no thinner (or has 64+ rows, where BLAS
    runs at full speed) and x has not many more positions than gy (a padding-free conv with a
    large kernel has). Measured here, batch 8 to 16 at 32x32 to 64x64: 64 -> 16 channels ran
    1.3-2x faster shared, 3 -> 64 channels 1.4x slower (and is not shared).
    """
    if reversed_g is None or _is_depthwise(g) or _is_pointwise(g):
        return False
    c_in, c_out, taps = g.in_channels // g.groups, g.out_channels // g.groups, g.kh * g.kw
    thin_shared, thin_separate = min(c_in, c_out * taps), min(c_out, c_in * taps)
    positions_ratio = (g.in_h * g.in_w) / max(1, g.out_h * g.out_w)
    return thin_shared >= min(thin_separate, 64) and positions_ratio <= 1.25


def _grads_from_gy(x, W, gy, g: ConvGeometry, reversed_g: ConvGeometry) -> tuple:
    """(gx, gW) of a stride-1 conv2d on the CPU, both from gy's columns (or Winograd transform).

    The input gradient is the reversed conv of gy (:func:`_reversed_geometry`), and the weight
    gradient is that conv's own weight gradient (with x as its output gradient) reversed back:
    ``<gy, conv(x, W)> = <conv(gy, reversed W), x>``. So gy's columns serve both, and x's are
    never built. On the Winograd path (:func:`_winograd_grads`) W and its gradient stay in
    their own layout; im2col takes W reversed and reverses the gradient back.

    That sum also multiplies x by gy's zero padding, so an inf in x gives NaN where PyTorch's
    gives a number or inf (and Winograd spreads infs over tiles): a non-finite result is
    computed again by im2col, the usual way.
    """
    if winograd.supported(reversed_g):
        gx, gw = _winograd_grads(gy, W, x, g, reversed_g)
    else:
        with backend.quiet_invalid(gy):
            w_reversed = _reversed_weight(W, g)
            gx, gw_reversed = _gemm_columns_pass(gy, reversed_g, W=w_reversed, gy=x)
        gw = _reversed_weight(gw_reversed, reversed_g)
    return gx, gw if _finite_on_cpu(gw) else _gemm_pass(x, g, gy=gy)[1]


def _winograd_grads(gy, W, x, g: ConvGeometry, reversed_g: ConvGeometry) -> tuple:
    """(gx, gW or None) of a stride-1 conv2d from one Winograd pass over gy with the reversed
    kernel, :func:`winograd.forward_and_grad_weight` with ``reversed_kernel``: it reads W
    and returns gW in their own layout, so neither is copied reversed. The weight gradient
    is the reversed conv's own (``x`` its output gradient; None skips it). A non-finite gx
    is computed again by im2col (Winograd spreads infs over tiles); gW is the caller's to
    check."""
    with backend.quiet_invalid(gy):
        gx, gw = winograd.forward_and_grad_weight(gy, W, x, reversed_g, reversed_kernel=True)
        if not _finite_on_cpu(gx):
            gx = _gemm_pass(gy, reversed_g, W=_reversed_weight(W, g))[0]
    return gx, gw
