"""The packages' import rules (DESIGN.md): minigrad knows nothing of layers or segmentation,
layers nothing of segmentation, and no library code imports torch (the oracle of the tests
only; a torch tensor a user passes in is converted by duck typing)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][\w.]*)", re.MULTILINE)
FORBIDDEN = {
    "minigrad": ("layers", "segmentation", "torch", "examples", "benchmarks"),
    "layers": ("segmentation", "torch", "examples", "benchmarks"),
    "segmentation": ("torch", "examples", "benchmarks"),
    "examples": ("torch",),
}


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in IMPORT.findall(path.read_text())}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found under {package}/"
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(_imports(path) & set(FORBIDDEN[package]))}"
        for path in files
        if _imports(path) & set(FORBIDDEN[package])
    ]
    assert not offenders, "\n".join(offenders)


def test_the_scan_sees_an_import_inside_a_function():
    source = "def f():\n    import torch\n    from layers.module import Module\n"
    assert set(IMPORT.findall(source)) == {"torch", "layers.module"}
