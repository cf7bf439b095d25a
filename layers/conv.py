"""Convolution layers: ``Conv2d`` and ``ConvTranspose2d``, as ``torch.nn``'s.

Both hold ``weight`` and ``bias`` under PyTorch's names and layouts and draw them as PyTorch
does (``reset_parameters``); the arithmetic is ``minigrad.functional``'s.
"""

from __future__ import annotations

import math

import minigrad.functional as F
from layers.arguments import check_bool, check_choice, check_int, new_parameter, spatial_pair
from layers.module import Module
from minigrad import init
from minigrad.ops.arguments import is_int

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("same", "valid")


def _same_padding(kernel_size: tuple, dilation: tuple) -> list[int]:
    """F.pad amounts (left, right, top, bottom) that keep the size: ``d * (k - 1)`` split with
    the extra one at the right/bottom, as PyTorch."""
    amounts = []
    for k, d in reversed(list(zip(kernel_size, dilation, strict=True))):
        total = d * (k - 1)
        amounts += [total // 2, total - total // 2]
    return amounts


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: argument checks, parameters, init and repr.

    Attributes (PyTorch's): in_channels, out_channels, kernel_size, stride, padding (a pair
    or "same"/"valid"), dilation, transposed, output_padding, groups, padding_mode, weight
    ((out, in / groups, kh, kw), or (in, out / groups, kh, kw) when transposed), bias.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        transposed: bool,
        output_padding,
        groups,
        bias,
        padding_mode,
        device,
        dtype,
    ):
        super().__init__()
        layer = type(self).__name__
        in_channels = check_int(in_channels, "in_channels", layer)
        out_channels = check_int(out_channels, "out_channels", layer)
        groups = check_int(groups, "groups", layer)
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(
                    f"{layer}: {name} ({channels}) must be divisible by groups ({groups})"
                )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = spatial_pair(kernel_size, "kernel_size", layer)
        self.stride = spatial_pair(stride, "stride", layer)
        self.dilation = spatial_pair(dilation, "dilation", layer)
        self.padding = self._padding(padding, layer)
        self.output_padding = spatial_pair(output_padding, "output_padding", layer, minimum=0)
        self.transposed = transposed
        self.padding_mode = check_choice(padding_mode, "padding_mode", layer, PADDING_MODES)
        if isinstance(self.padding, str):
            same = self.padding == "same"
            self._reversed_padding_repeated_twice = (
                _same_padding(self.kernel_size, self.dilation) if same else [0, 0, 0, 0]
            )
        else:
            self._reversed_padding_repeated_twice = [p for p in self.padding[::-1] for _ in "lr"]
        if transposed:
            shape = (in_channels, out_channels // groups)
        else:
            shape = (out_channels, in_channels // groups)
        self.weight = new_parameter(shape + self.kernel_size, device, dtype, layer)
        if check_bool(bias, "bias", layer):
            self.bias = new_parameter((out_channels,), device, dtype, layer)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _padding(self, padding, layer: str):
        """A non-negative pair, or "same" (stride 1 only) / "valid"."""
        if not isinstance(padding, str):
            return spatial_pair(padding, "padding", layer, minimum=0)
        check_choice(padding, "padding", layer, PADDING_STRINGS)
        if padding == "same" and self.stride != (1, 1):
            raise ValueError(
                f"{layer}: padding='same' is not supported for strided convolutions, got "
                f"stride={self.stride}"
            )
        return padding

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(weight, a=sqrt(5))``, i.e. U(-b, b) with
        ``b = 1 / sqrt(fan_in)``, and the bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W), as ``torch.nn.Conv2d``.

    Args:
        in_channels, out_channels: channel counts, each divisible by ``groups``.
        kernel_size, stride, dilation: an int or a pair, positive.
        padding: an int or a pair (non-negative), or "valid" (none) or "same" (the output
            keeps the input's size; stride 1 only).
        groups: independent channel groups (``groups = in_channels`` is depthwise).
        bias: learn a per-output-channel bias.
        padding_mode: "zeros", or "reflect", "replicate", "circular" (done with ``F.pad``
            before an unpadded convolution).
        device, dtype: where and in which floating type the parameters live.

    Shapes:
        input (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, Ho, Wo), with
        ``Ho = floor((H + 2 * ph - dy * (kh - 1) - 1) / sy) + 1`` (likewise Wo).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            False,
            0,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def forward(self, input):
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(
                padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups
            )
        return F.conv2d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution (the adjoint of Conv2d), as ``torch.nn.ConvTranspose2d``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, groups, bias, dilation,
        device, dtype: as :class:`Conv2d` (padding is an int or a pair only).
        output_padding: extra rows/columns at the bottom/right of the output, smaller than
            the stride or the dilation.
        padding_mode: "zeros" only, as in PyTorch.

    ``forward(input, output_size=None)``: ``output_size`` (Ho, Wo) or (N, C, Ho, Wo) picks
    the output size among those a stride maps to the input's, overriding ``output_padding``.

    Shapes:
        input (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, Ho, Wo), with
        ``Ho = (H - 1) * sy - 2 * ph + dy * (kh - 1) + output_padding + 1`` (likewise Wo).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        layer = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(
                f'{layer}: only "zeros" padding mode is supported, got {padding_mode!r}'
            )
        if isinstance(padding, str):
            raise TypeError(f"{layer}: padding must be an int or a pair of ints, got {padding!r}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            True,
            output_padding,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )
        for d, op in enumerate(self.output_padding):
            if op >= max(self.stride[d], self.dilation[d]):
                raise ValueError(
                    f"{layer}: output_padding {self.output_padding} must be smaller than either "
                    f"stride {self.stride} or dilation {self.dilation} (dim {d})"
                )

    def _output_padding(self, input, output_size) -> tuple[int, int]:
        """``output_padding``, or the one that gives ``output_size`` (PyTorch's rule: the
        size must lie in [smallest, smallest + stride - 1])."""
        if output_size is None:
            return self.output_padding
        size = list(output_size)
        if len(size) == input.ndim:
            size = size[-2:]
        if len(size) != 2 or not all(is_int(n) for n in size):
            raise ValueError(
                f"ConvTranspose2d: for {input.ndim}D input, output_size must hold 2 or "
                f"{input.ndim} ints, got {output_size!r}"
            )
        smallest = [
            (n - 1) * s - 2 * p + d * (k - 1) + 1
            for n, s, p, d, k in zip(
                input.shape[-2:],
                self.stride,
                self.padding,
                self.dilation,
                self.kernel_size,
                strict=True,
            )
        ]
        largest = [low + s - 1 for low, s in zip(smallest, self.stride, strict=True)]
        if any(not low <= n <= high for n, low, high in zip(size, smallest, largest, strict=True)):
            raise ValueError(
                f"ConvTranspose2d: requested an output size of {list(output_size)}, but valid "
                f"sizes range from {smallest} to {largest} (for an input of "
                f"{list(input.shape[-2:])})"
            )
        return tuple(int(n) - low for n, low in zip(size, smallest, strict=True))

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
        )


__all__ = ["Conv2d", "ConvTranspose2d"]
