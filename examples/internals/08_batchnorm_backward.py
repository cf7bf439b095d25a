"""08: batch norm's backward in closed form, checked against autograd.

Training-mode batch norm normalizes each channel with the mean and (biased) variance of its
M = N*H*W values, then scales and shifts:

    x_hat = (x - mean) * invstd,   invstd = 1 / sqrt(var + eps),   y = weight * x_hat + bias

Every x moves the mean and the variance, so the input gradient has two terms beyond the plain
``weight * invstd * gy``:

    gx = weight * invstd / M * (M * gy - sum(gy) - x_hat * sum(gy * x_hat))
    gweight = sum(gy * x_hat),   gbias = sum(gy)          (sums over N, H, W)

minigrad's fused op (NormalizeWithBatchStats in minigrad/ops/normalization.py) computes this
in two passes over the data. Here it is checked three ways: against the formula written out,
against ``minigrad.reference.batch_norm_backward``, and against autograd through the same
normalization composed from elementary ops (mean, subtract, multiply, sqrt).

Run: python examples/internals/08_batchnorm_backward.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import reference

EPS = 1e-5
TOL = {"rtol": 1e-10, "atol": 1e-12}


def composed(x, weight, bias):
    """Batch norm from elementary ops: autograd derives the backward by the chain rule."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dim=(0, 2, 3), keepdim=True)
    x_hat = centred / mg.sqrt(var + EPS)
    return x_hat * weight.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)


def formula(x, weight, gy) -> tuple:
    """(gx, gweight, gbias) straight from the closed form."""
    axes, m = (0, 2, 3), x.size // x.shape[1]
    mean = x.mean(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + EPS)
    x_hat = (x - mean) * invstd
    sum_gy = gy.sum(axis=axes, keepdims=True)
    sum_gy_xhat = (gy * x_hat).sum(axis=axes, keepdims=True)
    w = weight.reshape(1, -1, 1, 1)
    gx = w * invstd / m * (m * gy - sum_gy - x_hat * sum_gy_xhat)
    return gx, sum_gy_xhat.ravel(), sum_gy.ravel()


def leaves(*arrays):
    return [mg.tensor(a, requires_grad=True) for a in arrays]


def main() -> None:
    rng = np.random.default_rng(0)
    n, c, h, w = 4, 3, 5, 5
    x = rng.standard_normal((n, c, h, w)) * 2 + 1
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)
    gy = rng.standard_normal(x.shape)

    xt, wt, bt = leaves(x, weight, bias)
    running_mean, running_var = mg.zeros(c, dtype=mg.float64), mg.ones(c, dtype=mg.float64)
    y = F.batch_norm(xt, running_mean, running_var, wt, bt, training=True, momentum=0.1, eps=EPS)
    print(f"F.batch_norm: one node, {y.grad_fn.name}, for x {x.shape}")
    expected = reference.batch_norm_forward(x, weight, bias, eps=EPS)
    np.testing.assert_allclose(y.detach().numpy(), expected, **TOL)
    y.backward(mg.tensor(gy))
    fused = (xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy())

    xc, wc, bc = leaves(x, weight, bias)
    yc = composed(xc, wc, bc)
    np.testing.assert_allclose(yc.detach().numpy(), y.detach().numpy(), **TOL)
    yc.backward(mg.tensor(gy))
    by_chain_rule = (xc.grad.numpy(), wc.grad.numpy(), bc.grad.numpy())

    by_formula = formula(x, weight, gy)
    by_reference = reference.batch_norm_backward(gy, x, weight, eps=EPS)
    names = ("gx", "gweight", "gbias")
    for name, a, b, c_, d in zip(
        names, fused, by_chain_rule, by_formula, by_reference, strict=True
    ):
        np.testing.assert_allclose(a, b, **TOL)
        np.testing.assert_allclose(a, c_, **TOL)
        np.testing.assert_allclose(a, d, **TOL)
        print(
            f"{name:8s} {str(a.shape):13s}: fused op == composed autograd == formula == reference"
        )

    # The two extra terms matter: without them the gradient is plainly wrong...
    naive = weight.reshape(1, -1, 1, 1) / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + EPS) * gy
    print(f"without the mean/variance terms: max error {np.abs(naive - fused[0]).max():.3f}")
    assert not np.allclose(naive, fused[0], rtol=1e-3)
    # ... and they make gx sum to 0 in each channel: y ignores a constant added to a channel.
    np.testing.assert_allclose(fused[0].sum(axis=(0, 2, 3)), 0, atol=1e-10)
    print("gx sums to 0 over each channel: a per-channel shift of x does not change y")

    # Running statistics: r = (1 - momentum) * r + momentum * stat, the variance unbiased.
    m = n * h * w
    batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) * m / (m - 1)
    np.testing.assert_allclose(running_mean.numpy(), 0.1 * batch_mean, **TOL)
    np.testing.assert_allclose(running_var.numpy(), 0.9 + 0.1 * batch_var, **TOL)
    print("running_mean, running_var updated with momentum 0.1 (unbiased variance)")


if __name__ == "__main__":
    main()
