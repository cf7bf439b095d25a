"""In-place building blocks of the optimizer updates, each the twin of a PyTorch op.

They work on arrays of one module ``xp`` (numpy on chunks, or cupy), write into arrays they
are given, and keep PyTorch's order of operations (``addcmul``'s ``value * t1 * t2``, ``lerp``'s
two formulas), so float64 trajectories agree with ``torch.optim`` to rounding.
"""

from __future__ import annotations


def effective_grad(xp, g, p, weight_decay: float, maximize: bool, out):
    """The gradient the update uses: ``-g`` when maximizing, plus ``weight_decay * p``.

    Returns ``g`` itself when neither applies, else ``out`` holding the result (``p.grad``
    is never modified). PyTorch: ``grad = -grad``; ``grad = grad.add(param, alpha=wd)``.
    """
    if weight_decay:
        xp.multiply(p, weight_decay, out=out)
        return xp.subtract(out, g, out=out) if maximize else xp.add(g, out, out=out)
    if maximize:
        return xp.negative(g, out=out)
    return g


def lerp_(xp, start, end, weight: float, scratch) -> None:
    """``start += weight * (end - start)`` in place, as ``torch.lerp_``: for weights from 0.5
    up PyTorch computes ``end - (end - start) * (1 - weight)``, which this follows."""
    xp.subtract(end, start, out=scratch)
    if weight < 0.5:
        scratch *= weight
        start += scratch
    else:
        scratch *= 1 - weight
        xp.subtract(end, scratch, out=start)


def addcmul_(xp, target, a, b, value: float, scratch) -> None:
    """``target += value * a * b`` in place (``torch.addcmul_``), ``scratch`` a temporary."""
    xp.multiply(a, value, out=scratch)
    scratch *= b
    target += scratch


def addcdiv_(xp, target, a, b, value: float, scratch) -> None:
    """``target += value * a / b`` in place (``torch.addcdiv_``), ``scratch`` a temporary
    (it may be ``a`` itself)."""
    xp.multiply(a, value, out=scratch)
    scratch /= b
    target += scratch
