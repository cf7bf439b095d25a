"""03: broadcasting, and the one place its gradients are summed: ``unbroadcast``.

An elementwise op broadcasts its inputs as NumPy does (align shapes on the right; a missing or
size-1 axis is repeated). Its backward does not care: ``Add.backward`` returns ``gy`` for both
inputs, of the output's shape. The backward walk then calls ``unbroadcast(grad, shape, op)``
(minigrad/autograd.py) for every input: it sums over the leading axes the input did not have
and over the axes where it had size 1, so each op's backward stays a line long and the rule
lives in one place. A gradient that cannot be summed to the input's shape is an error naming
the op.

Run: python examples/internals/03_broadcasting.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
from minigrad.autograd import unbroadcast


def show_unbroadcast(grad) -> None:
    """Which axes unbroadcast sums for inputs of several shapes of an output of grad's shape."""
    cases = [
        ((4, 3), "nothing: same shape"),
        ((3,), "axis 0 (a leading axis the input lacks), then dropped"),
        ((1, 3), "axis 0, kept as size 1"),
        ((4, 1), "axis 1, kept as size 1"),
        ((1, 1), "both axes, kept"),
        ((), "everything: a scalar"),
    ]
    for shape, what in cases:
        reduced = unbroadcast(grad, shape, "Example")
        print(f"  output {grad.shape} -> input {str(shape):7s}: sums {what}")
        assert reduced.shape == shape
        np.testing.assert_allclose(reduced.sum(), grad.sum())  # summing keeps the total
    np.testing.assert_array_equal(unbroadcast(grad, (3,), "Example"), grad.sum(axis=0))
    np.testing.assert_array_equal(unbroadcast(grad, (4, 1), "Example"), grad.sum(1, keepdims=True))


def main() -> None:
    rng = np.random.default_rng(0)
    print("unbroadcast of a (4, 3) gradient:")
    show_unbroadcast(rng.standard_normal((4, 3)))

    a = mg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    row = mg.tensor(rng.standard_normal(3), requires_grad=True)  # broadcast over rows
    col = mg.tensor(rng.standard_normal((4, 1)), requires_grad=True)  # broadcast over columns
    s = mg.tensor(rng.standard_normal(()), requires_grad=True)  # over everything
    y = a * row + col + s
    assert y.shape == (4, 3)

    # The op's own backward returns full-size gradients: the walk does the summing.
    add = y.grad_fn
    full = add.backward(np.ones(y.shape))
    inputs = [e.shape for e in add.inputs]
    print("Add.backward returns shapes", [g.shape for g in full], "for inputs of shapes", inputs)
    assert all(g.shape == (4, 3) for g in full) and add.inputs[1].shape == ()

    gy = rng.standard_normal(y.shape)
    y.backward(mg.tensor(gy))
    a_np, row_np = a.data, row.data
    np.testing.assert_allclose(a.grad.data, gy * row_np, rtol=1e-12)
    np.testing.assert_allclose(row.grad.data, (gy * a_np).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(col.grad.data, gy.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(s.grad.data, gy.sum(), rtol=1e-12)
    for name, t in [("a", a), ("row", row), ("col", col), ("s", s)]:
        print(f"{name:3s} {str(t.shape):7s} grad {t.grad.shape}")

    # An explicit expand is the same thing: Expand.backward returns gy, the walk sums.
    v = mg.tensor(rng.standard_normal((2, 1, 3)), requires_grad=True)
    v.expand(2, 4, 3).sum().backward()
    np.testing.assert_array_equal(v.grad.data, np.full((2, 1, 3), 4.0))
    print("expand (2, 1, 3) -> (2, 4, 3): each gradient entry is 4, the copies summed")

    # A gradient of the wrong shape is caught where it happens, naming the op.
    try:
        unbroadcast(np.ones((4, 3)), (2, 3), "Add")
    except RuntimeError as error:
        print("wrong shape:", error)
        assert "Add.backward" in str(error)
    else:
        raise AssertionError("unbroadcast accepted a (4, 3) gradient for a (2, 3) input")


if __name__ == "__main__":
    main()
