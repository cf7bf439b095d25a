"""Every CUDA source compiles with nvcc for sm_80 and sm_90 (runs wherever nvcc is on PATH)."""

import shutil
import subprocess

import pytest

from minigrad.kernels import ENTRIES, SOURCES

NVCC = shutil.which("nvcc")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_cuda_source_compiles(tmp_path, name, arch):
    source = tmp_path / f"{name}.cu"
    source.write_text(SOURCES[name])
    result = subprocess.run(
        [
            NVCC,
            "--ptx",
            f"-arch={arch}",
            "--std=c++14",
            "-o",
            str(tmp_path / f"{name}.ptx"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"nvcc failed for {name} ({arch}):\n{result.stderr}"
    ptx = (tmp_path / f"{name}.ptx").read_text()
    for entry in ENTRIES[name]:
        assert f".entry {entry}(" in ptx, f"{entry} missing from the PTX of {name}"
