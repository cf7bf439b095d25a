"""The fused optimizer kernels agree with the xp updates they replace.

Three ways, so that the kernels are checked on machines without a GPU too: on a real GPU
(``gpu`` marker) each kernel runs through CuPy against the xp update on CuPy arrays; on the
CPU each kernel's operation, expanded as CuPy expands an ElementwiseKernel, is compiled
with g++ and run against the xp update on NumPy arrays; and with nvcc on the PATH the same
expansion is compiled to PTX for sm_80 and sm_90.
"""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend, optim
from minigrad.kernels import optim as kernels
from minigrad.optim import foreach
from minigrad.optim.adam import AdamCoefficients, adam_update
from minigrad.optim.rmsprop import RMSpropCoefficients, rmsprop_update
from minigrad.optim.sgd import SGDCoefficients, sgd_update

NVCC = shutil.which("nvcc")
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def _sgd(**changes):
    base = dict(
        lr=0.1,
        momentum=0.9,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        maximize=False,
        first=False,
    )
    return SGDCoefficients(**{**base, **changes})


def _adam(**changes):
    base = dict(
        lr=1e-2,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        decoupled=False,
        maximize=False,
        amsgrad=False,
        step_size=1e-2 / (1 - 0.9**3),
        bias_correction2_sqrt=(1 - 0.999**3) ** 0.5,
    )
    return AdamCoefficients(**{**base, **changes})


def _rmsprop(**changes):
    base = dict(
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        maximize=False,
    )
    return RMSpropCoefficients(**{**base, **changes})


# (xp update, fused update, coefficients, number of state arrays)
CASES = {
    "sgd": (sgd_update, kernels.sgd, _sgd(momentum=0.0), 0),
    "sgd-decay-maximize": (
        sgd_update,
        kernels.sgd,
        _sgd(momentum=0.0, weight_decay=0.1, maximize=True),
        0,
    ),
    "sgd-momentum": (sgd_update, kernels.sgd, _sgd(dampening=0.2, weight_decay=0.01), 1),
    "sgd-first-step": (sgd_update, kernels.sgd, _sgd(first=True, maximize=True), 1),
    "sgd-nesterov": (sgd_update, kernels.sgd, _sgd(nesterov=True, weight_decay=0.1), 1),
    "adam": (adam_update, kernels.adam, _adam(), 2),
    "adam-decay-maximize": (
        adam_update,
        kernels.adam,
        _adam(weight_decay=0.1, maximize=True, beta1=0.3),
        2,
    ),
    "adamw": (adam_update, kernels.adam, _adam(weight_decay=0.1, decoupled=True), 2),
    "amsgrad": (adam_update, kernels.adam, _adam(amsgrad=True, maximize=True), 3),
    "amsgrad-adamw": (
        adam_update,
        kernels.adam,
        _adam(amsgrad=True, decoupled=True, weight_decay=0.2),
        3,
    ),
    "rmsprop": (rmsprop_update, kernels.rmsprop, _rmsprop(), 1),
    "rmsprop-decay-maximize": (
        rmsprop_update,
        kernels.rmsprop,
        _rmsprop(weight_decay=0.1, maximize=True),
        1,
    ),
    "rmsprop-centered": (rmsprop_update, kernels.rmsprop, _rmsprop(centered=True, alpha=0.3), 2),
    "rmsprop-momentum": (rmsprop_update, kernels.rmsprop, _rmsprop(momentum=0.5), 2),
    "rmsprop-centered-momentum": (
        rmsprop_update,
        kernels.rmsprop,
        _rmsprop(centered=True, momentum=0.5, maximize=True),
        3,
    ),
}


def _kernel_name(fused, c, n_state: int) -> str:
    """The entry of kernels.KERNELS that ``fused`` launches for ``c``."""
    if fused is kernels.sgd:
        return "sgd_momentum" if n_state else "sgd"
    if fused is kernels.adam:
        return "adam_amsgrad" if c.amsgrad else "adam"
    return "rmsprop" + ("_centered" if c.centered else "") + ("_momentum" if c.momentum > 0 else "")


def _arrays(n_state: int, dtype, n: int = 1000) -> list:
    """p, g and state arrays with valid values: positive second moments, and centered
    RMSprop's square average above its squared gradient average."""
    rng = np.random.default_rng(7)
    p, g = rng.standard_normal((2, n)).astype(dtype)
    state = [rng.standard_normal(n).astype(dtype) for _ in range(n_state)]
    if n_state >= 2:  # Adam: exp_avg_sq (and max_exp_avg_sq) positive
        state[1:] = [np.abs(s) + 0.5 for s in state[1:]]
    return [p, g, *state]


def _fix_rmsprop(arrays: list, c) -> list:
    """RMSprop's square_avg positive, and above grad_avg**2 when centered."""
    arrays[2] = np.abs(arrays[2]) + 0.5
    if c.centered:
        arrays[2] += arrays[3] ** 2
    return arrays


def _inputs(case: str, dtype) -> tuple:
    reference, fused, c, n_state = CASES[case]
    arrays = _arrays(n_state, dtype)
    if reference is rmsprop_update:
        arrays = _fix_rmsprop(arrays, c)
    return reference, fused, c, arrays


def _xp_result(reference, c, arrays: list) -> list:
    copies = [a.copy() for a in arrays]
    reference(np, c, tuple(copies), foreach._fresh_scratch(np, copies[0]))
    return copies


def _tolerance(dtype) -> float:
    return 1e-6 if np.dtype(dtype) == np.float32 else 1e-13


# ---- the CUDA source, expanded as CuPy expands an ElementwiseKernel -----------------------


def expand(name: str, ctype: str) -> str:
    """Kernel ``name`` as a grid-stride ``__global__`` function, the arrays as references
    into raw pointers and ``T`` the element type, as CuPy generates it."""
    kernel = kernels.KERNELS[name]
    scalars = [
        ("int " if kind == "int32" else "double ") + arg
        for kind, arg in (s.split() for s in kernel.scalars)
    ]
    outputs = [f"{ctype}* {a}_raw" for a in ("p", *kernel.state)]
    params = ", ".join(["long long n", f"const {ctype}* g_raw", *scalars, *outputs])
    refs = "\n".join(f"    T& {a} = {a}_raw[i];" for a in ("p", *kernel.state))
    return f"""
extern "C" __global__ void {name}_{ctype}({params}) {{
  typedef {ctype} T;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {{
    const T& g = g_raw[i];
{refs}
    {kernel.operation};
  }}
}}
"""


def full_source() -> str:
    bodies = [expand(name, t) for name in kernels.KERNELS for t in CTYPES.values()]
    return kernels.PREAMBLE + "".join(bodies)


HOST_PRELUDE = """
#include <cmath>
using std::sqrt;
struct Dim3 { unsigned int x; };
static const Dim3 blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
#define __global__
#define __device__
"""


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    """Every kernel built for the host (one thread runs the grid-stride loop)."""
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not on the PATH")
    folder = tmp_path_factory.mktemp("optim_kernels")
    source = folder / "optim.cpp"
    source.write_text(HOST_PRELUDE + full_source())
    library = folder / "optim.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-ffp-contract=off", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    return ctypes.CDLL(str(library))


def _call_host(library, name: str, c, arrays: list) -> None:
    p, g, *state = arrays
    scalars = [
        ctypes.c_int(int(v)) if isinstance(v, np.int32) else ctypes.c_double(v)
        for v in kernels.KERNELS[name].scalar_values(c)
    ]
    pointers = [np.ctypeslib.as_ctypes(a) for a in (p, *state)]
    entry = getattr(library, f"{name}_{CTYPES[p.dtype]}")
    entry(ctypes.c_longlong(p.size), np.ctypeslib.as_ctypes(g), *scalars, *pointers)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_maths_on_the_host_equals_the_xp_update_bit_for_bit(host_kernels, case, dtype):
    """Compiled without FMA contraction, the kernel does the xp update's very operations."""
    reference, fused, c, arrays = _inputs(case, dtype)
    expected = _xp_result(reference, c, arrays)
    _call_host(host_kernels, _kernel_name(fused, c, len(arrays) - 2), c, arrays)
    for k, (ours, ref) in enumerate(zip(arrays, expected, strict=True)):
        np.testing.assert_array_equal(ours, ref, err_msg=f"array {k}")
    assert not np.array_equal(arrays[0], _arrays(0, dtype)[0]), "the parameter did not move"


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_cuda_source_compiles(tmp_path, arch):
    source = tmp_path / "optim.cu"
    source.write_text(full_source())
    ptx = tmp_path / "optim.ptx"
    result = subprocess.run(
        [NVCC, "--ptx", f"-arch={arch}", "--std=c++14", "-o", str(ptx), str(source)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"nvcc failed ({arch}):\n{result.stderr}"
    text = ptx.read_text()
    for name in kernels.KERNELS:
        for ctype in CTYPES.values():
            assert f".entry {name}_{ctype}(" in text, f"{name}_{ctype} missing from the PTX"


# ---- dispatch -----------------------------------------------------------------------------


def test_kernels_are_used_only_on_real_cupy():
    assert not kernels.supported(np, np.float32)
    assert not kernels.supported(backend.gpu_module(), np.float16)
    assert kernels.supported(backend.gpu_module(), np.float32) == (
        backend.gpu_module().__name__ == "cupy"
    )


@pytest.mark.parametrize(
    "make,entry",
    [
        (lambda p: optim.SGD(p, momentum=0.9), "minigrad_sgd_momentum_step"),
        (lambda p: optim.Adam(p, amsgrad=True), "minigrad_adam_amsgrad_step"),
        (lambda p: optim.RMSprop(p, centered=True), "minigrad_rmsprop_centered_step"),
    ],
)
def test_optimizers_launch_their_fused_kernel_where_supported(monkeypatch, make, entry):
    """On the stand-in, which builds ElementwiseKernels but cannot run them, pretending it
    is CuPy makes each optimizer build and call its kernel."""
    if backend.gpu_module().__name__ == "cupy":
        pytest.skip("the stand-in's refusal to run kernels is what this test observes")
    monkeypatch.setattr(kernels, "supported", lambda xp, dtype: True)
    p = mg.zeros(3, device="gpu", requires_grad=True)
    p.grad = mg.ones(3, device="gpu")
    with pytest.raises(RuntimeError, match=f"ElementwiseKernel '{entry}' needs a real GPU"):
        make([p]).step()


# ---- on a real GPU ------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_fused_kernel_equals_the_xp_update_on_the_gpu(case, dtype):
    xp = backend.gpu_module()
    reference, fused, c, arrays = _inputs(case, dtype)
    assert kernels.supported(xp, dtype)
    ours = [xp.asarray(a) for a in arrays]
    expected = [xp.asarray(a) for a in arrays]
    fused(xp, c, tuple(ours), None)
    reference(xp, c, tuple(expected), foreach._fresh_scratch(xp, expected[0]))
    tol = _tolerance(dtype) * 10
    for k, (a, b) in enumerate(zip(ours, expected, strict=True)):
        np.testing.assert_allclose(
            xp.asnumpy(a), xp.asnumpy(b), rtol=tol, atol=tol, err_msg=f"array {k}"
        )


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_an_optimizer_on_the_gpu_matches_its_cpu_run(name):
    rng = np.random.default_rng(0)
    start, grads = rng.standard_normal(500), rng.standard_normal((5, 500))
    runs = []
    for device in ("cpu", "gpu"):
        p = mg.tensor(start, device=device, requires_grad=True)
        opt = getattr(optim, name)([p], lr=0.01, **({"momentum": 0.9} if name != "Adam" else {}))
        for g in grads:
            p.grad = mg.tensor(g, device=device)
            opt.step()
        runs.append(p.detach().numpy())
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12, atol=1e-12)
