"""``Upsample``: resize (N, C, H, W) inputs with ``F.interpolate``, as ``torch.nn.Upsample``."""

from __future__ import annotations

from layers.arguments import check_choice, check_number
from layers.module import Module
from minigrad import functional as F
from minigrad.ops.upsample import MODES


class Upsample(Module):
    """Resize the spatial dims to ``size`` or by ``scale_factor``, as ``torch.nn.Upsample``.

    Args:
        size: output (Ho, Wo), or one int for both.
        scale_factor: a number or a pair; the output is ``floor(H * scale_factor)``. Give
            exactly one of ``size`` and ``scale_factor``. Stored as floats, as PyTorch.
        mode: "nearest" or "bilinear".
        align_corners: bilinear only; see ``F.interpolate``.
        recompute_scale_factor: compute the coordinate scale from the sizes.

    Shapes:
        input (N, C, H, W) -> (N, C, Ho, Wo).
    """

    def __init__(
        self,
        size=None,
        scale_factor=None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ):
        super().__init__()
        layer = type(self).__name__
        if (size is None) == (scale_factor is None):
            raise ValueError(
                f"{layer}: give exactly one of size and scale_factor, got size={size!r} and "
                f"scale_factor={scale_factor!r}"
            )
        if scale_factor is not None:
            factors = scale_factor if isinstance(scale_factor, tuple | list) else (scale_factor,)
            for factor in factors:
                if check_number(factor, "scale_factor", layer) <= 0:
                    raise ValueError(
                        f"{layer}: scale_factor must be positive, got {scale_factor!r}"
                    )
        check_choice(mode, "mode", layer, MODES)
        if mode == "nearest" and align_corners is not None:
            raise ValueError(
                f"{layer}: align_corners can only be set with mode='bilinear', got "
                f"align_corners={align_corners!r} with mode='nearest'"
            )
        self.name = layer
        self.size = size
        if isinstance(scale_factor, tuple | list):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(
            input,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


__all__ = ["Upsample"]
