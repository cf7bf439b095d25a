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

This module is the array module itself (the "gpu" ``xp``): its names are CuPy's, and the names
it lacks are delegated to NumPy here. Its parts live in :mod:`minigrad.testing.fake_cupy_parts`:
``transfers`` (the counter), ``arrays`` (the device array and the wrapping of NumPy data),
``operators`` (the array's operators and methods, from tables), ``creation`` (``asarray``,
``asnumpy``, ...) and ``devices`` (``cupy.cuda`` and the kernels that refuse to run).
"""

from __future__ import annotations

import functools
import sys
import types
import warnings

import numpy

from minigrad.testing.fake_cupy_parts.arrays import _call, _from_numpy, cupyx, ndarray
from minigrad.testing.fake_cupy_parts.creation import (
    array,
    asanyarray,
    asarray,
    ascontiguousarray,
    asfortranarray,
    asnumpy,
)
from minigrad.testing.fake_cupy_parts.devices import (
    ElementwiseKernel,
    RawKernel,
    RawModule,
    ReductionKernel,
    cuda,
)
from minigrad.testing.fake_cupy_parts.operators import _install_array_api
from minigrad.testing.fake_cupy_parts.transfers import TransferCounter, count_transfers, transfers

__all__ = [
    "ElementwiseKernel",
    "RawKernel",
    "RawModule",
    "ReductionKernel",
    "TransferCounter",
    "array",
    "asanyarray",
    "asarray",
    "ascontiguousarray",
    "asfortranarray",
    "asnumpy",
    "count_transfers",
    "cuda",
    "cupyx",
    "get_array_module",
    "ndarray",
    "random",
    "transfers",
]

_install_array_api(ndarray)


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
