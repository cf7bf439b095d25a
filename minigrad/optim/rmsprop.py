"""RMSprop, plain or centered, with momentum and weight decay.

PyTorch's update (``torch.optim.RMSprop``), with ``g`` the gradient (negated when
``maximize``)::

    g = g + weight_decay * p
    s = alpha * s + (1 - alpha) * g * g
    a = lerp(a, g, 1 - alpha)                       (centered)
    avg = sqrt(s - a * a) + eps if centered else sqrt(s) + eps
    b = momentum * b + g / avg;  p = p - lr * b     (momentum > 0)
    p = p - lr * g / avg                            (otherwise)

State: ``"step"`` (a float32 CPU scalar), ``"square_avg"`` (s), ``"momentum_buffer"`` (b,
when ``momentum > 0``) and ``"grad_avg"`` (a, when ``centered``).
"""

from __future__ import annotations

from dataclasses import dataclass

from minigrad.kernels import optim as kernels
from minigrad.optim import foreach
from minigrad.optim.elementwise import addcdiv_, addcmul_, effective_grad, lerp_
from minigrad.optim.optimizer import Optimizer, check_number, step_counter, zeros_like_param
from minigrad.tensor import Tensor


@dataclass(frozen=True)
class RMSpropCoefficients:
    """The scalars of one parameter's RMSprop step."""

    lr: float
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool
    maximize: bool


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` (same arguments, defaults, update and state keys).

    Args:
        params: Tensors or parameter groups (dicts).
        lr: learning rate.
        alpha: smoothing constant of the squared-gradient average.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty added to the gradient.
        momentum: momentum factor.
        centered: normalize by the estimated variance of the gradient instead of its
            uncentered second moment.
        maximize: maximize the objective instead of minimizing it.

    Raises:
        TypeError: a hyperparameter is not a number.
        ValueError: ``lr``, ``alpha``, ``eps``, ``weight_decay`` or ``momentum`` is negative
            (PyTorch's messages).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        name = type(self).__name__
        check_number(lr, "lr", owner=name, invalid=f"Invalid learning rate: {lr}")
        check_number(eps, "eps", owner=name, invalid=f"Invalid epsilon value: {eps}")
        check_number(
            momentum, "momentum", owner=name, invalid=f"Invalid momentum value: {momentum}"
        )
        check_number(
            weight_decay,
            "weight_decay",
            owner=name,
            invalid=f"Invalid weight_decay value: {weight_decay}",
        )
        check_number(alpha, "alpha", owner=name, invalid=f"Invalid alpha value: {alpha}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _state_names(self, group: dict) -> tuple:
        names = ("step", "square_avg")
        names += ("momentum_buffer",) if group["momentum"] > 0 else ()
        return names + (("grad_avg",) if group["centered"] else ())

    def _init_state(self, group: dict, p: Tensor) -> dict:
        state = {"step": step_counter(), "square_avg": zeros_like_param(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_like_param(p)
        if group["centered"]:
            state["grad_avg"] = zeros_like_param(p)
        return state

    def _work(self, group: dict, p: Tensor, state: dict) -> foreach.Work:
        state["step"].data += 1
        c = RMSpropCoefficients(
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            maximize=group["maximize"],
        )
        arrays = (p.data, p.grad.data, state["square_avg"].data)
        if group["centered"]:
            arrays += (state["grad_avg"].data,)
        if group["momentum"] > 0:
            arrays += (state["momentum_buffer"].data,)
        update = kernels.rmsprop if kernels.supported(p.xp, p.dtype) else rmsprop_update
        return foreach.Work(update, c, arrays)


def rmsprop_update(xp, c: RMSpropCoefficients, arrays: tuple, scratch) -> None:
    """One RMSprop step on ``arrays = (p, g, square_avg[, grad_avg][, momentum_buffer])``
    (``grad_avg`` when centered, ``momentum_buffer`` when ``momentum > 0``), in place (the xp
    reference of the fused kernel)."""
    p, g, square_avg, *rest = arrays
    g = effective_grad(xp, g, p, c.weight_decay, c.maximize, scratch(0))
    avg = scratch(1)
    square_avg *= c.alpha
    addcmul_(xp, square_avg, g, g, 1 - c.alpha, avg)
    if c.centered:
        grad_avg = rest.pop(0)
        lerp_(xp, grad_avg, g, 1 - c.alpha, avg)
        xp.multiply(grad_avg, grad_avg, out=avg)
        xp.subtract(square_avg, avg, out=avg)
        xp.sqrt(avg, out=avg)
    else:
        xp.sqrt(square_avg, out=avg)
    avg += c.eps
    if c.momentum > 0:
        (buffer,) = rest
        buffer *= c.momentum
        buffer += xp.divide(g, avg, out=avg)
        p += xp.multiply(buffer, -c.lr, out=avg)
    else:
        addcdiv_(xp, p, g, avg, -c.lr, scratch(0))
