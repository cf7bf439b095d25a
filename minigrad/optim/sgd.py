"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

PyTorch's update (``torch.optim.SGD``), with ``g`` the gradient (negated when ``maximize``)::

    g = g + weight_decay * p
    b = g                                   (first step)
    b = momentum * b + (1 - dampening) * g  (later steps)
    d = g + momentum * b if nesterov else b   (d = g without momentum)
    p = p - lr * d

State: ``"momentum_buffer"`` (only when ``momentum != 0``, from the first step on).
"""

from __future__ import annotations

from dataclasses import dataclass

from minigrad.kernels import optim as kernels
from minigrad.optim import foreach
from minigrad.optim.elementwise import effective_grad
from minigrad.optim.optimizer import Optimizer, check_number
from minigrad.tensor import Tensor


@dataclass(frozen=True)
class SGDCoefficients:
    """The scalars of one parameter's SGD step; ``first``: its momentum buffer is new."""

    lr: float
    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool
    maximize: bool
    first: bool


class SGD(Optimizer):
    """SGD, as ``torch.optim.SGD`` (same arguments, defaults, update and state keys).

    Args:
        params: Tensors or parameter groups (dicts).
        lr: learning rate.
        momentum: momentum factor.
        dampening: dampening of the momentum.
        weight_decay: L2 penalty added to the gradient.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: maximize the objective instead of minimizing it.

    Raises:
        TypeError: a hyperparameter is not a number.
        ValueError: ``lr``, ``momentum`` or ``weight_decay`` is negative, or ``nesterov``
            lacks a momentum or has a dampening (PyTorch's messages).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        name = type(self).__name__
        check_number(lr, "lr", owner=name, invalid=f"Invalid learning rate: {lr}")
        check_number(
            momentum, "momentum", owner=name, invalid=f"Invalid momentum value: {momentum}"
        )
        check_number(dampening, "dampening", owner=name, low=None)
        check_number(
            weight_decay,
            "weight_decay",
            owner=name,
            invalid=f"Invalid weight_decay value: {weight_decay}",
        )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _state_names(self, group: dict) -> tuple:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _init_state(self, group: dict, p: Tensor) -> dict:
        return {}

    def _work(self, group: dict, p: Tensor, state: dict) -> foreach.Work:
        first = group["momentum"] != 0 and "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = Tensor._wrap(p.xp.empty_like(p.data))
        c = SGDCoefficients(
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            first=first,
        )
        arrays = (p.data, p.grad.data)
        if group["momentum"] != 0:
            arrays += (state["momentum_buffer"].data,)
        update = kernels.sgd if kernels.supported(p.xp, p.dtype) else sgd_update
        return foreach.Work(update, c, arrays)


def sgd_update(xp, c: SGDCoefficients, arrays: tuple, scratch) -> None:
    """One SGD step on ``arrays = (p, g[, momentum_buffer])``, in place (the xp reference)."""
    p, g, *buffer = arrays
    g = effective_grad(xp, g, p, c.weight_decay, c.maximize, scratch(0))
    d = g
    if buffer:
        (b,) = buffer
        if c.first:
            xp.copyto(b, g)
        else:
            b *= c.momentum
            if c.dampening:
                t = xp.multiply(g, 1 - c.dampening, out=scratch(1))
                b += t
            else:
                b += g
        if c.nesterov:
            d = xp.multiply(b, c.momentum, out=scratch(1))
            d += g
        else:
            d = b
    t = xp.multiply(d, -c.lr, out=scratch(1))
    p += t
