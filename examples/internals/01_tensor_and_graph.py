"""01: a Tensor and the graph its ops record.

A Tensor is an array (``.data``: numpy on "cpu", cupy on "gpu"), its gradient (``.grad``) and
the Function that made it (``.grad_fn``, None for a leaf). Every op on a tensor that requires
grad runs a Function (minigrad/autograd.py) whose ``inputs`` are Edges: where the gradient of
each input goes, the Function that made it or the leaf itself, with the input's shape and dtype
but not its data, so an intermediate array lives on only if a backward saved it.
``minigrad.debug.to_dot`` prints the graph as Graphviz DOT text.

Run: python examples/internals/01_tensor_and_graph.py
"""

import re
import sys
import weakref
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
from minigrad.autograd import Edge
from minigrad.debug import to_dot


def functions_in_graph(tensor) -> list:
    """The Functions reachable from ``tensor.grad_fn`` through the Edges, each once."""
    order, seen = [tensor.grad_fn], {id(tensor.grad_fn)}
    for fn in order:
        for edge in fn.inputs:
            if edge.grad_fn is not None and id(edge.grad_fn) not in seen:
                seen.add(id(edge.grad_fn))
                order.append(edge.grad_fn)
    return order


def main() -> None:
    x = mg.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]], requires_grad=True)  # (2, 3) leaf
    w = mg.tensor([[0.5], [-1.0], [2.0]], requires_grad=True)  # (3, 1) leaf
    b = mg.tensor([0.1])  # a constant: requires_grad is False
    loss = ((x @ w + b).relu() * x).mean()

    print(f"x: shape {x.shape}, dtype {x.dtype}, device {x.device}, leaf {x.is_leaf}")
    print(f"loss = {loss.item():.4f}, made by {loss.grad_fn.name}")
    assert x.is_leaf and x.grad_fn is None and isinstance(x.data, np.ndarray)
    assert loss.dtype == np.float32  # Python floats become float32, as in PyTorch

    # Each Function points to what made its inputs: Edges, holding no arrays.
    fns = functions_in_graph(loss)
    print("Functions, from the loss back to the leaves:", [fn.name for fn in fns])
    assert [fn.name for fn in fns] == ["Mean", "Mul", "ReLU", "Add", "MatMul"]
    for fn in fns:
        assert all(isinstance(e, Edge) for e in fn.inputs)
        assert all(not hasattr(e, "data") for e in fn.inputs)  # __slots__: shape, dtype, ...
    matmul = fns[-1]
    assert [e.leaf for e in matmul.inputs] == [x, w]  # leaves: the gradient lands in .grad
    add = fns[-2]
    assert add.inputs[0].grad_fn is matmul and add.inputs[0].shape == (2, 1)
    # The constant b is an input too, but no gradient will be computed for it.
    assert add.needs_input_grad == (True, False)

    dot = to_dot(loss, {"x": x, "w": w})
    print(dot)
    nodes = re.findall(r"^\s+fn\d+ \[shape=box", dot, flags=re.MULTILINE)
    leaves = re.findall(r"^\s+leaf\d+ \[shape=ellipse", dot, flags=re.MULTILINE)
    print(f"DOT: {len(nodes)} Function nodes, {len(leaves)} leaves")
    assert len(nodes) == len(fns)
    assert len(leaves) == 2  # x and w; the constant b does not require grad
    assert '"x\\n(2, 3) float32"' in dot and '"w\\n(3, 1) float32"' in dot

    # x is used twice (by MatMul and by Mul): two arrows into it, and its gradients add up.
    assert dot.count("-> leaf0;") == 2
    loss.backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape
    print("x.grad =\n", x.grad.numpy())

    # Edges hold no data: an intermediate array lives on only if a backward saved it.
    h = x @ w
    h_array = weakref.ref(h.data)
    total = h.sum()  # Sum's backward needs only h's shape
    del h
    assert h_array() is None and total.grad_fn.inputs[0].shape == (2, 1)
    h = x @ w
    h_array = weakref.ref(h.data)
    square = (h * h).sum()  # Mul's backward needs h: it is saved
    del h
    assert h_array() is not None
    square.backward()  # the walk releases each Function after its backward: h goes
    assert h_array() is None
    print("an intermediate is freed at once unless a backward saved it, and then after it")

    # Under no_grad nothing is recorded: no grad_fn, no graph.
    with mg.no_grad():
        plain = (x @ w).relu()
    assert plain.grad_fn is None and not plain.requires_grad
    print("under no_grad: grad_fn is", plain.grad_fn)


if __name__ == "__main__":
    main()
