"""to_dot and render: the DOT text parses with Graphviz, its nodes are the graph's Functions
(counted here by a walk of our own) and the leaves that require grad, with their names,
shapes, dtypes and saved bytes."""

import shlex
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import debug

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")


def _walk(tensor):
    """The Functions of ``tensor``'s graph and the leaves needing grad, found depth first."""
    functions, leaves, stack = {}, {}, [tensor.grad_fn] if tensor.grad_fn else []
    while stack:
        fn = stack.pop()
        if id(fn) in functions:
            continue
        functions[id(fn)] = fn
        for edge in fn.inputs:
            if edge.grad_fn is not None:
                stack.append(edge.grad_fn)
            elif edge.leaf.requires_grad:
                leaves[id(edge.leaf)] = edge.leaf
    return list(functions.values()), list(leaves.values())


def _arrows(functions) -> int:
    return sum(
        1
        for fn in functions
        for edge in fn.inputs
        if edge.grad_fn is not None or edge.leaf.requires_grad
    )


def _parse(dot_text: str) -> tuple[dict, list]:
    """Graphviz's own reading of the text: {node name: label} and [(tail, head)]."""
    if DOT is None:
        pytest.skip("Graphviz's dot is not installed")
    done = subprocess.run([DOT, "-Tplain"], input=dot_text, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    nodes, edges = {}, []
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        if words[0] == "node":
            nodes[words[1]] = words[6].split("\\n")
        elif words[0] == "edge":
            edges.append((words[1], words[2]))
    return nodes, edges


def _small_model(device):
    """Two conv blocks and a loss, with their parameters by name."""
    rng = np.random.default_rng(0)
    params = {
        "conv1.weight": mg.tensor(rng.standard_normal((4, 3, 3, 3)), device=device),
        "conv1.bias": mg.zeros(4, device=device, dtype=mg.float64),
        "bn.weight": mg.ones(4, device=device, dtype=mg.float64),
        "bn.bias": mg.zeros(4, device=device, dtype=mg.float64),
        "conv2.weight": mg.tensor(rng.standard_normal((2, 4, 1, 1)), device=device),
    }
    for p in params.values():
        p.requires_grad_()
    x = mg.tensor(rng.standard_normal((2, 3, 8, 8)), device=device)
    target = mg.tensor(rng.integers(0, 2, (2, 4, 4)), device=device)
    h = F.conv2d(x, params["conv1.weight"], params["conv1.bias"], padding=1)
    h = F.relu(F.batch_norm(h, None, None, params["bn.weight"], params["bn.bias"], training=True))
    h = F.conv2d(F.max_pool2d(h, 2), params["conv2.weight"])
    return F.cross_entropy(h, target) + 0.5 * (h * h).mean(), params


def test_a_small_model_parses_with_one_node_per_function_and_named_leaves(device):
    loss, params = _small_model(device)
    functions, leaves = _walk(loss)
    nodes, edges = _parse(debug.to_dot(loss, params.items()))
    fn_nodes = {n: label for n, label in nodes.items() if n.startswith("fn")}
    leaf_nodes = {n: label for n, label in nodes.items() if n.startswith("leaf")}
    assert len(fn_nodes) == len(functions) == 10
    assert len(leaf_nodes) == len(leaves) == len(params)
    assert len(nodes) == len(fn_nodes) + len(leaf_nodes)
    assert len(edges) == _arrows(functions)
    assert sorted(label[0] for label in fn_nodes.values()) == sorted(f.name for f in functions)
    assert {label[0] for label in leaf_nodes.values()} == set(params)
    for name, p in params.items():
        assert [name, f"{p.shape} float64"] in leaf_nodes.values()
    assert fn_nodes["fn0"][0] == loss.grad_fn.name
    outputs = {(label[0], label[1]) for label in fn_nodes.values()}
    assert {
        ("Conv2d", "(2, 4, 8, 8) float64"),
        ("MaxPool2d", "(2, 4, 4, 4) float64"),
        ("Conv2d", "(2, 2, 4, 4) float64"),
        ("Add", "() float64"),
    } <= outputs


def test_labels_give_output_shape_dtype_and_saved_bytes(device):
    a = mg.ones((3, 4), dtype=mg.float64, device=device, requires_grad=True)
    b = mg.ones((3, 4), dtype=mg.float64, device=device)
    dot = debug.to_dot(a * b)
    assert 'label="Mul\\n(3, 4) float64\\nsaved 192 B"' in dot  # a and b, 96 B each
    assert 'label="leaf\\n(3, 4) float64"' in dot
    assert "leaf1" not in dot  # b needs no gradient
    s = (a * b).sum(dim=0)
    assert 'label="Sum\\n(4,) float64\\nsaved 0 B", peripheries=2' in debug.to_dot(s)


def test_a_reused_value_is_one_node_with_two_arrows(device):
    a = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    b = a * 2
    c = b * b
    nodes, edges = _parse(debug.to_dot(c, {"a": a}))
    assert len(nodes) == 3
    assert edges.count(("fn0", "fn1")) == 2
    assert nodes["fn1"][:2] == ["Mul", "(2,) float32"]
    assert edges.count(("fn1", "leaf0")) == 1


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("+*-e"), st.integers(0, 99), st.integers(0, 99)),
        min_size=1,
        max_size=12,
    )
)
def test_drawn_expression_graphs_have_a_node_per_function(program):
    """Each step combines two earlier values (or applies exp to one); the last is drawn.
    Only the graph's shape is checked, so values that overflow to inf (exp of a chain of
    sums) are allowed."""
    values = [mg.tensor([0.5, -0.5], requires_grad=i < 2) for i in range(3)]
    with np.errstate(over="ignore", invalid="ignore"):
        for op, i, j in program:
            a, b = values[i % len(values)], values[j % len(values)]
            values.append({"+": a + b, "*": a * b, "-": a - b, "e": mg.exp(a)}[op])
    out = values[-1]
    functions, leaves = _walk(out)
    nodes, edges = _parse(debug.to_dot(out))
    assert sum(n.startswith("fn") for n in nodes) == len(functions)
    assert sum(n.startswith("leaf") for n in nodes) == len(leaves)
    assert len(edges) == _arrows(functions)


def test_a_leaf_a_constant_and_a_freed_graph():
    leaf = mg.ones(3, requires_grad=True)
    assert _parse(debug.to_dot(leaf, {"w": leaf}))[0] == {"leaf0": ["w", "(3,) float32"]}
    assert _parse(debug.to_dot(mg.ones(3)))[0] == {}
    loss = (leaf * 2).sum()
    loss.backward()
    nodes, edges = _parse(debug.to_dot(loss))
    assert nodes == {"fn0": ["Sum", "() float32", "saved freed"]} and edges == []


def test_a_3000_op_chain_needs_no_recursion():
    x = mg.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    assert debug.to_dot(y).count(" -> ") == 3000


def test_names_with_quotes_are_escaped():
    w = mg.ones(2, requires_grad=True)
    nodes, _ = _parse(debug.to_dot(w * 2, [('say "hi"\\', w)]))
    assert nodes["leaf0"][0] == 'say "hi"\\'


def test_params_must_be_named_pairs():
    w = mg.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match="params must be a dict"):
        debug.to_dot(w * 2, [w])


@needs_dot
@pytest.mark.parametrize(
    "suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_render_draws_with_dot(tmp_path, suffix, magic):
    loss, params = _small_model("cpu")
    out = debug.render(loss, tmp_path / f"graph{suffix}", params)
    assert out == tmp_path / f"graph{suffix}"
    assert out.read_bytes().startswith(magic)
    assert (tmp_path / "graph.dot").read_text() == debug.to_dot(loss, params)


def test_render_without_graphviz_writes_the_dot_file_and_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    w = mg.ones(2, requires_grad=True)
    with pytest.warns(UserWarning, match=r"Graphviz's `dot` program is not installed.*graph\.dot"):
        out = debug.render(w * 2, tmp_path / "graph.png")
    assert out == tmp_path / "graph.dot" and not (tmp_path / "graph.png").exists()
    assert out.read_text() == debug.to_dot(w * 2)


def test_render_to_a_dot_path_only_writes_it(tmp_path):
    w = mg.ones(2, requires_grad=True)
    assert debug.render(w * 2, tmp_path / "g.dot").read_text() == debug.to_dot(w * 2)


def test_render_names_the_formats_it_takes(tmp_path):
    w = mg.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"\.dot, \.png, \.svg or \.pdf, got .*g\.jpg"):
        debug.render(w * 2, tmp_path / "g.jpg")
