"""benchmarks.environment: the BLAS kernel and the variables that force it."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from benchmarks import environment
from minigrad import cblas, parallel


def _core_in_fresh_process(env: dict) -> str:
    code = "from benchmarks import environment; print(environment.blas_core())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_forced_core_type_is_the_kernel_openblas_runs():
    """OPENBLAS_CORETYPE set in a fresh process is the kernel reported there."""
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}
    assert _core_in_fresh_process(env) == "Haswell"


def test_header_warns_only_when_a_variable_forces_the_kernel(monkeypatch):
    for name in environment.FORCING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert environment.forced_kernel() == {}
    assert "warning" not in environment.header()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert environment.forced_kernel() == {"OPENBLAS_CORETYPE": "Haswell"}
    header = environment.header()
    assert "warning: OPENBLAS_CORETYPE=Haswell" in header
    assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" in header


def test_describe_names_numpy_and_torch():
    info = environment.describe()
    assert info["numpy"] and info["torch"] and info["torch_threads"] >= 1
    assert info["blas_core"]


def test_the_header_says_whether_malloc_keeps_freed_memory(monkeypatch):
    for kept, said in ((True, "yes"), (False, "no")):
        monkeypatch.setattr(environment.malloc, "is_kept", lambda kept=kept: kept)
        assert environment.describe()["malloc_keeps_freed"] is kept
        assert f"malloc keeps freed memory: {said}" in environment.header()


def test_one_thread_holds_both_frameworks_on_one_thread_and_restores_them():
    """Inside, PyTorch's pool, minigrad's thread count and NumPy's OpenBLAS run one thread
    (the header says so); after it, each is what it was."""
    before = (torch.get_num_threads(), parallel.THREADS)
    with environment.one_thread():
        assert torch.get_num_threads() == 1 and parallel.THREADS == 1
        assert "minigrad threads: 1" in environment.header()
        if cblas.can_run_single_threaded():
            get_threads = cblas._thread_count_functions()[0]
            assert get_threads() == 1
    assert (torch.get_num_threads(), parallel.THREADS) == before
