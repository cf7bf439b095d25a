"""The backend: GPU errors that say what is missing, and a scan of the source proving every
``xp.<name>`` exists in both numpy and cupy and no op calls NumPy functions on tensor data."""

import ast
import re
import sys
from pathlib import Path

import numpy
import pytest

import minigrad as mg
from minigrad import backend

PACKAGE = Path(mg.__file__).parent
SOURCES = [p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts]
XP_NAME = re.compile(
    r"(?:\bxp|get_array_module\([^()]*\))\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
)
# NumPy functions allowed in ops: they act on dtypes or Python numbers, never on tensor data.
DTYPE_HELPERS = {
    "dtype",
    "promote_types",
    "result_type",
    "float16",
    "float32",
    "float64",
    "int32",
    "int64",
    "uint8",
    "bool_",
    "iinfo",
    "finfo",
    "generic",
}


def _xp_names(gpu_only: bool = False) -> set:
    """The ``xp.<name>`` used by the ops (or, with ``gpu_only``, by the CUDA kernel wrappers)."""
    names = set()
    for path in SOURCES:
        if ("kernels" in path.parts) == gpu_only:
            names.update(m.group(1) for m in XP_NAME.finditer(path.read_text()))
    return names


def _resolve(module, dotted: str) -> bool:
    obj = module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def test_the_scan_finds_the_ops():
    assert {"exp", "where", "zeros"} <= _xp_names()


@pytest.mark.parametrize("name", sorted(_xp_names()))
def test_every_xp_name_exists_in_numpy_and_cupy(name):
    cupy = pytest.importorskip("cupy")
    assert _resolve(numpy, name), f"numpy has no {name}"
    assert _resolve(cupy, name), f"cupy has no {name}: the GPU path would fail"


def _numpy_calls(path: Path) -> list:
    tree = ast.parse(path.read_text())
    aliases = {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for a in node.names
        if a.name == "numpy"
    }
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in aliases and node.attr not in DTYPE_HELPERS:
                calls.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return calls


@pytest.mark.parametrize("name", sorted(_xp_names(gpu_only=True)))
def test_every_xp_name_of_the_kernels_exists_in_cupy(name):
    cupy = pytest.importorskip("cupy")
    assert _resolve(cupy, name), f"cupy has no {name}"


def test_no_op_calls_numpy_on_tensor_data():
    ops = sorted((PACKAGE / "ops").glob("*.py"))
    assert ops
    offenders = [c for path in ops for c in _numpy_calls(path)]
    assert not offenders, "ops must use xp, not numpy: " + ", ".join(offenders)


def test_gpu_without_cupy_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    backend.use_fake_gpu(False)
    try:
        with pytest.raises(backend.DeviceError, match="pip install"):
            mg.zeros(2, device="gpu")
    finally:
        backend.use_fake_gpu(True)


def test_gpu_without_a_device_says_so():
    pytest.importorskip("cupy")
    if backend.cuda_available():
        pytest.skip("this machine has a CUDA device")
    backend.use_fake_gpu(False)
    try:
        with pytest.raises(backend.DeviceError, match="CUDA device"):
            mg.ones(1, device="cuda")
    finally:
        backend.use_fake_gpu(True)


def test_device_names():
    assert backend.canonical_device("cuda:0") == "gpu"
    assert backend.canonical_device("CPU") == "cpu"
    with pytest.raises(backend.DeviceError, match="'mps'"):
        backend.canonical_device("mps")
