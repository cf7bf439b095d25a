"""Byte counts the debug tools report: what an op outputs and what it keeps for backward."""

from __future__ import annotations

from minigrad import backend


def array_bytes(arrays) -> int:
    """Bytes of the distinct arrays among ``arrays`` (other values, such as None, count 0)."""
    seen: dict = {}
    for a in arrays:
        if backend.is_array(a):
            seen[id(a)] = a.nbytes
    return sum(seen.values())


def saved_bytes(fn) -> int:
    """Bytes of the arrays ``fn`` saved for its backward (``save_for_backward``).

    A saved view counts its own size, and a saved input counts although its owner may keep
    it alive anyway: the figure is what the graph holds on to, an upper bound on what it adds.
    """
    return array_bytes(fn.saved)


def format_bytes(n: int) -> str:
    """``n`` bytes in the largest unit that leaves at least 1: "512 B", "1.5 KiB", "3.0 MiB"."""
    value, unit = float(n), "B"
    for larger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
