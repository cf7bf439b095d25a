"""Nothing in the project loads pickle: a scan of the source text of every package.

Pickle runs arbitrary code when it loads, so checkpoints are safetensors and data is decoded
from its own formats. This test reads every ``.py`` file under the project's packages and
flags: importing ``pickle``/``cPickle`` (any form), ``allow_pickle=True`` (``numpy.load``), and
``torch.load(...)`` without ``weights_only=True``. It is a regex over the text, comments and
strings included, so a line that only mentions one of these must be reworded.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("minigrad", "layers", "segmentation", "examples", "benchmarks")

_PICKLE_MODULE = r"_?c?[pP]ickle"
_RULES = [
    (
        re.compile(
            rf"^[ \t]*(?:import[ \t]+(?:[\w.]+(?:[ \t]+as[ \t]+\w+)?[ \t]*,[ \t]*)*"
            rf"{_PICKLE_MODULE}\b|from[ \t]+{_PICKLE_MODULE}\b[ \t]+import)",
            re.MULTILINE,
        ),
        "imports pickle",
    ),
    (
        re.compile(rf"""(?:__import__|import_module)\(\s*['"]{_PICKLE_MODULE}['"]"""),
        "imports pickle",
    ),
    (re.compile(r"allow_pickle\s*=\s*True"), "passes allow_pickle=True"),
]
_TORCH_LOAD = re.compile(r"\btorch\.load\(")
_WEIGHTS_ONLY = re.compile(r"weights_only\s*=\s*True")


def _call_text(source: str, open_paren: int) -> str:
    """The text of a call from its opening parenthesis to the matching closing one."""
    depth = 0
    for i in range(open_paren, len(source)):
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        if depth == 0:
            return source[open_paren : i + 1]
    return source[open_paren:]


def pickle_uses(source: str) -> list[tuple[int, str]]:
    """(line number, what) for each pickle use in ``source``, in order."""
    found = []
    for pattern, what in _RULES:
        found += [(match.start(), what) for match in pattern.finditer(source)]
    for match in _TORCH_LOAD.finditer(source):
        if not _WEIGHTS_ONLY.search(_call_text(source, match.end() - 1)):
            found.append((match.start(), "calls torch.load without weights_only=True"))
    return sorted((source.count("\n", 0, start) + 1, what) for start, what in found)


def scanned_files() -> list[Path]:
    me = Path(__file__).resolve()
    files = [p for name in SCANNED for p in sorted((ROOT / name).rglob("*.py"))]
    return [p for p in files if p.resolve() != me]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import pickle\n", [(1, "imports pickle")]),
        ("x = 1\n    import os, pickle as p\n", [(2, "imports pickle")]),
        ("import cPickle\nimport _pickle\n", [(1, "imports pickle"), (2, "imports pickle")]),
        ("from pickle import loads\n", [(1, "imports pickle")]),
        ("m = importlib.import_module('pickle')\n", [(1, "imports pickle")]),
        ('m = __import__("pickle")\n', [(1, "imports pickle")]),
        ("a = np.load(f, allow_pickle = True)\n", [(1, "passes allow_pickle=True")]),
        ("s = torch.load(path)\n", [(1, "calls torch.load without weights_only=True")]),
        (
            "s = torch.load(os.path.join(a, b),\n    map_location='cpu')\n",
            [(1, "calls torch.load without weights_only=True")],
        ),
        ("s = torch.load(os.path.join(a, b), weights_only=True)\n", []),
        ("a = np.load(f, allow_pickle=False)\n", []),
        ("import pickleshare_free\nfrom pickled import x\nunpickle = 1\n", []),
        ("import safetensors\n# no pickle anywhere\n", []),
    ],
)
def test_the_scan_finds_what_it_should(source, expected):
    assert pickle_uses(source) == expected


def test_the_scan_covers_the_packages():
    files = scanned_files()
    assert any(p.relative_to(ROOT).parts[0] == "minigrad" for p in files)
    assert ROOT / "minigrad" / "serialization.py" in files


def test_no_source_file_loads_pickle():
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in scanned_files()
        for line, what in pickle_uses(path.read_text(encoding="utf-8"))
    ]
    assert not offences, "pickle is not allowed (use safetensors):\n" + "\n".join(offences)
