"""``ReduceLROnPlateau``, as ``torch.optim.lr_scheduler.ReduceLROnPlateau``: the lr follows a
monitored metric instead of the epoch count.
"""

from __future__ import annotations

import math
import warnings

from minigrad.optim.lr_scheduler.base import (
    EPOCH_DEPRECATION_WARNING,
    LRScheduler,
    check_int,
    check_optimizer,
    group_values,
)
from minigrad.optim.optimizer import Optimizer, check_number


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has not improved for ``patience`` epochs.

    ``step(metric)`` is called once per epoch with the monitored value (a number or a
    0-d Tensor). See ``torch.optim.lr_scheduler.ReduceLROnPlateau`` for the arguments:
    ``mode`` ("min"/"max"), ``threshold`` and ``threshold_mode`` ("rel"/"abs") define an
    improvement, ``cooldown`` epochs follow each reduction, ``min_lr`` bounds the lr (one
    value or one per group), and reductions smaller than ``eps`` are skipped.

    Raises:
        TypeError: a number argument is not a number, ``patience`` or ``cooldown`` not an
            integer.
        ValueError: ``factor >= 1`` (PyTorch's message), ``patience`` or ``cooldown``
            negative, a ``min_lr`` list of the wrong length, an unknown mode.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr=0,
        eps: float = 1e-8,
    ):
        _check_arguments(factor, patience, threshold, cooldown, min_lr, eps)
        self.factor = factor
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if isinstance(min_lr, list | tuple):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(
                    f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}"
                )
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = group_values(optimizer, "lr")
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch=None) -> None:
        """Record one epoch's metric and reduce the lr after ``patience`` bad epochs."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = group_values(self.optimizer, "lr")

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"The number of param groups in the `optimizer` ({len(groups)}) differs "
                    f"from when `ReduceLROnPlateau` was initialized ({len(self.min_lrs)}), "
                    "usually due to a new param group being added to the optimizer. Please "
                    "modify the `min_lrs` field to match the length of the `optimizer` param "
                    "groups."
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in {"min", "max"}:
            raise ValueError(f"mode {mode} is unknown! (expected 'min' or 'max')")
        if threshold_mode not in {"rel", "abs"}:
            raise ValueError(
                f"threshold mode {threshold_mode} is unknown! (expected 'rel' or 'abs')"
            )
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the attributes saved by :meth:`state_dict`."""
        super().load_state_dict(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)


def _check_arguments(factor, patience, threshold, cooldown, min_lr, eps) -> None:
    """The numbers ReduceLROnPlateau takes are numbers; counts are integers >= 0."""
    name = "ReduceLROnPlateau"
    check_number(factor, "factor", owner=name, low=None)
    if factor >= 1.0:
        raise ValueError(f"Factor should be < 1.0, got factor={factor}")
    check_int(patience, "patience", owner=name, low=0)
    check_int(cooldown, "cooldown", owner=name, low=0)
    check_number(threshold, "threshold", owner=name, low=None)
    check_number(eps, "eps", owner=name, low=None)
    if isinstance(min_lr, list | tuple):
        for i, value in enumerate(min_lr):
            check_number(value, f"min_lr[{i}]", owner=name, low=None)
    else:
        check_number(min_lr, "min_lr", owner=name, low=None)
