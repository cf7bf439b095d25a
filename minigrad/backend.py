"""Devices and array modules: "cpu" is NumPy, "gpu" (alias "cuda") is CuPy.

Every op is written once against ``xp``, the array module of its inputs, found with
:func:`get_array_module`. The "gpu" module is CuPy when CuPy and a CUDA device are present.
For testing the GPU path on a machine without one, ``MINIGRAD_FAKE_GPU=1`` (or
:func:`use_fake_gpu`) makes "gpu" the CPU stand-in :mod:`minigrad.testing.fake_cupy`, whose
arrays refuse silent host/device mixing exactly where CuPy does.
"""

from __future__ import annotations

import contextlib
import os
from types import ModuleType

import numpy

CPU = "cpu"
GPU = "gpu"
_GPU_ALIASES = ("gpu", "cuda")
_FAKE_ENV = "MINIGRAD_FAKE_GPU"

_state: dict = {"gpu": None, "gpux": None, "fake": None, "seed": None, "rngs": {}}


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide, or devices were mixed."""


def canonical_device(device) -> str:
    """Map a device name ("cpu", "gpu", "cuda", "cuda:0") to "cpu" or "gpu"."""
    name = str(device).lower()
    if name == CPU:
        return CPU
    if name.split(":")[0] in _GPU_ALIASES:
        return GPU
    raise DeviceError(f"device must be 'cpu', 'gpu' or 'cuda', got {device!r}")


def use_fake_gpu(enabled: bool = True) -> None:
    """Make "gpu" the CPU stand-in for CuPy (True) or real CuPy (False), for tests."""
    _state["fake"] = enabled
    _state["gpu"] = None
    _state["gpux"] = None
    _state["rngs"] = {}


def _fake_requested() -> bool:
    if _state["fake"] is not None:
        return _state["fake"]
    return os.environ.get(_FAKE_ENV, "").lower() in ("1", "true", "yes")


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _load_real_cupy() -> tuple[ModuleType, ModuleType]:
    try:
        import cupy
        import cupyx
    except ImportError as exc:
        raise DeviceError(
            "device 'gpu' needs CuPy, which is not installed: "
            "pip install 'minigrad[gpu]' (cupy-cuda12x) on a machine with an NVIDIA GPU"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise DeviceError(
            f"device 'gpu' needs a CUDA device, but CuPy could not reach one ({exc}); "
            "check the NVIDIA driver, or use device='cpu'"
        ) from exc
    if count == 0:
        raise DeviceError("device 'gpu' needs a CUDA device, but none was found; use device='cpu'")
    return cupy, cupyx


def gpu_module() -> ModuleType:
    """The array module behind "gpu": CuPy, or the stand-in when the fake GPU is on."""
    if _state["gpu"] is None:
        if _fake_requested():
            from minigrad.testing import fake_cupy

            _state["gpu"], _state["gpux"] = fake_cupy, fake_cupy.cupyx
        else:
            _state["gpu"], _state["gpux"] = _load_real_cupy()
    return _state["gpu"]


def gpu_extras() -> ModuleType:
    """cupyx (or the stand-in's), home of ``scatter_add``."""
    gpu_module()
    return _state["gpux"]


def array_module(device) -> ModuleType:
    """The array module (numpy or cupy) that holds data on ``device``."""
    return numpy if canonical_device(device) == CPU else gpu_module()


def is_cpu_array(array) -> bool:
    """True for NumPy arrays and scalars (the "cpu" device)."""
    return isinstance(array, numpy.ndarray | numpy.generic)


def is_gpu_array(array) -> bool:
    """True for CuPy arrays, and for the stand-in's arrays when the fake GPU is on."""
    module = type(array).__module__
    return module.startswith("cupy") or module == "minigrad.testing.fake_cupy"


def is_array(value) -> bool:
    """True for an array of either device (not for torch tensors or other array-likes)."""
    return is_cpu_array(value) or is_gpu_array(value)


def get_array_module(*arrays) -> ModuleType:
    """numpy if every array lives on the host, else the GPU module (like cupy's)."""
    for a in arrays:
        if a is not None and is_gpu_array(a):
            return gpu_module()
    return numpy


def quiet_invalid(array):
    """A context in which operations that give NaN or inf (``inf * 0``) on ``array``'s device
    do not warn: NumPy's errstate on the CPU; CuPy never warns."""
    if is_cpu_array(array):
        return numpy.errstate(invalid="ignore", over="ignore")
    return contextlib.nullcontext()


def device_of(array) -> str:
    """ "cpu" for a NumPy array, "gpu" for a CuPy (or stand-in) array."""
    if is_cpu_array(array):
        return CPU
    if is_gpu_array(array):
        return GPU
    raise TypeError(f"expected a numpy or cupy array, got {type(array).__name__}")


def to_device(array, device):
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    target = canonical_device(device)
    if device_of(array) == target:
        return array
    if target == CPU:
        return gpu_module().asnumpy(array)
    return gpu_module().asarray(array)


def to_host(array) -> numpy.ndarray:
    """A NumPy array with the values of ``array``, wherever it lives."""
    return array if is_cpu_array(array) else gpu_module().asnumpy(array)


def scatter_add(target, index, values) -> None:
    """``target[index] += values`` with repeated indices summed (np.add.at / cupyx)."""
    if is_cpu_array(target):
        numpy.add.at(target, index, values)
    else:
        gpu_extras().scatter_add(target, index, values)


def manual_seed(seed: int) -> None:
    """Seed the random generators of every device, as ``torch.manual_seed``."""
    _state["seed"] = int(seed)
    _state["rngs"] = {}


def rng(xp: ModuleType):
    """The seeded ``Generator`` of array module ``xp`` (random, standard_normal, integers)."""
    key = xp.__name__
    if key not in _state["rngs"]:
        _state["rngs"][key] = xp.random.default_rng(_state["seed"])
    return _state["rngs"][key]


def synchronize(device) -> None:
    """Wait for queued GPU work (no-op on the CPU); for timing."""
    if canonical_device(device) == GPU:
        gpu_module().cuda.Device().synchronize()


def get_rng_state() -> dict:
    """The CPU generator's state (a JSON-able dict), as ``torch.get_rng_state``; saved in
    checkpoints so a resumed run draws the same dropout masks and initializations."""
    return {"seed": _state["seed"], "numpy": rng(numpy).bit_generator.state}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned (the GPU generator is reseeded)."""
    _state["seed"] = state["seed"]
    _state["rngs"] = {}
    rng(numpy).bit_generator.state = state["numpy"]
