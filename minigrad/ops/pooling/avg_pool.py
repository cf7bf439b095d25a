"""``avg_pool2d``: window sums over strided views, divided by PyTorch's divisor."""

from __future__ import annotations

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.arguments import is_int
from minigrad.ops.pooling.blocks import for_each_plane_block
from minigrad.ops.pooling.geometry import PoolGeometry, _batched, _check_input, pool_geometry
from minigrad.tensor import Tensor


def _uniform_divisor(geometry: PoolGeometry, count_include_pad: bool) -> bool:
    """True when every window has the full kernel area as its divisor."""
    for n, k, s, p, _, o in geometry.axes():
        last_end = (o - 1) * s - p + k
        if last_end > n + p or (not count_include_pad and (p > 0 or last_end > n)):
            return False
    return True


def _window_divisors(xp, geometry: PoolGeometry, count_include_pad: bool, dtype):
    """PyTorch's per-output divisor: the window clipped to the padded input, then (without
    ``count_include_pad``) to the input itself; an (Ho, Wo) array."""
    sides = []
    for n, k, s, p, _, o in geometry.axes():
        start = xp.arange(o, dtype=xp.int64) * s - p
        end = xp.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, n)
        sides.append((end - start).astype(dtype))
    return sides[0][:, None] * sides[1]


class AvgPool2d(Function):
    """Mean over each window with PyTorch's divisor; the backward spreads gy / divisor."""

    def forward(self, x, geometry: PoolGeometry, divisor):
        self.geometry, self.divisor, self.in_shape = geometry, divisor, x.shape
        xp = backend.get_array_module(x)
        x4 = _batched(x)
        out = xp.empty(x4.shape[:2] + geometry.out_size, dtype=x.dtype)
        for_each_plane_block(self._forward_block, (x4, out), geometry.plane_bytes(x.itemsize))
        return out if x.ndim == 4 else out[0]

    def _forward_block(self, x, out) -> None:
        g = self.geometry
        src = g.padded(x, 0.0)
        for k, (i, j) in enumerate(g.offsets):
            if k == 0:
                out[...] = g.window(src, i, j)
            else:
                out += g.window(src, i, j)
        out /= self.divisor

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.empty(self.in_shape, dtype=gy.dtype)
        for_each_plane_block(
            self._backward_block,
            (_batched(gy), _batched(gx)),
            self.geometry.plane_bytes(gy.itemsize),
        )
        return gx

    def _backward_block(self, gy, gx) -> None:
        g = self.geometry
        share = gy / self.divisor
        dst = g.gradient_buffer(gx)
        for i, j in g.offsets:
            window = g.window(dst, i, j)
            if g.overlapping:
                window += share
            else:
                window[...] = share
        if dst is not gx:
            gx[...] = g.interior(dst)


def avg_pool2d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-d average pooling, as ``torch.nn.functional.avg_pool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W) floating-point tensor.
        kernel_size, stride, padding: an int or a pair; ``stride`` defaults to
            ``kernel_size``; zero padding of at most half the kernel.
        ceil_mode: round the output size up (the last window starts inside the input or
            its left padding).
        count_include_pad: divide by the window area including the zero padding. Either way
            the part of a ceil-mode window past the right padding is not counted.
        divisor_override: divide every window sum by this instead.

    Shapes:
        input (N, C, H, W) -> (N, C, Ho, Wo), with
        ``Ho = floor_or_ceil((H + 2 * padding - kernel) / stride) + 1`` (likewise Wo).
    """
    _check_input(input, "avg_pool2d")
    geometry = pool_geometry(input, "avg_pool2d", kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if not is_int(divisor_override):
            raise TypeError(
                f"avg_pool2d: divisor_override must be an int, got {divisor_override!r}"
            )
        if divisor_override == 0:
            raise ValueError("avg_pool2d: divisor_override must not be zero")
        divisor = int(divisor_override)
    elif _uniform_divisor(geometry, count_include_pad):
        divisor = geometry.kernel[0] * geometry.kernel[1]
    else:
        divisor = _window_divisors(input.xp, geometry, count_include_pad, input.dtype)
    return AvgPool2d.apply(input, geometry=geometry, divisor=divisor)
