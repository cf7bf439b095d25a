"""The stand-in's device array, and the wrapping of NumPy data at the host/device boundary.

:class:`ndarray` holds a NumPy array (``_a``) and refuses what CuPy refuses: implicit
conversion to NumPy, NumPy functions and ufuncs on it, and mixing with ``numpy.ndarray``.
:func:`_unwrap` and :func:`_wrap` translate arguments and results of the NumPy calls that
stand in for CuPy's. The operators, methods and properties are generated from the tables of
:mod:`minigrad.testing.fake_cupy_parts.operators` (:mod:`minigrad.testing.fake_cupy` installs
them), and ``cupyx``'s scatters live here, since the array's scatter methods call them.
"""

from __future__ import annotations

import types

import numpy

from minigrad.testing.fake_cupy_parts.devices import _Device
from minigrad.testing.fake_cupy_parts.transfers import transfers

_IMPLICIT_CONVERSION = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)
_SCALARS = (bool, int, float, complex, numpy.generic)


def _host_array_error(where: str) -> TypeError:
    """The error for a ``numpy.ndarray`` given where CuPy needs a device array."""
    return TypeError(
        f"{where} got a numpy.ndarray (host memory) where a device array is needed. "
        "CuPy does not mix host and device arrays: copy it with xp.asarray(...) first, "
        "or bring the device array to the host with .get()."
    )


def _rebuild(original, items: list):
    """A list or tuple (named tuples included) of the same type as ``original``."""
    if hasattr(original, "_fields"):
        return type(original)(*items)
    return type(original)(items)


def _unwrap(value, where: str, known: dict | None = None, allow_host: bool = False):
    """NumPy data for ``value``, looking inside lists, tuples and dicts.

    Args:
        value: A device array, a container of them, or anything else (returned as is).
        where: What is being called, for the error message.
        known: If given, records ``id(numpy_data) -> device array`` for every array unwrapped,
            so that results which are an input's data map back to that input.
        allow_host: Accept ``numpy.ndarray`` values (only the upload functions do).

    Raises:
        TypeError: ``value`` holds a ``numpy.ndarray`` and ``allow_host`` is False.
    """
    if isinstance(value, ndarray):
        if known is not None:
            known[id(value._a)] = value
        return value._a
    if isinstance(value, numpy.ndarray) and not allow_host:
        raise _host_array_error(where)
    if isinstance(value, list | tuple):
        return _rebuild(value, [_unwrap(v, where, known, allow_host) for v in value])
    if isinstance(value, dict):
        return {k: _unwrap(v, where, known, allow_host) for k, v in value.items()}
    return value


def _from_numpy(data: numpy.ndarray) -> ndarray:
    """A device array that holds (without copying) the NumPy array ``data``."""
    array = object.__new__(ndarray)
    array._a = data
    return array


def _wrap(value, known: dict | None = None):
    """Device arrays for the NumPy arrays and scalars in ``value`` (a result).

    NumPy scalars become 0-d arrays, as CuPy never returns NumPy scalars. A result that is
    the data of an input array listed in ``known`` gives back that input itself.
    """
    if isinstance(value, numpy.ndarray):
        original = known.get(id(value)) if known else None
        if original is not None and original._a is value:
            return original
        return _from_numpy(value)
    if isinstance(value, numpy.generic):
        return _from_numpy(numpy.asarray(value))
    if isinstance(value, list | tuple):
        return _rebuild(value, [_wrap(v, known) for v in value])
    return value


def _call(function, args: tuple, kwargs: dict, where: str, known: dict | None = None):
    """Run a NumPy ``function`` on unwrapped arguments and wrap its result."""
    known = {} if known is None else known
    numpy_args = _unwrap(args, where, known)
    numpy_kwargs = _unwrap(kwargs, where, known)
    return _wrap(function(*numpy_args, **numpy_kwargs), known)


def _index(key):
    """The NumPy index for ``key``, with Ellipsis added so single elements stay 0-d views."""
    key = _unwrap(key, "indexing")
    if not isinstance(key, tuple):
        key = (key,)
    if not any(k is Ellipsis for k in key):
        key = (*key, Ellipsis)
    return key


# --------------------------------------------------------------------------- the array


class ndarray:
    """A device array: NumPy data behind CuPy's host/device rules.

    Construct like ``cupy.ndarray(shape, dtype)`` (uninitialised data); arrays made by the
    module's functions wrap their NumPy result without a copy, in ``_a``.
    """

    __slots__ = ("_a", "__weakref__")
    __hash__ = None
    __module__ = "minigrad.testing.fake_cupy"  # where backend.is_gpu_array looks for it

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C") -> None:
        if memptr is not None or strides is not None:
            raise NotImplementedError("the fake_cupy ndarray takes no memptr or strides")
        self._a = numpy.empty(shape, dtype=dtype, order=order)

    # ---- refusing NumPy ----------------------------------------------------------------

    def __array__(self, dtype=None, copy=None):
        """Refuse implicit conversion, as CuPy does: use ``.get()``."""
        raise TypeError(_IMPLICIT_CONVERSION)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """Refuse NumPy ufuncs, except the ones NumPy uses for ``numpy_scalar <op> array``.

        ``numpy.float32(2) * x`` reaches here as ``numpy.multiply(numpy.float32(2), x)``, and
        ``numpy.float32(2) < x`` as ``numpy.less(numpy.array(2.0), x)``; CuPy computes these, so
        the stand-in does too. Everything else raises ``TypeError`` (CuPy would run other ufuncs
        on the GPU, but in minigrad a NumPy function on a device array is a bug).
        """
        if method == "__call__" and not kwargs and _is_scalar_operation(ufunc, inputs):
            return _wrap(ufunc(*[_scalar_operand(x) for x in inputs]))
        operands = [*inputs, *_unwrap_out(kwargs)]
        if any(isinstance(x, numpy.ndarray) for x in operands):
            raise _host_array_error(f"numpy.{ufunc.__name__}")
        raise TypeError(
            f"numpy.{ufunc.__name__} was called on a device array; NumPy cannot work on GPU "
            f"memory. Use the array module (xp.{ufunc.__name__}) or copy to the host with .get()."
        )

    def __array_function__(self, func, types, args, kwargs):
        """Refuse NumPy functions such as ``numpy.sum(x)``: they cannot read GPU memory."""
        name = getattr(func, "__name__", repr(func))
        raise TypeError(
            f"numpy.{name} was called on a device array; NumPy cannot work on GPU memory. "
            f"Use the array module (xp.{name}) or copy to the host with .get()."
        )

    # ---- attributes --------------------------------------------------------------------

    @property
    def shape(self) -> tuple:
        """The shape; assignable like NumPy's and CuPy's (no copy)."""
        return self._a.shape

    @shape.setter
    def shape(self, value) -> None:
        self._a.shape = value

    @property
    def base(self):
        """The device array this one is a view of, or None."""
        return None if self._a.base is None else _wrap(self._a.base)

    @property
    def device(self):
        """The (only) fake CUDA device."""
        return _Device(0)

    # ---- host transfers ----------------------------------------------------------------

    def get(self, stream=None, order="C", out=None, blocking=True) -> numpy.ndarray:
        """Copy to the host: a new ``numpy.ndarray`` (or ``out`` filled). Counted."""
        if out is None:
            result = numpy.array(self._a, order=order, copy=True)
        else:
            numpy.copyto(out, self._a)
            result = out
        transfers.record_to_host(self._a.nbytes)
        return result

    def set(self, arr, stream=None) -> None:
        """Copy the host array ``arr`` (same shape and dtype) into this array. Counted."""
        if not isinstance(arr, numpy.ndarray):
            raise TypeError(f"only a numpy.ndarray can be set into a device array, got {arr!r}")
        if arr.dtype != self._a.dtype or arr.shape != self._a.shape:
            raise ValueError(
                f"set needs shape {self._a.shape} and dtype {self._a.dtype}, "
                f"got {arr.shape} {arr.dtype}"
            )
        numpy.copyto(self._a, arr)
        transfers.record_to_device(arr.nbytes)

    def _to_host_value(self, convert):
        value = convert(self._a)
        transfers.record_to_host(self._a.itemsize)
        return value

    def item(self, *args):
        """The single element as a Python scalar (a device-to-host copy). Counted."""
        return self._to_host_value(lambda a: a.item(*args))

    def tolist(self):
        """The data as nested Python lists (a device-to-host copy). Counted."""
        value = self._a.tolist()
        transfers.record_to_host(self._a.nbytes)
        return value

    def tobytes(self, order="C") -> bytes:
        """The raw bytes (a device-to-host copy). Counted."""
        value = self._a.tobytes(order=order)
        transfers.record_to_host(self._a.nbytes)
        return value

    def __bool__(self) -> bool:
        return self._to_host_value(bool)

    def __float__(self) -> float:
        return self._to_host_value(float)

    def __int__(self) -> int:
        return self._to_host_value(int)

    def __complex__(self) -> complex:
        return self._to_host_value(complex)

    # ---- display (not counted: a debugging aid) ----------------------------------------

    def __repr__(self) -> str:
        return repr(self._a)

    def __str__(self) -> str:
        return str(self._a)

    def __format__(self, format_spec: str) -> str:
        return format(self._a, format_spec)

    # ---- containers and indexing -------------------------------------------------------

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __getitem__(self, key):
        return _from_numpy(self._a[_index(key)])

    def __setitem__(self, key, value) -> None:
        self._a[_index(key)] = _unwrap(value, "assignment into a device array")

    def __copy__(self):
        return _from_numpy(self._a.copy())

    def __deepcopy__(self, memo):
        return _from_numpy(self._a.copy())

    # ---- CuPy-only scatter methods -----------------------------------------------------

    def scatter_add(self, slices, value) -> None:
        """``self[slices] += value`` with repeated indices summed (``cupyx.scatter_add``)."""
        _scatter_add(self, slices, value)

    def scatter_max(self, slices, value) -> None:
        """Elementwise maximum into ``self[slices]``, repeated indices included."""
        _scatter_max(self, slices, value)

    def scatter_min(self, slices, value) -> None:
        """Elementwise minimum into ``self[slices]``, repeated indices included."""
        _scatter_min(self, slices, value)


_COMPARISON_UFUNCS = frozenset(
    ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
)


def _scalar_operand(x):
    """NumPy value of one input of ``numpy_scalar <op> device_array`` reached via NumPy."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, numpy.ndarray):
        return x.item()  # the scalar of a comparison, which NumPy made a 0-d array
    return x


def _is_scalar_operation(ufunc: numpy.ufunc, inputs: tuple) -> bool:
    """True for ufunc inputs made by a NumPy scalar's operator with a device array.

    NumPy passes the scalar of arithmetic as is, and that of a comparison as a 0-d array
    (CuPy reads the latter back as a scalar too).
    """
    comparison = ufunc.__name__ in _COMPARISON_UFUNCS

    def is_scalar(x) -> bool:
        zero_d = isinstance(x, numpy.ndarray) and x.ndim == 0
        return isinstance(x, numpy.generic) or (comparison and zero_d)

    return any(is_scalar(x) for x in inputs) and all(
        isinstance(x, ndarray) or is_scalar(x) for x in inputs
    )


def _unwrap_out(kwargs: dict) -> tuple:
    """The ``out=`` arrays of a ufunc call, as a tuple."""
    out = kwargs.get("out", ())
    return out if isinstance(out, tuple) else (out,)


# --------------------------------------------------------------------------- cupyx


def _scatter_at(ufunc: numpy.ufunc, name: str, a, slices, value) -> None:
    """``ufunc.at`` into device array ``a``: unbuffered, so repeated indices all count."""
    if not isinstance(a, ndarray):
        raise TypeError(f"cupyx.{name} needs a device array to write into, got {type(a)}")
    index = _unwrap(slices, f"cupyx.{name} (index)")
    ufunc.at(a._a, index, _unwrap(value, f"cupyx.{name} (value)"))


def _scatter_add(a, slices, value) -> None:
    """``a[slices] += value`` with repeated indices summed (``cupyx.scatter_add``)."""
    _scatter_at(numpy.add, "scatter_add", a, slices, value)


def _scatter_max(a, slices, value) -> None:
    """Elementwise maximum into ``a[slices]``, repeated indices included."""
    _scatter_at(numpy.maximum, "scatter_max", a, slices, value)


def _scatter_min(a, slices, value) -> None:
    """Elementwise minimum into ``a[slices]``, repeated indices included."""
    _scatter_at(numpy.minimum, "scatter_min", a, slices, value)


cupyx = types.SimpleNamespace(
    __name__="cupyx",
    scatter_add=_scatter_add,
    scatter_max=_scatter_max,
    scatter_min=_scatter_min,
)
