"""The arguments of a convolution, checked as PyTorch checks them, and its geometry.

:func:`conv2d_geometry` and :func:`conv_transpose2d_geometry` turn the user's arguments into
one :class:`~minigrad.ops.im2col.ConvGeometry` (always seen from the conv2d side, since a
transposed conv is the adjoint of a conv2d), with errors that name the argument and show the
expected and actual values. The output size is ``floor((H + 2*ph - dy*(kh-1) - 1) / sy) + 1``
for conv2d and ``(H-1)*sy - 2*ph + dy*(kh-1) + output_padding + 1`` for conv_transpose2d.
"""

from __future__ import annotations

from minigrad.ops.arguments import is_int, pair, positive_pair
from minigrad.ops.im2col import ConvGeometry
from minigrad.ops.shape import unsqueeze
from minigrad.tensor import Tensor


def _padding_pairs(padding, kernel: tuple, stride: tuple, dilation: tuple, op: str) -> tuple:
    """((top, bottom), (left, right)) for an int/pair padding or "same"/"valid" (conv2d only)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(
                f"{op}: padding must be 'valid', 'same', an int or a pair, got {padding!r}"
            )
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1, got stride={stride}")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return tuple((t // 2, t - t // 2) for t in totals)
    ph, pw = positive_pair(padding, "padding", op, minimum=0)
    return (ph, ph), (pw, pw)


def _check_tensors(op: str, input: Tensor, weight: Tensor, bias: Tensor | None) -> None:  # noqa: A002
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D, got shape {weight.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating tensor, got dtype {input.dtype}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(
                f"{op}: input and {name} must have the same dtype, got {input.dtype} and {t.dtype}"
            )


def _check_weight_sizes(op: str, w_shape: tuple) -> None:
    if min(w_shape) < 1:
        raise ValueError(f"{op}: every size of weight must be at least 1, got shape {w_shape}")


def _check_groups(op: str, groups, in_channels: int, out_channels: int) -> None:
    if not is_int(groups) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    for name, n in (("input channels", in_channels), ("output channels", out_channels)):
        if n % groups:
            raise ValueError(f"{op}: {name} ({n}) must be divisible by groups ({groups})")


def _check_bias(op: str, bias: Tensor | None, out_channels: int) -> None:
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(
            f"{op}: bias must have shape ({out_channels},) (one per output channel), "
            f"got {tuple(bias.shape)}"
        )


def _output_size(op: str, axis: str, size: int, pad: int, k: int, s: int, d: int) -> int:
    """floor((size + pad - d*(k-1) - 1) / s) + 1 (pad: both sides), or an error if not positive."""
    out = (size + pad - d * (k - 1) - 1) // s + 1
    if out <= 0:
        raise ValueError(
            f"{op}: output {axis} floor((in + padding - dilation*(kernel-1) - 1) / stride) + 1 "
            f"= floor(({size} + {pad} - {d}*({k}-1) - 1) / {s}) + 1 = {out} is not positive: "
            "the input is too small for this kernel, dilation and padding"
        )
    return out


def _transposed_output_size(
    op: str, axis: str, size: int, pad: int, k: int, s: int, d: int, extra: int
) -> int:
    """(size-1)*s - 2*pad + d*(k-1) + extra + 1, or an error if not positive."""
    out = (size - 1) * s - 2 * pad + d * (k - 1) + extra + 1
    if out <= 0:
        raise ValueError(
            f"{op}: output {axis} (in-1)*stride - 2*padding + dilation*(kernel-1) + "
            f"output_padding + 1 = ({size}-1)*{s} - 2*{pad} + {d}*({k}-1) + {extra} + 1 = {out} "
            "is not positive: the padding crops away the whole output"
        )
    return out


def conv2d_geometry(
    op: str, x_shape: tuple, w_shape: tuple, stride, padding, dilation, groups: int
) -> ConvGeometry:
    """Check the arguments of a conv2d and return its geometry (errors name the argument)."""
    n, c, h, w = x_shape
    c_out, c_per_group, kh, kw = w_shape
    _check_weight_sizes(op, w_shape)
    _check_groups(op, groups, c, c_out)
    if c_per_group * groups != c:
        raise ValueError(
            f"{op}: weight of shape {w_shape} with groups={groups} expects input with "
            f"{c_per_group * groups} channels (weight.shape[1] * groups), got {c} channels"
        )
    sy, sx = positive_pair(stride, "stride", op)
    dy, dx = positive_pair(dilation, "dilation", op)
    (pt, pb), (pl, pr) = _padding_pairs(padding, (kh, kw), (sy, sx), (dy, dx), op)
    out_h = _output_size(op, "height", h, pt + pb, kh, sy, dy)
    out_w = _output_size(op, "width", w, pl + pr, kw, sx, dx)
    return ConvGeometry(n, c, h, w, c_out, out_h, out_w, kh, kw, sy, sx, pt, pl, dy, dx, groups)


def conv_transpose2d_geometry(
    op: str, x_shape: tuple, w_shape: tuple, stride, padding, output_padding, dilation, groups: int
) -> ConvGeometry:
    """Check the arguments of a conv_transpose2d; return the geometry of the conv2d it undoes."""
    n, c, h, w = x_shape
    c_in, c_out_per_group, kh, kw = w_shape
    _check_weight_sizes(op, w_shape)
    if c_in != c:
        raise ValueError(
            f"{op}: weight of shape {w_shape} expects input with {c_in} channels "
            f"(weight.shape[0]), got {c} channels"
        )
    _check_groups(op, groups, c, c_out_per_group * groups)
    sy, sx = positive_pair(stride, "stride", op)
    dy, dx = positive_pair(dilation, "dilation", op)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a pair, got {padding!r}")
    (ph, _), (pw, _) = _padding_pairs(padding, (kh, kw), (sy, sx), (dy, dx), op)
    oph, opw = pair(output_padding, "output_padding", op)
    for o, s, d in ((oph, sy, dy), (opw, sx, dx)):
        if o < 0 or (o >= s and o >= d):
            raise ValueError(
                f"{op}: output_padding must be non-negative and smaller than either stride or "
                f"dilation, got output_padding={output_padding!r}, stride={stride!r}, "
                f"dilation={dilation!r}"
            )
    out_h = _transposed_output_size(op, "height", h, ph, kh, sy, dy, oph)
    out_w = _transposed_output_size(op, "width", w, pw, kw, sx, dx, opw)
    return ConvGeometry(
        n, c_out_per_group * groups, out_h, out_w, c, h, w, kh, kw, sy, sx, ph, pw, dy, dx, groups
    )


def _batched(op: str, input: Tensor) -> tuple:  # noqa: A002
    """(a 4-D input, whether it was unbatched (C, H, W)), as PyTorch accepts both."""
    if input.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected a 4-D input (N, C, H, W) or a 3-D unbatched one (C, H, W), "
            f"got shape {input.shape}"
        )
    return (unsqueeze(input, 0), True) if input.ndim == 3 else (input, False)
