"""How minigrad keeps freed host memory for reuse: glibc's malloc without its give-backs.

A training step frees and allocates the same arrays, step after step. By default glibc hands
an array above its mmap threshold (128 KiB at first, raised up to 32 MiB as such arrays are
freed) fresh pages from the kernel, and gives the free top of a heap back to the kernel once
more than twice that threshold lies there. Either way the next step's arrays land on fresh
memory, and each of its pages costs a page fault when first written. Measured here (2 cores,
a ResNet34-U-Net training step at batch 4, 3x128x128, alone in its process): 10-12k page
faults a step and 483-513 ms; with arrays up to 32 MiB served from the heap and the heap kept,
0-5 faults and 350-426 ms, at the same peak RSS (808 MB). The cost: after the arrays are
freed the process keeps up to 1 GiB of free heap (arrays above 32 MiB still go back).

:func:`keep_freed_memory` sets the two thresholds with ``mallopt`` where the C library is
glibc; ``import minigrad`` calls it. It leaves malloc as it is where the user has tuned it
through the environment (:data:`USER_VARIABLES`, or ``glibc.malloc.`` tunables in
``GLIBC_TUNABLES``) or set ``MINIGRAD_KEEP_FREED_MEMORY=0``. The setting is the process's
own: every library in it is served the same way (PyTorch too, in the benchmarks that run
both). An allocator preloaded in glibc's place (jemalloc, tcmalloc) does not see it.
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD = 32 << 20
"""Arrays up to this many bytes come from the heap: glibc's upper limit on 64-bit."""
TRIM_THRESHOLD = 1 << 30
"""A heap gives its free top back to the kernel only once it passes this many bytes."""
OPT_OUT_VARIABLE = "MINIGRAD_KEEP_FREED_MEMORY"
USER_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)
"""glibc's own variables for the thresholds: set, they stand."""
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters, from <malloc.h>
_M_MMAP_THRESHOLD = -3
_kept = False


def glibc():
    """The process's C library when it is glibc with ``mallopt``, else None."""
    try:
        library = ctypes.CDLL(None)
    except (OSError, TypeError):  # Windows has no process-wide handle
        return None
    if not hasattr(library, "gnu_get_libc_version") or not hasattr(library, "mallopt"):
        return None
    return library


def keep_freed_memory() -> bool:
    """Serve arrays up to MMAP_THRESHOLD from the heap and keep the heap (TRIM_THRESHOLD),
    unless the environment tunes malloc itself or opts out (:func:`wanted`). Returns whether
    both were set; :func:`is_kept` tells later."""
    global _kept
    library = glibc() if wanted(os.environ) else None
    _kept = _kept or (library is not None and apply(library))
    return _kept


def is_kept() -> bool:
    """Whether :func:`keep_freed_memory` has set malloc's thresholds in this process."""
    return _kept


def wanted(environ) -> bool:
    """False where ``environ`` opts out (MINIGRAD_KEEP_FREED_MEMORY=0) or tunes malloc itself
    (any of USER_VARIABLES, or a ``glibc.malloc.`` tunable), whose choice then stands."""
    if environ.get(OPT_OUT_VARIABLE, "1") == "0" or any(v in environ for v in USER_VARIABLES):
        return False
    return "glibc.malloc." not in environ.get("GLIBC_TUNABLES", "")


def apply(library) -> bool:
    """Both thresholds set through ``library.mallopt``; True when both calls succeed.

    The mmap threshold goes first: a kept heap with glibc's initial 128 KiB mmap threshold
    would serve every larger array fresh pages (144k faults a ResNet34-U-Net step). Should
    the second call fail, the fixed 32 MiB mmap threshold stays (13.8k faults, about
    glibc's default) and this returns False."""
    if library.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return False
    return library.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
