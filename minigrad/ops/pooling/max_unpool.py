"""``max_unpool2d``: the partial inverse of ``max_pool2d``, one scatter and one gather."""

from __future__ import annotations

import math

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.arguments import is_int, positive_pair
from minigrad.ops.pooling.geometry import _check_input
from minigrad.tensor import Tensor


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

    Reference: :func:`minigrad.reference.max_unpool2d_forward` and
    :func:`minigrad.reference.max_unpool2d_backward`. This op adds: the indices turned into
    flat positions in the whole output (index + plane * Ho * Wo), so the forward is one
    scatter and the backward one ``take``; the backward keeps only the indices, which are
    alive anyway as an input.
    """
    _check_input(input, "max_unpool2d")
    kernel = positive_pair(kernel_size, "kernel_size", "max_unpool2d")
    stride = kernel if stride is None else positive_pair(stride, "stride", "max_unpool2d")
    padding = positive_pair(padding, "padding", "max_unpool2d", minimum=0)
    size = unpooled_size(input, kernel, stride, padding, output_size)
    _check_unpool_indices(input, indices, size)
    return MaxUnpool2d.apply(input, indices, out_size=size)
