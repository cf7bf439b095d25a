"""Reverse-mode autograd: ``Function``, grad mode and the backward walk.

A ``Function`` instance is one node of the graph and its own context: ``forward`` and
``backward`` work on raw arrays (numpy or cupy), and ``save_for_backward`` keeps only what
the backward needs. The walk in :func:`run_backward` is iterative (no recursion limit),
reduces gradients of broadcast inputs back to the input shape in one place, checks every
gradient's shape and dtype against its input (naming the op), and frees the graph afterwards
unless ``retain_graph=True``.

Debug tools (:mod:`minigrad.debug`) watch ops through observers: while one is active, each
op's forward (``Function.apply``) and each step of the walk run inside every observer's
``forward``/``backward`` method. With none active the cost is one list test per op.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading

import numpy

from minigrad import backend

_grad_mode = threading.local()
_observers: list = []  # active debug observers, the first added outermost


def add_observer(observer) -> None:
    """Start calling ``observer.forward(fn, inputs, run)`` around every op's forward (``run()``
    gives the output tensor, or the tuple of outputs) and ``observer.backward(fn, device, run)``
    around every backward step (``run()`` gives the op's gradients, one per input, see
    :func:`_backward_step`); each must return ``run()``. Used by :mod:`minigrad.debug`."""
    _observers.append(observer)


def remove_observer(observer) -> None:
    """Stop calling ``observer`` (added by :func:`add_observer`)."""
    _observers.remove(observer)


def _observed(phase: str, fn, argument, run):
    """``run()`` called inside every active observer's ``phase`` method, nested in order."""
    for observer in reversed(tuple(_observers)):
        run = functools.partial(getattr(observer, phase), fn, argument, run)
    return run()


def is_grad_enabled() -> bool:
    """True when ops record the graph (the default)."""
    return getattr(_grad_mode, "enabled", True)


class _GradMode(contextlib.ContextDecorator):
    """Sets grad mode on enter and restores the previous mode on exit; as a decorator each
    call gets a fresh instance, so recursion and threads are safe."""

    mode = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _grad_mode.enabled = self.mode

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous
        return False

    def _recreate_cm(self):
        return type(self)()


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (and decorator) in which ops record no graph, as ``torch.no_grad``."""

    mode = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (and decorator) that turns recording back on inside ``no_grad``."""

    mode = True


class set_grad_enabled(_GradMode):  # noqa: N801 - PyTorch's name
    """Set grad mode now (``set_grad_enabled(False)``) or for a block
    (``with set_grad_enabled(training): ...``), as ``torch.set_grad_enabled``."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous = is_grad_enabled()
        _grad_mode.enabled = self.mode

    def __enter__(self):
        _grad_mode.enabled = self.mode

    def _recreate_cm(self):
        return self


class Function:
    """One differentiable op. Subclasses implement ``forward`` and ``backward`` on arrays.

    ``forward(*arrays, **params)`` returns one array, or a tuple whose first array is the
    differentiable output and the rest non-differentiable extras (max-pool indices).
    ``backward(grad_output)`` returns one gradient (or None) per tensor input; a gradient
    may have the broadcast shape of the output, the walk reduces it to the input's shape.
    ``self.needs_input_grad`` is set before ``forward``, so a forward can skip saving what
    no backward will need.

    ``called_at`` is where user code called the op, recorded while ``detect_anomaly`` is on.
    """

    called_at: str | None = None

    def __init__(self):
        self.inputs: tuple = ()  # one Edge per tensor input
        self.saved: tuple = ()
        self.needs_input_grad: tuple = ()
        self.released = False

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on tensors; record the graph when grad mode is on and an input needs it."""
        from minigrad.tensor import Tensor

        fn = cls()
        _check_inputs(fn.name, inputs, Tensor)
        grad_mode = is_grad_enabled()
        fn.needs_input_grad = tuple(grad_mode and t.requires_grad for t in inputs)
        if _observers:
            run = functools.partial(fn._run, inputs, params, Tensor)
            return _observed("forward", fn, inputs, run)
        return fn._run(inputs, params, Tensor)

    def _run(self, inputs: tuple, params: dict, tensor_cls):
        """Forward on the inputs' arrays; the output tensor(s), with this node recorded as the
        output's ``grad_fn`` when a gradient can flow."""
        out = self.forward(*(t.data for t in inputs), **params)
        extras = ()
        if isinstance(out, tuple):
            out, extras = out[0], out[1:]
        record = any(self.needs_input_grad) and out.dtype.kind in "fc"
        result = tensor_cls._wrap(out, requires_grad=record, grad_fn=self if record else None)
        if record:
            self.inputs = tuple(Edge.to(t) for t in inputs)
        else:
            self.saved = ()
        if extras:
            return (result, *(tensor_cls._wrap(e) for e in extras))
        return result

    def release(self) -> None:
        """Drop saved arrays and input references so memory is freed after backward."""
        self.saved = ()
        self.inputs = ()
        self.released = True


class Edge:
    """Where the gradient of one input of a Function goes, without keeping the input's data.

    A leaf's gradient is accumulated into the leaf, so the edge holds the leaf tensor (which
    its owner keeps alive anyway); a computed input's gradient goes to the Function that made
    it, so the edge holds only that Function and the input's shape and dtype. An intermediate
    value is then freed as soon as nothing but the graph refers to it, unless a backward saved
    it (as PyTorch's graph does: ``y = bn(x); y.sum()`` does not keep ``y`` alive).
    """

    __slots__ = ("shape", "dtype", "grad_fn", "leaf")

    def __init__(self, shape: tuple, dtype, grad_fn, leaf):
        self.shape, self.dtype, self.grad_fn, self.leaf = shape, dtype, grad_fn, leaf

    @classmethod
    def to(cls, tensor) -> Edge:
        leaf = tensor if tensor.grad_fn is None else None
        return cls(tuple(tensor.shape), tensor.dtype, tensor.grad_fn, leaf)


def _check_inputs(op: str, inputs, tensor_cls) -> None:
    """Every input is a Tensor, and all live on one device; else a clear error naming them."""
    for i, t in enumerate(inputs):
        if not isinstance(t, tensor_cls):
            raise TypeError(f"{op}: argument {i} must be a Tensor, got {type(t).__name__}")
    if len({t.device for t in inputs}) > 1:
        described = ", ".join(f"{t.device} tensor of shape {tuple(t.shape)}" for t in inputs)
        raise backend.DeviceError(
            f"{op}: expected all tensors on the same device, got {described}; "
            "move them with .to(device) first"
        )


def unbroadcast(grad, shape: tuple, op: str):
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise RuntimeError(
            f"{op}.backward: gradient shape {grad.shape} has fewer dims than {shape}"
        )
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    grad = grad.reshape(grad.shape[extra:]) if extra else grad
    if grad.shape != shape:
        raise RuntimeError(
            f"{op}.backward returned a gradient of shape {grad.shape} for an input of shape {shape}"
        )
    return grad


def _topological_order(root_fn: Function) -> list:
    """Functions reachable from ``root_fn``, each before the functions that made its inputs."""
    order, visited = [], set()
    stack = [(root_fn, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        if fn.released:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (at {fn.name}): its saved "
                "values were freed; call .backward(retain_graph=True) the first time"
            )
        visited.add(id(fn))
        stack.append((fn, True))
        for edge in fn.inputs:
            if edge.grad_fn is not None and id(edge.grad_fn) not in visited:
                stack.append((edge.grad_fn, False))
    order.reverse()
    return order


def _as_input_grad(fn: Function, grad, edge: Edge):
    """Reduce a gradient to its input's shape, checking shape and dtype, naming the op."""
    grad = unbroadcast(grad, edge.shape, fn.name)
    if grad.dtype != edge.dtype:
        raise RuntimeError(
            f"{fn.name}.backward returned dtype {grad.dtype} for an input of dtype {edge.dtype}"
        )
    return grad


def _backward_step(fn: Function, pending: dict, handed_out: set, retain_graph: bool, tensor_cls):
    """One step of the walk: ``fn.backward`` on its output's gradient, each input's gradient
    reduced to the input's shape, checked, and passed on (into ``pending`` for the Function
    that made the input, into ``.grad`` for a leaf); then ``fn``'s saved arrays are freed
    unless ``retain_graph``. The consumed gradient is taken out of ``pending``, so it is
    freed within the step too.

    Returns:
        ``fn.backward``'s gradients, one per input (for debug observers: those of inputs
        that need none, ``not fn.needs_input_grad[i]``, were not passed on).
    """
    grads = fn.backward(pending.pop(id(fn)))
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(fn.inputs):
        raise RuntimeError(
            f"{fn.name}.backward returned {len(grads)} gradients for {len(fn.inputs)} inputs"
        )
    for edge, needs, grad in zip(fn.inputs, fn.needs_input_grad, grads, strict=True):
        if not needs or grad is None:
            continue
        grad = _as_input_grad(fn, grad, edge)
        if edge.grad_fn is None:
            _accumulate(edge.leaf, grad, tensor_cls, handed_out)
        else:
            key = id(edge.grad_fn)
            pending[key] = grad if key not in pending else pending[key] + grad
    if not retain_graph:
        fn.release()
    return grads


def run_backward(root, gradient, retain_graph: bool = False) -> None:
    """Backpropagate ``gradient`` (an array shaped like ``root``) through the graph of ``root``."""
    from minigrad.tensor import Tensor

    handed_out = {id(gradient)}  # the caller's array: a leaf gets a copy, as in PyTorch
    if root.grad_fn is None:
        _accumulate(root, gradient, Tensor, handed_out)
        return
    pending = {id(root.grad_fn): gradient}
    for fn in _topological_order(root.grad_fn):
        if id(fn) not in pending:
            if not retain_graph:
                fn.release()
        elif _observers:
            device = backend.device_of(pending[id(fn)])
            step = functools.partial(_backward_step, fn, pending, handed_out, retain_graph, Tensor)
            _observed("backward", fn, device, step)
        else:
            _backward_step(fn, pending, handed_out, retain_graph, Tensor)


def _accumulate(leaf, grad, tensor_cls, handed_out: set) -> None:
    """Add ``grad`` into a leaf's ``.grad`` (PyTorch accumulates across backward calls).

    An op may pass one array to several inputs (``a + b``) or a view of another's gradient
    (reshape); a leaf gets its own copy then, so in-place updates of one ``.grad`` stay local.
    """
    if not leaf.requires_grad:
        return
    if leaf.grad is None:
        if id(grad) in handed_out or not _owns_its_memory(grad):
            grad = grad.copy()
        handed_out.add(id(grad))
        leaf.grad = tensor_cls._wrap(grad)
    else:
        leaf.grad = tensor_cls._wrap(leaf.grad.data + grad)


def output_grad_is_exclusive(grad) -> bool:
    """Whether a ``backward`` may overwrite ``grad``, the output gradient it was called with:
    a writeable NumPy array that owns its memory and that nothing but the calling
    ``backward``'s own argument refers to (CPython's reference count, calibrated at import
    on a fresh array passed the way the walk passes one).

    The walk hands each gradient to one backward and keeps no reference itself, but an op
    may pass one array to several inputs (``a + b``), a leaf may keep it as ``.grad``, or a
    view of it may be pending elsewhere: each of those is a reference, and the gradient is
    then not exclusive. So is every gradient where the reference count is unknown (not
    CPython). Call it from ``backward`` itself, on its argument, as a statement of its own:
    inside another call's arguments (``multiply(gy, m, out=gy if ...)``) the reference that
    call already holds makes it False.
    """
    return (
        _EXCLUSIVE_REFERENCES is not None
        and isinstance(grad, numpy.ndarray)
        and grad.base is None
        and grad.flags.owndata
        and grad.flags.writeable
        and sys.getrefcount(grad) == _EXCLUSIVE_REFERENCES
    )


def _references_one_call_below(grad) -> int:
    """``sys.getrefcount(grad)`` counted one call below a backward, as in
    :func:`output_grad_is_exclusive`."""
    return sys.getrefcount(grad)


def _calibrated_exclusive_references() -> int | None:
    """What :func:`output_grad_is_exclusive` counts for a gradient nothing else refers to: a
    fresh array passed straight into a method and counted one call below it, as the walk's
    ``fn.backward(pending.pop(...))`` passes one; None (never exclusive) where that cannot
    be trusted.

    It is counted with any trace or profile function switched off: a tracer that reads the
    frames' locals (a debugger, coverage's Python tracer) adds references of its own, and a
    count made under it would later pass a gradient that something else still holds. A
    second probe holding one more reference must count exactly one more.
    """
    if not hasattr(sys, "getrefcount"):
        return None

    class Probe:
        def backward(self, grad):
            return _references_one_call_below(grad)

        def backward_holding_another(self, grad):
            held = grad  # noqa: F841 - the one extra reference
            return _references_one_call_below(grad)

    tracer, profiler = sys.gettrace(), sys.getprofile()
    sys.settrace(None)
    sys.setprofile(None)
    try:
        alone = Probe().backward(numpy.empty(1))
        held = Probe().backward_holding_another(numpy.empty(1))
    finally:
        sys.settrace(tracer)
        sys.setprofile(profiler)
    return alone if held == alone + 1 else None


_EXCLUSIVE_REFERENCES = _calibrated_exclusive_references()


def _owns_its_memory(grad) -> bool:
    """Whether ``grad`` can be a leaf's ``.grad`` as it is: it owns its memory, or (NumPy)
    it is a writeable C-contiguous view of all of an array that owns it and that nothing
    else refers to (CPython's reference count: the view's own reference and the call's), as
    a kernel's fresh ``product.reshape(weight_shape)`` is. Copying those cost 98 MB of copies
    per training step of a ResNet34-U-Net (24M conv weights), 10-15 ms. A broadcast view
    (read-only) or a transposed one is copied, so ``.grad`` is writeable and contiguous, as
    PyTorch's is; so is every view where the reference count is unknown (not CPython)."""
    if getattr(grad, "base", None) is None:
        return True
    return (
        isinstance(grad, numpy.ndarray)
        and grad.flags.writeable
        and grad.flags.c_contiguous
        and isinstance(grad.base, numpy.ndarray)
        and grad.base.flags.owndata
        and grad.base.size == grad.size
        and hasattr(sys, "getrefcount")
        and sys.getrefcount(grad.base) == 2
    )
