"""One elementwise update applied to the arrays of many parameters at once ("foreach").

An optimizer step is a handful of elementwise passes (a lerp, a multiply-add, a square root,
a division) over each parameter, its gradient and its state. Done one NumPy op at a time over
whole arrays, every pass streams every array through main memory. On the CPU :func:`run`
instead cuts every parameter's arrays into chunks of :data:`CHUNK_BYTES` and gives each chunk
all the passes of the update while it sits in cache, so each array crosses main memory about
once per step; the chunks are shared among the threads of :mod:`minigrad.parallel` (NumPy
releases the GIL in its loops). Measured on this project's 2-core machine, one Adam step over
a U-Net's 31M float32 parameters: 100-190 ms as whole-array NumPy ops, 25-100 ms in chunks
(the range is the machine's load; ``python -m benchmarks.optim``). On the GPU each
parameter's arrays are updated whole, by the update function the optimizer chose: its ``xp``
reference or a fused CUDA kernel (:mod:`minigrad.kernels.optim`).

An update is a function ``update(xp, c, arrays, scratch)``: ``c`` holds its scalars, ``arrays``
is ``(param, grad, *state)`` (same shape, updated in place), and ``scratch(k)`` gives the
``k``-th temporary array of that shape, reused from chunk to chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy

from minigrad import backend, parallel

# Bytes per array and chunk, measured over 2**14..2**22 on a quiet machine: smaller chunks pay
# NumPy's ~1 us per call on each op of the update, larger ones no longer stay in cache. One
# step over the U-Net's 31M float32 parameters (python -m benchmarks.optim), ms, against
# torch's foreach (SGD 7-9, Adam 50-80): SGD 11.9 / 10.0 / 8.2-9.2 / 10.5 and Adam 48 / 33 /
# 36-39 / 52 at 2**19 / 2**20 / 2**21 / 2**22.
CHUNK_BYTES = 1 << 21
PARALLEL_BYTES = 1 << 21  # below this many bytes of parameters, waking a worker costs more

_local = threading.local()


@dataclass(frozen=True)
class Work:
    """One parameter's update: ``update(xp, coefficients, arrays, scratch)``."""

    update: Callable
    coefficients: object
    arrays: tuple


def run(works: list[Work]) -> None:
    """Apply every update: CPU ones chunk by chunk over the thread pool, GPU ones whole.

    NaN and inf pass through silently, as in PyTorch and CuPy (a diverging run is the
    caller's to detect): NumPy's warnings are off inside the updates.
    """
    chunks, nbytes = [], 0
    for work in works:
        if backend.is_cpu_array(work.arrays[0]):
            chunks.extend(_chunks(work))
            nbytes += work.arrays[0].nbytes
        else:
            xp = backend.get_array_module(work.arrays[0])
            with _quiet():
                work.update(xp, work.coefficients, work.arrays, _fresh_scratch(xp, work.arrays[0]))
    _run_parts(_run_chunks, chunks, nbytes)


def for_each_chunk(fn: Callable, arrays: list) -> None:
    """``fn(chunk)`` for cache-sized chunks of every array (in place on views), the CPU chunks
    spread over the thread pool; GPU arrays are passed whole."""
    chunks, nbytes = [], 0
    for a in arrays:
        if backend.is_cpu_array(a):
            chunks.extend(_split(a, (a,)))
            nbytes += a.nbytes
        else:
            with _quiet():
                fn(a)
    _run_parts(lambda part: [fn(a) for (a,) in part], chunks, nbytes)


def _quiet():
    """NumPy warnings off for NaN and inf results (the state is per thread)."""
    return numpy.errstate(invalid="ignore", divide="ignore", over="ignore")


def _run_parts(fn: Callable, chunks: list, nbytes: int) -> None:
    """``fn(part)`` over the thread pool, or inline when there is too little work; each
    thread runs it with NumPy's NaN and inf warnings off."""

    def quietly(part: list) -> None:
        with _quiet():
            fn(part)

    def each_hand(hands: list) -> None:
        for hand in hands:
            quietly(hand)

    if nbytes >= PARALLEL_BYTES:
        threads = parallel.THREADS
        parallel.run_in_parts(each_hand, _dealt(chunks, threads), parts=threads)
    elif chunks:
        quietly(chunks)


def _dealt(chunks: list, threads: int) -> list:
    """``chunks`` dealt round-robin into ``threads`` hands (chunk i into hand i % threads),
    the empty hands left out: :func:`parallel.run_in_parts` gives each thread one hand.

    In parameter order the small arrays (norm weights, biases, each its own chunk) cluster
    in one half and the large weights, cut into full chunks, in the other, so contiguous
    halves hold very different bytes: in a ResNet34-U-Net's Adam step the calling thread
    finished 18 ms before the worker. Dealt, each thread gets every other chunk of each
    large weight: the step took 40.6 ms against 47.2 (a UNet's 44.0 against 46.1)."""
    return [hand for hand in (chunks[first::threads] for first in range(threads)) if hand]


def _split(first, arrays: tuple) -> list[tuple]:
    """Same-shaped ``arrays`` as tuples of chunks of at most :data:`CHUNK_BYTES` each.

    The chunks are flat views of C-contiguous arrays; arrays of other layouts (a transposed
    parameter) stay whole, one chunk in their own layout.
    """
    if not all(a.flags.c_contiguous for a in arrays):
        return [arrays]
    flat = [a.reshape(-1) for a in arrays]
    step = _chunk_size(first.dtype)
    return [tuple(a[start : start + step] for a in flat) for start in range(0, first.size, step)]


def _chunks(work: Work) -> list[Work]:
    """``work`` as one Work per chunk of its arrays."""
    return [
        Work(work.update, work.coefficients, arrays)
        for arrays in _split(work.arrays[0], work.arrays)
    ]


def _chunk_size(dtype) -> int:
    return max(1, CHUNK_BYTES // numpy.dtype(dtype).itemsize)


def _run_chunks(chunks: list[Work]) -> None:
    """Run CPU chunks in this thread, with this thread's scratch buffers."""
    for chunk in chunks:
        chunk.update(numpy, chunk.coefficients, chunk.arrays, _thread_scratch(chunk.arrays[0]))


def _thread_scratch(like) -> Callable:
    """``scratch(k)``: the k-th temporary of ``like``'s shape and dtype, a view of a chunk-sized
    buffer this thread keeps, so chunks allocate nothing (an array too large to be a chunk, one
    not C-contiguous, gets its own temporaries)."""
    if like.size > _chunk_size(like.dtype):
        return _fresh_scratch(numpy, like)
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}

    def scratch(k: int):
        key = (like.dtype, k)
        if key not in buffers or buffers[key].size < like.size:
            buffers[key] = numpy.empty(_chunk_size(like.dtype), dtype=like.dtype)
        return buffers[key][: like.size].reshape(like.shape)

    return scratch


def _fresh_scratch(xp, like) -> Callable:
    """``scratch(k)`` that allocates each temporary once per call (whole-array GPU updates)."""
    made: dict = {}

    def scratch(k: int):
        if k not in made:
            made[k] = xp.empty(like.shape, dtype=like.dtype)
        return made[k]

    return scratch
