"""11: a stride-1 conv as kh*kw GEMMs over shifted windows of one buffer, and why it rounds better.

im2col (04) copies each kernel offset's window into its own rows: 9x the input for a 3x3
kernel. At stride 1 the copy is not needed. Put the N zero-padded images one after another in
each channel's row of one buffer (C, N*hp*wp + reach). Read from offset ``i*wp + j`` on, that
row is exactly what kernel offset (i, j) sees for every output pixel of every sample, in the
"wide" layout: each output row carries ``wp - Wo`` extra columns and each sample ``hp - Ho``
extra rows, dropped at the end. So

    Y_wide (Co, L) = sum over (i, j) of  W[:, :, i, j] (Co, C) @ buffer[:, off_ij : off_ij + L]

with ``L = (N-1)*hp*wp + Ho*wp``: kh*kw GEMMs on windows read in place, added into one output.
``numpy.matmul`` can neither read a window at an offset its strides cannot express nor add
into its output, so the engine (minigrad/ops/conv/shifted.py) calls NumPy's own OpenBLAS
(minigrad/cblas.py) with ``beta=1``. Each GEMM sums only C products per output instead of
im2col's C*kh*kw in one accumulator, and the float32 result lands nearer float64.

This walkthrough pads each image on both sides. The engine saves a little more: neighbouring
rows and images share their zeros (a window that runs past a row's end reads the next row's
left padding), so its rows are ``pad + W`` wide instead of ``2*pad + W``
(``shifted.StackedLayout``).

Run: python examples/internals/11_shifted_windows.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import cblas, reference
from minigrad.ops.conv import conv2d_geometry, shifted


def stacked_buffer(x, pad: int, reach: int):
    """x (N, C, H, W) zero-padded by ``pad`` and laid out as (C, N*hp*wp + reach)."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, hp, wp)
    rows = padded.transpose(1, 0, 2, 3).reshape(c, -1)  # each channel: the N images in a row
    return np.concatenate([rows, np.zeros((c, reach))], axis=1)


def by_hand(x, W, pad: int):
    """The conv as a sum of kh*kw matrix products over windows of the stacked buffer."""
    n, c, h, w = x.shape
    co, _, kh, kw = W.shape
    hp, wp = h + 2 * pad, w + 2 * pad
    ho, wo = hp - kh + 1, wp - kw + 1
    reach = (kh - 1) * wp + (kw - 1)
    buffer = stacked_buffer(x, pad, reach)
    span = (n - 1) * hp * wp + ho * wp
    wide = np.zeros((co, n * hp * wp))
    for i in range(kh):
        for j in range(kw):
            offset = i * wp + j
            window = buffer[:, offset : offset + span]  # a view: nothing is copied
            wide[:, :span] += W[:, :, i, j] @ window
    images = wide.reshape(co, n, hp, wp)
    return images[:, :, :ho, :wo].transpose(1, 0, 2, 3)  # drop the extra rows and columns


def one_window(x, pad: int) -> None:
    """Offset (1, 2)'s window, reshaped to the wide layout, is that offset's im2col rows plus
    the extra columns."""
    n, c, h, w = x.shape
    hp, wp = h + 2 * pad, w + 2 * pad
    buffer = stacked_buffer(x, pad, 2 * wp + 2)
    sample_1 = buffer[:, hp * wp : 2 * hp * wp]  # the second image of every channel
    window = sample_1[:, 1 * wp + 2 :][:, : h * wp].reshape(c, h, wp)
    cols = reference.im2col(x, 3, 3, padding=pad)  # (N, C, kh, kw, Ho, Wo)
    np.testing.assert_array_equal(window[:, :, :w], cols[1, :, 1, 2])
    print(f"offset (1, 2) of sample 1: the buffer at {1 * wp + 2} on, as (C, Ho, wp) =", end=" ")
    print(f"{window.shape}; its first Wo = {w} columns are im2col's rows for that offset")


def float32_rounding() -> None:
    """64 channels: one GEMM over im2col's 576 rows against 9 GEMMs of 64, both against
    float64. The shorter sums round better."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 64, 12, 12)).astype(np.float32)
    W = (rng.standard_normal((32, 64, 3, 3)) / 24).astype(np.float32)
    exact = reference.conv2d_forward(x.astype(np.float64), W.astype(np.float64), padding=1)
    one_gemm = reference.conv2d_forward(x, W, padding=1)  # (32, 576) @ (576, 144) per sample
    g = conv2d_geometry("conv2d", x.shape, W.shape, 1, 1, 1, 1)
    nine_gemms = shifted.forward(x, W, g)

    def error(y):
        return np.linalg.norm(y - exact) / np.linalg.norm(exact)

    print(f"float32 error: one GEMM over im2col {error(one_gemm):.2e}, ", end="")
    print(f"nine accumulated GEMMs {error(nine_gemms):.2e}")
    assert error(nine_gemms) < error(one_gemm)


def main() -> None:
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((2, 8, 4, 5)), rng.standard_normal((4, 8, 3, 3))
    one_window(x, pad=1)
    y = by_hand(x, W, pad=1)
    expected = reference.conv2d_forward(x, W, padding=1)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        F.conv2d(mg.tensor(x), mg.tensor(W), padding=1).numpy(), expected, rtol=1e-12, atol=1e-12
    )
    print(f"9 window GEMMs on x {x.shape} == reference.conv2d_forward == F.conv2d")
    if not cblas.available(np.float32):
        print("NumPy's BLAS is not OpenBLAS here: F.conv2d takes im2col instead")
        return
    g = conv2d_geometry("conv2d", x.shape, W.shape, 1, 1, 1, 1)
    print(f"F.conv2d takes this path here: {shifted.supported(g, x) and shifted.pays(g)}")
    np.testing.assert_allclose(shifted.forward(x, W, g), expected, rtol=1e-12, atol=1e-12)
    float32_rounding()


if __name__ == "__main__":
    main()
