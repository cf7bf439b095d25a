"""The plain textbook version of each fast op: the spec, a second test oracle, what examples read.

Each function works on raw arrays (NumPy or CuPy: ``xp`` is the module of the input), is
written straight from the formula, and favours clarity over speed: no tiles, no threads, no
reuse of buffers. Python loops run only over kernel offsets (kh*kw strided copies), never over
pixels or samples. The fast ops in :mod:`minigrad.ops` must give the same numbers (the tests
check it in float64), and each fast op's docstring names its reference here and lists what it
adds to it.

Conventions: images are (N, C, H, W); ``stride``, ``padding`` and ``dilation`` are an int or a
pair (rows, columns), and padding is the same on both sides.

- conv2d: :func:`im2col`, :func:`conv2d_forward`, :func:`col2im`, :func:`conv2d_grad_input`,
  :func:`conv2d_grad_weight`, :func:`conv2d_backward`;
- conv_transpose2d: :func:`conv_transpose2d_forward`, :func:`conv_transpose2d_backward`;
- pooling: :func:`max_pool2d_forward`, :func:`max_pool2d_backward`,
  :func:`max_unpool2d_forward`, :func:`max_unpool2d_backward`;
- resizing: :func:`interpolate_bilinear`, :func:`interpolate_bilinear_backward`;
- normalization: :func:`batch_norm_forward`, :func:`batch_norm_backward`;
- optimization: :func:`adam_step`.
"""

from __future__ import annotations

import math

from minigrad import backend


def _pair(value) -> tuple:
    """(rows, columns) from an int or a pair."""
    return tuple(value) if isinstance(value, tuple | list) else (value, value)


def _conv_out_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """floor((size + 2*pad - dilation*(kernel-1) - 1) / stride) + 1."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _offset_window(array, i: int, j: int, out_size: tuple, stride: tuple, dilation: tuple):
    """The strided view of a padded (..., Hp, Wp) array that kernel offset (i, j) sees: the
    input pixel under it for every output pixel, (..., Ho, Wo)."""
    (ho, wo), (sy, sx), (dy, dx) = out_size, stride, dilation
    top, left = i * dy, j * dx
    return array[..., top : top + (ho - 1) * sy + 1 : sy, left : left + (wo - 1) * sx + 1 : sx]


# --------------------------------------------------------------------------- conv2d


def im2col(x, kh: int, kw: int, stride=1, padding=0, dilation=1):
    """The columns of a conv, ``cols[n, c, i, j, oh, ow] = xpad[n, c, oh*sy + i*dy, ow*sx + j*dx]``
    (xpad: x zero-padded on every side).

    One strided copy per kernel offset (kh*kw copies). Reshaped to (N, C*kh*kw, Ho*Wo), each
    column holds the C*kh*kw input values one output pixel sees, so a conv is one matmul.

    Shapes: x (N, C, H, W) -> (N, C, kh, kw, Ho, Wo).
    """
    xp = backend.get_array_module(x)
    stride, (ph, pw), dilation = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, w = x.shape
    out_size = (
        _conv_out_size(h, kh, stride[0], ph, dilation[0]),
        _conv_out_size(w, kw, stride[1], pw, dilation[1]),
    )
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = xp.empty((n, c, kh, kw, *out_size), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = _offset_window(padded, i, j, out_size, stride, dilation)
    return cols


def col2im(cols, x_shape: tuple, stride=1, padding=0, dilation=1):
    """The adjoint of :func:`im2col`: every column entry added back onto the pixel it came from.

    One strided add per kernel offset into a zero padded image, whose border is then dropped.

    Shapes: cols (N, C, kh, kw, Ho, Wo) -> (N, C, H, W) = ``x_shape``.
    """
    xp = backend.get_array_module(cols)
    stride, (ph, pw), dilation = _pair(stride), _pair(padding), _pair(dilation)
    n, c, kh, kw, ho, wo = cols.shape
    h, w = x_shape[2:]
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            _offset_window(padded, i, j, (ho, wo), stride, dilation)[...] += cols[:, :, i, j]
    return padded[:, :, ph : ph + h, pw : pw + w]


def _grouped(matrix, groups: int):
    """(..., G*rows, cols) as (..., G, rows, cols): one matrix per group."""
    return matrix.reshape(*matrix.shape[:-2], groups, matrix.shape[-2] // groups, matrix.shape[-1])


def conv2d_forward(x, W, b=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """``y = W @ im2col(x) + b``, as ``torch.nn.functional.conv2d`` (cross-correlation).

    With groups, the channels split into G independent convs: W (G, Co/G, C/G*kh*kw) times the
    columns (N, G, C/G*kh*kw, Ho*Wo) is one batched matmul.

    Shapes: x (N, C, H, W), W (Co, C/G, kh, kw), b (Co,) or None -> y (N, Co, Ho, Wo), with
    ``Ho = floor((H + 2*ph - dy*(kh-1) - 1) / sy) + 1`` (Wo likewise).
    """
    c_out, _, kh, kw = W.shape
    cols = im2col(x, kh, kw, stride, padding, dilation)
    n, _, _, _, ho, wo = cols.shape
    col_matrix = _grouped(cols.reshape(n, -1, ho * wo), groups)  # (N, G, C/G*kh*kw, Ho*Wo)
    y = (_grouped(W.reshape(1, c_out, -1), groups) @ col_matrix).reshape(n, c_out, ho, wo)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv2d_grad_input(gy, W, x_shape: tuple, stride=1, padding=0, dilation=1, groups: int = 1):
    """The input gradient of a conv2d: ``col2im(W^T @ gy)``.

    Each output gradient is sent back along the column it was computed from.

    Shapes: gy (N, Co, Ho, Wo), W (Co, C/G, kh, kw) -> gx (N, C, H, W) = ``x_shape``.
    """
    c_out, _, kh, kw = W.shape
    n, _, ho, wo = gy.shape
    w_t = _grouped(W.reshape(1, c_out, -1), groups).swapaxes(-1, -2)  # (1, G, C/G*kh*kw, Co/G)
    gcols = w_t @ _grouped(gy.reshape(n, c_out, ho * wo), groups)  # (N, G, C/G*kh*kw, Ho*Wo)
    gcols = gcols.reshape(n, x_shape[1], kh, kw, ho, wo)
    return col2im(gcols, x_shape, stride, padding, dilation)


def conv2d_grad_weight(x, gy, w_shape: tuple, stride=1, padding=0, dilation=1, groups: int = 1):
    """The weight gradient of a conv2d: ``gW = sum over samples of gy @ im2col(x)^T``.

    Shapes: x (N, C, H, W), gy (N, Co, Ho, Wo) -> gW (Co, C/G, kh, kw) = ``w_shape``.
    """
    c_out, _, kh, kw = w_shape
    n, _, ho, wo = gy.shape
    # A transposed conv's output_padding can give x more rows than gy's outputs need.
    cols = im2col(x, kh, kw, stride, padding, dilation)[..., :ho, :wo]
    col_matrix = _grouped(cols.reshape(n, -1, ho * wo), groups)  # (N, G, C/G*kh*kw, Ho*Wo)
    gy_matrix = _grouped(gy.reshape(n, c_out, ho * wo), groups)  # (N, G, Co/G, Ho*Wo)
    return (gy_matrix @ col_matrix.swapaxes(-1, -2)).sum(axis=0).reshape(w_shape)


def conv2d_backward(x, W, gy, stride=1, padding=0, dilation=1, groups: int = 1) -> tuple:
    """(gx, gW, gb) of :func:`conv2d_forward`: col2im of ``W^T gy``, ``gy @ cols^T``, and gy
    summed over everything but its channels."""
    args = (stride, padding, dilation, groups)
    gx = conv2d_grad_input(gy, W, x.shape, *args)
    gw = conv2d_grad_weight(x, gy, W.shape, *args)
    return gx, gw, gy.sum(axis=(0, 2, 3))


# --------------------------------------------------------------------------- conv_transpose2d


def conv_transpose2d_forward(
    x, W, b=None, stride=1, padding=0, output_padding=0, groups: int = 1, dilation=1
):
    """The adjoint of conv2d: its input gradient, as ``torch.nn.functional.conv_transpose2d``.

    The weight (C_in, C_out/G, kh, kw) is read as that of the conv2d from C_out to C_in
    channels; this op is that conv's :func:`conv2d_grad_input` with x as its output gradient.

    Shapes: x (N, C_in, H, W) -> y (N, C_out, Ho, Wo), with
    ``Ho = (H-1)*sy - 2*ph + dy*(kh-1) + output_padding + 1`` (Wo likewise).
    """
    n, _, h, w = x.shape
    _, c_out_per_group, kh, kw = W.shape
    (sy, sx), (ph, pw), (dy, dx) = _pair(stride), _pair(padding), _pair(dilation)
    (oph, opw) = _pair(output_padding)
    out_shape = (
        n,
        c_out_per_group * groups,
        (h - 1) * sy - 2 * ph + dy * (kh - 1) + oph + 1,
        (w - 1) * sx - 2 * pw + dx * (kw - 1) + opw + 1,
    )
    y = conv2d_grad_input(x, W, out_shape, stride, padding, dilation, groups)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv_transpose2d_backward(x, W, gy, stride=1, padding=0, groups: int = 1, dilation=1):
    """(gx, gW, gb) of :func:`conv_transpose2d_forward`, from conv2d's own kernels.

    gx is the conv2d of gy (the adjoint of the adjoint), cropped to x (an output_padding at
    least the stride leaves gy rows no input reached); gW is the conv2d weight gradient with
    gy as the conv's input and x as its output gradient.
    """
    h, w = x.shape[2:]
    gx = conv2d_forward(gy, W, None, stride, padding, dilation, groups)[:, :, :h, :w]
    gw = conv2d_grad_weight(gy, x, W.shape, stride, padding, dilation, groups)
    return gx, gw, gy.sum(axis=(0, 2, 3))


# --------------------------------------------------------------------------- pooling


def _pooled_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool):
    """PyTorch's: floor_or_ceil((size + 2*pad - dilation*(kernel-1) - 1) / stride) + 1, and in
    ceil mode the last window must start inside the input or its left padding."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil else 0)) // stride + 1
    return out - 1 if ceil and (out - 1) * stride >= size + pad else out


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, indices): the max over each window and where it is, as ``F.max_pool2d`` with
    ``return_indices=True``.

    The input is padded with -inf (and, in ceil mode, as far right and down as the last
    window reaches); the window values of all kernel offsets are stacked and the first
    maximum in row-major scan order wins, as in PyTorch. ``indices`` is the winner's flat
    position ``row * W + column`` in its unpadded H*W plane.

    Shapes: x (N, C, H, W) -> y and indices (N, C, Ho, Wo).
    """
    xp = backend.get_array_module(x)
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    pad, dilation = _pair(padding), _pair(dilation)
    h, w = x.shape[2:]
    out_size = tuple(
        _pooled_size(n, k, s, p, d, ceil_mode)
        for n, k, s, p, d in zip((h, w), kernel, stride, pad, dilation, strict=True)
    )
    # pad after: as far as the last window reaches, at least the padding
    after = [
        max(p, (o - 1) * s + d * (k - 1) + 1 - n - p)
        for n, k, s, p, d, o in zip((h, w), kernel, stride, pad, dilation, out_size, strict=True)
    ]
    padded = xp.pad(
        x, ((0, 0), (0, 0), (pad[0], after[0]), (pad[1], after[1])), constant_values=-math.inf
    )
    offsets = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]
    windows = xp.stack(
        [_offset_window(padded, i, j, out_size, stride, dilation) for i, j in offsets]
    )
    winner = windows.argmax(axis=0)  # (N, C, Ho, Wo): which kernel offset, first max wins
    y = xp.take_along_axis(windows, winner[None], axis=0)[0]
    rows = (
        xp.arange(out_size[0])[:, None] * stride[0] - pad[0] + (winner // kernel[1]) * dilation[0]
    )
    cols = xp.arange(out_size[1]) * stride[1] - pad[1] + (winner % kernel[1]) * dilation[1]
    return y, (rows * w + cols).astype(xp.int64)


def max_pool2d_backward(gy, indices, x_shape: tuple):
    """The gradient of max pooling: each output gradient added at its maximum's position.

    Shapes: gy and indices (N, C, Ho, Wo) -> gx (N, C, H, W) = ``x_shape``; overlapping
    windows that share a maximum add up there.
    """
    xp = backend.get_array_module(gy)
    n, c, h, w = x_shape
    gx = xp.zeros((n * c, h * w), dtype=gy.dtype)
    planes = xp.arange(n * c)[:, None]
    backend.scatter_add(gx, (planes, indices.reshape(n * c, -1)), gy.reshape(n * c, -1))
    return gx.reshape(x_shape)


def max_unpool2d_forward(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Each value written at its index in a zero plane, as ``F.max_unpool2d``.

    Shapes: x and indices (N, C, H, W) -> y (N, C, Ho, Wo), with ``output_size`` (Ho, Wo) or by
    default ``Ho = (H-1)*sy - 2*ph + kh`` (Wo likewise).
    """
    xp = backend.get_array_module(x)
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    n, c, h, w = x.shape
    if output_size is None:
        pad = _pair(padding)
        output_size = tuple(
            (size - 1) * s - 2 * p + k
            for size, s, p, k in zip((h, w), stride, pad, kernel, strict=True)
        )
    y = xp.zeros((n * c, output_size[-2] * output_size[-1]), dtype=x.dtype)
    y[xp.arange(n * c)[:, None], indices.reshape(n * c, -1)] = x.reshape(n * c, -1)
    return y.reshape(n, c, output_size[-2], output_size[-1])


def max_unpool2d_backward(gy, indices):
    """The gradient of max unpooling: gy read back at each index.

    Shapes: gy (N, C, Ho, Wo), indices (N, C, H, W) -> gx (N, C, H, W).
    """
    xp = backend.get_array_module(gy)
    n, c = gy.shape[:2]
    flat = indices.reshape(n * c, -1).astype(xp.int64)
    return xp.take_along_axis(gy.reshape(n * c, -1), flat, axis=1).reshape(indices.shape)


# --------------------------------------------------------------------------- bilinear resizing


def linear_interpolation_matrix(xp, n_in: int, n_out: int, align_corners: bool, dtype):
    """R (n_out, n_in): row ``dst`` mixes two neighbouring inputs with PyTorch's weights.

    The source coordinate is ``src = dst * (n_in - 1) / (n_out - 1)`` with align_corners
    (corner pixel centres meet), else ``src = (dst + 0.5) * n_in / n_out - 0.5``, clamped to 0
    as PyTorch does. With ``i0 = floor(src)``, ``i1 = min(i0 + 1, n_in - 1)`` and
    ``l = src - i0``, the weights are ``1 - l`` on i0 and ``l`` on i1.
    """
    dst = xp.arange(n_out, dtype=xp.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else xp.zeros_like(dst)
    else:
        src = xp.maximum((dst + 0.5) * (n_in / n_out) - 0.5, 0)
    i0 = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
    i1 = xp.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    matrix = xp.zeros((n_out, n_in), dtype=xp.float64)
    rows = xp.arange(n_out)
    backend.scatter_add(matrix, (rows, i0), 1 - lam)  # i0 == i1 at the last input: both add
    backend.scatter_add(matrix, (rows, i1), lam)
    return matrix.astype(dtype)


def _bilinear_matrices(xp, in_size: tuple, out_size: tuple, align_corners: bool, dtype):
    """(Ry (Ho, H), Rx (Wo, W))."""
    return tuple(
        linear_interpolation_matrix(xp, n_in, n_out, align_corners, dtype)
        for n_in, n_out in zip(in_size, out_size, strict=True)
    )


def interpolate_bilinear(x, size, align_corners: bool = False):
    """Bilinear resizing, as ``F.interpolate(x, size, mode="bilinear")``: ``Ry @ X @ Rx^T`` for
    every (N, C) plane X, the interpolation being separable.

    Shapes: x (N, C, H, W) -> (N, C, Ho, Wo), ``size = (Ho, Wo)``.
    """
    xp = backend.get_array_module(x)
    ry, rx = _bilinear_matrices(xp, x.shape[2:], _pair(size), align_corners, x.dtype)
    return ry @ x @ rx.T


def interpolate_bilinear_backward(gy, in_size: tuple, align_corners: bool = False):
    """The gradient of :func:`interpolate_bilinear`: the transposed maps, ``Ry^T @ G @ Rx``.

    Shapes: gy (N, C, Ho, Wo) -> gx (N, C, H, W), ``in_size = (H, W)``.
    """
    xp = backend.get_array_module(gy)
    ry, rx = _bilinear_matrices(xp, in_size, gy.shape[2:], align_corners, gy.dtype)
    return ry.T @ gy @ rx


# --------------------------------------------------------------------------- batch norm


def _channel_view(values, ndim: int):
    """A per-channel (C,) array shaped to broadcast against (N, C, *)."""
    return values.reshape(1, -1, *([1] * (ndim - 2)))


def _batch_statistics(x, eps: float) -> tuple:
    """(mean, invstd, x_hat) over every axis but the channels, the variance biased."""
    axes = (0, *range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    invstd = 1 / (var + eps) ** 0.5
    return mean, invstd, (x - mean) * invstd


def batch_norm_forward(x, weight=None, bias=None, eps: float = 1e-5):
    """Training-mode batch norm: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    ``mean`` and the biased ``var`` of each channel are taken over the batch and every spatial
    position. ``weight`` and ``bias`` (C,) may be None (1 and 0).

    Shapes: x (N, C, *) -> y (N, C, *).
    """
    _, _, x_hat = _batch_statistics(x, eps)
    y = x_hat if weight is None else x_hat * _channel_view(weight, x.ndim)
    return y if bias is None else y + _channel_view(bias, x.ndim)


def batch_norm_backward(gy, x, weight=None, eps: float = 1e-5) -> tuple:
    """(gx, gweight, gbias) of :func:`batch_norm_forward`, in closed form.

    With M values per channel (N * prod(*)) and sums over them,

        gx = (1/M) * invstd * weight * (M * gy - sum(gy) - x_hat * sum(gy * x_hat)),
        gweight = sum(gy * x_hat),   gbias = sum(gy):

    the mean and variance depend on every x, which gives the two subtracted terms.

    Shapes: gy, x (N, C, *) -> gx (N, C, *), gweight and gbias (C,).
    """
    axes = (0, *range(2, x.ndim))
    count = x.size // x.shape[1]
    _, invstd, x_hat = _batch_statistics(x, eps)
    sum_gy = gy.sum(axis=axes, keepdims=True)
    sum_gy_xhat = (gy * x_hat).sum(axis=axes, keepdims=True)
    scale = invstd if weight is None else invstd * _channel_view(weight, x.ndim)
    gx = scale / count * (count * gy - sum_gy - x_hat * sum_gy_xhat)
    return gx, sum_gy_xhat.reshape(-1), sum_gy.reshape(-1)


# --------------------------------------------------------------------------- Adam


def adam_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    step: int,
    lr: float = 1e-3,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    max_exp_avg_sq=None,
) -> tuple:
    """One step of ``torch.optim.Adam``, as a pure function: returns new arrays.

    With g the gradient plus ``weight_decay * param`` (L2, added to the gradient):

        m = beta1 * m + (1 - beta1) * g,         v = beta2 * v + (1 - beta2) * g^2,
        v_max = max(v_max, v)                    (amsgrad only; used instead of v below),
        param = param - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),

    where ``t = step`` counts from 1 (the bias corrections undo the zero start of m and v).

    Returns:
        (param, exp_avg, exp_avg_sq, max_exp_avg_sq): the last None without amsgrad.
    """
    xp = backend.get_array_module(param)
    beta1, beta2 = betas
    if weight_decay:
        grad = grad + weight_decay * param
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    second = exp_avg_sq
    if amsgrad:
        previous = xp.zeros_like(param) if max_exp_avg_sq is None else max_exp_avg_sq
        max_exp_avg_sq = second = xp.maximum(previous, exp_avg_sq)
    denom = xp.sqrt(second) / math.sqrt(1 - beta2**step) + eps
    param = param - lr / (1 - beta1**step) * exp_avg / denom
    return param, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else None
