"""minigrad.cblas: NumPy's own OpenBLAS sgemm/dgemm against NumPy's matmul, on sub-matrices at
offsets in larger flat buffers (leading dimensions wider than the rows), transposed B, beta=0
and beta=1, and the checks on the arrays it is given."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch
from helpers import FLOAT_DTYPES, random_array, seeds, tolerances
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import cblas


def test_numpy_wheel_openblas_is_found_and_bound():
    """This NumPy is a wheel whose OpenBLAS is scipy_openblas64_ in numpy.libs: the library
    found is that one, and both float GEMMs are bound; other dtypes are not."""
    path = cblas.loaded_openblas()
    assert path is not None
    assert "scipy_openblas64_" in os.path.basename(path)
    numpy_libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    assert os.path.dirname(path) == numpy_libs
    assert cblas.available(np.float32) and cblas.available("float64")
    for dtype in (np.float16, np.int32, np.int64, np.complex128):
        assert not cblas.available(dtype), dtype


def _fake_maps(monkeypatch, paths):
    """Make ``loaded_openblas`` read a /proc/self/maps listing ``paths``."""
    lines = [f"7f00-7f01 r-xp 00000000 08:01 1 {p}\n" for p in paths]
    lines.append("7ffd-7ffe rw-p 00000000 00:00 0 [stack]\n")
    monkeypatch.setattr(cblas, "open", lambda *a, **k: _Lines(lines), raising=False)


class _Lines(list):
    def __enter__(self):
        return iter(self)

    def __exit__(self, *exc):
        return False


def test_loaded_openblas_is_none_without_openblas_and_reads_no_other_library(monkeypatch):
    _fake_maps(monkeypatch, ["/usr/lib/libm.so.6", "/usr/lib/libopenblas.txt"])
    assert cblas.loaded_openblas() is None
    _fake_maps(monkeypatch, ["/usr/lib/libm.so.6", "/opt/x/libopenblasp-r0.3.so.0"])
    assert cblas.loaded_openblas() == "/opt/x/libopenblasp-r0.3.so.0"


def test_numpys_own_openblas_wins_over_a_system_one(monkeypatch):
    """A system OpenBLAS (whose path sorts first) loaded by another library is the fallback."""
    numpys = os.path.join(os.path.dirname(np.__file__) + ".libs", "libscipy_openblas64_-abc.so")
    _fake_maps(monkeypatch, ["/usr/lib/x86_64-linux-gnu/libopenblas.so.0", numpys])
    assert cblas.loaded_openblas() == numpys


def test_numpys_own_openblas_wins_over_another_packages(monkeypatch):
    site = os.path.dirname(os.path.dirname(np.__file__))
    numpys = os.path.join(site, "numpy.libs", "libscipy_openblas64_-abc.so")
    other = os.path.join(site, "another.libs", "libopenblas-r0.so")
    _fake_maps(monkeypatch, ["/usr/lib/libopenblas.so.0", other, numpys])
    assert cblas.loaded_openblas() == numpys


@st.composite
def gemm_cases(draw):
    """(m, n, k), an offset and extra leading-dimension columns for each of a, b and c."""
    shape = tuple(draw(st.integers(1, 12)) for _ in range(3))
    offsets = tuple(draw(st.integers(0, 7)) for _ in range(3))
    extra = tuple(draw(st.integers(0, 4)) for _ in range(3))
    return shape, offsets, extra


def _buffer(seed, rows, ld, offset, dtype, fill=None):
    """A flat buffer with a (rows, ld) matrix starting ``offset`` in, and some slack after."""
    size = offset + rows * ld + 3
    if fill is None:
        return random_array(seed, (size,), dtype)
    return np.full(size, fill, dtype=dtype)


def _view(buffer, rows, cols, ld, offset):
    return buffer[offset : offset + rows * ld].reshape(rows, ld)[:, :cols]


def _check(ours, expected, dtype, k):
    if np.dtype(dtype) == np.float64:
        rtol, atol = 1e-12, 1e-12
    else:
        rtol, atol = tolerances(dtype, k)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(ours, expected, rtol=rtol, atol=atol * scale)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@settings(max_examples=15)
@given(shape=st.tuples(*[st.integers(1, 12)] * 3), seed=seeds)
def test_dense_defaults_match_matmul(dtype, shape, seed):
    m, n, k = shape
    a = random_array(seed, (m, k), dtype)
    b = random_array(seed + 1, (k, n), dtype)
    c = np.full((m, n), np.nan, dtype=dtype)
    cblas.gemm(a, b, c, shape)
    _check(c, a.astype(np.float64) @ b.astype(np.float64), dtype, k)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("beta", [0.0, 1.0])
@settings(max_examples=20)
@given(case=gemm_cases(), seed=seeds)
def test_offsets_and_leading_dimensions_match_matmul(dtype, beta, case, seed):
    """Sub-matrices of larger flat buffers: A (m, k) and B (k, n), read at their offsets
    with rows ``ld`` apart; C (m, n) written there, overwritten with beta=0 (the NaNs in it
    ignored) or added into with beta=1, and nothing else of c touched."""
    (m, n, k), (oa, ob, oc), (ea, eb, ec) = case
    b_rows, b_cols = k, n
    lda, ldb, ldc = k + ea, b_cols + eb, n + ec
    a = _buffer(seed, m, lda, oa, dtype)
    b = _buffer(seed + 1, b_rows, ldb, ob, dtype)
    c = _buffer(seed + 2, m, ldc, oc, dtype)
    inside = np.zeros(c.shape, dtype=bool)
    _view(inside, m, n, ldc, oc)[...] = True
    if beta == 0.0:
        c[inside] = np.nan
    before = c.copy()
    a_matrix = _view(a, m, k, lda, oa).astype(np.float64)
    b_matrix = _view(b, b_rows, b_cols, ldb, ob).astype(np.float64)
    product = a_matrix @ b_matrix
    expected = product + (_view(before, m, n, ldc, oc) if beta else 0.0)
    cblas.gemm(a, b, c, (m, n, k), (oa, ob, oc), (lda, ldb, ldc), beta=beta)
    _check(_view(c, m, n, ldc, oc), expected, dtype, k)
    np.testing.assert_array_equal(c[~inside], before[~inside])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_a_bound_gemm_sums_many_calls_at_their_offsets(dtype):
    """One :class:`cblas.BoundGemm` over the same arrays, called per (block of rows, block
    of columns, slice of the reduction) as the shifted conv calls it: C = A @ B, summed
    over the k slices with beta=1 after the first, each block at its own offsets."""
    m, n, k = 6, 10, 9
    a, b = random_array(0, (m, k), dtype), random_array(1, (k, n), dtype)
    c = np.full((m, n), np.nan, dtype=dtype)
    gemm = cblas.BoundGemm(a, b, c)
    for rows in ((0, 4), (4, 6)):
        for columns in ((0, 3), (3, 10)):
            for part, (first, stop) in enumerate(((0, 2), (2, 7), (7, 9))):
                shape = (rows[1] - rows[0], columns[1] - columns[0], stop - first)
                offsets = (rows[0] * k + first, first * n + columns[0], rows[0] * n + columns[0])
                gemm(shape, offsets, (k, n, n), 1.0 if part else 0.0)
    _check(c, a.astype(np.float64) @ b.astype(np.float64), dtype, k)


def test_operands_are_not_written():
    a, b = random_array(0, (3, 4), np.float64), random_array(1, (4, 5), np.float64)
    a0, b0 = a.copy(), b.copy()
    c = np.zeros((3, 5))
    cblas.gemm(a, b, c, (3, 5, 4))
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_mismatched_dtype_raises(which):
    arrays = [np.ones((2, 2), np.float64) for _ in range(3)]
    arrays[which] = arrays[which].astype(np.float32)
    expected, got = ("float32", "a of float64") if which == 2 else ("float64", "abc"[which])
    if which != 2:
        got += " of float32"
    with pytest.raises(ValueError, match=rf"expected C-contiguous {expected} arrays, got {got}"):
        cblas.gemm(*arrays, (2, 2, 2))


def test_a_read_only_output_raises():
    arrays = [np.ones((2, 2), np.float32) for _ in range(3)]
    arrays[2].flags.writeable = False
    with pytest.raises(ValueError, match="c is read-only"):
        cblas.gemm(*arrays, (2, 2, 2))
    np.testing.assert_array_equal(arrays[2], 1)


def test_numpy_integer_offsets_are_accepted():
    a, b = np.arange(6, dtype=np.float64).reshape(2, 3), np.ones((3, 2))
    c = np.zeros((3, 2))
    cblas.gemm(a, b, c, (2, 2, 3), offsets=(np.int64(0), np.int64(0), np.int64(2)))
    np.testing.assert_array_equal(c[1:], a @ b)
    np.testing.assert_array_equal(c[0], 0)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_non_contiguous_array_raises(which):
    arrays = [np.ones((4, 4), np.float32) for _ in range(3)]
    before = arrays[2].copy()
    arrays[which] = np.asfortranarray(arrays[which]) if which else arrays[which][:, ::2]
    with pytest.raises(ValueError, match=r"C-contiguous float32 .*contiguous: False"):
        cblas.gemm(*arrays, (2, 2, 2))
    np.testing.assert_array_equal(arrays[2], before)


@pytest.mark.parametrize("dtype", [np.float16, np.int64])
def test_an_unsupported_dtype_raises_a_value_error(dtype):
    arrays = [np.ones((2, 2), dtype) for _ in range(3)]
    with pytest.raises(ValueError, match=np.dtype(dtype).name):
        cblas.gemm(*arrays, (2, 2, 2))


needs_thread_control = pytest.mark.skipif(
    not cblas.can_run_single_threaded(), reason="NumPy's BLAS exposes no thread count to set"
)


@needs_thread_control
def test_single_threaded_holds_blas_on_one_thread_until_the_last_caller_leaves():
    get, _ = cblas._thread_count_functions()
    before = get()
    with cblas.single_threaded():
        assert get() == 1
        with cblas.single_threaded():
            assert get() == 1
        assert get() == 1
    assert get() == before


@needs_thread_control
def test_single_threaded_from_two_threads_restores_the_count_once():
    get, _ = cblas._thread_count_functions()
    before, inside, entered, release = get(), [], threading.Barrier(2), threading.Event()

    def hold():
        with cblas.single_threaded():
            entered.wait()
            inside.append(get())
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    while len(inside) < 2:
        time.sleep(0.001)
    release.set()
    for t in threads:
        t.join()
    assert inside == [1, 1]
    assert get() == before


@needs_thread_control
def test_single_threaded_restores_the_count_after_an_error():
    get, _ = cblas._thread_count_functions()
    before = get()
    with pytest.raises(KeyError), cblas.single_threaded():
        raise KeyError("inside")
    assert get() == before


def _in_child(check) -> bool:
    """Fork, run ``check()`` in the child and return its boolean answer."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            answer = bool(check())
        except BaseException:
            answer = False
        os.write(write, b"1" if answer else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    return answer == b"1"


@needs_thread_control
def test_a_child_forked_inside_single_threaded_restores_when_it_leaves():
    """Forked by a thread that is inside (a data-loader worker started mid-conv): in the
    child that thread is still inside, and its own exit restores the thread count."""
    get, _ = cblas._thread_count_functions()
    before, inside = get(), False
    with cblas.single_threaded():
        pid = os.fork()
        if pid == 0:
            inside = cblas._threads_state["users"] == 1 and get() == 1
    if pid == 0:
        os._exit(0 if inside and get() == before else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert get() == before


@needs_thread_control
def test_a_child_forked_while_another_thread_is_inside_gets_its_threads_back():
    """Another thread's exit never comes in the child: the fork restores its thread count,
    and the child's own calls hold and restore it."""
    get, _ = cblas._thread_count_functions()
    before, entered, release = get(), threading.Event(), threading.Event()

    def hold():
        with cblas.single_threaded():
            entered.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait()
    try:
        assert get() == 1

        def restored_and_usable():
            if cblas._threads_state["users"] != 0 or get() != before:
                return False
            with cblas.single_threaded():
                if get() != 1:
                    return False
            return get() == before

        assert _in_child(restored_and_usable)
    finally:
        release.set()
        holder.join()
    assert get() == before


def test_a_swapped_byte_order_is_not_available():
    """BLAS would read big-endian bytes as other numbers: such arrays are refused, and a
    conv on them takes the NumPy path (and still matches)."""
    swapped = np.dtype(np.float64).newbyteorder()
    assert not cblas.available(swapped)
    arrays = [np.ones((2, 2), swapped) for _ in range(3)]
    with pytest.raises(ValueError, match="native float32 or float64"):
        cblas.gemm(*arrays, (2, 2, 2))
    x = random_array(0, (2, 3, 6, 6), np.float64)
    w = random_array(1, (4, 3, 3, 3), np.float64)
    ours = F.conv2d(mg.tensor(x.astype(swapped)), mg.tensor(w.astype(swapped)), padding=1)
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
