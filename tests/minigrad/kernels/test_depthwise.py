"""The CUDA depthwise kernels agree with the xp depthwise path they replace (real GPU only)."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad.kernels import depthwise


def _run(x, w, **conv_args):
    xt = mg.tensor(x, device="gpu", requires_grad=True)
    wt = mg.tensor(w, device="gpu", requires_grad=True)
    y = F.conv2d(xt, wt, **conv_args)
    y.backward(
        mg.tensor(np.cos(np.arange(y.numel())).reshape(y.shape), dtype=y.dtype, device="gpu")
    )
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "multiplier,kernel,conv_args",
    [
        (1, 3, dict(padding=1)),
        (2, 3, dict(stride=2, padding=1)),
        (1, 5, dict(dilation=2, padding=3)),
        (3, (2, 3), dict(stride=(2, 1), padding=(0, 1))),
        (1, 3, dict(padding="same")),
    ],
)
def test_depthwise_kernel_matches_the_xp_path(monkeypatch, dtype, multiplier, kernel, conv_args):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 11, 9)).astype(dtype)
    w = rng.standard_normal((4 * multiplier, 1, kh, kw)).astype(dtype)
    assert depthwise.supported(mg.backend.gpu_module(), dtype)
    with_kernel = _run(x, w, groups=4, **conv_args)
    monkeypatch.setattr(depthwise, "supported", lambda xp, dtype: False)
    reference = _run(x, w, groups=4, **conv_args)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for ours, ref in zip(with_kernel, reference, strict=True):
        np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


# ---- the same kernels run on the CPU: the CUDA source compiled as C++ with one thread ----------

HOST_PRELUDE = """
struct Dim3 { unsigned int x; };
static const Dim3 blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
#define __global__
#define __device__
"""


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    """The CUDA source built as a shared library whose grid-stride loops run in one thread."""
    import ctypes
    import shutil
    import subprocess

    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not on the PATH")
    folder = tmp_path_factory.mktemp("depthwise")
    source = folder / "depthwise.cpp"
    source.write_text(HOST_PRELUDE + depthwise.SOURCE)
    library = folder / "depthwise.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    return ctypes.CDLL(str(library))


def _call(library, name, a, w, out, geometry):
    import ctypes

    args = [np.ctypeslib.as_ctypes(arr.reshape(-1)) for arr in (a, w, out)]
    ints = [ctypes.c_int(int(v)) for v in geometry]
    getattr(library, name)(*args, *ints, ctypes.c_longlong(out.size))


@pytest.mark.parametrize("dtype,ctype", [(np.float32, "float"), (np.float64, "double")])
@pytest.mark.parametrize(
    "multiplier,kernel,stride,padding,dilation",
    [
        (1, (3, 3), (1, 1), (1, 1), (1, 1)),
        (2, (3, 3), (2, 2), (1, 1), (1, 1)),
        (1, (5, 5), (1, 1), (3, 3), (2, 2)),
        (3, (2, 3), (2, 1), (0, 1), (1, 1)),
    ],
)
def test_kernel_index_maths_on_the_host(
    host_kernels, dtype, ctype, multiplier, kernel, stride, padding, dilation
):
    """Forward and input gradient of the CUDA source, run on the CPU, equal F.conv2d's."""
    rng = np.random.default_rng(0)
    n, c, h, w_ = 2, 3, 9, 8
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((c * multiplier, 1, *kernel)).astype(dtype)
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w)
    y = F.conv2d(xt, wt, stride=stride, padding=padding, dilation=dilation, groups=c)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(mg.tensor(gy))
    geometry = (c, h, w_, multiplier, *y.shape[2:], *kernel, *stride, *padding, *dilation)
    out = np.empty(y.shape, dtype=dtype)
    _call(host_kernels, f"depthwise_forward_{ctype}", x, w, out, geometry)
    grad = np.empty(x.shape, dtype=dtype)
    _call(host_kernels, f"depthwise_backward_input_{ctype}", gy, w, grad, geometry)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, y.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=tol, atol=tol)
