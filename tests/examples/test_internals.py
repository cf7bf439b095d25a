"""Every script of examples/internals/ runs, prints what it shows, and its asserts hold.

Each runs in its own interpreter from the repository root, as a reader runs it, with warnings
as errors (as the test suite has them). The scripts assert their own claims, so exit code 0
means those claims hold; the README must list every script, and only those. docs/internals.md
must link every script, and every file it names must exist (it is a tour of the code: a file
moved or renamed makes it wrong).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "internals"
DOC = ROOT / "docs" / "internals.md"
SCRIPTS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 60


def test_the_numbered_scripts_are_all_there():
    numbers = [int(p.name[:2]) for p in SCRIPTS]
    assert numbers == list(range(1, 12)), [p.name for p in SCRIPTS]


def test_readme_lists_every_script_once():
    listed = re.findall(r"^- `(\d\d_\w+\.py)`", (EXAMPLES / "README.md").read_text(), re.M)
    assert listed == [p.name for p in SCRIPTS]


def test_docs_link_every_script():
    text = DOC.read_text()
    for script in SCRIPTS:
        assert f"(../examples/internals/{script.name})" in text, script.name


def test_docs_name_only_files_that_exist():
    text = DOC.read_text()
    named = re.findall(r"`([\w./]+\.py)`", text)
    assert len(named) > 20
    for path in named:  # from the root, inside minigrad/ ("ops/conv/gemm.py"), or an example
        places = (ROOT, ROOT / "minigrad", EXAMPLES)
        assert any((place / path).is_file() for place in places), path
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert len(links) > len(SCRIPTS)
    for link in links:
        assert (DOC.parent / link).exists(), link


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_runs(script: Path):
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{script.name} printed nothing"
    assert not done.stderr.strip(), f"{script.name} wrote to stderr:\n{done.stderr}"
