"""Normalization layers: ``BatchNorm2d`` and ``InstanceNorm2d``, as ``torch.nn``'s.

Both keep PyTorch's parameters (``weight``, ``bias`` when ``affine``) and buffers
(``running_mean``, ``running_var``, ``num_batches_tracked`` when ``track_running_stats``),
so their state dicts load into PyTorch and back. The arithmetic is ``F.batch_norm`` /
``F.instance_norm``, which update the running statistics in place.
"""

from __future__ import annotations

import warnings

import minigrad as mg
import minigrad.functional as F
from layers.arguments import check_bool, check_int, check_number, new_buffer, new_parameter
from layers.module import Module
from minigrad import init


class _NormBase(Module):
    """Parameters, buffers, checks, reset and repr shared by the normalization layers.

    Args:
        num_features: C, the channel count of the (N, C, H, W) input.
        eps: added to the variance.
        momentum: the running-average factor, or None for the cumulative average
            (``1 / num_batches_tracked``).
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: keep ``running_mean`` (zeros), ``running_var`` (ones) and
            ``num_batches_tracked`` (int64 0-d, zero) as buffers.
        device, dtype: where and in which floating type parameters and statistics live.
        bias: with ``affine``, whether to learn the bias (keyword only, as PyTorch).
    """

    def __init__(
        self,
        num_features,
        eps,
        momentum,
        affine,
        track_running_stats,
        device,
        dtype,
        bias: bool = True,
    ):
        super().__init__()
        layer = type(self).__name__
        self.num_features = check_int(num_features, "num_features", layer)
        self.eps = check_number(eps, "eps", layer, low=0)
        self.momentum = None if momentum is None else check_number(momentum, "momentum", layer)
        self.affine = check_bool(affine, "affine", layer)
        self.track_running_stats = check_bool(track_running_stats, "track_running_stats", layer)
        check_bool(bias, "bias", layer)
        shape = (self.num_features,)
        if self.affine:
            self.weight = new_parameter(shape, device, dtype, layer)
            if bias:
                self.bias = new_parameter(shape, device, dtype, layer)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            dtype = mg.float32 if dtype is None else dtype
            self.register_buffer("running_mean", new_buffer(0.0, shape, device, dtype))
            self.register_buffer("running_var", new_buffer(1.0, shape, device, dtype))
            self.register_buffer("num_batches_tracked", new_buffer(0, (), device, mg.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.data[...] = 1
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_channels(self, input, channel_dim: int) -> None:
        """The input's channel count must be ``num_features`` where parameters or running
        statistics depend on it."""
        channels = input.shape[channel_dim]
        if channels == self.num_features:
            return
        message = (
            f"{type(self).__name__}: expected input with num_features={self.num_features} "
            f"channels at dim {channel_dim}, got {channels} (input shape {input.shape})"
        )
        if self.affine or self.track_running_stats:
            raise ValueError(message)
        warnings.warn(message + "; num_features is unused since affine=False", stacklevel=3)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm2d(_NormBase):
    """Normalize each channel over (N, H, W), as ``torch.nn.BatchNorm2d``.

    In training the batch statistics are used and, with ``track_running_stats``, folded
    into the running ones (``num_batches_tracked`` counts the steps); in evaluation the
    running statistics are used, or the batch's when they are not tracked.

    Shapes:
        input (N, C, H, W) -> output (N, C, H, W).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        )

    def _average_factor(self) -> float:
        """The momentum of this step: counts the step in training, and gives the cumulative
        average's ``1 / num_batches_tracked`` when ``momentum`` is None."""
        if not (self.training and self.track_running_stats):
            return 0.0 if self.momentum is None else self.momentum
        self.num_batches_tracked.data += 1
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked.item())
        return self.momentum

    def forward(self, input):
        if input.ndim != 4:
            raise ValueError(
                f"BatchNorm2d: expected 4D input (N, C, H, W), got {input.ndim}D input of "
                f"shape {input.shape}"
            )
        self._check_channels(input, 1)
        factor = self._average_factor()
        use_batch_stats = self.training or self.running_mean is None
        tracked = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if tracked else None,
            self.running_var if tracked else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )


class InstanceNorm2d(_NormBase):
    """Normalize each (n, c) plane over its own H * W values, as ``torch.nn.InstanceNorm2d``.

    PyTorch's defaults: ``affine=False``, ``track_running_stats=False``. With tracked
    statistics, training folds the planes' batch-averaged statistics into them and
    evaluation normalizes with them; ``num_batches_tracked`` is kept but not counted, as in
    PyTorch.

    Shapes:
        input (N, C, H, W) or unbatched (C, H, W) -> the same shape.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        )

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(
                f"InstanceNorm2d: expected 3D (C, H, W) or 4D (N, C, H, W) input, got "
                f"{input.ndim}D input of shape {input.shape}"
            )
        self._check_channels(input, input.ndim - 3)
        batched = input if input.ndim == 4 else input.unsqueeze(0)
        out = F.instance_norm(
            batched,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            0.0 if self.momentum is None else self.momentum,
            self.eps,
        )
        return out if input.ndim == 4 else out.squeeze(0)


__all__ = ["BatchNorm2d", "InstanceNorm2d"]
