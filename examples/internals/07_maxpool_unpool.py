"""07: max pooling's indices, and max unpooling that puts each maximum back.

``F.max_pool2d(x, k, return_indices=True)`` returns, beside the maxima, where each one was:
PyTorch's flat index ``row * W + column`` within its own (H, W) plane, not within the whole
tensor. ``F.max_unpool2d(y, indices, k)`` writes every value at its index in a zero plane:
SegNet's decoder uses that to put features back where the encoder found them. The two are
adjoint: max pool's backward *is* an unpool of the output gradient, and unpool's backward
reads the gradient back at the indices.

Run: python examples/internals/07_maxpool_unpool.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import reference


def one_plane() -> None:
    x = np.array([[1, 5, 2, 0], [3, 4, 8, 7], [9, 2, 1, 1], [0, 6, 3, 4]], dtype=np.float32)
    y, indices = F.max_pool2d(mg.tensor(x[None, None]), 2, return_indices=True)
    print("x:\n", x, "\nmax_pool2d 2x2:\n", y.numpy()[0, 0], "\nindices:\n", indices.numpy()[0, 0])
    np.testing.assert_array_equal(y.numpy()[0, 0], [[5, 8], [9, 4]])
    np.testing.assert_array_equal(indices.numpy()[0, 0], [[1, 6], [8, 15]])  # row * 4 + column
    assert indices.dtype == np.int64
    unpooled = F.max_unpool2d(y, indices, 2).numpy()[0, 0]
    print("max_unpool2d: each maximum back in place, zeros elsewhere:\n", unpooled)
    expected = np.zeros_like(x)
    expected.flat[[1, 6, 8, 15]] = [5, 8, 9, 4]
    np.testing.assert_array_equal(unpooled, expected)


def many_planes() -> None:
    """Indices count within each plane: every one is below H*W, whatever the sample/channel."""
    rng = np.random.default_rng(0)
    n, c, h, w = 2, 3, 6, 8
    x = rng.permutation(n * c * h * w).reshape(n, c, h, w).astype(np.float64)  # no ties
    xt = mg.tensor(x, requires_grad=True)
    y, indices = F.max_pool2d(xt, 2, return_indices=True)
    idx = indices.numpy()
    assert idx.min() >= 0 and idx.max() < h * w
    planes = x.reshape(n, c, h * w)
    np.testing.assert_array_equal(
        np.take_along_axis(planes, idx.reshape(n, c, -1), axis=2),
        y.detach().numpy().reshape(n, c, -1),
    )
    print(f"{n}x{c} planes of {h}x{w}: indices in [0, {h * w}), x.flat[plane][index] == y")

    ref_y, ref_idx = reference.max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(ref_y, y.detach().numpy())
    np.testing.assert_array_equal(ref_idx, idx)

    # max pool's backward routes gy to the maxima: the same as unpooling gy.
    gy = rng.standard_normal(y.shape)
    y.backward(mg.tensor(gy))
    as_unpool = F.max_unpool2d(mg.tensor(gy), indices, 2, output_size=(h, w)).numpy()
    np.testing.assert_array_equal(xt.grad.numpy(), as_unpool)
    np.testing.assert_array_equal(reference.max_pool2d_backward(gy, idx, x.shape), as_unpool)
    print("max_pool2d backward == max_unpool2d(gy, indices) == reference.max_pool2d_backward")

    # unpool's backward reads the gradient at the indices.
    yt = mg.tensor(y.detach().numpy(), requires_grad=True)
    out = F.max_unpool2d(yt, indices, 2)
    g_out = rng.standard_normal(out.shape)
    out.backward(mg.tensor(g_out))
    np.testing.assert_array_equal(yt.grad.numpy(), reference.max_unpool2d_backward(g_out, idx))
    print("max_unpool2d backward == g_out read at the indices")


def overlapping() -> None:
    """3x3 windows, stride 2, padding 1: windows overlap and padding is never the max."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 7, 7))
    y, indices = F.max_pool2d(mg.tensor(x), 3, stride=2, padding=1, return_indices=True)
    ref_y, ref_idx = reference.max_pool2d_forward(x, 3, stride=2, padding=1)
    np.testing.assert_array_equal(y.numpy(), ref_y)
    np.testing.assert_array_equal(indices.numpy(), ref_idx)
    print(f"3x3 stride 2 padding 1: {x.shape} -> {y.shape}, same maxima and indices as reference")


def main() -> None:
    one_plane()
    many_planes()
    overlapping()


if __name__ == "__main__":
    main()
