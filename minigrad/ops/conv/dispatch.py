"""Which algorithm runs a conv: the three array kernels of the family, and the backward pair.

- :func:`conv_forward`: the conv2d output;
- :func:`conv_grad_input`: its adjoint wrt the input, which is also the conv_transpose2d output;
- :func:`conv_grad_weight`: the weight gradient, shared by both;
- :func:`conv_grads` and :func:`conv_forward_and_grad_weight`: two of them from one pass.

Each picks its path from the geometry alone: depthwise, pointwise, the shifted-window GEMMs
(dense stride-1 convs on the CPU, :mod:`~minigrad.ops.conv.shifted`), Winograd (3x3 stride 1
with many channels per group) or im2col + GEMM. The input gradient of a stride-1 conv is the conv
of gy with the reversed kernel, which makes the same choice (in conv2d's backward without the
shifted windows, see :func:`conv_grad_input`); strided convs take col2im, or one stride-1 conv
per output phase (:mod:`~minigrad.ops.conv.sub_pixel`). A conv
whose large weight outnumbers its input many times (:func:`_weight_bound`) takes neither
Winograd nor the reversed kernel: their weight-sized temporaries cost more than they save.
On the CPU it runs on compact pixel-major columns instead (:mod:`~minigrad.ops.conv.
pixel_major`), its two gradients side by side.
"""

from __future__ import annotations

import functools

from minigrad import backend, cblas, parallel
from minigrad.ops import winograd
from minigrad.ops.conv import pixel_major, shifted, sub_pixel
from minigrad.ops.conv.depthwise import (
    _depthwise_forward,
    _depthwise_grad_input,
    _depthwise_grad_weight,
    _is_depthwise,
)
from minigrad.ops.conv.gemm import _gemm_grad_input
from minigrad.ops.conv.nonfinite import _gemm_pass, _winograd_pass
from minigrad.ops.conv.pointwise import (
    _is_pointwise,
    _pointwise_forward,
    _pointwise_grad_input,
    _pointwise_grad_weight,
)
from minigrad.ops.conv.reversed_kernel import (
    _backward_shares_gy,
    _grads_from_gy,
    _reversed_geometry,
    _reversed_weight,
    _weight_bound,
    _winograd_grads,
)
from minigrad.ops.im2col import ConvGeometry


def _shifted(g: ConvGeometry, x) -> bool:
    """Whether the shifted-window GEMMs run this conv on array ``x``: :func:`shifted.supported`,
    and not :func:`_weight_bound` (a small image with a large weight, where im2col's one GEMM
    beats kh*kw thin ones)."""
    return shifted.supported(g, x) and shifted.pays(g) and not _weight_bound(g)


def _pixel_major(g: ConvGeometry, array) -> bool:
    """Whether the compact pixel-major columns run this conv on ``array``: a
    :func:`_weight_bound` conv that :func:`pixel_major.supported` takes (the wide layout's
    extra columns would cost their full share of its weight-bound GEMMs)."""
    return _weight_bound(g) and pixel_major.supported(g, array)


def _winograd(g: ConvGeometry) -> bool:
    """Whether Winograd runs this conv: :func:`winograd.supported`, and not
    :func:`_weight_bound` (its transformed weight, or weight gradient, is a fresh array 16/9
    the weight's size, which costs more than the small image's GEMMs save)."""
    return winograd.supported(g) and not _weight_bound(g)


def conv_forward(x, W, g: ConvGeometry, *, shifted_windows: bool = True):
    """The conv2d of arrays x (N, C, H, W) and W (Co, C/groups, kh, kw): (N, Co, Ho, Wo).

    ``shifted_windows=False`` keeps it off the shifted-window GEMMs (see
    :func:`conv_grad_input`)."""
    if _is_depthwise(g):
        return _depthwise_forward(x, W, g)
    if _is_pointwise(g):
        return _pointwise_forward(x, W, g)
    if _pixel_major(g, x):
        return pixel_major.forward(x, W, g)
    if shifted_windows and _shifted(g, x):
        return shifted.forward(x, W, g)
    if _winograd(g):
        return _winograd_pass(x, g, W=W)[0]
    return _gemm_pass(x, g, W=W)[0]


def conv_grad_input(gy, W, g: ConvGeometry, *, shifted_windows: bool = True):
    """The adjoint of :func:`conv_forward` wrt x: gy (N, Co, Ho, Wo) -> gx (N, C, H, W).

    This is also the forward of conv_transpose2d with the same weight. A stride-1 conv's
    adjoint is itself a conv (of gy with the reversed kernel, see :func:`_reversed_geometry`),
    which is faster than the scatter of col2im; strided convs take col2im(W^T @ gy), or, where
    :func:`sub_pixel.pays`, one stride-1 conv of gy per output phase (:mod:`~minigrad.ops.conv.
    sub_pixel`), each on these same paths. On the
    Winograd path the reversed kernel's transform is made from W itself
    (:func:`_winograd_grads`); the other paths take W reversed.

    conv2d's backward passes ``shifted_windows=False``: the shifted windows pay in a forward,
    whose rounding every gradient inherits (a ResNet34-U-Net's float32 gradients came out
    0.99x PyTorch's error from the float64 step with them in the forward alone, 0.95x in
    both, 1.26x in neither), but as the input gradient they ran slower in a training step
    than im2col or Winograd on gy's shared columns (ResNet34-U-Net, batch 4 at 128x128: 0.365 s
    fastest step against 0.421).
    """
    xp = backend.get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    if _is_pointwise(g):
        return _pointwise_grad_input(gy, W, g)
    if _pixel_major(g, gy):
        return pixel_major.grad_input(gy, W, g)
    if sub_pixel.pays(g, gy):
        phase_conv = functools.partial(conv_forward, shifted_windows=shifted_windows)
        return sub_pixel.grad_input(gy, W, g, phase_conv)
    reversed_g = _reversed_geometry(g)
    if reversed_g is None:
        return _depthwise_grad_input(gy, W, g) if _is_depthwise(g) else _gemm_grad_input(gy, W, g)
    if _winograd(reversed_g) and not (shifted_windows and _shifted(reversed_g, gy)):
        return _winograd_grads(gy, W, None, g, reversed_g)[0]
    return conv_forward(gy, _reversed_weight(W, g), reversed_g, shifted_windows=shifted_windows)


def conv_grad_weight(x, gy, g: ConvGeometry):
    """The gradient of ``<gy, conv_forward(x, W)>`` wrt W: (Co, C/groups, kh, kw)."""
    xp = backend.get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    if _is_depthwise(g):
        return _depthwise_grad_weight(x, gy, g)
    if _is_pointwise(g):
        return _pointwise_grad_weight(x, gy, g)
    if _pixel_major(g, x):
        return pixel_major.grad_weight(x, gy, g)
    if _winograd(g):
        return _winograd_pass(x, g, gy=gy)[1]
    return _gemm_pass(x, g, gy=gy)[1]


def conv_grads(x, W, gy, g: ConvGeometry) -> tuple:
    """(:func:`conv_grad_input`, :func:`conv_grad_weight`): the backward of a conv2d whose input
    and weight both need a gradient.

    On the CPU a weight-bound conv takes the two side by side on two threads
    (:func:`_grads_side_by_side`), and a stride-1 conv (im2col or Winograd) can take both
    from gy's columns (or transform), :func:`_grads_from_gy`, when
    :func:`_backward_shares_gy` says it pays. On the GPU, where the check for non-finite
    results would wait for the device, they stay separate.
    """
    xp = backend.get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    if _side_by_side(g, gy):
        return _grads_side_by_side(x, W, gy, g)
    reversed_g = _reversed_geometry(g)
    if not backend.is_cpu_array(gy) or not _backward_shares_gy(g, reversed_g):
        return conv_grad_input(gy, W, g, shifted_windows=False), conv_grad_weight(x, gy, g)
    return _grads_from_gy(x, W, gy, g, reversed_g)


def _side_by_side(g: ConvGeometry, gy) -> bool:
    """Whether :func:`_grads_side_by_side` runs the backward: a :func:`_weight_bound` conv
    (whose weight is too large for the threads to share its tiles) on the CPU, with two
    threads or more and a BLAS that :func:`cblas.single_threaded` can hold on one."""
    return (
        backend.is_cpu_array(gy)
        and parallel.THREADS > 1
        and _weight_bound(g)
        and cblas.can_run_single_threaded()
    )


def _grads_side_by_side(x, W, gy, g: ConvGeometry) -> tuple:
    """(gx, gW) of a weight-bound conv, each on its own thread with BLAS single-threaded.

    Run one after the other, each gradient alternates single-threaded copies (gy into the
    work layout, im2col, col2im) with a two-thread GEMM, and a core idles through every copy;
    side by side, one thread's copies overlap the other's GEMM. Measured in ResNet34-U-Net
    training steps (batch 4 at 128x128), the backward of its weight-bound convs (256
    channels at 8x8, 512 at 4x4, 512 -> 256 at 8x8) took 71.5 ms against 77.6 (median).

    The calling thread starts at once and the worker a wake-up later (0.1-0.3 ms here), so
    on the pixel-major path the calling thread takes the longer gradient, the input's (it
    also adds its columns back into the image), and the worker writes the weight gradient
    into an array allocated here. That array outlives the step as ``.grad``, and glibc's
    malloc gives each thread its own arena: with the weight gradients made in the worker's,
    the calling thread kept mapping fresh memory (4,700 page faults per ResNet34-U-Net step
    against 12). Measured alone (batch 4, float32): 256 channels at 8x8 2.18 ms against 2.29
    the other way round, 512 at 4x4 2.72 against 2.95, 512 -> 256 at 8x8 5.96 against 8.00.
    A weight gradient that comes from im2col (a strided or grouped conv) is made on the
    calling thread.
    """
    grads = [None, None]
    # conv_grad_weight's own choice: pixel_major.supported takes no grouped or 1x1 conv, so
    # neither the depthwise nor the pointwise path comes first.
    into_given = _pixel_major(g, x)
    gw = backend.get_array_module(gy).empty(g.weight_shape, dtype=gy.dtype) if into_given else None

    def run(which: list) -> None:
        for k in which:
            if k == 0:
                grads[0] = conv_grad_input(gy, W, g, shifted_windows=False)
            elif into_given:
                grads[1] = pixel_major.grad_weight(x, gy, g, out=gw)
            else:
                grads[1] = conv_grad_weight(x, gy, g)

    with cblas.single_threaded():
        parallel.run_in_parts(run, [0, 1] if into_given else [1, 0], parts=2)
    return grads[0], grads[1]


def conv_forward_and_grad_weight(x, W, gy, g: ConvGeometry) -> tuple:
    """(:func:`conv_forward` of x and W, :func:`conv_grad_weight` of x and gy), either None
    when its W or gy is None: the backward of conv_transpose2d. On the im2col and Winograd
    paths both read the same columns (or transform) of x, built once."""
    if W is None and gy is None:
        return None, None
    if _is_depthwise(g) or _is_pointwise(g) or _pixel_major(g, x):
        y = None if W is None else conv_forward(x, W, g)
        return y, None if gy is None else conv_grad_weight(x, gy, g)
    xp = backend.get_array_module(x)
    gy = None if gy is None else xp.ascontiguousarray(gy)
    return (_winograd_pass if _winograd(g) else _gemm_pass)(x, g, W=W, gy=gy)
