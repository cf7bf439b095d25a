"""Depthwise convolution on CUDA: one thread per output (forward) or input (backward) element.

The ``xp`` depthwise path in :mod:`minigrad.ops.conv.depthwise` runs kh*kw strided
multiply-adds over the whole tensor, each a kernel launch with a temporary; these kernels read
every input once and write every output once. Weight gradients stay on the ``xp`` path (a
reduction over N*H*W that CuPy's reductions already parallelise well). The plain version of
both is :func:`minigrad.reference.conv2d_forward` (and its input gradient) with ``groups = C``.

Shapes: x (N, C, H, W), w (C*m, 1, kh, kw) for channel multiplier m, y (N, C*m, Ho, Wo) with
Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (and Wo likewise).
"""

from __future__ import annotations

import functools

import numpy

SOURCE = r"""
template <typename T>
__device__ void depthwise_forward(
    const T* x, const T* w, T* y, int C, int H, int W, int mult, int Ho, int Wo, int KH, int KW,
    int sh, int sw, int ph, int pw, int dh, int dw, long long total) {
  long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += stride) {
    int wo = (int)(i % Wo);
    long long t = i / Wo;
    int ho = (int)(t % Ho);
    t /= Ho;
    int co = (int)(t % (C * mult));
    long long n = t / (C * mult);
    const T* plane = x + (n * C + co / mult) * (long long)H * W;
    const T* kernel = w + (long long)co * KH * KW;
    T acc = 0;
    for (int ki = 0; ki < KH; ++ki) {
      int h = ho * sh - ph + ki * dh;
      if (h < 0 || h >= H) continue;
      for (int kj = 0; kj < KW; ++kj) {
        int col = wo * sw - pw + kj * dw;
        if (col < 0 || col >= W) continue;
        acc += plane[h * W + col] * kernel[ki * KW + kj];
      }
    }
    y[i] = acc;
  }
}

template <typename T>
__device__ void depthwise_backward_input(
    const T* gy, const T* w, T* gx, int C, int H, int W, int mult, int Ho, int Wo, int KH, int KW,
    int sh, int sw, int ph, int pw, int dh, int dw, long long total) {
  long long stride = (long long)blockDim.x * gridDim.x;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += stride) {
    int col = (int)(i % W);
    long long t = i / W;
    int h = (int)(t % H);
    t /= H;
    int c = (int)(t % C);
    long long n = t / C;
    T acc = 0;
    for (int m = 0; m < mult; ++m) {
      int co = c * mult + m;
      const T* grad = gy + (n * C * mult + co) * (long long)Ho * Wo;
      const T* kernel = w + (long long)co * KH * KW;
      for (int ki = 0; ki < KH; ++ki) {
        int hs = h + ph - ki * dh;
        if (hs < 0 || hs % sh != 0) continue;
        int ho = hs / sh;
        if (ho >= Ho) continue;
        for (int kj = 0; kj < KW; ++kj) {
          int ws = col + pw - kj * dw;
          if (ws < 0 || ws % sw != 0) continue;
          int wo = ws / sw;
          if (wo >= Wo) continue;
          acc += grad[ho * Wo + wo] * kernel[ki * KW + kj];
        }
      }
    }
    gx[i] = acc;
  }
}

#define DEPTHWISE_ENTRY(NAME, T)                                                              \
  extern "C" __global__ void NAME##_##T(                                                      \
      const T* a, const T* w, T* out, int C, int H, int W, int mult, int Ho, int Wo, int KH,  \
      int KW, int sh, int sw, int ph, int pw, int dh, int dw, long long total) {              \
    NAME<T>(a, w, out, C, H, W, mult, Ho, Wo, KH, KW, sh, sw, ph, pw, dh, dw, total);         \
  }

DEPTHWISE_ENTRY(depthwise_forward, float)
DEPTHWISE_ENTRY(depthwise_forward, double)
DEPTHWISE_ENTRY(depthwise_backward_input, float)
DEPTHWISE_ENTRY(depthwise_backward_input, double)
"""

_TYPE_NAMES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
ENTRIES = [
    f"{kernel}_{t}"
    for kernel in ("depthwise_forward", "depthwise_backward_input")
    for t in _TYPE_NAMES.values()
]
_THREADS = 256


def supported(xp, dtype) -> bool:
    """True when ``xp`` is real CuPy (not NumPy or the stand-in) and the dtype has a kernel."""
    return getattr(xp, "__name__", "") == "cupy" and numpy.dtype(dtype) in _TYPE_NAMES


def _function(xp, name: str, dtype: numpy.dtype):
    """The kernel on the current device (CuPy's RawModule caches each device's build)."""
    return _module(xp).get_function(f"{name}_{_TYPE_NAMES[dtype]}")


@functools.cache
def _module(xp):
    return xp.RawModule(code=SOURCE, options=("--std=c++14",))


def _launch(xp, name, a, w, out, geometry) -> None:
    total = out.size
    blocks = min((total + _THREADS - 1) // _THREADS, 65535)
    args = (a, w, out, *(numpy.int32(v) for v in geometry), numpy.int64(total))
    _function(xp, name, out.dtype)((max(blocks, 1),), (_THREADS,), args)


def forward(xp, x, w, out_hw, stride, padding, dilation):
    """y = depthwise conv2d(x, w); x (N, C, H, W) contiguous, w (C*m, 1, kh, kw)."""
    n, c, h, width = x.shape
    cout, _, kh, kw = w.shape
    y = xp.empty((n, cout, *out_hw), dtype=x.dtype)
    geometry = (c, h, width, cout // c, *out_hw, kh, kw, *stride, *padding, *dilation)
    _launch(xp, "depthwise_forward", xp.ascontiguousarray(x), xp.ascontiguousarray(w), y, geometry)
    return y


def backward_input(xp, gy, w, x_shape, stride, padding, dilation):
    """gx of a depthwise conv2d: gy (N, C*m, Ho, Wo), w (C*m, 1, kh, kw) -> (N, C, H, W)."""
    n, c, h, width = x_shape
    cout, _, kh, kw = w.shape
    gx = xp.empty(x_shape, dtype=gy.dtype)
    geometry = (c, h, width, cout // c, *gy.shape[2:], kh, kw, *stride, *padding, *dilation)
    _launch(
        xp,
        "depthwise_backward_input",
        xp.ascontiguousarray(gy),
        xp.ascontiguousarray(w),
        gx,
        geometry,
    )
    return gx
