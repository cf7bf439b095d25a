"""minigrad.blas: OpenBLAS's short worker spin, set before NumPy loads OpenBLAS."""

from __future__ import annotations

import os
import subprocess
import sys

from minigrad import blas


def _spin_in_fresh_process(code: str, **env) -> str:
    """``OPENBLAS_THREAD_TIMEOUT`` as a fresh interpreter sees it after running ``code``."""
    environ = {k: v for k, v in os.environ.items() if k != blas.SPIN_VARIABLE}
    environ.update(env)
    probe = f"{code}; import os; print(os.environ.get({blas.SPIN_VARIABLE!r}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_importing_minigrad_first_sets_the_short_spin():
    assert _spin_in_fresh_process("import minigrad") == blas.SHORT_SPIN


def test_a_value_the_user_set_is_kept():
    assert _spin_in_fresh_process("import minigrad", OPENBLAS_THREAD_TIMEOUT="12") == "12"


def test_nothing_is_set_once_numpy_is_loaded(monkeypatch):
    """OpenBLAS has read its environment by then: setting it would only mislead."""
    assert _spin_in_fresh_process("import numpy; import minigrad") == "None"
    monkeypatch.delenv(blas.SPIN_VARIABLE, raising=False)
    assert "numpy" in sys.modules
    assert blas.prefer_short_spin() is False
    assert blas.SPIN_VARIABLE not in os.environ


def test_the_module_loads_no_numpy():
    """minigrad/__init__.py runs it before its other imports: loaded alone, it must not be
    the one that loads NumPy."""
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('blas', {blas.__file__!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "assert 'numpy' not in sys.modules; module.prefer_short_spin()"
    )
    assert _spin_in_fresh_process(code) == blas.SHORT_SPIN
