"""The arguments of a pooling, checked as PyTorch checks them, and where its windows lie.

:class:`PoolGeometry` holds the kernel, stride, padding, dilation and sizes, and gives the
strided view each kernel offset sees (``window``): the pooling ops loop in Python only over
kernel offsets (four for 2x2), never over batch or pixels. Padding, and the part of a
ceil-mode window that runs past the input, lives in a small buffer filled with -inf (max) or
0 (average); without either, the windows are views of the input itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from minigrad import backend
from minigrad.ops.arguments import positive_pair
from minigrad.ops.checks import check_float_tensor
from minigrad.tensor import Tensor


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
