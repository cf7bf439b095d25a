"""Making device arrays and copying them back: ``asarray``, ``array``, ``asnumpy`` and friends.

Host data given to these is an upload, counted in :data:`~minigrad.testing.fake_cupy.transfers`;
device arrays pass through without a copy when they can.
"""

from __future__ import annotations

import numpy

from minigrad.testing.fake_cupy_parts.arrays import _from_numpy, _unwrap, ndarray
from minigrad.testing.fake_cupy_parts.transfers import transfers


def _upload(obj, dtype, order, ndmin: int = 0) -> ndarray:
    """A new device array with the values of host data ``obj``; counted unless all device."""
    known: dict = {}
    host = _unwrap(obj, "upload", known, allow_host=True)
    data = numpy.array(host, dtype=dtype, order=order or "K", ndmin=ndmin, copy=True)
    if not known:
        transfers.record_to_device(data.nbytes)
    return _from_numpy(data)


def asarray(a, dtype=None, order=None, *, blocking=False) -> ndarray:
    """``a`` as a device array: itself when it already is one, else a counted upload.

    Args:
        a: A device array, or host data (``numpy.ndarray``, scalar, nested lists).
        dtype: Wanted dtype, or None to keep it.
        order: Memory layout ("C", "F", "A", "K" or None).
        blocking: Accepted for CuPy compatibility; ignored.
    """
    if isinstance(a, ndarray):
        data = numpy.asarray(a._a, dtype=dtype, order=order)
        return a if data is a._a else _from_numpy(data)
    return _upload(a, dtype, order)


def asanyarray(a, dtype=None, order=None, *, blocking=False) -> ndarray:
    """Same as :func:`asarray` (CuPy has no array subclasses)."""
    return asarray(a, dtype=dtype, order=order)


def ascontiguousarray(a, dtype=None) -> ndarray:
    """``a`` as a C-contiguous device array (copied only if needed)."""
    return asarray(a, dtype=dtype, order="C")


def asfortranarray(a, dtype=None) -> ndarray:
    """``a`` as a Fortran-contiguous device array (copied only if needed)."""
    return asarray(a, dtype=dtype, order="F")


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """A device array from ``obj``, like ``cupy.array``; host data is a counted upload."""
    if isinstance(obj, ndarray):
        data = numpy.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return obj if data is obj._a else _from_numpy(data)
    return _upload(obj, dtype, order, ndmin)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True) -> numpy.ndarray:
    """A ``numpy.ndarray`` with the values of ``a``; for a device array a counted copy."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    result = numpy.asarray(a, order=order)
    if out is None:
        return result
    out[...] = result
    return out
