"""Where PyTorch puts infs and NaNs: the fast paths' CPU results checked, and recomputed.

Two shortcuts can turn an inf in the input into NaNs PyTorch does not give (``inf * 0``):
the extra columns of im2col's wide layout, which hold real pixels, enter the weight-gradient
GEMM, and Winograd spreads an inf over the tiles around it. On the CPU a result is checked
with one sum, and a non-finite one computed again the plain way (wide-layout extras cleared,
or im2col instead of Winograd). On the GPU the check would wait for the device: there the
extras are always cleared, and Winograd's infs may cover whole 2x2 tiles.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.ops import winograd
from minigrad.ops.conv.gemm import _gemm_columns_pass
from minigrad.ops.im2col import ConvGeometry


def _gemm_pass(x, g: ConvGeometry, W=None, gy=None) -> tuple:
    """:func:`_gemm_columns_pass` with the extra columns of the wide layout left in place at
    first (clearing them is a slow strided write): only a non-finite weight gradient, which an
    inf among them could cause, is computed again with them cleared. On the GPU they are always
    cleared, since the check would wait for the device."""
    on_cpu = backend.is_cpu_array(x)
    with backend.quiet_invalid(x):
        y, gw = _gemm_columns_pass(x, g, W=W, gy=gy, zero_garbage=not on_cpu)
        if gw is not None and not _finite_input_or_result(x, gw):
            gw = _gemm_columns_pass(x, g, gy=gy, zero_garbage=True)[1]
    return y, gw


def _finite_on_cpu(result) -> bool:
    """False only for a NumPy result with an inf or NaN (one sum: cheaper than isfinite; a sum
    that overflows merely costs a needless recomputation). GPU results are not checked: that
    would wait for the device."""
    if not backend.is_cpu_array(result):
        return True
    with backend.quiet_invalid(result):
        return bool(backend.get_array_module(result).isfinite(result.sum()))


def _finite_input_or_result(x, result) -> bool:
    """Whether the weight gradient ``result`` of :func:`_gemm_pass` needs no second pass: x is
    finite (then so are the wide layout's extra columns, and they meet only gy's zeros), or
    the result is. The smaller of the two is summed first: with a small image and a large
    weight (512 channels at 4x4, batch 4) x has 32k values against the gradient's 2.4M, a
    0.35 ms sum saved per backward; x is finite in all but rare steps."""
    if x.size < result.size and _finite_on_cpu(x):
        return True
    return _finite_on_cpu(result)


def _winograd_pass(x, g: ConvGeometry, W=None, gy=None) -> tuple:
    """Winograd's (conv2d of x and W, weight gradient of x and gy), as :func:`_gemm_pass`, from
    one input transform. On the CPU a non-finite result is computed again by im2col, which puts
    the infs and NaNs where PyTorch does (Winograd spreads them over whole tiles)."""
    with backend.quiet_invalid(x):
        y, gw = winograd.forward_and_grad_weight(x, W, gy, g)
    if y is not None and not _finite_on_cpu(y):
        y = _gemm_pass(x, g, W=W)[0]
    if gw is not None and not _finite_on_cpu(gw):
        gw = _gemm_pass(x, g, gy=gy)[1]
    return y, gw
