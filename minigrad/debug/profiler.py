"""A per-op profiler, as ``torch.profiler.profile``: ``with profile() as prof: ...``.

Every Function's forward (its ``apply``: the forward and the graph bookkeeping) and every
step of the backward walk (its ``backward``, the reduction of its gradients to the input
shapes, and the freeing of its saved arrays and of the gradient it consumed) becomes one
:class:`OpEvent`. On the GPU the device is synchronized before and after each, so an
event's time is the op's real work, not the time to queue it. An op called inside another
op's forward is an event of its own, and its time is taken out of the outer op's *self*
time, so the self times add up to the time spent in ops, each moment counted once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

from minigrad import autograd, backend
from minigrad.debug.memory import array_bytes, format_bytes, saved_bytes

_SORT_KEYS = ("total", "forward", "backward", "calls", "saved")


@dataclass(frozen=True)
class OpEvent:
    """One op call: a Function's forward or one backward step.

    Attributes:
        name: the Function's class name ("Conv2d").
        phase: "forward" or "backward".
        input_shapes: the shapes of the op's tensor inputs.
        output_bytes: bytes of the forward's outputs, or of the gradients a backward returns.
        saved_bytes: bytes of the arrays the op saved for backward (see ``memory.saved_bytes``).
        start_ns, end_ns: ``time.perf_counter_ns()`` when the call began and ended.
        self_ns: the duration less that of the ops called inside it.
        depth: 0 for an op called from user code, 1 for one called inside it, ...
        thread_id: ``threading.get_ident()`` of the calling thread.
        device: "cpu" or "gpu".
    """

    name: str
    phase: str
    input_shapes: tuple
    output_bytes: int
    saved_bytes: int
    start_ns: int
    end_ns: int
    self_ns: int
    depth: int
    thread_id: int
    device: str

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


class profile:  # noqa: N801 - PyTorch's name
    """Context manager recording an :class:`OpEvent` for every op run inside it, in any thread.

    Example::

        with mg.debug.profile() as prof:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
        print(prof.table(sort_by="total", row_limit=10))
        prof.export_chrome_trace("trace.json")  # chrome://tracing or ui.perfetto.dev

    Attributes:
        events: the recorded events, in the order the calls ended.
    """

    def __init__(self):
        self.events: list[OpEvent] = []
        self._start_ns = self._end_ns = None
        self._nesting = threading.local()

    def __enter__(self) -> profile:
        self.events = []
        self._end_ns = None
        self._start_ns = time.perf_counter_ns()
        autograd.add_observer(self)
        return self

    def __exit__(self, *exc) -> bool:
        autograd.remove_observer(self)
        self._end_ns = time.perf_counter_ns()
        return False

    @property
    def wall_time(self) -> float:
        """Seconds from entering the block to leaving it (to now, while inside it)."""
        if self._start_ns is None:
            raise RuntimeError("profile: wall_time is known only once the block has started")
        end = time.perf_counter_ns() if self._end_ns is None else self._end_ns
        return (end - self._start_ns) / 1e9

    @property
    def op_time(self) -> float:
        """Seconds spent in ops: the sum of the events' self times."""
        return sum(e.self_ns for e in self.events) / 1e9

    # ---- the observer methods autograd calls ----------------------------------------------
    def forward(self, fn, inputs: tuple, run):
        device = inputs[0].device if inputs else backend.CPU
        result, times = self._timed(device, run)
        outputs = result if isinstance(result, tuple) else (result,)
        shapes = tuple(t.shape for t in inputs)
        out_bytes = array_bytes(t.data for t in outputs)
        self._record(fn, "forward", shapes, out_bytes, saved_bytes(fn), device, times)
        return result

    def backward(self, fn, device: str, run):
        shapes = tuple(edge.shape for edge in fn.inputs)
        saved = saved_bytes(fn)  # before the step frees them
        grads, times = self._timed(device, run)
        passed = (g for g, needs in zip(grads, fn.needs_input_grad, strict=True) if needs)
        self._record(fn, "backward", shapes, array_bytes(passed), saved, device, times)
        return grads

    def _timed(self, device: str, run):
        """``run()`` and its (start_ns, end_ns, self_ns, depth), the device synchronized
        around it; nested calls in this thread add their duration to this one's children."""
        stack = self._stack()
        backend.synchronize(device)
        stack.append(0)
        start = time.perf_counter_ns()
        try:
            result = run()
            backend.synchronize(device)
        finally:
            end = time.perf_counter_ns()
            children = stack.pop()
            if stack:
                stack[-1] += end - start
        return result, (start, end, end - start - children, len(stack))

    def _stack(self) -> list:
        """This thread's open op calls, each holding the nanoseconds of the ops inside it."""
        if not hasattr(self._nesting, "stack"):
            self._nesting.stack = []
        return self._nesting.stack

    def _record(self, fn, phase, shapes, output_bytes, saved, device, times) -> None:
        start, end, self_ns, depth = times
        self.events.append(
            OpEvent(
                name=fn.name,
                phase=phase,
                input_shapes=shapes,
                output_bytes=output_bytes,
                saved_bytes=saved,
                start_ns=start,
                end_ns=end,
                self_ns=self_ns,
                depth=depth,
                thread_id=threading.get_ident(),
                device=device,
            )
        )

    # ---- reports --------------------------------------------------------------------------
    def table(self, sort_by: str = "total", row_limit: int | None = None) -> str:
        """A text table with one row per (op name, input shapes): ``print(prof.table())``.

        Columns: calls (forward calls), forward total and mean, backward total, total, its
        share of the block's wall time, output bytes and saved bytes (summed over the calls).
        Times are self times (see the module docstring). The last line compares the time in
        ops with the wall time; the gap is Python between ops.

        Args:
            sort_by: "total", "forward", "backward", "calls" or "saved", largest first.
            row_limit: show only this many rows (None: all).
        """
        if sort_by not in _SORT_KEYS:
            raise ValueError(f"table: sort_by must be one of {_SORT_KEYS}, got {sort_by!r}")
        if row_limit is not None and (not isinstance(row_limit, int) or row_limit < 0):
            raise ValueError(f"table: row_limit must be None or an int >= 0, got {row_limit!r}")
        rows = sorted(_rows(self.events), key=lambda r: r[sort_by], reverse=True)
        return _format_table(rows[:row_limit], self.op_time, self.wall_time)

    def export_chrome_trace(self, path) -> None:
        """Write the events as Chrome trace event JSON (one complete "X" event per op call,
        times in microseconds from the start of the block), which chrome://tracing and
        Perfetto open, as PyTorch's ``export_chrome_trace``."""
        if self._start_ns is None:
            raise RuntimeError("profile: export_chrome_trace needs a profiled block first")
        pid = os.getpid()
        trace = [_trace_event(e, self._start_ns, pid) for e in self.events]
        trace.sort(key=lambda e: e["ts"])
        with open(path, "w") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)


def _trace_event(e: OpEvent, origin_ns: int, pid: int) -> dict:
    return {
        "name": e.name,
        "cat": e.phase,
        "ph": "X",
        "ts": (e.start_ns - origin_ns) / 1e3,
        "dur": e.duration_ns / 1e3,
        "pid": pid,
        "tid": e.thread_id,
        "args": {
            "input_shapes": [list(s) for s in e.input_shapes],
            "output_bytes": e.output_bytes,
            "saved_bytes": e.saved_bytes,
            "self_us": e.self_ns / 1e3,
            "device": e.device,
        },
    }


def _rows(events) -> list[dict]:
    """One dict per (name, input shapes): calls, forward/backward/total ns, bytes."""
    rows: dict = {}
    for e in events:
        key = (e.name, e.input_shapes)
        if key not in rows:
            counts = dict.fromkeys(("calls", "forward", "backward", "output", "saved"), 0)
            rows[key] = {"name": e.name, "shapes": e.input_shapes, **counts}
        row = rows[key]
        row[e.phase] += e.self_ns
        if e.phase == "forward":
            row["calls"] += 1
            row["output"] += e.output_bytes
            row["saved"] += e.saved_bytes
    for row in rows.values():
        row["total"] = row["forward"] + row["backward"]
    return list(rows.values())


def _format_table(rows: list[dict], op_time: float, wall_time: float) -> str:
    header = (
        "Op",
        "Input shapes",
        "Calls",
        "Fwd total",
        "Fwd mean",
        "Bwd total",
        "Total",
        "% wall",
        "Output",
        "Saved",
    )
    wall_ns = max(wall_time * 1e9, 1.0)
    body = [
        (
            r["name"],
            ", ".join(str(s) for s in r["shapes"]),
            str(r["calls"]),
            _ms(r["forward"]),
            _ms(r["forward"] / r["calls"]) if r["calls"] else "-",
            _ms(r["backward"]),
            _ms(r["total"]),
            f"{100 * r['total'] / wall_ns:.1f}",
            format_bytes(r["output"]),
            format_bytes(r["saved"]),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [_join(header, widths), _join(tuple("-" * w for w in widths), widths)]
    lines += [_join(line, widths) for line in body]
    coverage = 100 * op_time / wall_time if wall_time else 0.0
    lines.append(
        f"Time in ops {op_time * 1e3:.3f} ms of {wall_time * 1e3:.3f} ms wall ({coverage:.1f}%)"
    )
    return "\n".join(lines)


def _join(cells: tuple, widths: list) -> str:
    """Text columns left-aligned, number columns right-aligned."""
    left = 2
    return "  ".join(
        c.ljust(w) if i < left else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f} ms"
