"""minigrad.parallel: parts of a list run on the worker threads, under the caller's NumPy
error state."""

import threading

import numpy as np
import pytest

from minigrad import parallel


def test_every_item_runs_once_in_contiguous_parts():
    seen, lock = [], threading.Lock()

    def record(part):
        with lock:
            seen.append(list(part))

    parallel.run_in_parts(record, list(range(10)), parts=3)
    assert sorted(seen) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_a_workers_error_is_raised_in_the_caller():
    def fail_on_last(part):
        if 9 in part:
            raise KeyError("last part")

    with pytest.raises(KeyError, match="last part"):
        parallel.run_in_parts(fail_on_last, list(range(10)), parts=2)


@pytest.mark.filterwarnings("error")
def test_workers_take_the_callers_numpy_error_state():
    """np.errstate holds per thread: without passing it on, ``inf * 0`` in a worker would warn
    (an error under -W error) inside an op that silences it."""
    arrays = [np.array([np.inf], dtype=np.float64) for _ in range(4)]
    worker_states = []

    def multiply(part):
        worker_states.append(np.geterr()["invalid"])
        for a in part:
            a *= 0

    with np.errstate(invalid="ignore"):
        parallel.run_in_parts(multiply, arrays, parts=2)
    assert worker_states == ["ignore", "ignore"]
    assert all(np.isnan(a[0]) for a in arrays)
    with pytest.raises(RuntimeWarning), np.errstate(invalid="warn"):
        parallel.run_in_parts(multiply, [np.array([np.inf]) for _ in range(2)], parts=2)


def test_a_part_that_splits_its_own_work_runs_it_inline():
    """A worker that calls run_in_parts again would wait on work queued behind itself (the
    pool has one worker on two cores): there the inner call runs inline."""
    seen, lock = [], threading.Lock()

    def inner(part):
        with lock:
            seen.append((threading.current_thread().name, list(part)))

    def outer(part):
        parallel.run_in_parts(inner, [part[0] * 10, part[0] * 10 + 1], parts=2)

    parallel.run_in_parts(outer, [1, 2], parts=2)
    assert sorted(items for _, items in seen) == [[10], [11], [20, 21]]
    worker_calls = [items for name, items in seen if name.startswith("minigrad-worker")]
    assert [20, 21] in worker_calls


@pytest.mark.parametrize(("total", "parts"), [(10, 3), (7, 7), (2, 4), (0, 2), (1000, 1)])
def test_even_ranges_cover_the_range_in_order(total, parts):
    ranges = parallel.even_ranges(total, parts)
    assert len(ranges) == parts
    assert [i for a, b in ranges for i in range(a, b)] == list(range(total))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_the_default_part_count_is_threads_at_the_call(monkeypatch, threads):
    """Setting ``parallel.THREADS`` (one thread for a single-core benchmark) takes effect on
    calls that pass no part count."""
    monkeypatch.setattr(parallel, "THREADS", threads)
    seen, lock = [], threading.Lock()

    def record(part):
        with lock:
            seen.append(len(part))

    parallel.run_in_parts(record, list(range(6)))
    assert len(seen) == threads
