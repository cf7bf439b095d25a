"""What a benchmark ran on: NumPy's BLAS, the kernel it picked, and the thread counts.

Every figure against PyTorch depends on the GEMM kernel NumPy's OpenBLAS runs: on this
machine OpenBLAS picks its AVX-512 kernels (SkylakeX) by itself, but the workplace sets
``OPENBLAS_CORETYPE=Haswell`` (and ``OPENBLAS_L2_SIZE``) for older OpenBLAS builds, which halves
the speed of a large GEMM (2048^3: 48 ms against 90-130 here). PyTorch brings its own oneDNN
and is not affected. So each benchmark prints this header, and warns when the kernel is
forced; to measure what a user of this processor gets, run it as

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.models
"""

from __future__ import annotations

import contextlib
import ctypes
import os

import numpy as np
import torch

from minigrad import blas, cblas, malloc, parallel

FORCING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_CORE_NAME_SYMBOLS = (
    "scipy_openblas_get_corename64_",
    "scipy_openblas_get_corename",
    "openblas_get_corename64_",
    "openblas_get_corename",
)


def blas_core() -> str:
    """The kernel family OpenBLAS runs (such as "SkylakeX" or "Haswell"), or "unknown"."""
    path = cblas.loaded_openblas()
    if path is None:
        return "unknown"
    library = ctypes.CDLL(path)
    for symbol in _CORE_NAME_SYMBOLS:
        function = getattr(library, symbol, None)
        if function is not None:
            function.restype = ctypes.c_char_p
            return function().decode()
    return "unknown"


def forced_kernel() -> dict:
    """The OpenBLAS variables set in this environment that force its kernel choice."""
    return {name: os.environ[name] for name in FORCING_VARIABLES if name in os.environ}


def describe() -> dict:
    """NumPy's version and BLAS kernel, any forcing variables, OpenBLAS's worker spin
    (:mod:`minigrad.blas`), whether malloc keeps freed memory (:mod:`minigrad.malloc`) and
    torch's thread count."""
    return {
        "numpy": np.__version__,
        "blas_core": blas_core(),
        "forced": forced_kernel(),
        "blas_spin": os.environ.get(blas.SPIN_VARIABLE, "default"),
        "malloc_keeps_freed": malloc.is_kept(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "minigrad_threads": parallel.THREADS,
    }


def header() -> str:
    """One line for the top of a benchmark's output, plus a warning line when forced."""
    info = describe()
    line = (
        f"numpy {info['numpy']} (OpenBLAS kernel {info['blas_core']}, "
        f"{blas.SPIN_VARIABLE}={info['blas_spin']}), "
        f"torch {info['torch']} ({info['torch_threads']} threads), "
        f"minigrad threads: {info['minigrad_threads']}, "
        f"malloc keeps freed memory: {'yes' if info['malloc_keeps_freed'] else 'no'}"
    )
    if info["forced"]:
        settings = " ".join(f"{k}={v}" for k, v in info["forced"].items())
        line += (
            f"\nwarning: {settings} forces OpenBLAS's kernel; for the figures a user of this "
            "processor gets, run under env -u " + " -u ".join(FORCING_VARIABLES)
        )
    return line


@contextlib.contextmanager
def one_thread():
    """Both frameworks on one thread: PyTorch's intra-op pool, minigrad's
    (:data:`minigrad.parallel.THREADS`) and NumPy's OpenBLAS (:func:`minigrad.cblas.
    single_threaded`). What a step costs a core, without the cost of sharing it out."""
    torch_threads, minigrad_threads = torch.get_num_threads(), parallel.THREADS
    torch.set_num_threads(1)
    parallel.THREADS = 1
    try:
        with cblas.single_threaded():
            yield
    finally:
        torch.set_num_threads(torch_threads)
        parallel.THREADS = minigrad_threads
