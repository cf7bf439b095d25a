"""NumPy's own OpenBLAS GEMM, called directly: strided operands and ``C = A @ B + beta * C``.

``numpy.matmul`` cannot add into its output, nor take a matrix whose rows are slices of a
longer buffer at an offset that its strides cannot express without a copy. The shifted-window
conv (:mod:`minigrad.ops.conv.shifted`) needs both: it sums kh*kw GEMMs into one output, each
reading a shifted window of the same padded buffer. This module finds the OpenBLAS library
that NumPy loaded (the ``numpy.libs`` copy of NumPy's wheels), binds its ILP64 CBLAS
``sgemm``/``dgemm`` with ctypes, and runs them on NumPy arrays with row-major offsets and
leading dimensions. ctypes releases the GIL for the call, and OpenBLAS threads it as it
threads NumPy's matmul.

:func:`available` is False where NumPy runs on another BLAS (MKL, Accelerate) or on a build
whose symbols are not the ILP64 ones: callers then take their NumPy path.

:func:`single_threaded` holds the same OpenBLAS on one thread while our own threads share a
conv's tiles (:func:`minigrad.ops.im2col.tile_parallel`), each running its own GEMMs.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import threading

import numpy as np

_SHARED_OPENBLAS = re.compile(r"openblas.*\.so(\.\d+)*$")
_GEMM_SYMBOLS = {
    "float32": ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
    "float64": ("scipy_cblas_dgemm64_", "cblas_dgemm64_"),
}
_SCALARS = {"float32": ctypes.c_float, "float64": ctypes.c_double}
_ROW_MAJOR, _NO_TRANS = 101, 111
_THREAD_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
)
_threads_lock = threading.Lock()
_threads_state = {"users": 0, "saved": None}
_depth = threading.local()  # how deep the current thread is inside single_threaded


def _after_fork_in_child() -> None:
    """A forked child (a data-loader worker) has only the forking thread: a fresh lock (the
    parent's may have been held at the fork), and as users that thread's own depth. When
    other threads were inside, their exit never comes in the child, so the thread count
    they saved is restored here."""
    global _threads_lock
    _threads_lock = threading.Lock()
    depth = getattr(_depth, "value", 0)
    if depth == 0 and _threads_state["users"] > 0:
        _thread_count_functions()[1](_threads_state["saved"])
        _threads_state["saved"] = None
    _threads_state["users"] = depth


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def loaded_openblas() -> str | None:
    """The path of NumPy's OpenBLAS library in this process, if it loaded one (Linux).

    NumPy's wheels keep it in ``numpy.libs`` beside the package; a library of that name
    elsewhere in the process (another package's, or the system's) is only the fallback."""
    numpy_libs = os.path.dirname(np.__file__) + ".libs" + os.sep
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return None
    found = sorted(p for p in paths if _SHARED_OPENBLAS.search(os.path.basename(p).lower()))
    found.sort(key=lambda p: not p.startswith(numpy_libs))
    return found[0] if found else None


@functools.cache
def _library():
    path = loaded_openblas()
    return None if path is None else ctypes.CDLL(path)


@functools.cache
def _gemm_function(dtype_name: str):
    """The bound ILP64 CBLAS GEMM for ``dtype_name``, or None."""
    library = _library()
    if library is None or dtype_name not in _GEMM_SYMBOLS:
        return None
    for symbol in _GEMM_SYMBOLS[dtype_name]:
        function = getattr(library, symbol, None)
        if function is not None:
            integer, pointer, scalar = ctypes.c_int64, ctypes.c_void_p, _SCALARS[dtype_name]
            function.argtypes = [ctypes.c_int] * 3 + [integer] * 3 + [scalar, pointer, integer]
            function.argtypes += [pointer, integer, scalar, pointer, integer]
            function.restype = None
            return function
    return None


def available(dtype) -> bool:
    """Whether :func:`gemm` can run on arrays of ``dtype``: float32 or float64 in the
    machine's byte order (BLAS would read swapped bytes as other numbers)."""
    dtype = np.dtype(dtype)
    return dtype.isnative and _gemm_function(dtype.name) is not None


def gemm(
    a,
    b,
    c,
    shape: tuple,
    offsets: tuple = (0, 0, 0),
    lds: tuple | None = None,
    beta: float = 0.0,
) -> None:
    """``C = A @ B + beta * C`` in place, on flat views of C-contiguous arrays: one call of
    :class:`BoundGemm` (see there for the arguments)."""
    BoundGemm(a, b, c)(shape, offsets, lds, beta)


class BoundGemm:
    """GEMMs ``C = A @ B + beta * C`` in place on flat views of three fixed arrays.

    The arrays are checked once, when bound, and each call only adds its offsets to their
    addresses: a conv that sums kh*kw GEMMs per run of columns makes hundreds of calls per
    training step (468 in a ResNet34-U-Net's), and checking the arrays on every call cost
    about 8 us of Python each, three times the ctypes call itself.

    Args:
        a, b, c: C-contiguous arrays of one dtype (float32 or float64, native byte order),
            read as row-major matrices starting ``offsets`` elements into each: A (m, k),
            B (k, n), C (m, n). ``c`` must be writeable.

    Calling it takes ``shape`` (m, n, k); ``offsets``, the elements before each matrix's
    first entry in a, b and c; ``lds``, the leading dimensions (elements between rows) of
    a, b and c, by default dense (k, n, n); and ``beta``: 0 overwrites C (its old contents
    are never read), 1 adds into it. The caller guarantees that each matrix lies within its
    array; nothing but the arrays' dtypes, contiguity and C's writability is checked, which
    a wrong call would turn into a crash.

    Raises:
        ValueError: an array of another dtype, not C-contiguous, or a read-only ``c``.
    """

    def __init__(self, a, b, c):
        self._function = _gemm_function(c.dtype.name) if c.dtype.isnative else None
        if self._function is None:
            order = "" if c.dtype.isnative else " in swapped byte order"
            raise ValueError(
                "cblas.gemm: expected native float32 or float64 arrays, got c of "
                f"{c.dtype.name}{order}"
            )
        for name, array in (("a", a), ("b", b), ("c", c)):
            if array.dtype != c.dtype or not array.flags.c_contiguous:
                raise ValueError(
                    f"cblas.gemm: expected C-contiguous {c.dtype} arrays, got {name} of "
                    f"{array.dtype} (contiguous: {array.flags.c_contiguous})"
                )
        if not c.flags.writeable:
            raise ValueError("cblas.gemm: c is read-only")
        self._arrays = (a, b, c)  # kept alive while their addresses are in use
        self._addresses = tuple(array.ctypes.data for array in self._arrays)
        self._item = c.dtype.itemsize

    def __call__(
        self, shape: tuple, offsets: tuple = (0, 0, 0), lds: tuple | None = None, beta=0.0
    ) -> None:
        m, n, k = shape
        lda, ldb, ldc = lds or (k, n, n)
        item, (address_a, address_b, address_c) = self._item, self._addresses
        self._function(
            _ROW_MAJOR,
            _NO_TRANS,
            _NO_TRANS,
            m,
            n,
            k,
            1.0,
            address_a + int(offsets[0]) * item,
            lda,
            address_b + int(offsets[1]) * item,
            ldb,
            beta,
            address_c + int(offsets[2]) * item,
            ldc,
        )


@functools.cache
def _thread_count_functions():
    """OpenBLAS's (get, set) thread-count functions, or None."""
    library = _library()
    for get_name, set_name in _THREAD_SYMBOLS:
        get, set_ = getattr(library, get_name, None), getattr(library, set_name, None)
        if get is not None and set_ is not None:
            get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
            return get, set_
    return None


def can_run_single_threaded() -> bool:
    """Whether :func:`single_threaded` can make NumPy's BLAS run each GEMM on its caller."""
    return _library() is not None and _thread_count_functions() is not None


@contextlib.contextmanager
def single_threaded():
    """While any thread is inside, NumPy's OpenBLAS runs each GEMM on its calling thread
    alone; the last one out restores the thread count.

    For work cut into independent tiles that our own threads share (one tile's im2col, GEMM
    and copies per thread): each thread then runs its GEMMs at one core's full speed while
    the other runs its copies, instead of both waiting on a two-thread GEMM after every
    single-threaded copy. OpenBLAS's thread count is process-wide: a GEMM that another
    thread runs meanwhile also gets one thread, and since OpenBLAS splits its sums by thread
    count, its result may then differ in the last bits from the same GEMM run outside (a
    300x300 float64 GEMM by 3.6e-14). Without :func:`can_run_single_threaded` it changes
    nothing.
    """
    functions = _thread_count_functions() if _library() is not None else None
    if functions is None:
        yield
        return
    get, set_ = functions
    with _threads_lock:
        if _threads_state["users"] == 0:
            _threads_state["saved"] = get()
            set_(1)
        _threads_state["users"] += 1
    _depth.value = getattr(_depth, "value", 0) + 1
    try:
        yield
    finally:
        _depth.value -= 1
        with _threads_lock:
            _threads_state["users"] -= 1
            if _threads_state["users"] == 0:
                set_(_threads_state["saved"])
