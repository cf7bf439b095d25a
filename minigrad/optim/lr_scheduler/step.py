"""Schedulers that multiply the lr by a factor: ``StepLR``, ``MultiStepLR``, ``ExponentialLR``
and ``LinearLR``, as ``torch.optim.lr_scheduler``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter

from minigrad.optim.lr_scheduler.base import (
    LRScheduler,
    check_int,
    check_milestones,
    group_values,
)
from minigrad.optim.optimizer import Optimizer, check_number


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs:
    ``lr = base_lr * gamma ** (epoch // step_size)``.

    Raises:
        TypeError: ``step_size`` is not an integer, or ``gamma`` not a number.
        ValueError: ``step_size < 1``.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ):
        check_int(step_size, "step_size", owner="StepLR")
        check_number(gamma, "gamma", owner="StepLR", low=None)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_if_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [
            base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs
        ]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone epoch (twice for a milestone given
    twice): ``lr = base_lr * gamma ** (number of milestones <= epoch)``.

    Raises:
        TypeError: ``milestones`` is not an iterable of integers, or ``gamma`` not a number.
    """

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = check_milestones(milestones, owner="MultiStepLR")
        check_number(gamma, "gamma", owner="MultiStepLR", low=None)
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_if_outside_step()
        if self.last_epoch not in self.milestones:
            return group_values(self.optimizer, "lr")
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        milestones = sorted(self.milestones.elements())
        return [
            base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
            for base_lr in self.base_lrs
        ]

    def load_state_dict(self, state_dict: dict) -> None:
        """As :meth:`LRScheduler.load_state_dict`; milestone keys that a JSON round trip made
        strings become ints again."""
        super().load_state_dict(state_dict)
        self.milestones = Counter({int(k): v for k, v in self.milestones.items()})


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: ``lr = base_lr * gamma ** epoch``.

    Raises:
        TypeError: ``gamma`` is not a number.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        check_number(gamma, "gamma", owner="ExponentialLR", low=None)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_if_outside_step()
        if self._is_initial:
            return group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor going linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` epochs, then keep it.

    Raises:
        TypeError: a factor is not a number, or ``total_iters`` not an integer.
        ValueError: ``start_factor`` is out of ``(0, 1]``, ``end_factor`` out of ``[0, 1]``
            (PyTorch's messages), or ``total_iters < 1``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        check_number(start_factor, "start_factor", owner="LinearLR", low=None)
        check_number(end_factor, "end_factor", owner="LinearLR", low=None)
        check_int(total_iters, "total_iters", owner="LinearLR")
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or "
                f"equal to 1, got start_factor={start_factor}"
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(
                "Ending multiplicative factor expected to be between 0 and 1, got "
                f"end_factor={end_factor}"
            )
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_if_outside_step()
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return group_values(self.optimizer, "lr")
        change = self.end_factor - self.start_factor
        factor = 1.0 + change / (
            self.total_iters * self.start_factor + (self.last_epoch - 1) * change
        )
        return [group["lr"] * factor for group in groups]

    def _get_closed_form_lr(self) -> list:
        change = self.end_factor - self.start_factor
        progress = min(self.total_iters, self.last_epoch)
        return [
            base_lr * (self.start_factor + change * progress / self.total_iters)
            for base_lr in self.base_lrs
        ]
