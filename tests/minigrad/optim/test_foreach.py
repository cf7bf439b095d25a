"""The foreach runner: how the chunks of an update reach the threads."""

import pytest

from minigrad import parallel
from minigrad.optim import foreach


@pytest.mark.parametrize(
    ("threads", "expected"), [(2, [[0, 2, 4, 6], [1, 3, 5]]), (3, [[0, 3, 6], [1, 4], [2, 5]])]
)
def test_each_thread_gets_the_chunks_dealt_round_robin(monkeypatch, threads, expected):
    """Chunk i runs on thread i % threads, so the small arrays clustered at one end of the
    parameter list and the large weights at the other are shared evenly."""
    monkeypatch.setattr(parallel, "THREADS", threads)
    parts = []
    foreach._run_parts(
        lambda part: parts.append(list(part)), list(range(7)), foreach.PARALLEL_BYTES
    )
    assert sorted(parts) == expected


def test_too_little_work_runs_inline_in_order():
    parts = []
    foreach._run_parts(lambda part: parts.append(list(part)), [0, 1, 2], foreach.PARALLEL_BYTES - 1)
    assert parts == [[0, 1, 2]]
