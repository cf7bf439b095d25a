"""A CPU stand-in for the part of CuPy that minigrad uses, to test the GPU path without a GPU.

With ``MINIGRAD_FAKE_GPU=1`` (or :func:`minigrad.backend.use_fake_gpu`) the "gpu" array module
is this module and ``cupyx`` is :data:`cupyx`. The arithmetic is NumPy's, but the arrays behave
like CuPy's at the host/device boundary, which is where GPU-only bugs hide:

* A :class:`ndarray` is not a ``numpy.ndarray``. ``numpy.asarray(x)``, NumPy functions and ufuncs
  (``numpy.exp(x)``, ``numpy.sum(x)``) and operators that mix it with a ``numpy.ndarray`` raise
  ``TypeError``, as CuPy does. Python and NumPy scalars mix freely, as in CuPy.
* Results stay device arrays; reductions give 0-d arrays, never NumPy scalars.
* Host copies (``.get()``, :func:`asnumpy`, ``float(x)``, ``.item()``, ...) and device uploads
  (:func:`asarray` of host data) are counted in :data:`transfers`, so tests can assert that a
  code path does not synchronise with the host.
* Any other name is delegated to NumPy, but only if real CuPy has it too (checked against the
  installed ``cupy`` package, which imports without a GPU), so NumPy-only functions are caught.
* CUDA kernels (:class:`RawKernel` and friends) can be built but not run.

The stand-in is stricter than CuPy in two places, on purpose: indexing with a ``numpy.ndarray``
index and assigning a ``numpy.ndarray`` into a device array raise ``TypeError``, where CuPy
silently copies the host array to the device on every call.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import sys
import time
import types
import warnings

import numpy

_IMPLICIT_CONVERSION = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)
_SCALARS = (bool, int, float, complex, numpy.generic)


# --------------------------------------------------------------------------- transfer counting


class TransferCounter:
    """Counts the copies between host and device memory that real CuPy would make.

    Attributes:
        to_host_calls: Number of device-to-host copies (``.get()``, ``float(x)``, ...).
        to_host_bytes: Bytes copied device-to-host.
        to_device_calls: Number of host-to-device copies (``asarray(host_data)``, ...).
        to_device_bytes: Bytes copied host-to-device.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Set every count back to zero."""
        self.to_host_calls = 0
        self.to_host_bytes = 0
        self.to_device_calls = 0
        self.to_device_bytes = 0

    def record_to_host(self, nbytes: int) -> None:
        """Count one device-to-host copy of ``nbytes`` bytes."""
        self.to_host_calls += 1
        self.to_host_bytes += int(nbytes)

    def record_to_device(self, nbytes: int) -> None:
        """Count one host-to-device copy of ``nbytes`` bytes."""
        self.to_device_calls += 1
        self.to_device_bytes += int(nbytes)

    def __repr__(self) -> str:
        return (
            f"TransferCounter(to_host_calls={self.to_host_calls}, "
            f"to_host_bytes={self.to_host_bytes}, to_device_calls={self.to_device_calls}, "
            f"to_device_bytes={self.to_device_bytes})"
        )


transfers = TransferCounter()


@contextlib.contextmanager
def count_transfers():
    """Reset :data:`transfers` and yield it, to count the copies made inside a ``with`` block.

    Yields:
        The module's :class:`TransferCounter`, counting from zero.
    """
    transfers.reset()
    yield transfers


# --------------------------------------------------------------------------- real CuPy names


@functools.cache
def _real_cupy():
    """The installed ``cupy`` package (it imports without a GPU), or None if it is missing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import cupy
    except Exception:
        return None
    return cupy


@functools.cache
def _cupy_has(path: str) -> bool:
    """Whether real CuPy has the dotted name ``path`` (True when CuPy is not installed).

    Used so the stand-in refuses NumPy-only functions that would fail on a real GPU.
    """
    target = _real_cupy()
    if target is None:
        return True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for part in path.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                return False
            except Exception:
                return True  # it exists but needs a GPU to load
    return True


# --------------------------------------------------------------------------- wrap and unwrap


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


# ---- operators, methods and properties, generated from tables


_BINARY_OPERATORS = (
    ("add", "+", operator.add, operator.iadd),
    ("sub", "-", operator.sub, operator.isub),
    ("mul", "*", operator.mul, operator.imul),
    ("truediv", "/", operator.truediv, operator.itruediv),
    ("floordiv", "//", operator.floordiv, operator.ifloordiv),
    ("mod", "%", operator.mod, operator.imod),
    ("pow", "**", operator.pow, operator.ipow),
    ("matmul", "@", operator.matmul, operator.imatmul),
    ("and", "&", operator.and_, operator.iand),
    ("or", "|", operator.or_, operator.ior),
    ("xor", "^", operator.xor, operator.ixor),
    ("lshift", "<<", operator.lshift, operator.ilshift),
    ("rshift", ">>", operator.rshift, operator.irshift),
)
_COMPARISONS = (
    ("lt", "<", operator.lt),
    ("le", "<=", operator.le),
    ("eq", "==", operator.eq),
    ("ne", "!=", operator.ne),
    ("gt", ">", operator.gt),
    ("ge", ">=", operator.ge),
)
_UNARY_OPERATORS = (
    ("neg", operator.neg),
    ("pos", operator.pos),
    ("abs", operator.abs),
    ("invert", operator.invert),
)
_METHODS = (
    "all", "any", "argmax", "argmin", "argpartition", "argsort", "astype", "choose", "clip",
    "compress", "conj", "conjugate", "copy", "cumprod", "cumsum", "diagonal", "dot", "fill",
    "flatten", "max", "mean", "min", "nonzero", "partition", "prod", "put", "ravel", "repeat",
    "reshape", "round", "searchsorted", "sort", "squeeze", "std", "sum", "swapaxes", "take",
    "trace", "transpose", "var", "view",
)  # fmt: skip
_PLAIN_PROPERTIES = ("dtype", "ndim", "size", "nbytes", "strides", "itemsize", "flags")
_ARRAY_PROPERTIES = ("T", "mT", "real", "imag")


def _operand(other, symbol: str):
    """NumPy value for the other operand of ``symbol``, or NotImplemented for unknown types.

    Raises:
        TypeError: ``other`` is a ``numpy.ndarray``; CuPy refuses to mix it with device arrays.
    """
    if isinstance(other, ndarray):
        return other._a
    if isinstance(other, numpy.ndarray):
        raise _host_array_error(f"the operator {symbol}")
    if isinstance(other, _SCALARS):
        return other
    return NotImplemented


def _forward_operator(symbol: str, op):
    """The method for ``self <symbol> other``."""

    def method(self, other):
        value = _operand(other, symbol)
        return NotImplemented if value is NotImplemented else _wrap(op(self._a, value))

    return method


def _reflected_operator(symbol: str, op):
    """The method for ``other <symbol> self`` (Python's reflected operator)."""

    def method(self, other):
        value = _operand(other, symbol)
        return NotImplemented if value is NotImplemented else _wrap(op(value, self._a))

    return method


def _inplace_operator(symbol: str, op):
    """The method for ``self <symbol>= other``, writing into the array and returning it."""

    def method(self, other):
        value = _operand(other, symbol + "=")
        if value is NotImplemented:
            return NotImplemented
        op(self._a, value)  # NumPy's in-place operators write into self._a
        return self

    return method


def _unary_operator(op):
    """The method for a unary operator such as ``-self``."""

    def method(self):
        return _wrap(op(self._a))

    return method


def _delegating_method(name: str):
    """A method that runs ``numpy.ndarray.<name>`` on the data and wraps the result."""

    def method(self, *args, **kwargs):
        return _call(getattr(self._a, name), args, kwargs, f"ndarray.{name}", {id(self._a): self})

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Like ``cupy.ndarray.{name}``; computed by ``numpy.ndarray.{name}``."
    return method


def _plain_property(name: str) -> property:
    """A read-only property giving NumPy's value (shape data, dtype, flags)."""
    return property(lambda self: getattr(self._a, name), doc=f"Like ``cupy.ndarray.{name}``.")


def _array_property(name: str) -> property:
    """A read-only property giving NumPy's array attribute as a device array."""
    return property(
        lambda self: _wrap(getattr(self._a, name)), doc=f"Like ``cupy.ndarray.{name}``."
    )


def _install_array_api(cls) -> None:
    """Add the operators, methods and properties of the tables above to ``cls``."""
    for name, symbol, op, inplace in _BINARY_OPERATORS:
        setattr(cls, f"__{name}__", _forward_operator(symbol, op))
        setattr(cls, f"__r{name}__", _reflected_operator(symbol, op))
        setattr(cls, f"__i{name}__", _inplace_operator(symbol, inplace))
    cls.__divmod__ = _forward_operator("divmod", divmod)
    cls.__rdivmod__ = _reflected_operator("divmod", divmod)
    for name, symbol, op in _COMPARISONS:
        setattr(cls, f"__{name}__", _forward_operator(symbol, op))
    for name, op in _UNARY_OPERATORS:
        setattr(cls, f"__{name}__", _unary_operator(op))
    for name in _METHODS:
        setattr(cls, name, _delegating_method(name))
    for name in _PLAIN_PROPERTIES:
        setattr(cls, name, _plain_property(name))
    for name in _ARRAY_PROPERTIES:
        setattr(cls, name, _array_property(name))


_install_array_api(ndarray)


# --------------------------------------------------------------------------- creation, transfer


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


def get_array_module(*args):
    """This module if any argument is a device array, else ``numpy`` (like CuPy's)."""
    if any(isinstance(a, ndarray) for a in args):
        return sys.modules[__name__]
    return numpy


# --------------------------------------------------------------------------- NumPy delegation


def _wrap_function(function, path: str, scalar_results: bool = False):
    """``function`` (a NumPy one) taking and returning device arrays, standing in for cupy.path.

    Args:
        function: The NumPy callable.
        path: Its dotted name in CuPy, for error messages.
        scalar_results: Turn Python scalar results into 0-d arrays (NumPy's random functions
            return Python floats where CuPy returns arrays).
    """

    @functools.wraps(function)
    def call(*args, **kwargs):
        result = _call(function, args, kwargs, f"cupy.{path}")
        if scalar_results and isinstance(result, bool | int | float | complex):
            return _from_numpy(numpy.asarray(result))
        return result

    return call


class _Ufunc:
    """A NumPy ufunc taking and returning device arrays; its methods are those CuPy has."""

    def __init__(self, ufunc: numpy.ufunc, path: str) -> None:
        self._ufunc = ufunc
        self._path = path
        self.__name__ = ufunc.__name__
        self.__doc__ = ufunc.__doc__

    def __call__(self, *args, **kwargs):
        return _call(self._ufunc, args, kwargs, f"cupy.{self._path}")

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return _delegate(self._ufunc, self._path, name)

    def __repr__(self) -> str:
        return f"<fake_cupy ufunc '{self.__name__}'>"


class _Namespace:
    """A NumPy module seen through CuPy: names CuPy lacks raise, functions are wrapped.

    Explicit ``overrides`` (keyword arguments) take precedence over the NumPy module.
    """

    def __init__(self, source, path: str, scalar_results: bool = False, **overrides) -> None:
        self._source = source
        self._path = path
        self._scalar_results = scalar_results
        self.__dict__.update(overrides)

    def __getattr__(self, name: str):
        if name.startswith("_"):  # also keeps copy/pickle from recursing before __init__
            raise AttributeError(name)
        value = _delegate(self._source, self._path, name, self._scalar_results)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return f"<fake_cupy namespace cupy.{self._path}>"


def _delegate(source, path: str, name: str, scalar_results: bool = False):
    """The stand-in for ``cupy.<path>.<name>``, taken from ``source`` (a NumPy object).

    Raises:
        AttributeError: CuPy has no such name, or NumPy has nothing to stand in for it.
    """
    full = f"{path}.{name}" if path else name
    if name.startswith("_"):
        raise AttributeError(f"the fake_cupy stand-in has no attribute cupy.{full}")
    if not _cupy_has(full):
        raise AttributeError(
            f"CuPy has no function or attribute cupy.{full} (NumPy does), "
            "so GPU code cannot use it; the fake_cupy stand-in refuses it too"
        )
    try:
        value = getattr(source, name)
    except AttributeError:
        raise AttributeError(
            f"cupy.{full} is not emulated by the fake_cupy stand-in (NumPy has no {name!r})"
        ) from None
    return _adapt(value, full, scalar_results)


def _adapt(value, path: str, scalar_results: bool = False):
    """Wrap a NumPy attribute for device arrays; dtypes, classes and constants pass through."""
    if isinstance(value, type):
        return value
    if isinstance(value, types.ModuleType):
        return _Namespace(value, path)
    if isinstance(value, numpy.ufunc):
        return _Ufunc(value, path)
    if callable(value):
        return _wrap_function(value, path, scalar_results)
    return value


def __getattr__(name: str):
    """Delegate names this module does not define to NumPy, if CuPy has them (PEP 562)."""
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = _delegate(numpy, "", name)
    globals()[name] = value
    return value


# --------------------------------------------------------------------------- random


class _Generator:
    """Stand-in for ``cupy.random.Generator``: a NumPy Generator returning device arrays.

    Only the methods CuPy's Generator has are available (it has, for instance, ``random``,
    ``standard_normal``, ``integers`` and ``uniform``, but no ``normal`` or ``choice``).
    """

    def __init__(self, numpy_generator: numpy.random.Generator) -> None:
        self._generator = numpy_generator

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        method = _delegate(self._generator, "random.Generator", name, scalar_results=True)
        setattr(self, name, method)
        return method

    def __repr__(self) -> str:
        return f"<fake_cupy Generator around {self._generator!r}>"


def _default_rng(seed=None) -> _Generator:
    """A :class:`_Generator` seeded with ``seed`` (like ``cupy.random.default_rng``)."""
    return _Generator(numpy.random.default_rng(seed))


random = _Namespace(
    numpy.random,
    "random",
    scalar_results=True,
    default_rng=_default_rng,
    Generator=_Generator,
)


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


# --------------------------------------------------------------------------- cuda


class _Device:
    """Stand-in for ``cupy.cuda.Device``: one device, id 0, whose work is always finished."""

    def __init__(self, device=None) -> None:
        self.id = 0 if device is None else int(device)

    def use(self) -> None:
        """Make this the current device (nothing to do)."""

    def synchronize(self) -> None:
        """Wait for the device's work (there is none queued: NumPy ran it already)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def __eq__(self, other) -> bool:
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id} (fake_cupy)>"


class _Event:
    """Stand-in for ``cupy.cuda.Event``, recording host time for ``get_elapsed_time``."""

    def __init__(self, block=False, disable_timing=False, interprocess=False) -> None:
        self.time = None

    def record(self, stream=None) -> None:
        """Remember the current time."""
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        """Wait for the event (it has always happened)."""

    @property
    def done(self) -> bool:
        return True


class _Stream:
    """Stand-in for ``cupy.cuda.Stream``; work on it is always finished."""

    null: _Stream

    def __init__(self, null=False, non_blocking=False, ptds=False) -> None:
        self.is_null = null

    def synchronize(self) -> None:
        """Wait for the stream's work (nothing to do)."""

    def use(self):
        """Make this the current stream (nothing to do)."""
        return self

    def record(self, event=None) -> _Event:
        """Record ``event`` (a new one if None) on this stream."""
        event = _Event() if event is None else event
        event.record(self)
        return event

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        return None


_Stream.null = _Stream(null=True)


def _get_current_stream(device_id=-1) -> _Stream:
    """The null stream, the only one there is."""
    return _Stream.null


def _get_elapsed_time(start_event: _Event, end_event: _Event) -> float:
    """Milliseconds between two recorded events, like ``cupy.cuda.get_elapsed_time``."""
    return (end_event.time - start_event.time) * 1000.0


def _synchronize_device() -> None:
    """``cudaDeviceSynchronize`` (nothing to do)."""


cuda = types.SimpleNamespace(
    __name__="cupy.cuda",
    Device=_Device,
    Stream=_Stream,
    Event=_Event,
    get_current_stream=_get_current_stream,
    get_elapsed_time=_get_elapsed_time,
    is_available=lambda: True,
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDevice=lambda: 0,
        deviceSynchronize=_synchronize_device,
    ),
)


# --------------------------------------------------------------------------- kernels


def _needs_gpu(kind: str, name) -> RuntimeError:
    """The error for running a CUDA kernel on the stand-in."""
    return RuntimeError(
        f"{kind} {name!r} needs a real GPU: the fake_cupy stand-in cannot run CUDA kernels. "
        "Test this path on a CUDA machine (pytest -m gpu), or use the NumPy implementation."
    )


class RawKernel:
    """Stand-in for ``cupy.RawKernel``: keeps the source, refuses to run it."""

    def __init__(self, code: str, name: str, options=(), *args, **kwargs) -> None:
        self.code = code
        self.name = name
        self.options = options
        self.args = args
        self.kwargs = kwargs

    def __call__(self, *args, **kwargs):
        raise _needs_gpu("RawKernel", self.name)


class RawModule:
    """Stand-in for ``cupy.RawModule``: keeps the source; ``get_function`` raises."""

    def __init__(self, code=None, *, path=None, options=(), **kwargs) -> None:
        self.code = code
        self.path = path
        self.options = options
        self.kwargs = kwargs

    def get_function(self, name: str):
        raise _needs_gpu("RawModule function", name)


class ElementwiseKernel:
    """Stand-in for ``cupy.ElementwiseKernel``: keeps the definition, refuses to run it."""

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs) -> None:
        self.in_params = in_params
        self.out_params = out_params
        self.operation = operation
        self.name = name
        self.kwargs = kwargs

    def __call__(self, *args, **kwargs):
        raise _needs_gpu("ElementwiseKernel", self.name)


class ReductionKernel:
    """Stand-in for ``cupy.ReductionKernel``: keeps the definition, refuses to run it."""

    def __init__(
        self,
        in_params,
        out_params,
        map_expr,
        reduce_expr,
        post_map_expr,
        identity,
        name="reduce_kernel",
        **kwargs,
    ) -> None:
        self.in_params = in_params
        self.out_params = out_params
        self.map_expr = map_expr
        self.reduce_expr = reduce_expr
        self.post_map_expr = post_map_expr
        self.identity = identity
        self.name = name
        self.kwargs = kwargs

    def __call__(self, *args, **kwargs):
        raise _needs_gpu("ReductionKernel", self.name)
