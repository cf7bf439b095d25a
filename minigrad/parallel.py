"""Splitting memory-bound NumPy work over the CPU cores.

NumPy's loops run on one core but release the GIL, so copies and elementwise passes over
disjoint parts of an array scale across threads. Ops cut their work into cache-sized blocks
and hand the list to :func:`run_in_parts`; on the GPU they run it whole, inline.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy

THREADS = max(1, min(4, os.cpu_count() or 1))
_executors: dict = {}
_WORKER_PREFIX = "minigrad-worker"
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The worker threads of this process (a forked child, e.g. a data-loader worker, gets its
    own: a pool inherited across ``fork`` has no threads behind it)."""
    pid = os.getpid()
    with _lock:
        if pid not in _executors:
            workers = THREADS - 1 or 1
            _executors[pid] = ThreadPoolExecutor(workers, thread_name_prefix=_WORKER_PREFIX)
        return _executors[pid]


def even_ranges(total: int, parts: int) -> list:
    """``parts`` (start, stop) ranges that cut range(total) into runs differing by one at
    most, in order (empty ones when ``parts`` exceeds ``total``)."""
    bounds = [total * k // parts for k in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def run_in_parts(fn, items: list, parts: int | None = None) -> None:
    """Call ``fn(part)`` on up to ``parts`` contiguous parts of ``items`` (THREADS, read at
    the call, by default), concurrently.

    The first part runs in the calling thread, the others in the worker pool; returns when
    all are done, re-raising the first error. With one part (or one item) nothing is threaded,
    nor when the caller is itself one of the pool's workers (it would wait on work queued
    behind itself).
    The workers run under the caller's NumPy error state (``numpy.errstate`` holds per
    thread): an op that silences ``inf * 0`` silences it in every part.
    """
    parts = max(1, min(THREADS if parts is None else parts, len(items)))
    if parts == 1 or threading.current_thread().name.startswith(_WORKER_PREFIX):
        fn(items)
        return
    size, extra = divmod(len(items), parts)
    bounds, start = [], 0
    for k in range(parts):
        stop = start + size + (k < extra)
        bounds.append((start, stop))
        start = stop
    worker = _under_error_state(fn, numpy.geterr())
    futures = [_executor().submit(worker, items[a:b]) for a, b in bounds[1:]]
    try:
        fn(items[bounds[0][0] : bounds[0][1]])
    finally:
        wait(futures)
    for future in futures:
        future.result()


def _under_error_state(fn, state: dict):
    """``fn`` wrapped to run under NumPy error state ``state`` (from ``numpy.geterr()``)."""

    def run(part):
        with numpy.errstate(**state):
            fn(part)

    return run
