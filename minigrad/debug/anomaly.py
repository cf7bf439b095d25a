"""NaN and Inf detection that names the op, as ``torch.autograd.detect_anomaly``.

Inside ``with detect_anomaly():`` every op's forward output and every gradient a backward
step returns is checked, and the first NaN or Inf raises :class:`AnomalyError` naming the op,
the phase, the input shapes and the line of user code that called the op (for a backward, the
line that called its forward). The checks only read the arrays, so a run without anomalies
gives bit for bit the results of a run outside the block; they cost a pass over each array
and, on the GPU, a device synchronization per op.
"""

from __future__ import annotations

import linecache
import os
import sys

import minigrad
from minigrad import autograd, backend

_PACKAGE_DIR = os.path.dirname(os.path.abspath(minigrad.__file__)) + os.sep


class AnomalyError(RuntimeError):
    """A NaN or Inf found by :class:`detect_anomaly`.

    Attributes:
        op: the Function's name ("Log").
        phase: "forward" or "backward".
        input_shapes: the shapes of the op's tensor inputs.
        called_at: "file:line in function" of the user code that called the op's forward.
    """

    def __init__(self, message: str, op: str, phase: str, input_shapes: tuple, called_at):
        super().__init__(message)
        self.op, self.phase, self.input_shapes, self.called_at = op, phase, input_shapes, called_at


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """Context manager checking every op's outputs and gradients for NaN and Inf.

    Args:
        check_nan: check the values (the default). With False only the call sites are
            recorded, so an error raised inside a backward gets a note naming the op and the
            line that called its forward.

    Example::

        with mg.debug.detect_anomaly():
            loss = model_loss(x)   # AnomalyError: Log (forward) produced 1 Inf value ...
            loss.backward()
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = bool(check_nan)

    def __enter__(self) -> detect_anomaly:
        autograd.add_observer(self)
        return self

    def __exit__(self, *exc) -> bool:
        autograd.remove_observer(self)
        return False

    # ---- the observer methods autograd calls ----------------------------------------------
    def forward(self, fn, inputs: tuple, run):
        fn.called_at = _user_call_site()
        result = run()
        if self.check_nan:
            outputs = result if isinstance(result, tuple) else (result,)
            shapes = tuple(t.shape for t in inputs)
            for i, out in enumerate(outputs):
                _check(out.data, fn, "forward", shapes, f"output {i} of shape {out.shape}")
        return result

    def backward(self, fn, device: str, run):
        shapes = tuple(edge.shape for edge in fn.inputs)
        try:
            grads = run()
        except AnomalyError:
            raise
        except Exception as exc:
            add_note = getattr(exc, "add_note", None)  # Python >= 3.11
            if add_note is not None:
                add_note(
                    f"detect_anomaly: raised in the backward of {fn.name} (input shapes "
                    f"{shapes}), whose forward was called at {_describe(fn.called_at)}"
                )
            raise
        if self.check_nan:
            for i, (grad, needs) in enumerate(zip(grads, fn.needs_input_grad, strict=True)):
                if needs and grad is not None:
                    _check(grad, fn, "backward", shapes, f"the gradient of input {i}")
        return grads


def _check(array, fn, phase: str, shapes: tuple, what: str) -> None:
    """Raise :class:`AnomalyError` when the float ``array`` holds a NaN or an Inf."""
    if array.dtype.kind not in "fc":
        return
    xp = backend.get_array_module(array)
    bad = ~xp.isfinite(array)
    if not bool(bad.any()):
        return
    nans, total = int(xp.isnan(array).sum()), int(bad.sum())
    found = ", ".join(
        f"{n} {kind} value{'s' if n > 1 else ''}"
        for n, kind in ((nans, "NaN"), (total - nans, "Inf"))
        if n
    )
    raise AnomalyError(
        f"detect_anomaly: {fn.name} ({phase}) produced {found} in {what}; "
        f"input shapes {shapes}; the op was called at {_describe(fn.called_at)}",
        fn.name,
        phase,
        shapes,
        fn.called_at,
    )


def _user_call_site() -> str | None:
    """ "file:line in function" of the innermost caller outside the minigrad package."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _describe(called_at: str | None) -> str:
    """The call site and its line of source, or why it is unknown."""
    if called_at is None:
        return "an unknown place (its forward ran outside detect_anomaly)"
    filename, rest = called_at.rsplit(":", 1)
    source = linecache.getline(filename, int(rest.split(" ", 1)[0])).strip()
    return f"{called_at}: {source}" if source else called_at
