"""``Linear``, ``Identity`` and ``Flatten``, as ``torch.nn``'s."""

from __future__ import annotations

import math

import minigrad.functional as F
from layers.arguments import check_bool, check_int, new_parameter
from layers.module import Module
from minigrad import init
from minigrad.ops.arguments import is_int


class Identity(Module):
    """Returns its input; any constructor arguments are ignored, as in PyTorch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """``y = x W^T + b``, as ``torch.nn.Linear``.

    Args:
        in_features, out_features: the sizes of the last input and output dim (>= 0).
        bias: learn an additive bias of ``out_features``.
        device, dtype: where and in which floating type the parameters live.

    Attributes:
        weight: (out_features, in_features), drawn as PyTorch: U(-1/sqrt(in), 1/sqrt(in)).
        bias: (out_features,), drawn from the same range.

    Shapes:
        input (*, in_features) -> (*, out_features).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        layer = type(self).__name__
        self.in_features = check_int(in_features, "in_features", layer, minimum=0)
        self.out_features = check_int(out_features, "out_features", layer, minimum=0)
        self.weight = new_parameter((self.out_features, self.in_features), device, dtype, layer)
        if check_bool(bias, "bias", layer):
            self.bias = new_parameter((self.out_features,), device, dtype, layer)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(weight, a=sqrt(5))`` and the bias
        U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: expected input with last dim in_features={self.in_features}, got "
                f"shape {input.shape}"
            )
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Flatten(Module):
    """Flatten dims ``start_dim`` to ``end_dim`` into one, as ``torch.nn.Flatten``.

    Shapes:
        input (N, *dims) -> (N, prod(dims)) with the defaults start_dim=1, end_dim=-1.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not is_int(value):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


__all__ = ["Flatten", "Identity", "Linear"]
