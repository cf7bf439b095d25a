"""04: im2col, and conv2d as one matrix multiplication.

A conv's output pixel is the dot product of the kernel with the C*kh*kw input values under it.
im2col copies those values into a column per output pixel: one strided copy per kernel offset
(kh*kw copies, never a loop over pixels), giving a (C*kh*kw, Ho*Wo) matrix per sample. Then
the whole conv is ``W.reshape(Co, C*kh*kw) @ cols``. ``minigrad.reference`` holds this plain
version; the fast ``F.conv2d`` (minigrad/ops/conv/) adds tiles of samples, a "wide" layout for
stride 1, a 1x1 path without im2col, a depthwise path and Winograd (06), and gives the same
numbers.

Run: python examples/internals/04_im2col.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import reference


def tiny_columns() -> None:
    """A 3x3 image and a 2x2 kernel: four output pixels, four columns of four values."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    cols = reference.im2col(x, 2, 2)  # (N, C, kh, kw, Ho, Wo)
    matrix = cols.reshape(4, 4)  # rows: kernel offsets (i, j); columns: output pixels
    print("image:\n", x[0, 0])
    print("columns (row = kernel offset, column = output pixel):\n", matrix)
    np.testing.assert_array_equal(matrix[:, 0], [1, 2, 4, 5])  # the window of output (0, 0)
    np.testing.assert_array_equal(matrix[:, 3], [5, 6, 8, 9])  # the window of output (1, 1)
    W = np.array([[1.0, 0.0], [0.0, -1.0]])  # y = top-left - bottom-right
    y = (W.reshape(1, 4) @ matrix).reshape(2, 2)
    np.testing.assert_array_equal(y, [[-4, -4], [-4, -4]])


def check_definition(x, cols, stride, pad) -> None:
    """``cols[n, c, i, j, oh, ow] = xpad[n, c, oh*sy + i, ow*sx + j]``, entry by entry."""
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for n, c, i, j, oh, ow in np.ndindex(cols.shape):
        assert cols[n, c, i, j, oh, ow] == xpad[n, c, oh * stride + i, ow * stride + j]


def main() -> None:
    tiny_columns()

    rng = np.random.default_rng(0)
    n, c, h, w, co, k, stride, pad = 2, 3, 5, 5, 4, 3, 2, 1
    x = rng.standard_normal((n, c, h, w))
    W = rng.standard_normal((co, c, k, k))
    cols = reference.im2col(x, k, k, stride=stride, padding=pad)
    ho = (h + 2 * pad - k) // stride + 1  # the output-size formula (dilation 1)
    print(f"x {x.shape}, W {W.shape}, stride {stride}, padding {pad}: columns {cols.shape}")
    assert cols.shape == (n, c, k, k, ho, ho) == (2, 3, 3, 3, 3, 3)
    check_definition(x, cols, stride, pad)

    col_matrix = cols.reshape(n, c * k * k, ho * ho)  # (2, 27, 9)
    y = (W.reshape(co, -1) @ col_matrix).reshape(n, co, ho, ho)  # one matmul per sample
    print(f"column matrix {col_matrix.shape}: y = W {W.reshape(co, -1).shape} @ cols -> {y.shape}")

    fast = F.conv2d(mg.tensor(x), mg.tensor(W), stride=stride, padding=pad).numpy()
    np.testing.assert_allclose(y, fast, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        reference.conv2d_forward(x, W, stride=stride, padding=pad), fast, rtol=1e-12, atol=1e-12
    )
    print("W @ im2col(x) == F.conv2d == reference.conv2d_forward")

    # Groups: the columns split into G blocks of channels, one matmul per block.
    groups = 2
    x4 = rng.standard_normal((n, 4, h, w))
    Wg = rng.standard_normal((6, 4 // groups, k, k))
    cols4 = reference.im2col(x4, k, k, padding=1).reshape(n, groups, 2 * k * k, h * w)
    yg = Wg.reshape(groups, 3, 2 * k * k) @ cols4  # (G, Co/G, rows) @ (N, G, rows, H*W)
    fast_g = F.conv2d(mg.tensor(x4), mg.tensor(Wg), padding=1, groups=groups).numpy()
    np.testing.assert_allclose(yg.reshape(n, 6, h, w), fast_g, rtol=1e-12, atol=1e-12)
    print(f"groups={groups}: a batched matmul (G, Co/G, C/G*kh*kw) @ (N, G, C/G*kh*kw, H*W)")


if __name__ == "__main__":
    main()
