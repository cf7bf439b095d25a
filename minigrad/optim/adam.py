"""Adam and AdamW (Adam with decoupled weight decay), with AMSGrad.

PyTorch's update (``torch.optim.Adam``/``AdamW``), with ``g`` the gradient (negated when
``maximize``) and ``t`` the step count of the parameter::

    p = p * (1 - lr * weight_decay)            (AdamW: decoupled weight decay)
    g = g + weight_decay * p                   (Adam: L2 penalty)
    m = lerp(m, g, 1 - beta1)
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v)                      (amsgrad; v_max replaces v below)
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

State: ``"step"`` (a float32 CPU scalar), ``"exp_avg"`` (m), ``"exp_avg_sq"`` (v) and, with
``amsgrad``, ``"max_exp_avg_sq"``.
"""

from __future__ import annotations

from dataclasses import dataclass

from minigrad.kernels import optim as kernels
from minigrad.optim import foreach
from minigrad.optim.elementwise import addcdiv_, addcmul_, effective_grad, lerp_
from minigrad.optim.optimizer import (
    Optimizer,
    check_betas,
    check_number,
    step_counter,
    zeros_like_param,
)
from minigrad.tensor import Tensor


@dataclass(frozen=True)
class AdamCoefficients:
    """The scalars of one parameter's Adam step (bias corrections of its step count)."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    decoupled: bool
    maximize: bool
    amsgrad: bool
    step_size: float  # lr / (1 - beta1**t)
    bias_correction2_sqrt: float  # sqrt(1 - beta2**t)


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (same arguments, defaults, update and state keys).

    Args:
        params: Tensors or parameter groups (dicts).
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty (added to the gradient), or with ``decoupled_weight_decay``
            the AdamW decay of the parameter itself.
        amsgrad: use the maximum of past second moments (AMSGrad).
        maximize: maximize the objective instead of minimizing it.
        decoupled_weight_decay: AdamW's weight decay (what :class:`AdamW` sets).

    Raises:
        TypeError: a hyperparameter is not a number, or ``betas`` not a pair of numbers.
        ValueError: ``lr``, ``eps`` or ``weight_decay`` is negative, or a beta is out of
            ``[0, 1)`` (PyTorch's messages).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        name = type(self).__name__
        check_number(lr, "lr", owner=name, invalid=f"Invalid learning rate: {lr}")
        check_number(eps, "eps", owner=name, invalid=f"Invalid epsilon value: {eps}")
        check_betas(betas, owner=name)
        check_number(
            weight_decay,
            "weight_decay",
            owner=name,
            invalid=f"Invalid weight_decay value: {weight_decay}",
        )
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _state_names(self, group: dict) -> tuple:
        names = ("step", "exp_avg", "exp_avg_sq")
        return names + ("max_exp_avg_sq",) if group["amsgrad"] else names

    def _init_state(self, group: dict, p: Tensor) -> dict:
        state = {
            "step": step_counter(),
            "exp_avg": zeros_like_param(p),
            "exp_avg_sq": zeros_like_param(p),
        }
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_like_param(p)
        return state

    def _work(self, group: dict, p: Tensor, state: dict) -> foreach.Work:
        state["step"].data += 1
        step = float(state["step"].data)
        beta1, beta2 = group["betas"]
        c = AdamCoefficients(
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled=group["decoupled_weight_decay"],
            maximize=group["maximize"],
            amsgrad=group["amsgrad"],
            step_size=group["lr"] / (1 - beta1**step),
            bias_correction2_sqrt=(1 - beta2**step) ** 0.5,
        )
        arrays = (p.data, p.grad.data, state["exp_avg"].data, state["exp_avg_sq"].data)
        if group["amsgrad"]:
            arrays += (state["max_exp_avg_sq"].data,)
        update = kernels.adam if kernels.supported(p.xp, p.dtype) else adam_update
        return foreach.Work(update, c, arrays)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam whose weight decay shrinks the parameter
    (``p *= 1 - lr * weight_decay``) instead of joining the gradient; default decay 1e-2."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict) -> None:
        """As :meth:`Optimizer.load_state_dict`; the decay stays decoupled (PyTorch's rule)."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def adam_update(xp, c: AdamCoefficients, arrays: tuple, scratch) -> None:
    """One Adam step on ``arrays = (p, g, exp_avg, exp_avg_sq[, max_exp_avg_sq])``, in
    place (the xp reference of the fused kernel)."""
    p, g, m, v, *v_max = arrays
    if c.decoupled and c.weight_decay:
        p *= 1 - c.lr * c.weight_decay
    g = effective_grad(xp, g, p, 0 if c.decoupled else c.weight_decay, c.maximize, scratch(0))
    t = scratch(1)
    lerp_(xp, m, g, 1 - c.beta1, t)
    v *= c.beta2
    addcmul_(xp, v, g, g, 1 - c.beta2, t)
    second = v
    if c.amsgrad:
        (second,) = v_max
        xp.maximum(second, v, out=second)
    denom = xp.sqrt(second, out=t)
    denom /= c.bias_correction2_sqrt
    denom += c.eps
    addcdiv_(xp, p, m, denom, -c.step_size, scratch(0))
