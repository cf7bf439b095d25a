"""Pooling: ``max_pool2d`` (with PyTorch's indices), ``max_unpool2d`` and ``avg_pool2d``.

Each op walks the pooling window with strided views of the input, one per kernel offset (four
for 2x2): Python loops only over kernel offsets, never over batch or pixels. Padding, and the
part of a ceil-mode window that runs past the input, lives in a small buffer filled with -inf
(max) or 0 (average); without either, the windows are views of the input itself (for 2x2 with
stride 2 they are the four phases of the ``(N, C, H/2, 2, W/2, 2)`` view).

Max pooling keeps, per output, the kernel offset of its maximum (``code``, one byte) instead of
int64 positions: the backward routes the gradient with one comparison per offset, and the
PyTorch indices (flat positions in each unpadded H*W plane) are one table lookup away.

On NumPy, :func:`for_each_plane_block` runs the ops on cache-sized blocks of (N, C) planes,
split over worker threads (NumPy ufuncs use one core and release the GIL); on CuPy each op
runs once over the whole arrays.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from minigrad import backend, parallel
from minigrad.autograd import Function
from minigrad.ops.arguments import is_int, positive_pair
from minigrad.ops.checks import check_float_tensor
from minigrad.tensor import Tensor

BLOCK_BYTES = 1 << 19
"""Input bytes per block: small enough that a block's temporaries stay in the L2 cache."""


def _plane_blocks(batch: int, channels: int, planes_per_block: int) -> list[tuple]:
    """Index tuples that cut (batch, channels) into blocks of about ``planes_per_block`` planes."""
    if planes_per_block >= channels:
        step = planes_per_block // channels
        return [(slice(n, n + step),) for n in range(0, batch, step)]
    return [
        (slice(n, n + 1), slice(c, c + planes_per_block))
        for n in range(batch)
        for c in range(0, channels, planes_per_block)
    ]


def for_each_plane_block(kernel, arrays: tuple, plane_bytes: int) -> None:
    """Call ``kernel(*blocks)`` on matching blocks of (N, C, ...) arrays (None passes through).

    On the GPU the kernel runs once on the whole arrays. On the CPU the planes are cut into
    blocks of about :data:`BLOCK_BYTES` (``plane_bytes`` is the size of one plane of the
    largest input) so that each block's temporaries stay in cache, and the blocks are shared
    between the CPU threads (:func:`minigrad.parallel.run_in_parts`). The kernel writes its
    results into the output blocks.
    """
    first = arrays[0]
    if not backend.is_cpu_array(first) or first.ndim < 2:
        kernel(*arrays)
        return
    per_block = max(1, BLOCK_BYTES // max(plane_bytes, 1))
    blocks = _plane_blocks(first.shape[0], first.shape[1], per_block)
    if len(blocks) <= 1:
        kernel(*arrays)
        return

    def run(keys) -> None:
        for key in keys:
            kernel(*(None if a is None else a[key] for a in arrays))

    parallel.run_in_parts(run, blocks)


# --------------------------------------------------------------------------- arguments


def _check_input(x: Tensor, op: str) -> None:
    check_float_tensor(op, "input", x)
    if x.ndim not in (3, 4) or min(x.shape[-3:]) == 0:
        raise ValueError(
            f"{op}: expected a non-empty 4-D input (N, C, H, W) or 3-D input (C, H, W), "
            f"got shape {x.shape}"
        )


def pooled_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """PyTorch's pooling output size along one axis.

    ``floor_or_ceil((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1``; in
    ceil mode the last window must start inside the input or its left padding.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@dataclass(frozen=True)
class PoolGeometry:
    """Where the windows of a 2-d pooling lie: kernel, stride, padding, dilation and sizes."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    in_size: tuple[int, int]
    out_size: tuple[int, int]

    def axes(self):
        """Per axis: (size, kernel, stride, padding, dilation, out_size)."""
        return zip(
            self.in_size,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            self.out_size,
            strict=True,
        )

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """The kernel offsets (i, j) in PyTorch's scan order (row-major)."""
        return [(i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1])]

    @property
    def buffer_size(self) -> tuple[int, int]:
        """(H, W) of the padded buffer: the input after its left padding, and every window."""
        return tuple(max(n + p, (o - 1) * s + (k - 1) * d + 1) for n, k, s, p, d, o in self.axes())

    @property
    def needs_buffer(self) -> bool:
        """True with padding or when a ceil-mode window runs past the input."""
        return self.buffer_size != self.in_size

    @property
    def overlapping(self) -> bool:
        """True when one input position can fall in several windows."""
        return any(s < (k - 1) * d + 1 for _, k, s, _, d, _ in self.axes())

    @property
    def tiles_buffer(self) -> bool:
        """True when the windows cover every buffer position exactly once."""
        return all(
            s == k and (k == 1 or d == 1) and o * s == b
            for (_, k, s, _, d, o), b in zip(self.axes(), self.buffer_size, strict=True)
        )

    def window(self, src, i: int, j: int):
        """The (…, Ho, Wo) strided view of ``src`` seen by kernel offset (i, j)."""
        (sh, sw), (dh, dw), (ho, wo) = self.stride, self.dilation, self.out_size
        return src[
            ..., i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw
        ]

    def interior(self, buffer):
        """The view of a padded buffer that holds the input."""
        (ph, pw), (h, w) = self.padding, self.in_size
        return buffer[..., ph : ph + h, pw : pw + w]

    def padded(self, x, fill: float):
        """``x`` itself, or a buffer holding ``x`` with ``fill`` around it."""
        if not self.needs_buffer:
            return x
        buffer = backend.get_array_module(x).full(
            x.shape[:-2] + self.buffer_size, fill, dtype=x.dtype
        )
        self.interior(buffer)[...] = x
        return buffer

    def gradient_buffer(self, gx):
        """Where a backward accumulates: ``gx`` itself or a zeroed padded buffer."""
        xp = backend.get_array_module(gx)
        if self.needs_buffer:
            make = xp.empty if self.tiles_buffer else xp.zeros
            return make(gx.shape[:-2] + self.buffer_size, dtype=gx.dtype)
        if not self.tiles_buffer:
            gx.fill(0)
        return gx

    def plane_bytes(self, itemsize: int) -> int:
        return self.buffer_size[0] * self.buffer_size[1] * itemsize


def pool_geometry(
    x: Tensor, op: str, kernel_size, stride, padding, dilation, ceil_mode: bool
) -> PoolGeometry:
    """Check the pooling arguments as PyTorch does and compute the output size."""
    kernel = positive_pair(kernel_size, "kernel_size", op)
    stride = (
        kernel
        if stride is None or stride == [] or stride == ()
        else positive_pair(stride, "stride", op)
    )
    padding = positive_pair(padding, "padding", op, minimum=0)
    dilation = positive_pair(dilation, "dilation", op)
    if any(p > k // 2 for p, k in zip(padding, kernel, strict=True)):
        raise ValueError(
            f"{op}: padding should be at most half of kernel_size, got padding={padding} "
            f"and kernel_size={kernel}"
        )
    in_size = tuple(x.shape[-2:])
    out_size = tuple(
        pooled_size(n, k, s, p, d, ceil_mode)
        for n, k, s, p, d in zip(in_size, kernel, stride, padding, dilation, strict=True)
    )
    if min(out_size) < 1:
        raise ValueError(
            f"{op}: input of spatial size {in_size} gives output size {out_size} with "
            f"kernel_size={kernel}, stride={stride}, padding={padding}, dilation={dilation}; "
            "the output size must be at least 1"
        )
    return PoolGeometry(kernel, stride, padding, dilation, in_size, out_size)


def _batched(x):
    """A 4-D view of a 3-D (C, H, W) or 4-D array."""
    return x if x.ndim == 4 else x[None]


# --------------------------------------------------------------------------- max pooling


class MaxPool2d(Function):
    """Max over each window; ties go to the first maximum in scan order, as in PyTorch.

    The forward keeps a running maximum over the kernel offsets and the offset ``code`` of
    the winner (one byte per output). The backward writes each output gradient to the winner
    of its window: a direct write per offset when windows don't overlap, an accumulation
    when they do.
    """

    def forward(self, x, geometry: PoolGeometry, return_indices: bool):
        xp = backend.get_array_module(x)
        self.geometry, self.in_shape = geometry, x.shape
        x4 = _batched(x)
        out_shape = x4.shape[:2] + geometry.out_size
        out = xp.empty(out_shape, dtype=x.dtype)
        code_type = xp.uint8 if len(geometry.offsets) <= 256 else xp.int32
        code = xp.empty(out_shape, dtype=code_type)
        indices = xp.empty(out_shape, dtype=xp.int64) if return_indices else None
        lookup = self._index_lookup(xp) if return_indices else None
        for_each_plane_block(
            functools.partial(self._forward_block, lookup=lookup),
            (x4, out, code, indices),
            geometry.plane_bytes(x.itemsize),
        )
        self.save_for_backward(code)
        if x.ndim == 3:
            out, indices = out[0], None if indices is None else indices[0]
        return (out, indices) if return_indices else out

    def _index_lookup(self, xp):
        """(table, base): the flat index of offset k in the window of output (oh, ow) is
        ``base[oh, ow] + table[k]``, in the unpadded H*W plane."""
        g = self.geometry
        (sh, sw), (ph, pw), (dh, dw), width = g.stride, g.padding, g.dilation, g.in_size[1]
        rows = (xp.arange(g.out_size[0], dtype=xp.int64) * sh - ph) * width
        cols = xp.arange(g.out_size[1], dtype=xp.int64) * sw - pw
        kernel_rows = xp.arange(g.kernel[0], dtype=xp.int64) * (dh * width)
        kernel_cols = xp.arange(g.kernel[1], dtype=xp.int64) * dw
        table = (kernel_rows[:, None] + kernel_cols).reshape(-1)
        return table, rows[:, None] + cols

    def _forward_block(self, x, out, code, indices, lookup) -> None:
        g = self.geometry
        xp = backend.get_array_module(x)
        src = g.padded(x, float("-inf"))
        candidate = xp.empty_like(out)
        for k, (i, j) in enumerate(g.offsets):
            window = g.window(src, i, j)
            if k == 0:
                out[...] = window
                code.fill(0)
                continue
            candidate[...] = window
            better = candidate > out
            xp.maximum(out, candidate, out=out)
            xp.maximum(code, xp.multiply(better, k, dtype=code.dtype), out=code)
        if indices is not None:
            table, base = lookup
            xp.take(table, code.astype(xp.int64), out=indices)
            indices += base

    def backward(self, gy):
        (code,) = self.saved
        xp = backend.get_array_module(gy)
        gx = xp.empty(self.in_shape, dtype=gy.dtype)
        for_each_plane_block(
            self._backward_block,
            (_batched(gy), code, _batched(gx)),
            self.geometry.plane_bytes(gy.itemsize),
        )
        return gx

    def _backward_block(self, gy, code, gx) -> None:
        g = self.geometry
        xp = backend.get_array_module(gy)
        dst = g.gradient_buffer(gx)
        for k, (i, j) in enumerate(g.offsets):
            window = g.window(dst, i, j)
            if g.overlapping:
                window += gy * (code == k)
            else:
                xp.multiply(gy, code == k, out=window)
        if dst is not gx:
            gx[...] = g.interior(dst)


def max_pool2d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """2-d max pooling, as ``torch.nn.functional.max_pool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W) floating-point tensor.
        kernel_size, stride, padding, dilation: an int or a pair (height, width); ``stride``
            defaults to ``kernel_size``; padding (implicit -inf) is at most half the kernel.
        ceil_mode: round the output size up; the last window must still start inside the
            input or its left padding.
        return_indices: also return the int64 position of each maximum, flat within its
            unpadded H*W plane (PyTorch's format, for ``max_unpool2d``).

    Shapes:
        input (N, C, H, W) -> output and indices (N, C, Ho, Wo), with
        ``Ho = floor_or_ceil((H + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1``
        (likewise Wo).

    Ties go to the first maximum in the window's row-major scan, as in PyTorch. A NaN
    propagates to the output value; its index may differ from PyTorch's.
    """
    _check_input(input, "max_pool2d")
    geometry = pool_geometry(input, "max_pool2d", kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPool2d.apply(input, geometry=geometry, return_indices=bool(return_indices))


# --------------------------------------------------------------------------- average pooling


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


# --------------------------------------------------------------------------- max unpooling


class MaxUnpool2d(Function):
    """Scatter each input value to its index in a zero output plane; the backward gathers.

    Indices become flat positions in the whole output (index + plane * Ho * Wo) for one
    scatter; the backward keeps only the indices (alive anyway as an input) and rebuilds them.
    """

    def forward(self, x, indices, out_size: tuple[int, int]):
        xp = backend.get_array_module(x)
        self.in_shape, self.area = x.shape, out_size[0] * out_size[1]
        planes = x.shape[:-2]
        out = xp.zeros(math.prod(planes) * self.area, dtype=x.dtype)
        out[self._flat_positions(indices)] = x.reshape(-1)
        self.save_for_backward(indices)
        return out.reshape(planes + tuple(out_size))

    def _flat_positions(self, indices):
        xp = backend.get_array_module(indices)
        count = math.prod(self.in_shape[:-2])
        offsets = xp.arange(count, dtype=xp.int64) * self.area
        flat = indices.reshape(count, -1).astype(xp.int64, copy=False) + offsets[:, None]
        return flat.reshape(-1)

    def backward(self, gy):
        (indices,) = self.saved
        return gy.reshape(-1).take(self._flat_positions(indices)).reshape(self.in_shape), None


def unpooled_size(x: Tensor, kernel, stride, padding, output_size) -> tuple[int, int]:
    """PyTorch's ``_unpool_output_size``: ``(H - 1) * stride - 2 * padding + kernel``, or
    ``output_size`` (its last two entries) within ``stride`` of that default."""
    default = tuple(
        (n - 1) * s - 2 * p + k
        for n, s, p, k in zip(x.shape[-2:], stride, padding, kernel, strict=True)
    )
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2 or not all(is_int(n) for n in size):
            raise ValueError(
                f"max_unpool2d: output_size must hold 2 or 4 ints, got {output_size!r}"
            )
        for d, (n, base, s) in enumerate(zip(size, default, stride, strict=True)):
            if not base - s < n < base + s:
                raise ValueError(
                    f"max_unpool2d: invalid output_size {tuple(output_size)} (dim {d} must be "
                    f"between {base - s} and {base + s}, exclusive)"
                )
        size = tuple(int(n) for n in size)
    if min(size) < 1:
        raise ValueError(
            f"max_unpool2d: output size {size} must be positive (input spatial size "
            f"{tuple(x.shape[-2:])}, kernel_size={kernel}, stride={stride}, padding={padding})"
        )
    return size


def _check_unpool_indices(x: Tensor, indices, size: tuple[int, int]) -> None:
    if not isinstance(indices, Tensor):
        raise TypeError(f"max_unpool2d: indices must be a Tensor, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(
            f"max_unpool2d: indices must be an integer tensor, got dtype {indices.dtype}"
        )
    if indices.shape != x.shape:
        raise ValueError(
            f"max_unpool2d: indices must have the input's shape {x.shape}, got {indices.shape}"
        )
    area = size[0] * size[1]
    if backend.is_cpu_array(indices.data) and indices.numel():
        low, high = int(indices.data.min()), int(indices.data.max())
        if low < 0 or high >= area:
            raise ValueError(
                f"max_unpool2d: indices must lie in [0, {area}) for output size {size}, "
                f"got values from {low} to {high}"
            )


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    output_size=None,
) -> Tensor:
    """Partial inverse of ``max_pool2d``, as ``torch.nn.functional.max_unpool2d``.

    Args:
        input: (N, C, H, W) or (C, H, W) floating-point tensor (pooled values).
        indices: integer tensor of the input's shape, as returned by
            ``max_pool2d(..., return_indices=True)``: flat positions in each output plane.
        kernel_size, stride, padding: those of the pooling; ``stride`` defaults to
            ``kernel_size``.
        output_size: (Ho, Wo) or (N, C, Ho, Wo), to undo a pooling that dropped rows.

    Shapes:
        input (N, C, H, W) -> (N, C, Ho, Wo), with ``Ho = (H - 1) * stride - 2 * padding +
        kernel`` (likewise Wo) unless ``output_size`` is given. Positions no index names
        are 0. Out-of-range indices raise on the CPU; on the GPU they are not checked, since
        that would need a device-to-host sync.
    """
    _check_input(input, "max_unpool2d")
    kernel = positive_pair(kernel_size, "kernel_size", "max_unpool2d")
    stride = kernel if stride is None else positive_pair(stride, "stride", "max_unpool2d")
    padding = positive_pair(padding, "padding", "max_unpool2d", minimum=0)
    size = unpooled_size(input, kernel, stride, padding, output_size)
    _check_unpool_indices(input, indices, size)
    return MaxUnpool2d.apply(input, indices, out_size=size)
