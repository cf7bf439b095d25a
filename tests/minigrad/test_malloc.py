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


def _kept_in_fresh_process(**env) -> str:
    """``is_kept()`` as a fresh interpreter reports it after ``import minigrad``."""
    environ = {k: v for k, v in os.environ.items() if k not in malloc.USER_VARIABLES}
    environ.pop(malloc.OPT_OUT_VARIABLE, None)
    environ.update(env)
    probe = "import minigrad; print(minigrad.malloc.is_kept())"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_both_thresholds_are_set_the_mmap_one_first():
    library = RecordingLibrary(1, 1)
    assert malloc.apply(library) is True
    assert library.calls == [(-3, malloc.MMAP_THRESHOLD), (-1, malloc.TRIM_THRESHOLD)]


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
    ],
)
def test_the_users_own_malloc_settings_stand(environ, wanted):
    assert malloc.wanted(environ) is wanted


@pytest.mark.skipif(not ON_GLIBC, reason="mallopt is glibc's")
def test_importing_minigrad_keeps_freed_memory():
    assert _kept_in_fresh_process() == "True"


@pytest.mark.skipif(not ON_GLIBC, reason="mallopt is glibc's")
@pytest.mark.parametrize("env", [{"MINIGRAD_KEEP_FREED_MEMORY": "0"}, {"MALLOC_TOP_PAD_": "0"}])
def test_importing_minigrad_under_an_opt_out_changes_nothing(env):
    assert _kept_in_fresh_process(**env) == "False"
