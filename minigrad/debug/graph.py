"""The backward graph of a tensor as Graphviz DOT text (:func:`to_dot`) or a picture
(:func:`render`), as torchviz draws PyTorch's.

Each Function that the backward walk will visit is one box: its name, the shape and dtype of
its output, and the bytes it saved for backward. Each leaf that requires grad is one
ellipse, named from ``params`` (a module's ``named_parameters()``) or "leaf". An arrow goes
from a Function to what made each of its inputs, the order in which the gradient flows; an
input used twice (``a * a``) gets two arrows. The box of the tensor itself is drawn doubled.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

from minigrad.debug.memory import format_bytes, saved_bytes

_FORMATS = ("dot", "png", "svg", "pdf")


def to_dot(tensor, params=None) -> str:
    """The backward graph of ``tensor`` as DOT text.

    Args:
        tensor: the Tensor whose graph to draw (usually a loss).
        params: names for leaves, as an iterable of ``(name, tensor)`` pairs (a module's
            ``named_parameters()``) or a dict ``{name: tensor}``; unnamed leaves are "leaf".

    Returns:
        A ``digraph`` whose Function nodes are named ``fn0, fn1, ...`` (``fn0`` makes
        ``tensor``) and leaf nodes ``leaf0, leaf1, ...``. After a ``backward()`` without
        ``retain_graph`` only ``fn0`` is left, marked "saved freed": the walk cut its inputs.
    """
    names = _leaf_names(params)
    lines = [
        "digraph minigrad {",
        '  node [fontname="monospace", fontsize=10];',
        "  edge [arrowsize=0.6];",
    ]
    if tensor.grad_fn is None:
        if tensor.requires_grad:
            lines.append(_leaf_line("leaf0", tensor, names))
        return "\n".join([*lines, "}"]) + "\n"
    functions = _functions(tensor)
    fn_ids, leaf_ids = {}, {}
    for fn, output in functions:
        fn_ids[id(fn)] = f"fn{len(fn_ids)}"
        lines.append(_function_line(fn_ids[id(fn)], fn, output, is_root=fn is tensor.grad_fn))
    for fn, _ in functions:
        for edge in fn.inputs:
            if edge.grad_fn is not None:
                target = fn_ids[id(edge.grad_fn)]
            elif edge.leaf.requires_grad:
                if id(edge.leaf) not in leaf_ids:
                    leaf_ids[id(edge.leaf)] = f"leaf{len(leaf_ids)}"
                    lines.append(_leaf_line(leaf_ids[id(edge.leaf)], edge.leaf, names))
                target = leaf_ids[id(edge.leaf)]
            else:
                continue
            lines.append(f"  {fn_ids[id(fn)]} -> {target};")
    return "\n".join([*lines, "}"]) + "\n"


def render(tensor, path, params=None) -> Path:
    """Write the graph of ``tensor`` to ``path`` (.png, .svg or .pdf) with Graphviz's ``dot``.

    The DOT text always goes to ``path`` with the suffix ``.dot`` (a ``.dot`` path is only
    written). Without Graphviz installed, a ``UserWarning`` says so and where the DOT file is.

    Returns:
        The path of the picture, or of the DOT file when ``dot`` is missing or ``path`` ends
        in ``.dot``.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in _FORMATS:
        raise ValueError(f"render: path must end in .dot, .png, .svg or .pdf, got {str(path)!r}")
    dot_path = path.with_suffix(".dot")
    dot_path.write_text(to_dot(tensor, params))
    if fmt == "dot":
        return dot_path
    program = shutil.which("dot")
    if program is None:
        warnings.warn(
            f"render: Graphviz's `dot` program is not installed, so {path} was not drawn; "
            f"the graph's DOT text is in {dot_path} (install Graphviz, e.g. "
            "`apt-get install graphviz`, or open the .dot file in any Graphviz viewer)",
            UserWarning,
            stacklevel=2,
        )
        return dot_path
    done = subprocess.run(
        [program, f"-T{fmt}", str(dot_path), "-o", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"render: dot failed on {dot_path}: {done.stderr.strip()}")
    return path


def _functions(tensor) -> list:
    """``(fn, (shape, dtype) of its output)`` for each Function reachable from ``tensor``,
    each once, breadth first. A Function keeps no output, but the edges of the Functions that
    consume it record the output's shape and dtype, and ``tensor`` is the root's output."""
    order = [(tensor.grad_fn, (tuple(tensor.shape), tensor.dtype))]
    seen = {id(tensor.grad_fn)}
    for fn, _ in order:
        for edge in fn.inputs:
            if edge.grad_fn is not None and id(edge.grad_fn) not in seen:
                seen.add(id(edge.grad_fn))
                order.append((edge.grad_fn, (edge.shape, edge.dtype)))
    return order


def _leaf_names(params) -> dict:
    """``{id(tensor): name}`` from ``params`` (None, a dict, or ``(name, tensor)`` pairs)."""
    if params is None:
        return {}
    pairs = params.items() if isinstance(params, dict) else params
    names = {}
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(
                "to_dot: params must be a dict {name: tensor} or (name, tensor) pairs, "
                f"got an item {pair!r}"
            )
        names[id(pair[1])] = pair[0]
    return names


def _function_line(node: str, fn, output: tuple, is_root: bool) -> str:
    shape = f"{output[0]} {output[1]}"
    memory = "saved freed" if fn.released else f"saved {format_bytes(saved_bytes(fn))}"
    label = _quote("\n".join((fn.name, shape, memory)))
    doubled = ", peripheries=2" if is_root else ""
    return f"  {node} [shape=box, label={label}{doubled}];"


def _leaf_line(node: str, leaf, names: dict) -> str:
    label = f"{names.get(id(leaf), 'leaf')}\n{tuple(leaf.shape)} {leaf.dtype}"
    return f'  {node} [shape=ellipse, style=filled, fillcolor="#dde8f6", label={_quote(label)}];'


def _quote(text: str) -> str:
    """``text`` as a quoted DOT string, its lines joined by DOT's centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'
