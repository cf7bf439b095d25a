"""09: Adam by hand, against ``minigrad.optim.Adam``, step for step.

Adam keeps two running averages per parameter, of the gradient (m) and of its square (v), and
moves each element by about ``lr`` in the direction of m / sqrt(v). Both averages start at 0,
so early on they are too small; dividing by ``1 - beta**t`` corrects that bias. PyTorch's
update, which ``optim.Adam`` follows (with ``weight_decay`` as an L2 term in the gradient):

    g = grad + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The optimizer runs this as a few in-place passes over chunks of all parameters at once
(minigrad/optim/foreach.py); ``minigrad.reference.adam_step`` is the same update as a pure
function. All three agree here for a few steps on a small least-squares problem.

Run: python examples/internals/09_adam_by_hand.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
from minigrad import optim, reference

LR, BETAS, EPS, STEPS = 0.05, (0.9, 0.999), 1e-8, 5
TOL = {"rtol": 1e-12, "atol": 1e-14}


def loss_fn(w, b, A, target):
    residual = A @ w + b - target
    return (residual * residual).mean()


def adam_by_hand(p, m, v, g, t, weight_decay) -> tuple:
    """One step, written out; returns new (p, m, v)."""
    beta1, beta2 = BETAS
    g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return p - LR * m_hat / (np.sqrt(v_hat) + EPS), m, v


def main() -> None:
    rng = np.random.default_rng(0)
    A, target = mg.tensor(rng.standard_normal((8, 3))), mg.tensor(rng.standard_normal((8, 1)))
    w = mg.tensor(rng.standard_normal((3, 1)), requires_grad=True)
    b = mg.tensor(np.zeros(1), requires_grad=True)
    decay = {id(w): 0.1, id(b): 0.0}  # two param groups: weight decay on w only
    opt = optim.Adam(
        [{"params": [w], "weight_decay": 0.1}, {"params": [b]}], lr=LR, betas=BETAS, eps=EPS
    )

    hand = {id(p): (p.data.copy(), np.zeros_like(p.data), np.zeros_like(p.data)) for p in (w, b)}
    ref = {id(p): (p.data.copy(), np.zeros_like(p.data), np.zeros_like(p.data)) for p in (w, b)}
    losses = []
    for t in range(1, STEPS + 1):
        opt.zero_grad()
        loss = loss_fn(w, b, A, target)
        loss.backward()
        grads = {id(p): p.grad.data.copy() for p in (w, b)}
        before = w.data.copy()
        opt.step()
        for p in (w, b):
            key = id(p)
            hand[key] = adam_by_hand(*hand[key], grads[key], t, decay[key])
            p_ref, m_ref, v_ref = ref[key]
            new_p, m, v, _ = reference.adam_step(
                p_ref, grads[key], m_ref, v_ref, t, LR, BETAS, EPS, weight_decay=decay[key]
            )
            ref[key] = (new_p, m, v)
            state = opt.state[p]
            np.testing.assert_allclose(p.data, hand[key][0], **TOL)
            np.testing.assert_allclose(p.data, new_p, **TOL)
            np.testing.assert_allclose(state["exp_avg"].data, hand[key][1], **TOL)
            np.testing.assert_allclose(state["exp_avg_sq"].data, hand[key][2], **TOL)
            assert float(state["step"].data) == t
        if t == 1:  # bias-corrected: m_hat / sqrt(v_hat) = g / |g|, so each element moves by lr
            np.testing.assert_allclose(np.abs(w.data - before), LR, rtol=1e-6)
            print(f"step 1 moves every element of w by lr = {LR}")
        print(f"step {t}: loss before it {loss.item():.5f}, w {w.data.ravel().round(5)}: agree")

        losses.append(loss.item())
    with mg.no_grad():
        losses.append(loss_fn(w, b, A, target).item())
    print(f"loss after {STEPS} steps: {losses[-1]:.5f}")
    assert all(later < earlier for earlier, later in zip(losses[:-1], losses[1:], strict=True))


if __name__ == "__main__":
    main()
