"""05: the conv backward: a transposed conv for the input, a matmul for the weight.

With ``y = W @ cols`` (04), the chain rule gives both gradients at once:

- ``gW = sum over samples of gy @ cols^T``: the same columns as the forward, one matmul;
- ``gcols = W^T @ gy``, sent back onto the pixels they came from by col2im, the adjoint of
  im2col. That is exactly the transposed convolution of gy with W (conv_transpose2d is
  *defined* as conv2d's adjoint, and minigrad's Conv2d and ConvTranspose2d share their kernels).

For stride 1 the input gradient is also an ordinary conv of gy with the kernel flipped and its
in/out channels swapped: the fast path (minigrad/ops/conv/reversed_kernel.py) uses that,
since a conv beats the col2im scatter, and can then take both gradients from gy's columns.

Run: python examples/internals/05_conv_backward.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import reference

TOL = {"rtol": 1e-11, "atol": 1e-11}


def autograd_grads(x, W, b, gy, stride, pad) -> tuple:
    """(gx, gW, gb) of F.conv2d from the engine's backward."""
    xt, Wt, bt = (mg.tensor(a, requires_grad=True) for a in (x, W, b))
    F.conv2d(xt, Wt, bt, stride=stride, padding=pad).backward(mg.tensor(gy))
    return xt.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy()


def check(stride: int, pad: int, h: int) -> None:
    rng = np.random.default_rng(stride)
    n, c, co, k = 2, 3, 4, 3
    x, W, b = rng.standard_normal((n, c, h, h)), rng.standard_normal((co, c, k, k)), np.zeros(co)
    ho = (h + 2 * pad - k) // stride + 1
    gy = rng.standard_normal((n, co, ho, ho))
    gx, gW, gb = autograd_grads(x, W, b, gy, stride, pad)
    print(f"stride {stride}, padding {pad}: x {x.shape} -> y {gy.shape}")

    # Weight gradient: gy (Co, Ho*Wo) @ cols^T (Ho*Wo, C*kh*kw), summed over the samples.
    cols = reference.im2col(x, k, k, stride=stride, padding=pad).reshape(n, c * k * k, -1)
    gW_matmul = (gy.reshape(n, co, -1) @ cols.transpose(0, 2, 1)).sum(axis=0)
    np.testing.assert_allclose(gW_matmul.reshape(W.shape), gW, **TOL)
    print(f"  gW = sum_n gy_n {gy.reshape(n, co, -1).shape[1:]} @ cols_n^T -> {gW.shape}")

    # Input gradient: col2im(W^T @ gy) ...
    gcols = (W.reshape(co, -1).T @ gy.reshape(n, co, -1)).reshape(n, c, k, k, ho, ho)
    gx_col2im = reference.col2im(gcols, x.shape, stride=stride, padding=pad)
    np.testing.assert_allclose(gx_col2im, gx, **TOL)
    # ... which is the transposed conv of gy with the same W (output_padding picks the size).
    output_padding = h - ((ho - 1) * stride - 2 * pad + k)
    gx_transposed = F.conv_transpose2d(
        mg.tensor(gy), mg.tensor(W), stride=stride, padding=pad, output_padding=output_padding
    ).numpy()
    np.testing.assert_allclose(gx_transposed, gx, **TOL)
    print(f"  gx = col2im(W^T @ gy) = conv_transpose2d(gy, W) -> {gx.shape}")
    if (ho - 1) * stride + k < h + pad:  # rows no window reaches get no gradient
        assert not gx[:, :, -1].any() and not gx[:, :, :, -1].any()
        print("  the last row and column are in no window: their gradient is 0")

    # Bias gradient: gy summed over everything but its channels.
    np.testing.assert_allclose(gy.sum(axis=(0, 2, 3)), gb, **TOL)

    if stride == 1:  # the reversed kernel: flip kh, kw and swap in/out channels
        W_reversed = np.ascontiguousarray(W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        gx_conv = F.conv2d(mg.tensor(gy), mg.tensor(W_reversed), padding=k - 1 - pad).numpy()
        np.testing.assert_allclose(gx_conv, gx, **TOL)
        print(f"  stride 1: gx = conv2d(gy, reversed W {W_reversed.shape}, padding {k - 1 - pad})")

    gx_ref, gW_ref, gb_ref = reference.conv2d_backward(x, W, gy, stride=stride, padding=pad)
    for ours, theirs in [(gx_ref, gx), (gW_ref, gW), (gb_ref, gb)]:
        np.testing.assert_allclose(ours, theirs, **TOL)
    print("  reference.conv2d_backward == autograd for all three")


def main() -> None:
    check(stride=1, pad=1, h=6)
    check(stride=2, pad=1, h=7)
    check(stride=2, pad=0, h=8)  # (8 - 3) // 2 + 1 = 3: the last row is in no window


if __name__ == "__main__":
    main()
