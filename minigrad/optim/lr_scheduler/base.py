"""The scheduler base, ``LRScheduler``, and what every scheduler shares: the first step,
``step``/``step(epoch)`` with PyTorch's warnings, the state dict, and the argument checks.

A subclass implements :meth:`LRScheduler.get_lr` (the chainable recursion) and, where PyTorch
has one, ``_get_closed_form_lr`` (used by ``step(epoch)`` and by ``SequentialLR``).
"""

from __future__ import annotations

import copy
import numbers
import warnings

from minigrad.optim.optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated "
    "where possible. Please use `scheduler.step()` to step the scheduler. During the "
    "deprecation, if epoch is different from None, the closed form is used instead of the "
    "new chainable form, where available. Please open an issue if you are unable to "
    "replicate your use case: https://github.com/pytorch/pytorch/issues/new/choose."
)


def check_optimizer(optimizer) -> None:
    """``optimizer`` is a minigrad Optimizer (a TypeError naming its type otherwise)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def group_values(optimizer: Optimizer, key: str) -> list:
    """``group[key]`` of each param group of ``optimizer``."""
    return [group[key] for group in optimizer.param_groups]


def per_group(name: str, optimizer: Optimizer, value) -> list:
    """``value`` for each param group: a list of one per group, or one value for all."""
    if isinstance(value, list | tuple):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. {name} has "
                f"{len(value)} values, param_groups has {len(optimizer.param_groups)}."
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


def check_int(value, name: str, *, owner: str, low: int | None = 1) -> None:
    """Check an integer argument (not a bool), ``>= low`` unless ``low`` is None.

    Raises:
        TypeError: ``value`` is not an integer, e.g. "StepLR: step_size must be an integer
            >= 1, got 2.5".
        ValueError: ``value < low``, e.g. "StepLR: step_size must be an integer >= 1, got 0".
    """
    expected = "an integer" if low is None else f"an integer >= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be {expected}, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")


def check_milestones(milestones, *, owner: str) -> list:
    """``milestones`` as a list, after checking it is an iterable of integers.

    Raises:
        TypeError: ``milestones`` is not iterable (or is a string), or one is not an integer.
    """
    if isinstance(milestones, str) or not hasattr(milestones, "__iter__"):
        raise TypeError(f"{owner}: milestones must be a list of integers, got {milestones!r}")
    milestones = list(milestones)
    for i, milestone in enumerate(milestones):
        check_int(milestone, f"milestones[{i}]", owner=owner, low=None)
    return milestones


class LRScheduler:
    """Base class of the schedulers, as ``torch.optim.lr_scheduler.LRScheduler``.

    Subclasses implement :meth:`get_lr`, the next learning rate of each group. Building a
    scheduler records each group's ``"initial_lr"`` (when ``last_epoch == -1``) and takes
    the first step, which sets the lr of epoch 0.

    Args:
        optimizer: the optimizer whose learning rates are set.
        last_epoch: index of the last epoch; -1 starts a new schedule, others resume one
            (the groups then need ``"initial_lr"``).

    Raises:
        TypeError: ``optimizer`` is not an Optimizer, or ``last_epoch`` not an integer.
        ValueError: ``last_epoch < -1``.
        KeyError: resuming (``last_epoch >= 0``) a group without ``"initial_lr"``.
    """

    _get_lr_called_within_step = False
    _is_initial = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        check_optimizer(optimizer)
        check_int(last_epoch, "last_epoch", owner=type(self).__name__, low=-1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when "
                        "resuming scheduler with last_epoch >= 0 (load the optimizer's "
                        "state dict first)"
                    )
        self.base_lrs = group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Reset the step count and take the step that sets epoch 0's learning rates."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def state_dict(self) -> dict:
        """Every attribute but the optimizer (a copy), with PyTorch's names."""
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "optimizer"})

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the attributes saved by :meth:`state_dict`."""
        self.__dict__.update(copy.deepcopy(state_dict))

    def get_last_lr(self) -> list:
        """The learning rate of each group set by the last step."""
        return self._last_lr

    def get_lr(self) -> list:
        """The next learning rate of each group (called by :meth:`step`)."""
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and set the groups' learning rates; call after
        ``optimizer.step()``. ``epoch`` (deprecated, as in PyTorch) jumps to that epoch
        with the closed form."""
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`. You should "
                "call them in the opposite order: `optimizer.step()` before "
                "`lr_scheduler.step()`. Failure to do this will result in skipping the first "
                "value of the learning rate schedule.",
                UserWarning,
                stacklevel=2,
            )
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed_form = getattr(self, "_get_closed_form_lr", None)
                values = closed_form() if closed_form is not None else self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = group_values(self.optimizer, "lr")

    def _warn_if_outside_step(self) -> None:
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, please use "
                "`get_last_lr()`.",
                UserWarning,
                stacklevel=3,
            )
