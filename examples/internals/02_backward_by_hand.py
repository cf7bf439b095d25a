"""02: the backward walk by hand, against ``.backward()`` and finite differences.

``loss.backward()`` (``run_backward`` in minigrad/autograd.py) visits the Functions in reverse
topological order: each one only after every Function that used its output, so the gradient
waiting for it is complete. It calls ``fn.backward(gy)`` on raw arrays, sums each returned
gradient back to its input's shape (``unbroadcast``), and hands it on: into the Function that
made the input, or into the leaf's ``.grad``. This script does the same walk in a few lines and
checks the result against ``.backward()`` and against central finite differences.

Run: python examples/internals/02_backward_by_hand.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
from minigrad.autograd import unbroadcast
from minigrad.gradcheck import gradcheck


def model(x, W, b):
    """A small graph with a broadcast (b) and a value used twice (h): a diamond."""
    h = mg.tanh(x @ W + b)  # (4, 3)
    return (h * h).sum() + mg.exp(h).mean()


def reverse_topological_order(root_fn) -> list:
    """Every Function before the Functions that made its inputs (iterative depth-first)."""
    finished, visited, stack = [], set(), [(root_fn, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            finished.append(fn)  # after everything it depends on
        elif id(fn) not in visited:
            visited.add(id(fn))
            stack.append((fn, True))
            stack.extend((e.grad_fn, False) for e in fn.inputs if e.grad_fn is not None)
    return finished[::-1]


def backward_by_hand(loss) -> dict:
    """{id(leaf): gradient array} from the chain rule, one Function at a time."""
    pending = {id(loss.grad_fn): np.ones_like(loss.data)}  # d loss / d loss = 1
    leaf_grads = {}
    for fn in reverse_topological_order(loss.grad_fn):
        gy = pending.pop(id(fn))
        grads = fn.backward(gy)
        grads = grads if isinstance(grads, tuple) else (grads,)
        shapes = [None if g is None else g.shape for g in grads]
        print(f"  {fn.name:7s} gy {str(gy.shape):7s} -> input grads {shapes}")
        for edge, grad, needed in zip(fn.inputs, grads, fn.needs_input_grad, strict=True):
            if grad is None or not needed:
                continue
            grad = unbroadcast(grad, edge.shape, fn.name)  # e.g. b's (4, 3) -> (3,)
            key, store = (
                (id(edge.leaf), leaf_grads) if edge.grad_fn is None else (id(edge.grad_fn), pending)
            )
            store[key] = grad if key not in store else store[key] + grad  # h feeds two ops
    assert not pending, "every Function received its gradient"
    return leaf_grads


def main() -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in [(4, 5), (5, 3), (3,)]]  # float64
    x, W, b = (mg.tensor(a, requires_grad=True) for a in arrays)

    order = [fn.name for fn in reverse_topological_order(model(x, W, b).grad_fn)]
    # Tanh's output feeds Mul and Exp: it runs after both, when its gradient is complete.
    assert order.index("Tanh") > max(order.index("Mul"), order.index("Exp"))

    print("the walk, loss first:")
    by_hand = backward_by_hand(model(x, W, b))

    loss = model(x, W, b)  # a fresh graph for the engine's own walk
    loss.backward()
    for name, t in [("x", x), ("W", W), ("b", b)]:
        np.testing.assert_allclose(by_hand[id(t)], t.grad.data, rtol=1e-12, atol=1e-14)
        print(f"d loss / d {name}: by hand == .backward(), shape {t.grad.shape}")
    assert loss.grad_fn.released  # the engine freed the graph after its walk

    # A central difference for one weight, by hand...
    eps, (i, j) = 1e-6, (2, 1)
    plus, minus = W.data.copy(), W.data.copy()
    plus[i, j] += eps
    minus[i, j] -= eps
    with mg.no_grad():
        f = [model(x, mg.tensor(w), b).item() for w in (plus, minus)]
    numeric = (f[0] - f[1]) / (2 * eps)
    print(f"dW[{i},{j}]: analytic {W.grad.data[i, j]:.8f}, central difference {numeric:.8f}")
    np.testing.assert_allclose(W.grad.data[i, j], numeric, rtol=1e-6)

    # ... and for every element of every input with minigrad.gradcheck (float64).
    assert gradcheck(model, [x, W, b])
    print("gradcheck: every element of x, W and b agrees with finite differences")


if __name__ == "__main__":
    main()
