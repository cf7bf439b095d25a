"""Convolutions: ``conv2d`` (im2col + GEMM) and ``conv_transpose2d`` (its adjoint).

The family is composed as in Chainer, from three array kernels written once against ``xp``:

- :func:`conv_forward`: the conv2d output;
- :func:`conv_grad_input`: its adjoint wrt the input, which is also the conv_transpose2d output;
- :func:`conv_grad_weight`: the weight gradient, shared by both.

Each picks the fastest of four paths for the geometry:

- pointwise (1x1, stride 1, no padding): no im2col, the input reshaped is the GEMM operand;
- depthwise (groups == in_channels, any channel multiplier m): a loop over the kh*kw kernel
  offsets accumulating strided-window products ``y += x_window * w[:, :, i, j]``, no column
  buffer, in cache-sized blocks of planes split between threads; on a real GPU the forward
  and the strided input gradient run as one CUDA kernel each (:mod:`minigrad.kernels.depthwise`,
  with this path as its reference);
- Winograd F(2x2, 3x3) for 3x3 stride-1 convs with many channels per group (2.25 times
  fewer multiplications; :mod:`minigrad.ops.winograd`), forward and weight gradient;
- general (dense and grouped): im2col of a tile of samples or rows into columns
  (C*kh*kw, n*R*wq), and one GEMM per group, ``W (G, Co/G, Cg*kh*kw) @ col`` (see
  :mod:`minigrad.ops.im2col` for the layout and the tiling).

The input gradient of a stride-1 conv is itself a stride-1 conv (of gy with the reversed
kernel), which is faster than the col2im scatter; strided convs (and so the usual stride-2
conv_transpose2d forward) take ``col2im(W^T @ gy)``.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.autograd import Function
from minigrad.kernels import depthwise as cuda_depthwise
from minigrad.ops import winograd
from minigrad.ops.arguments import is_int, pair, positive_pair
from minigrad.ops.im2col import (
    ConvGeometry,
    PaddedLayout,
    col2im,
    im2col,
    parallel_over,
    plan_tiles,
    scratch,
    tile_columns,
)
from minigrad.ops.shape import squeeze, unsqueeze
from minigrad.tensor import Tensor

DEPTHWISE_TILE_BYTES = 1 << 20


# ---- argument checking and geometry ---------------------------------------------------------


def _padding_pairs(padding, kernel: tuple, stride: tuple, dilation: tuple, op: str) -> tuple:
    """((top, bottom), (left, right)) for an int/pair padding or "same"/"valid" (conv2d only)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(
                f"{op}: padding must be 'valid', 'same', an int or a pair, got {padding!r}"
            )
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1, got stride={stride}")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return tuple((t // 2, t - t // 2) for t in totals)
    ph, pw = positive_pair(padding, "padding", op, minimum=0)
    return (ph, ph), (pw, pw)


def _check_tensors(op: str, input: Tensor, weight: Tensor, bias: Tensor | None) -> None:  # noqa: A002
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D, got shape {weight.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating tensor, got dtype {input.dtype}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(
                f"{op}: input and {name} must have the same dtype, got {input.dtype} and {t.dtype}"
            )


def _check_weight_sizes(op: str, w_shape: tuple) -> None:
    if min(w_shape) < 1:
        raise ValueError(f"{op}: every size of weight must be at least 1, got shape {w_shape}")


def _check_groups(op: str, groups, in_channels: int, out_channels: int) -> None:
    if not is_int(groups) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    for name, n in (("input channels", in_channels), ("output channels", out_channels)):
        if n % groups:
            raise ValueError(f"{op}: {name} ({n}) must be divisible by groups ({groups})")


def _check_bias(op: str, bias: Tensor | None, out_channels: int) -> None:
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(
            f"{op}: bias must have shape ({out_channels},) (one per output channel), "
            f"got {tuple(bias.shape)}"
        )


def _output_size(op: str, axis: str, size: int, pad: int, k: int, s: int, d: int) -> int:
    """floor((size + pad - d*(k-1) - 1) / s) + 1 (pad: both sides), or an error if not positive."""
    out = (size + pad - d * (k - 1) - 1) // s + 1
    if out <= 0:
        raise ValueError(
            f"{op}: output {axis} floor((in + padding - dilation*(kernel-1) - 1) / stride) + 1 "
            f"= floor(({size} + {pad} - {d}*({k}-1) - 1) / {s}) + 1 = {out} is not positive: "
            "the input is too small for this kernel, dilation and padding"
        )
    return out


def _transposed_output_size(
    op: str, axis: str, size: int, pad: int, k: int, s: int, d: int, extra: int
) -> int:
    """(size-1)*s - 2*pad + d*(k-1) + extra + 1, or an error if not positive."""
    out = (size - 1) * s - 2 * pad + d * (k - 1) + extra + 1
    if out <= 0:
        raise ValueError(
            f"{op}: output {axis} (in-1)*stride - 2*padding + dilation*(kernel-1) + "
            f"output_padding + 1 = ({size}-1)*{s} - 2*{pad} + {d}*({k}-1) + {extra} + 1 = {out} "
            "is not positive: the padding crops away the whole output"
        )
    return out


def conv2d_geometry(
    op: str, x_shape: tuple, w_shape: tuple, stride, padding, dilation, groups: int
) -> ConvGeometry:
    """Check the arguments of a conv2d and return its geometry (errors name the argument)."""
    n, c, h, w = x_shape
    c_out, c_per_group, kh, kw = w_shape
    _check_weight_sizes(op, w_shape)
    _check_groups(op, groups, c, c_out)
    if c_per_group * groups != c:
        raise ValueError(
            f"{op}: weight of shape {w_shape} with groups={groups} expects input with "
            f"{c_per_group * groups} channels (weight.shape[1] * groups), got {c} channels"
        )
    sy, sx = positive_pair(stride, "stride", op)
    dy, dx = positive_pair(dilation, "dilation", op)
    (pt, pb), (pl, pr) = _padding_pairs(padding, (kh, kw), (sy, sx), (dy, dx), op)
    out_h = _output_size(op, "height", h, pt + pb, kh, sy, dy)
    out_w = _output_size(op, "width", w, pl + pr, kw, sx, dx)
    return ConvGeometry(n, c, h, w, c_out, out_h, out_w, kh, kw, sy, sx, pt, pl, dy, dx, groups)


def conv_transpose2d_geometry(
    op: str, x_shape: tuple, w_shape: tuple, stride, padding, output_padding, dilation, groups: int
) -> ConvGeometry:
    """Check the arguments of a conv_transpose2d; return the geometry of the conv2d it undoes."""
    n, c, h, w = x_shape
    c_in, c_out_per_group, kh, kw = w_shape
    _check_weight_sizes(op, w_shape)
    if c_in != c:
        raise ValueError(
            f"{op}: weight of shape {w_shape} expects input with {c_in} channels "
            f"(weight.shape[0]), got {c} channels"
        )
    _check_groups(op, groups, c, c_out_per_group * groups)
    sy, sx = positive_pair(stride, "stride", op)
    dy, dx = positive_pair(dilation, "dilation", op)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a pair, got {padding!r}")
    (ph, _), (pw, _) = _padding_pairs(padding, (kh, kw), (sy, sx), (dy, dx), op)
    oph, opw = pair(output_padding, "output_padding", op)
    for o, s, d in ((oph, sy, dy), (opw, sx, dx)):
        if o < 0 or (o >= s and o >= d):
            raise ValueError(
                f"{op}: output_padding must be non-negative and smaller than either stride or "
                f"dilation, got output_padding={output_padding!r}, stride={stride!r}, "
                f"dilation={dilation!r}"
            )
    out_h = _transposed_output_size(op, "height", h, ph, kh, sy, dy, oph)
    out_w = _transposed_output_size(op, "width", w, pw, kw, sx, dx, opw)
    return ConvGeometry(
        n, c_out_per_group * groups, out_h, out_w, c, h, w, kh, kw, sy, sx, ph, pw, dy, dx, groups
    )


# ---- the pointwise path ---------------------------------------------------------------------


def _is_pointwise(g: ConvGeometry) -> bool:
    same_size = (g.out_h, g.out_w) == (g.in_h, g.in_w)
    return (g.kh, g.kw, g.sy, g.sx, g.pad_h, g.pad_w) == (1, 1, 1, 1, 0, 0) and same_size


def _grouped_weight(W, g: ConvGeometry):
    """W (Co, Cg, kh, kw) as (G, Co/G, Cg*kh*kw), the left operand of the GEMM."""
    xp = backend.get_array_module(W)
    return xp.ascontiguousarray(W).reshape(g.groups, g.out_channels // g.groups, -1)


def _pixels(array, g: ConvGeometry):
    """(N, C, h, w) as (N, G, C/G, h*w)."""
    xp = backend.get_array_module(array)
    n, c, h, w = array.shape
    return xp.ascontiguousarray(array).reshape(n, g.groups, c // g.groups, h * w)


def _pointwise(w, pixels, shape):
    """``w @ pixels`` (G, a, b) @ (N, G, b, h*w) written into a new (N, G*a, h, w) array."""
    xp = backend.get_array_module(pixels)
    out = xp.empty(shape, dtype=pixels.dtype)
    xp.matmul(w, pixels, out=out.reshape(pixels.shape[:2] + (w.shape[1], shape[2] * shape[3])))
    return out


def _pointwise_forward(x, W, g: ConvGeometry):
    return _pointwise(_grouped_weight(W, g), _pixels(x, g), g.out_shape)


def _pointwise_grad_input(gy, W, g: ConvGeometry):
    return _pointwise(_grouped_weight(W, g).swapaxes(1, 2), _pixels(gy, g), g.in_shape)


def _pointwise_grad_weight(x, gy, g: ConvGeometry):
    per_sample = _pixels(gy, g) @ _pixels(x, g).swapaxes(2, 3)
    return per_sample.sum(axis=0).reshape(g.weight_shape)


# ---- the general (im2col + GEMM) path -------------------------------------------------------


class _TileBuffers:
    """The tiles of a conv and their scratch, sized for the largest tile and reused.

    ``columns(tile)`` is a tile's column matrix (C, kh, kw, n, R, wq), ``work(tile)`` its
    outputs (Co, n, R, wq), both contiguous; :func:`_gemm_view` makes GEMM operands of them.
    """

    def __init__(self, like, g: ConvGeometry, layout: PaddedLayout):
        self.g, self.layout = g, layout
        self.tiles = plan_tiles(g.batch, g.out_h, layout.wq, tile_columns(like, g.col_rows))
        largest = self.width(self.tiles[0]) if self.tiles else 0
        self.col = scratch(like, g.col_rows * largest, "columns")
        self.out = scratch(like, g.out_channels * largest, "work")

    def width(self, tile) -> int:
        """The GEMM columns of a tile: n*R*wq."""
        n, r = tile.size
        return n * r * self.layout.wq

    def columns(self, tile):
        g, (n, r) = self.g, tile.size
        shape = (g.in_channels, g.kh, g.kw, n, r, self.layout.wq)
        return self.col[: g.col_rows * self.width(tile)].reshape(shape)

    def work(self, tile):
        g, (n, r) = self.g, tile.size
        shape = (g.out_channels, n, r, self.layout.wq)
        return self.out[: g.out_channels * self.width(tile)].reshape(shape)


def _gemm_view(array, groups: int, width: int):
    """A contiguous (rows, ..., n, R, wq) array as the GEMM operand (G, rows/G, n*R*wq)."""
    return array.reshape(groups, -1, width)


def _gy_work(gy, tile, buffers: _TileBuffers):
    """The output gradient of a tile in the work layout (Co, n, R, wq), garbage columns zero."""
    work = buffers.work(tile)
    work[..., buffers.g.out_w :] = 0
    buffers.layout.cropped(work)[...] = gy[tile.samples, :, tile.r0 : tile.r1].swapaxes(0, 1)
    return work


def _gemm_grad_input(gy, W, g: ConvGeometry):
    """The input gradient gx (N, C, H, W) of a conv2d as ``col2im(W^T @ gy)``, tile by tile:
    for strided convs (and the forward of conv_transpose2d), whose adjoint is no conv.

    gy (N, Co, Ho, Wo) goes into the work layout (garbage columns zero), one GEMM per group
    gives the tile's columns, and col2im adds them into a padded buffer (a plain copy when
    the windows are disjoint, as in a 2x2 stride-2 transposed conv).
    """
    xp = backend.get_array_module(gy)
    layout = PaddedLayout(g)
    unpadded = layout.flat == g.in_h * g.in_w
    gx = xp.zeros(g.in_shape if unpadded else (*g.in_shape[:2], layout.flat), dtype=gy.dtype)
    gx_padded = gx.reshape(g.batch, g.in_channels, layout.flat)
    w_t = _grouped_weight(W, g).swapaxes(1, 2)
    buffers = _TileBuffers(gy, g, layout)
    for tile in buffers.tiles:
        work, width = _gy_work(gy, tile, buffers), buffers.width(tile)
        gcol = buffers.columns(tile)
        xp.matmul(w_t, _gemm_view(work, g.groups, width), out=_gemm_view(gcol, g.groups, width))
        col2im(gcol, layout, tile.rows, gx_padded[tile.samples])
    return gx if unpadded else xp.ascontiguousarray(layout.interior(gx_padded))


def _gemm_columns_pass(x, g: ConvGeometry, W=None, gy=None, zero_garbage: bool = False):
    """One pass over the column tiles of x: ``y = W @ col`` and ``gW = sum gy col^T``.

    Returns (y or None, gW or None): y (N, Co, Ho, Wo) when W is given, gW (Co, C/groups,
    kh, kw) when gy is given. The backward of conv_transpose2d needs both from the same
    columns (its input gradient is a conv2d of its output gradient), so they share one
    im2col per tile.

    The weight-gradient GEMM ``gy col^T`` (Co/groups, rows) is written as its transpose
    ``col @ gy^T`` when gy has fewer rows than the columns (the usual case): BLAS handles a
    thin right operand faster than a thin left one (1.3x at 64 x 576, 2.6x at 3 x 576). Every
    product goes into a preallocated array (a batched matmul with a transposed operand and no
    ``out`` is slower).
    ``zero_garbage`` clears the extra columns of the wide layout before the weight gradient:
    they hold real pixels, and an inf there would turn ``inf * 0`` into NaN.
    """
    xp = backend.get_array_module(x)
    layout = PaddedLayout(g)
    padded = layout.padded(x)
    y = None if W is None else xp.empty(g.out_shape, dtype=x.dtype)
    w = None if W is None else _grouped_weight(W, g)
    gw = product = None
    per_group, rows = g.out_channels // g.groups, g.col_rows // g.groups
    transposed = per_group < rows
    if gy is not None:
        shape = (g.groups, rows, per_group) if transposed else (g.groups, per_group, rows)
        gw = xp.zeros(shape, dtype=x.dtype)
        product = xp.empty_like(gw)
    buffers = _TileBuffers(x, g, layout)
    for tile in buffers.tiles:
        width = buffers.width(tile)
        col = im2col(padded[tile.samples], layout, tile.rows, buffers.columns(tile))
        col_view = _gemm_view(col, g.groups, width)
        if w is not None:
            work = buffers.work(tile)
            xp.matmul(w, col_view, out=_gemm_view(work, g.groups, width))
            y[tile.samples, :, tile.r0 : tile.r1] = layout.cropped(work).swapaxes(0, 1)
        if gw is None:
            continue
        if zero_garbage and layout.wide:
            col[..., g.out_w :] = 0
        gy_view = _gemm_view(_gy_work(gy, tile, buffers), g.groups, width)
        if transposed:
            xp.matmul(col_view, gy_view.swapaxes(1, 2), out=product)
        else:
            xp.matmul(gy_view, col_view.swapaxes(1, 2), out=product)
        gw += product
    if gw is not None:
        gw = (xp.ascontiguousarray(gw.swapaxes(1, 2)) if transposed else gw).reshape(g.weight_shape)
    return y, gw


def _gemm_pass(x, g: ConvGeometry, W=None, gy=None) -> tuple:
    """:func:`_gemm_columns_pass` with the extra columns of the wide layout left in place at
    first (clearing them is a slow strided write): only a non-finite weight gradient, which an
    inf among them could cause, is computed again with them cleared. On the GPU they are always
    cleared, since the check would wait for the device."""
    on_cpu = backend.is_cpu_array(x)
    with backend.quiet_invalid(x):
        y, gw = _gemm_columns_pass(x, g, W=W, gy=gy, zero_garbage=not on_cpu)
        if gw is not None and not _finite_on_cpu(gw):
            gw = _gemm_columns_pass(x, g, gy=gy, zero_garbage=True)[1]
    return y, gw


def _finite_on_cpu(result) -> bool:
    """False only for a NumPy result with an inf or NaN (one sum: cheaper than isfinite; a sum
    that overflows merely costs a needless recomputation). GPU results are not checked: that
    would wait for the device."""
    if not backend.is_cpu_array(result):
        return True
    with backend.quiet_invalid(result):
        return bool(backend.get_array_module(result).isfinite(result.sum()))


def _winograd_pass(x, g: ConvGeometry, W=None, gy=None) -> tuple:
    """Winograd's (conv2d of x and W, weight gradient of x and gy), as :func:`_gemm_pass`, from
    one input transform. On the CPU a non-finite result is computed again by im2col, which puts
    the infs and NaNs where PyTorch does (Winograd spreads them over whole tiles)."""
    with backend.quiet_invalid(x):
        y, gw = winograd.forward_and_grad_weight(x, W, gy, g)
    if y is not None and not _finite_on_cpu(y):
        y = _gemm_pass(x, g, W=W)[0]
    if gw is not None and not _finite_on_cpu(gw):
        gw = _gemm_pass(x, g, gy=gy)[1]
    return y, gw


def _reversed_geometry(g: ConvGeometry) -> ConvGeometry | None:
    """The stride-1 conv2d that computes the input gradient of a stride-1 conv2d.

    ``gx[h] = sum_i gy[h + p - i*d] W[i]`` is a correlation of gy with the kernel flipped and
    its in/out channels swapped within each group (:func:`_reversed_weight`), zero-padded by
    ``d*(k-1) - p``. Returns its geometry, gy (N, Co, Ho, Wo) -> (N, C, H, W), or None when the
    conv has a stride or pads more than that.
    """
    pad_h, pad_w = g.dy * (g.kh - 1) - g.pad_h, g.dx * (g.kw - 1) - g.pad_w
    if (g.sy, g.sx) != (1, 1) or min(pad_h, pad_w) < 0:
        return None
    return ConvGeometry(
        g.batch,
        g.out_channels,
        g.out_h,
        g.out_w,
        g.in_channels,
        g.in_h,
        g.in_w,
        g.kh,
        g.kw,
        1,
        1,
        pad_h,
        pad_w,
        g.dy,
        g.dx,
        g.groups,
    )


def _reversed_weight(W, g: ConvGeometry):
    """The weight of the reversed conv: W (Co, C/groups, kh, kw) with its kernel flipped and
    its in/out channels swapped within each group, (C, Co/groups, kh, kw). Its own reversal
    (with the reversed geometry) is W again."""
    xp = backend.get_array_module(W)
    groups, c_out, c_in = g.groups, g.out_channels // g.groups, g.in_channels // g.groups
    w = W.reshape(groups, c_out, c_in, g.kh, g.kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    return xp.ascontiguousarray(w).reshape(g.in_channels, c_out, g.kh, g.kw)


def _backward_shares_gy(g: ConvGeometry, reversed_g: ConvGeometry | None) -> bool:
    """Whether :func:`conv_grads` should take both gradients from gy's columns (or transform).

    That saves building x's, but the weight-gradient GEMM changes shape, from (Co/groups)
    x (C/groups * kh * kw) to (Co/groups * kh * kw) x (C/groups), summed over x's positions
    instead of gy's. It pays when its thinner side is no thinner (or has 64+ rows, where BLAS
    runs at full speed) and x has not many more positions than gy (a padding-free conv with a
    large kernel has). Measured here, batch 8 to 16 at 32x32 to 64x64: 64 -> 16 channels ran
    1.3-2x faster shared, 3 -> 64 channels 1.4x slower (and is not shared).
    """
    if reversed_g is None or _is_depthwise(g) or _is_pointwise(g):
        return False
    c_in, c_out, taps = g.in_channels // g.groups, g.out_channels // g.groups, g.kh * g.kw
    thin_shared, thin_separate = min(c_in, c_out * taps), min(c_out, c_in * taps)
    positions_ratio = (g.in_h * g.in_w) / max(1, g.out_h * g.out_w)
    return thin_shared >= min(thin_separate, 64) and positions_ratio <= 1.25


# ---- the depthwise path ---------------------------------------------------------------------


def _is_depthwise(g: ConvGeometry) -> bool:
    return g.groups == g.in_channels and g.groups > 1


def _plane_weights(W, g: ConvGeometry):
    """The depthwise weight per plane (N*C, m, kh, kw): one row per (sample, input channel)."""
    xp = backend.get_array_module(W)
    n, c = g.batch, g.in_channels
    w = W.reshape(1, c, g.out_channels // c, g.kh, g.kw)
    planes = xp.ascontiguousarray(xp.broadcast_to(w, (n,) + w.shape[1:]))
    return planes.reshape(n * c, *w.shape[2:])


def _planes(array, g: ConvGeometry):
    """(N, C*m, h, w) as (N*C, m, h, w): the m output channels of each input channel together."""
    xp = backend.get_array_module(array)
    per_channel = array.shape[1] // g.in_channels
    shape = (g.batch * g.in_channels, per_channel, *array.shape[2:])
    return xp.ascontiguousarray(array).reshape(shape)


def _over_plane_blocks(array, g: ConvGeometry, fn) -> None:
    """Call ``fn(blocks, step)`` on chunks of blocks of ``step`` planes, one chunk per thread.

    On the CPU a block holds about DEPTHWISE_TILE_BYTES of output, so its work stays in cache;
    on the GPU one block holds every plane.
    """
    count = g.batch * g.in_channels
    plane_bytes = (g.out_channels // g.in_channels) * g.out_h * g.out_w * array.dtype.itemsize
    step = DEPTHWISE_TILE_BYTES // max(plane_bytes, 1) if backend.is_cpu_array(array) else count
    step = max(step, 1)
    block_list = [slice(p, min(p + step, count)) for p in range(0, count, step)]
    parallel_over(
        array, lambda chunk: fn(chunk, step), block_list, work=count * plane_bytes // array.itemsize
    )


def _depthwise_scratch(xp, layout: PaddedLayout, step: int, multiplier: int, dtype) -> tuple:
    """A zeroed padded buffer (step, flat) and a zeroed work array (step, m, Ho, wq)."""
    padded = xp.zeros((step, layout.flat), dtype=dtype)
    work = xp.zeros((step, multiplier, layout.g.out_h, layout.wq), dtype=dtype)
    return padded, work


def _cuda_geometry(g: ConvGeometry) -> dict:
    return {
        "stride": (g.sy, g.sx),
        "padding": (g.pad_h, g.pad_w),
        "dilation": (g.dy, g.dx),
    }


def _depthwise_forward(x, W, g: ConvGeometry):
    xp = backend.get_array_module(x)
    if cuda_depthwise.supported(xp, x.dtype):
        return cuda_depthwise.forward(xp, x, W, (g.out_h, g.out_w), **_cuda_geometry(g))
    layout = PaddedLayout(g)
    xs, ws = _planes(x, g)[:, 0], _plane_weights(W, g)
    y = xp.empty(g.out_shape, dtype=x.dtype)
    ys = _planes(y, g)
    every_row = (0, g.out_h)

    def run(blocks, step):
        padded, work = _depthwise_scratch(xp, layout, step, ws.shape[1], x.dtype)
        products = xp.empty_like(work)
        for b in blocks:
            n = b.stop - b.start
            acc, t, buf = work[:n], products[:n], padded[:n]
            layout.interior(buf)[...] = xs[b]
            for k, (i, j) in enumerate(layout.offsets()):
                window = layout.window(buf, i, j, every_row)[:, None]
                xp.multiply(window, ws[b, :, i, j, None, None], out=t if k else acc)
                if k:
                    acc += t
            ys[b] = layout.cropped(acc)

    _over_plane_blocks(y, g, run)
    return y


def _depthwise_grad_input(gy, W, g: ConvGeometry):
    """The adjoint scatter ``gx_window += gy * w[:, :, i, j]`` (for strided depthwise convs)."""
    xp = backend.get_array_module(gy)
    if cuda_depthwise.supported(xp, gy.dtype):
        return cuda_depthwise.backward_input(xp, gy, W, g.in_shape, **_cuda_geometry(g))
    layout = PaddedLayout(g)
    gys, ws = _planes(gy, g), _plane_weights(W, g)
    gx = xp.empty(g.in_shape, dtype=gy.dtype)
    gxs = _planes(gx, g)[:, 0]
    every_row = (0, g.out_h)

    def run(blocks, step):
        padded, work = _depthwise_scratch(xp, layout, step, ws.shape[1], gy.dtype)
        t = xp.empty_like(work[:, 0])
        for b in blocks:
            n = b.stop - b.start
            buf, gyw = padded[:n], work[:n]
            buf[...] = 0
            layout.cropped(gyw)[...] = gys[b]
            for i, j in layout.offsets():
                window = layout.window(buf, i, j, every_row)
                for k in range(ws.shape[1]):
                    xp.multiply(gyw[:, k], ws[b, k, i, j, None, None], out=t[:n])
                    window += t[:n]
            gxs[b] = layout.interior(buf)

    _over_plane_blocks(gy, g, run)
    return gx


def _plane_dots(a, b, layout: PaddedLayout):
    """The dot products of a (n, m, Ho, wq) and b (n, Ho, wq) over the (Ho, Wo) outputs: (n, m).

    The extra columns of the wide layout are left out: they hold real pixels, and an inf there
    would turn ``inf * 0`` into NaN.
    """
    wo = layout.g.out_w
    return backend.get_array_module(a).einsum("pkhw,phw->pk", a[..., :wo], b[..., :wo])


def _depthwise_grad_weight(x, gy, g: ConvGeometry):
    xp = backend.get_array_module(x)
    layout = PaddedLayout(g)
    xs, gys = _planes(x, g)[:, 0], _planes(gy, g)
    gw = xp.empty((gys.shape[0], gys.shape[1], g.kh, g.kw), dtype=x.dtype)
    every_row = (0, g.out_h)

    def run(blocks, step):
        padded, work = _depthwise_scratch(xp, layout, step, gys.shape[1], x.dtype)
        for b in blocks:
            n = b.stop - b.start
            buf, gyw = padded[:n], work[:n]
            layout.interior(buf)[...] = xs[b]
            layout.cropped(gyw)[...] = gys[b]
            for i, j in layout.offsets():
                gw[b, :, i, j] = _plane_dots(gyw, layout.window(buf, i, j, every_row), layout)

    _over_plane_blocks(gy, g, run)
    return gw.reshape(g.batch, g.out_channels, 1, g.kh, g.kw).sum(axis=0)


# ---- the shared kernels ---------------------------------------------------------------------


def conv_forward(x, W, g: ConvGeometry):
    """The conv2d of arrays x (N, C, H, W) and W (Co, C/groups, kh, kw): (N, Co, Ho, Wo)."""
    if _is_depthwise(g):
        return _depthwise_forward(x, W, g)
    if _is_pointwise(g):
        return _pointwise_forward(x, W, g)
    if winograd.supported(g):
        return _winograd_pass(x, g, W=W)[0]
    return _gemm_pass(x, g, W=W)[0]


def conv_grad_input(gy, W, g: ConvGeometry):
    """The adjoint of :func:`conv_forward` wrt x: gy (N, Co, Ho, Wo) -> gx (N, C, H, W).

    This is also the forward of conv_transpose2d with the same weight. A stride-1 conv's
    adjoint is itself a conv (of gy with the reversed kernel, see :func:`_reversed_geometry`),
    which is faster than the scatter of col2im; strided convs take col2im(W^T @ gy).
    """
    xp = backend.get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    if _is_pointwise(g):
        return _pointwise_grad_input(gy, W, g)
    reversed_g = _reversed_geometry(g)
    if reversed_g is not None:
        return conv_forward(gy, _reversed_weight(W, g), reversed_g)
    if _is_depthwise(g):
        return _depthwise_grad_input(gy, W, g)
    return _gemm_grad_input(gy, W, g)


def conv_grad_weight(x, gy, g: ConvGeometry):
    """The gradient of ``<gy, conv_forward(x, W)>`` wrt W: (Co, C/groups, kh, kw)."""
    xp = backend.get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    if _is_depthwise(g):
        return _depthwise_grad_weight(x, gy, g)
    if _is_pointwise(g):
        return _pointwise_grad_weight(x, gy, g)
    if winograd.supported(g):
        return _winograd_pass(x, g, gy=gy)[1]
    return _gemm_pass(x, g, gy=gy)[1]


def conv_grads(x, W, gy, g: ConvGeometry) -> tuple:
    """(:func:`conv_grad_input`, :func:`conv_grad_weight`): the backward of a conv2d whose input
    and weight both need a gradient.

    On the CPU a stride-1 conv (im2col or Winograd) can read gy once for both. The input
    gradient is the reversed conv of gy (:func:`_reversed_geometry`), and the weight gradient
    is that conv's own weight gradient (with x as its output gradient) reversed back:
    ``<gy, conv(x, W)> = <conv(gy, reversed W), x>``. So gy's columns (or Winograd transform)
    serve both, and x's are never built; :func:`_backward_shares_gy` says when that pays.

    That sum also multiplies x by gy's zero padding, so an inf in x gives NaN where PyTorch's
    gives a number or inf (and Winograd spreads infs over tiles): a non-finite result is
    computed again by im2col, the usual way. On the GPU, where that check would wait for the
    device, the two gradients stay separate.
    """
    xp = backend.get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    reversed_g = _reversed_geometry(g)
    if not backend.is_cpu_array(gy) or not _backward_shares_gy(g, reversed_g):
        return conv_grad_input(gy, W, g), conv_grad_weight(x, gy, g)
    w_reversed = _reversed_weight(W, g)
    with backend.quiet_invalid(gy):
        if winograd.supported(reversed_g):
            gx, gw_reversed = winograd.forward_and_grad_weight(gy, w_reversed, x, reversed_g)
            if not _finite_on_cpu(gx):
                gx = _gemm_pass(gy, reversed_g, W=w_reversed)[0]
        else:
            gx, gw_reversed = _gemm_columns_pass(gy, reversed_g, W=w_reversed, gy=x)
    gw = _reversed_weight(gw_reversed, reversed_g)
    return gx, gw if _finite_on_cpu(gw) else _gemm_pass(x, g, gy=gy)[1]


def conv_forward_and_grad_weight(x, W, gy, g: ConvGeometry) -> tuple:
    """(:func:`conv_forward` of x and W, :func:`conv_grad_weight` of x and gy), either None
    when its W or gy is None: the backward of conv_transpose2d. On the im2col and Winograd
    paths both read the same columns (or transform) of x, built once."""
    if W is None and gy is None:
        return None, None
    if _is_depthwise(g) or _is_pointwise(g):
        y = None if W is None else conv_forward(x, W, g)
        return y, None if gy is None else conv_grad_weight(x, gy, g)
    xp = backend.get_array_module(x)
    gy = None if gy is None else xp.ascontiguousarray(gy)
    return (_winograd_pass if winograd.supported(g) else _gemm_pass)(x, g, W=W, gy=gy)


def _add_bias(y, b):
    y += b.reshape(1, -1, 1, 1)
    return y


def _bias_grad(gy):
    return gy.sum(axis=(0, 2, 3))


# ---- autograd Functions ---------------------------------------------------------------------


def _save_for_grads(fn: Function, x, W) -> None:
    """Keep x only for the weight's gradient and W only for the input's (frozen weights keep
    no activations alive)."""
    need = fn.needs_input_grad
    fn.save_for_backward(x if need[1] else None, W if need[0] else None)


def _three_grads(fn: Function, gy, grad_input, grad_weight) -> tuple:
    """(gx, gW[, gb]) of a conv Function, each computed only when its input needs it."""
    need = fn.needs_input_grad
    grads = (grad_input() if need[0] else None, grad_weight() if need[1] else None)
    if len(need) == 2:
        return grads
    return (*grads, _bias_grad(gy) if need[2] else None)


class Conv2d(Function):
    """y = conv(x, W) + b; gx = conv_grad_input(gy), gW = gy col^T, gb = gy summed over N, H, W."""

    def forward(self, x, W, b=None, *, geometry):
        self.geometry = geometry
        _save_for_grads(self, x, W)
        y = conv_forward(x, W, geometry)
        return y if b is None else _add_bias(y, b)

    def backward(self, gy):
        x, W = self.saved
        g = self.geometry
        if all(self.needs_input_grad[:2]):
            gx, gw = conv_grads(x, W, gy, g)
            return _three_grads(self, gy, lambda: gx, lambda: gw)
        return _three_grads(
            self, gy, lambda: conv_grad_input(gy, W, g), lambda: conv_grad_weight(x, gy, g)
        )


class ConvTranspose2d(Function):
    """The adjoint of Conv2d: y = conv_grad_input(x, W) + b; gx = conv(gy, W)."""

    def forward(self, x, W, b=None, *, geometry):
        self.geometry = geometry
        _save_for_grads(self, x, W)
        y = conv_grad_input(x, W, geometry)
        return y if b is None else _add_bias(y, b)

    def backward(self, gy):
        x, W = self.saved
        need = self.needs_input_grad
        gx, gw = conv_forward_and_grad_weight(
            gy, W if need[0] else None, x if need[1] else None, self.geometry
        )
        return _three_grads(self, gy, lambda: gx, lambda: gw)


# ---- the functions users call ---------------------------------------------------------------


def _batched(op: str, input: Tensor) -> tuple:  # noqa: A002
    """(a 4-D input, whether it was unbatched (C, H, W)), as PyTorch accepts both."""
    if input.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected a 4-D input (N, C, H, W) or a 3-D unbatched one (C, H, W), "
            f"got shape {input.shape}"
        )
    return (unsqueeze(input, 0), True) if input.ndim == 3 else (input, False)


def conv2d(
    input: Tensor,  # noqa: A002 - PyTorch's name
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    Args:
        input: (N, C_in, H, W), or (C_in, H, W) unbatched.
        weight: (C_out, C_in / groups, kh, kw).
        bias: (C_out,) or None.
        stride, dilation: an int or a pair (sy, sx), positive.
        padding: an int or a pair of zero paddings on both sides, or "valid" (none) or "same"
            (output size = input size, stride 1 only; an odd total puts the extra row/column at
            the bottom/right, as PyTorch).
        groups: split the channels into ``groups`` independent convolutions; groups = C_in is
            depthwise (C_out = k * C_in for a channel multiplier k).

    Returns:
        (N, C_out, Ho, Wo) with ``Ho = floor((H + 2*ph - dy*(kh-1) - 1) / sy) + 1`` (Wo likewise).

    Shapes:
        input (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw), bias (C_out,)
        -> output (N, C_out, Ho, Wo).
    """
    op = "conv2d"
    _check_tensors(op, input, weight, bias)
    x, unbatched = _batched(op, input)
    g = conv2d_geometry(op, x.shape, weight.shape, stride, padding, dilation, groups)
    _check_bias(op, bias, g.out_channels)
    tensors = (x, weight) if bias is None else (x, weight, bias)
    y = Conv2d.apply(*tensors, geometry=g)
    return squeeze(y, 0) if unbatched else y


def conv_transpose2d(
    input: Tensor,  # noqa: A002 - PyTorch's name
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """2-D transposed convolution, the adjoint of conv2d, as ``F.conv_transpose2d`` of PyTorch.

    Args:
        input: (N, C_in, H, W), or (C_in, H, W) unbatched.
        weight: (C_in, C_out / groups, kh, kw), PyTorch's layout.
        bias: (C_out,) or None.
        stride, dilation: an int or a pair, positive.
        padding: an int or a pair: ``dilation * (k - 1) - padding`` zeros are added on each side
            of the (stride-dilated) input; equivalently, ``padding`` rows/columns are cropped from
            each side of the full output.
        output_padding: extra rows/columns at the bottom/right of the output, smaller than
            either stride or dilation; picks among the input sizes a strided conv2d maps to H.
        groups: blocks of channels convolved independently.

    Returns:
        (N, C_out, Ho, Wo) with ``Ho = (H - 1)*sy - 2*ph + dy*(kh - 1) + output_padding + 1``.

    Shapes:
        input (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out,)
        -> output (N, C_out, Ho, Wo).
    """
    op = "conv_transpose2d"
    _check_tensors(op, input, weight, bias)
    x, unbatched = _batched(op, input)
    g = conv_transpose2d_geometry(
        op, x.shape, weight.shape, stride, padding, output_padding, dilation, groups
    )
    _check_bias(op, bias, g.in_channels)
    tensors = (x, weight) if bias is None else (x, weight, bias)
    y = ConvTranspose2d.apply(*tensors, geometry=g)
    return squeeze(y, 0) if unbatched else y
