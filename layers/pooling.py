"""Pooling layers: ``MaxPool2d``, ``MaxUnpool2d`` and ``AvgPool2d``, as ``torch.nn``'s.

They hold no parameters. Arguments are checked at construction (PyTorch checks them in the
first forward) and kept as given, so ``repr`` reads as PyTorch's.
"""

from __future__ import annotations

import minigrad.functional as F
from layers.arguments import check_bool, spatial_pair
from layers.module import Module
from minigrad.ops.arguments import is_int


def _check_window(layer: str, kernel_size, stride, padding, dilation=1) -> None:
    """Positive kernel, stride and dilation, padding at most half the kernel."""
    kernel = spatial_pair(kernel_size, "kernel_size", layer)
    if stride is not None:
        spatial_pair(stride, "stride", layer)
    spatial_pair(dilation, "dilation", layer)
    pad = spatial_pair(padding, "padding", layer, minimum=0)
    if any(p > k // 2 for p, k in zip(pad, kernel, strict=True)):
        raise ValueError(
            f"{layer}: padding {padding!r} should be at most half of kernel_size {kernel_size!r}"
        )


class MaxPool2d(Module):
    """Max over each window, as ``torch.nn.MaxPool2d``.

    Args:
        kernel_size: an int or a pair (kh, kw).
        stride: an int or a pair; defaults to ``kernel_size``.
        padding: implicit -inf padding on both sides, at most half the kernel.
        dilation: spacing between window elements.
        return_indices: also return the flat index of each maximum within its H*W plane
            (for :class:`MaxUnpool2d`).
        ceil_mode: round the output size up instead of down.

    Shapes:
        input (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo), with
        ``Ho = floor_or_ceil((H + 2 * p - d * (k - 1) - 1) / s) + 1`` (likewise Wo).
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__()
        layer = type(self).__name__
        _check_window(layer, kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = check_bool(return_indices, "return_indices", layer)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", layer)

    def forward(self, input):
        return F.max_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxUnpool2d(Module):
    """Partial inverse of :class:`MaxPool2d`: each value back at its index, zeros elsewhere.

    Args:
        kernel_size, stride, padding: those of the pooling (``stride`` defaults to
            ``kernel_size``); kept as pairs, as PyTorch.

    ``forward(input, indices, output_size=None)``: ``output_size`` (Ho, Wo) or (N, C, Ho, Wo)
    undoes a pooling that dropped rows or columns.

    Shapes:
        input and indices (N, C, H, W) -> (N, C, Ho, Wo), with
        ``Ho = (H - 1) * stride - 2 * padding + kernel`` (likewise Wo) by default.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        layer = type(self).__name__
        self.kernel_size = spatial_pair(kernel_size, "kernel_size", layer)
        self.stride = self.kernel_size if stride is None else spatial_pair(stride, "stride", layer)
        self.padding = spatial_pair(padding, "padding", layer, minimum=0)

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(
            input, indices, self.kernel_size, self.stride, self.padding, output_size
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Mean over each window, as ``torch.nn.AvgPool2d``.

    Args:
        kernel_size, stride, padding, ceil_mode: as :class:`MaxPool2d` (zero padding).
        count_include_pad: count the zero padding in each window's divisor.
        divisor_override: divide every window's sum by this int instead.

    Shapes:
        input (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo), with
        ``Ho = floor_or_ceil((H + 2 * p - k) / s) + 1`` (likewise Wo).
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ):
        super().__init__()
        layer = type(self).__name__
        _check_window(layer, kernel_size, stride, padding)
        if divisor_override is not None and (not is_int(divisor_override) or divisor_override == 0):
            raise ValueError(
                f"{layer}: divisor_override must be a non-zero int or None, got "
                f"{divisor_override!r}"
            )
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", layer)
        self.count_include_pad = check_bool(count_include_pad, "count_include_pad", layer)
        self.divisor_override = divisor_override

    def forward(self, input):
        return F.avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


__all__ = ["AvgPool2d", "MaxPool2d", "MaxUnpool2d"]
