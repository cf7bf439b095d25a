"""``cupy.cuda`` (one device, one null stream, events timed on the host) and CUDA kernels.

Work on the stand-in is always finished (NumPy ran it already), so every synchronize returns
at once. Kernels (``RawKernel``, ``RawModule``, ``ElementwiseKernel``, ``ReductionKernel``)
can be built, keeping their source, but raise when run: they need a real GPU.
"""

from __future__ import annotations

import time
import types


class _Device:
    """Stand-in for ``cupy.cuda.Device``: one device, id 0, whose work is always finished."""

    def __init__(self, device=None) -> None:
        self.id = 0 if device is None else int(device)

    def use(self) -> None:
        """Make this the current device (nothing to do)."""

    def synchronize(self) -> None:
        """Wait for the device's work (there is none queued: NumPy ran it already)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def __eq__(self, other) -> bool:
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id} (fake_cupy)>"


class _Event:
    """Stand-in for ``cupy.cuda.Event``, recording host time for ``get_elapsed_time``."""

    def __init__(self, block=False, disable_timing=False, interprocess=False) -> None:
        self.time = None

    def record(self, stream=None) -> None:
        """Remember the current time."""
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        """Wait for the event (it has always happened)."""

    @property
    def done(self) -> bool:
        return True


class _Stream:
    """Stand-in for ``cupy.cuda.Stream``; work on it is always finished."""

    null: _Stream

    def __init__(self, null=False, non_blocking=False, ptds=False) -> None:
        self.is_null = null

    def synchronize(self) -> None:
        """Wait for the stream's work (nothing to do)."""

    def use(self):
        """Make this the current stream (nothing to do)."""
        return self

    def record(self, event=None) -> _Event:
        """Record ``event`` (a new one if None) on this stream."""
        event = _Event() if event is None else event
        event.record(self)
        return event

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        return None


_Stream.null = _Stream(null=True)


def _get_current_stream(device_id=-1) -> _Stream:
    """The null stream, the only one there is."""
    return _Stream.null


def _get_elapsed_time(start_event: _Event, end_event: _Event) -> float:
    """Milliseconds between two recorded events, like ``cupy.cuda.get_elapsed_time``."""
    return (end_event.time - start_event.time) * 1000.0


def _synchronize_device() -> None:
    """``cudaDeviceSynchronize`` (nothing to do)."""


cuda = types.SimpleNamespace(
    __name__="cupy.cuda",
    Device=_Device,
    Stream=_Stream,
    Event=_Event,
    get_current_stream=_get_current_stream,
    get_elapsed_time=_get_elapsed_time,
    is_available=lambda: True,
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDevice=lambda: 0,
        deviceSynchronize=_synchronize_device,
    ),
)


# --------------------------------------------------------------------------- kernels


def _needs_gpu(kind: str, name) -> RuntimeError:
    """The error for running a CUDA kernel on the stand-in."""
    return RuntimeError(
        f"{kind} {name!r} needs a real GPU: the fake_cupy stand-in cannot run CUDA kernels. "
        "Test this path on a CUDA machine (pytest -m gpu), or use the NumPy implementation."
    )


class RawKernel:
    """Stand-in for ``cupy.RawKernel``: keeps the source, refuses to run it."""

    def __init__(self, code: str, name: str, options=(), *args, **kwargs) -> None:
        self.code = code
        self.name = name
        self.options = options
        self.args = args
        self.kwargs = kwargs

    def __call__(self, *args, **kwargs):
        raise _needs_gpu("RawKernel", self.name)


class RawModule:
    """Stand-in for ``cupy.RawModule``: keeps the source; ``get_function`` raises."""

    def __init__(self, code=None, *, path=None, options=(), **kwargs) -> None:
        self.code = code
        self.path = path
        self.options = options
        self.kwargs = kwargs

    def get_function(self, name: str):
        raise _needs_gpu("RawModule function", name)


class ElementwiseKernel:
    """Stand-in for ``cupy.ElementwiseKernel``: keeps the definition, refuses to run it."""

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs) -> None:
        self.in_params = in_params
        self.out_params = out_params
        self.operation = operation
        self.name = name
        self.kwargs = kwargs

    def __call__(self, *args, **kwargs):
        raise _needs_gpu("ElementwiseKernel", self.name)


class ReductionKernel:
    """Stand-in for ``cupy.ReductionKernel``: keeps the definition, refuses to run it."""

    def __init__(
        self,
        in_params,
        out_params,
        map_expr,
        reduce_expr,
        post_map_expr,
        identity,
        name="reduce_kernel",
        **kwargs,
    ) -> None:
        self.in_params = in_params
        self.out_params = out_params
        self.map_expr = map_expr
        self.reduce_expr = reduce_expr
        self.post_map_expr = post_map_expr
        self.identity = identity
        self.name = name
        self.kwargs = kwargs

    def __call__(self, *args, **kwargs):
        raise _needs_gpu("ReductionKernel", self.name)
