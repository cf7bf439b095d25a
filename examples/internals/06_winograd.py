"""06: Winograd F(2x2, 3x3): four outputs of a 3x3 conv from 16 multiplications, not 36.

Lavin and Gray (2016). A 2x2 block of outputs of a 3x3 stride-1 conv reads a 4x4 input tile d.
Directly that is 4 outputs * 9 = 36 multiplications. Winograd transforms the tile and the
kernel into a 4x4 "domain" where the conv is an elementwise product:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* multiplies elementwise: 16 products)

B^T and A^T hold only 0 and +-1, so their transforms are additions; G g G^T is computed once
per kernel and reused by every tile. Over C input channels the 16 products become 16 GEMMs
(minigrad/ops/winograd.py), which is how F.conv2d runs a 3x3 stride-1 conv with 128+ channels
per group (the dispatch in minigrad/ops/conv/dispatch.py).

Run: python examples/internals/06_winograd.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import reference
from minigrad.ops import winograd
from minigrad.ops.conv import conv2d_geometry

B_T = np.array(winograd.INPUT_TRANSFORM, dtype=float)  # (4, 4)
G = np.array(winograd.WEIGHT_TRANSFORM, dtype=float)  # (4, 3)
A_T = np.array(winograd.OUTPUT_TRANSFORM, dtype=float)  # (2, 4)


def direct(d, g):
    """The 2x2 outputs of a 3x3 correlation over a 4x4 tile, counting multiplications."""
    y, mults = np.zeros((2, 2)), 0
    for i, j in np.ndindex(2, 2):
        y[i, j] = (d[i : i + 3, j : j + 3] * g).sum()
        mults += g.size
    return y, mults


def winograd_tile(d, g):
    """The same outputs through the transforms; only U * V multiplies data by data."""
    U = G @ g @ G.T  # (4, 4), once per kernel
    V = B_T @ d @ B_T.T  # (4, 4), additions only
    M = U * V  # 16 multiplications
    return A_T @ M @ A_T.T, M.size  # (2, 2), additions only


def one_tile() -> None:
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    print("B^T =\n", B_T, "\nG =\n", G, "\nA^T =\n", A_T)
    assert set(np.unique(B_T)) <= {-1, 0, 1} and set(np.unique(A_T)) <= {-1, 0, 1}
    y_direct, direct_mults = direct(d, g)
    y_winograd, winograd_mults = winograd_tile(d, g)
    print(f"direct: {direct_mults} multiplications; Winograd: {winograd_mults}")
    assert (direct_mults, winograd_mults) == (36, 16)
    np.testing.assert_allclose(y_winograd, y_direct, rtol=1e-12, atol=1e-12)
    print("same 2x2 outputs:\n", y_winograd)

    # The engine's kernel transform is the same G g G^T, for all (Co, C) pairs in one GEMM.
    geometry = conv2d_geometry("conv2d", (1, 1, 4, 4), (1, 1, 3, 3), 1, 0, 1, 1)
    U = winograd.transformed_weight(g.reshape(1, 1, 3, 3), geometry)  # (16, G, Co/G, C/G)
    np.testing.assert_allclose(U.reshape(4, 4), G @ g @ G.T, rtol=1e-12)


def count_calls(fn, counter: list):
    def counted(*args, **kwargs):
        counter.append(1)
        return fn(*args, **kwargs)

    return counted


def whole_conv() -> None:
    """F.conv2d on 288 channels at 20x20 picks Winograd, and equals the im2col reference.
    (With 256 input channels or fewer, a CPU conv takes the shifted-window GEMMs first; on
    a smaller image the 288-channel weight would be weight-bound, with paths of its own.)"""
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((1, 288, 20, 20)), rng.standard_normal((288, 288, 3, 3)) / 51
    for channels in (8, 128):
        g = conv2d_geometry("conv2d", (1, channels, 6, 6), (channels, channels, 3, 3), 1, 1, 1, 1)
        print(f"{channels} channels, 3x3 stride 1: Winograd {winograd.supported(g)}")
        assert winograd.supported(g) == (channels >= winograd.MIN_CHANNELS)

    calls, original = [], winograd.forward_and_grad_weight
    winograd.forward_and_grad_weight = count_calls(original, calls)
    try:
        xt, Wt = mg.tensor(x, requires_grad=True), mg.tensor(W, requires_grad=True)
        y = F.conv2d(xt, Wt, padding=1)
        forward_calls = len(calls)
        gy = rng.standard_normal(y.shape)
        y.backward(mg.tensor(gy))
        y32 = F.conv2d(mg.tensor(x.astype(np.float32)), mg.tensor(W.astype(np.float32)), padding=1)
    finally:
        winograd.forward_and_grad_weight = original
    assert forward_calls == 1, "the forward ran on the Winograd path"
    assert len(calls) >= 3, "so did the backward (and the float32 forward)"
    expected = reference.conv2d_forward(x, W, padding=1)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    gx, gW, _ = reference.conv2d_backward(x, W, gy, padding=1)
    np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Wt.grad.numpy(), gW, rtol=1e-10, atol=1e-12)
    print("F.conv2d (Winograd) and its gradients == reference.conv2d_forward/backward")
    error32 = np.abs(y32.numpy() - expected).max() / np.abs(expected).max()
    print(f"float32 relative error {error32:.1e}")
    assert error32 < 1e-5  # F(2x2, 3x3) keeps float32 at the accuracy of a direct conv


def main() -> None:
    one_tile()
    whole_conv()


if __name__ == "__main__":
    main()
