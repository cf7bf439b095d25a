"""The depthwise path (groups == in_channels, any channel multiplier m): no column buffer.

A loop over the kh*kw kernel offsets accumulates strided-window products
``y += x_window * w[:, :, i, j]`` over planes (one per sample and input channel), in blocks of
about :data:`DEPTHWISE_TILE_BYTES` of output so the work stays in cache, the blocks split
between threads. On a real GPU the forward and the strided input gradient run as one CUDA
kernel each (:mod:`minigrad.kernels.depthwise`, with this path as its reference).
"""

from __future__ import annotations

from minigrad import backend
from minigrad.kernels import depthwise as cuda_depthwise
from minigrad.ops.conv.nonfinite import _finite_on_cpu
from minigrad.ops.im2col import ConvGeometry, PaddedLayout, parallel_over

DEPTHWISE_TILE_BYTES = 1 << 20
WIDE_DOTS_MAX_PLANE = 1 << 11


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


def _wide_plane_dots(a, b):
    """:func:`_plane_dots` over the whole wide rows, extra columns and all, as one batched
    matrix product (a BLAS dot per plane): exact where ``a``'s extra columns are zero and
    ``b`` is finite."""
    n, m = a.shape[:2]
    xp = backend.get_array_module(a)
    return xp.matmul(a.reshape(n, m, -1), b.reshape(n, -1, 1))[..., 0]


def _takes_wide_dots(g: ConvGeometry, layout: PaddedLayout, x) -> bool:
    """Whether the weight gradient dots whole wide rows (:func:`_wide_plane_dots`): NumPy
    arrays, stride 1, and planes of at most WIDE_DOTS_MAX_PLANE wide outputs.

    einsum's loop restarts on every row of a small plane. Measured here (batch 4, float32,
    3x3, the whole weight gradient, interleaved medians): 1024 channels at 8x8 2.87 ms against
    1.47 by BLAS dots, 512 at 16x16 1.87 against 1.04, 256 at 32x32 2.24 against 1.87, 512 at
    32x32 4.37 against 4.02; but planes of 64x64 ran slower (128 channels: 3.3 against 4.7)."""
    return backend.is_cpu_array(x) and layout.wide and g.out_h * layout.wq <= WIDE_DOTS_MAX_PLANE


def _depthwise_grad_weight(x, gy, g: ConvGeometry):
    """The depthwise weight gradient: per plane and kernel offset, the dot of the output
    gradient with the offset's window of the input, summed over the batch.

    On small stride-1 planes on the CPU the dots run over whole wide rows
    (:func:`_takes_wide_dots`), the output gradient's extra columns zero; a non-finite result
    (an inf among the input's pixels those columns meet) is computed again without them."""
    xp = backend.get_array_module(x)
    layout = PaddedLayout(g)
    xs, gys = _planes(x, g)[:, 0], _planes(gy, g)
    gw = xp.empty((gys.shape[0], gys.shape[1], g.kh, g.kw), dtype=x.dtype)
    every_row = (0, g.out_h)

    def dots(wide: bool):
        def run(blocks, step):
            padded, work = _depthwise_scratch(xp, layout, step, gys.shape[1], x.dtype)
            for b in blocks:
                n = b.stop - b.start
                buf, gyw = padded[:n], work[:n]
                layout.interior(buf)[...] = xs[b]
                layout.cropped(gyw)[...] = gys[b]
                for i, j in layout.offsets():
                    window = layout.window(buf, i, j, every_row)
                    if wide:
                        gw[b, :, i, j] = _wide_plane_dots(gyw, window)
                    else:
                        gw[b, :, i, j] = _plane_dots(gyw, window, layout)

        _over_plane_blocks(gy, g, run)

    wide = _takes_wide_dots(g, layout, x)
    with backend.quiet_invalid(x):
        dots(wide)
    if wide and not _finite_on_cpu(gw):
        dots(False)
    return gw.reshape(g.batch, g.out_channels, 1, g.kh, g.kw).sum(axis=0)
