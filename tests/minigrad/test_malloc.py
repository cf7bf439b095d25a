"""minigrad.malloc: glibc's malloc keeps freed memory for reuse, unless the user says not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minigrad import malloc

ON_GLIBC = malloc.glibc() is not None


class RecordingLibrary:
    """A C library stand-in: records ``mallopt`` calls and answers from ``results``."""

    def __init__(self, *results):
        self.calls, self.results = [], list(results)

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return self.results.pop(0)


# In a fresh interpreter after ``import minigrad``: whether the flag says kept, and whether a
# 1 MiB malloc was served by mmap (glibc's mallinfo2 counts mmapped blocks: above its initial
# 128 KiB threshold by default, from the heap with the setting on).
PROBE = """
import ctypes
import minigrad

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
mapped = libc.mallinfo2().hblks > before
libc.free(block)
print(minigrad.malloc.is_kept(), mapped)
"""


def _in_fresh_process(**env) -> str:
    """``is_kept()`` and whether a 1 MiB block was mmapped, as a fresh interpreter reports
    them after ``import minigrad``."""
    environ = {k: v for k, v in os.environ.items() if k not in malloc.USER_VARIABLES}
    environ.pop(malloc.OPT_OUT_VARIABLE, None)
    environ.pop("GLIBC_TUNABLES", None)
    environ.update(env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_both_thresholds_are_set_the_mmap_one_first():
    library = RecordingLibrary(1, 1)
    assert malloc.apply(library) is True
    assert library.calls == [(-3, malloc.MMAP_THRESHOLD), (-1, malloc.TRIM_THRESHOLD)]


def test_a_refused_trim_threshold_reports_the_setting_off():
    library = RecordingLibrary(1, 0)
    assert malloc.apply(library) is False
    assert len(library.calls) == 2


def test_a_refused_mmap_threshold_leaves_the_trim_threshold_alone():
    """A kept heap with glibc's 128 KiB mmap threshold would hand every larger array fresh
    pages, so the second setting never comes without the first."""
    library = RecordingLibrary(0)
    assert malloc.apply(library) is False
    assert library.calls == [(-3, malloc.MMAP_THRESHOLD)]


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, True),
        ({"MINIGRAD_KEEP_FREED_MEMORY": "1"}, True),
        ({"MINIGRAD_KEEP_FREED_MEMORY": "0"}, False),
        ({"MALLOC_TRIM_THRESHOLD_": "131072"}, False),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, False),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, False),
        ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}, True),
        ({"MALLOC_ARENA_MAX": "2"}, True),
    ],
)
def test_the_users_own_malloc_settings_stand(environ, wanted):
    assert malloc.wanted(environ) is wanted


HAS_MALLINFO2 = ON_GLIBC and hasattr(malloc.glibc(), "mallinfo2")


@pytest.mark.skipif(not HAS_MALLINFO2, reason="mallopt and mallinfo2 are glibc's (2.33+)")
def test_importing_minigrad_serves_a_1_mib_block_from_the_heap():
    assert _in_fresh_process() == "True False"


@pytest.mark.skipif(not HAS_MALLINFO2, reason="mallopt and mallinfo2 are glibc's (2.33+)")
@pytest.mark.parametrize("env", [{"MINIGRAD_KEEP_FREED_MEMORY": "0"}, {"MALLOC_TOP_PAD_": "0"}])
def test_importing_minigrad_under_an_opt_out_leaves_glibcs_mmap(env):
    assert _in_fresh_process(**env) == "False True"
