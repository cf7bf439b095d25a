"""The general path (dense and grouped convs): im2col of a tile, one GEMM per group.

A tile of samples or output rows is copied into columns (C*kh*kw, n*R*wq) by
:func:`~minigrad.ops.im2col.im2col` (one strided copy per kernel offset; see
:mod:`minigrad.ops.im2col` for the wide layout and the tiling), and one batched GEMM per group,
``W (G, Co/G, Cg*kh*kw) @ col``, gives the tile's outputs. The same columns give the weight
gradient ``sum gy col^T``; the input gradient of a strided conv is ``col2im(W^T @ gy)``.
Column and work buffers are sized for the largest tile and reused by every tile.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.ops.im2col import (
    ConvGeometry,
    PaddedLayout,
    can_share_tiles,
    col2im,
    im2col,
    plan_tiles,
    planned_tiles,
    scratch,
    sum_partials,
    tile_columns,
    tile_parallel,
)

THIN_ROWS = 128
GPU_THIN_ROWS = 63  # the rule measured before OpenBLAS's AVX-512 kernels; cuBLAS is untimed


def _scratch_product(like, shape):
    """A reused (G, a, b) buffer for the weight-gradient product of a tile after the first."""
    size = shape[0] * shape[1] * shape[2]
    return scratch(like, size, "weight product").reshape(shape)


def _grouped_weight(W, g: ConvGeometry):
    """W (Co, Cg, kh, kw) as (G, Co/G, Cg*kh*kw), the left operand of the GEMM."""
    xp = backend.get_array_module(W)
    return xp.ascontiguousarray(W).reshape(g.groups, g.out_channels // g.groups, -1)


class _TileBuffers:
    """The tiles of a conv (all of them, or those given) and their scratch, sized for the
    largest tile and reused; scratch is per thread, so each thread that shares the tiles
    makes its own.

    ``columns(tile)`` is a tile's column matrix (C, kh, kw, n, R, wq), ``work(tile)`` its
    outputs (Co, n, R, wq), both contiguous; :func:`_gemm_view` makes GEMM operands of them.
    """

    def __init__(self, like, g: ConvGeometry, layout: PaddedLayout, tiles: list | None = None):
        self.g, self.layout = g, layout
        if tiles is None:
            tiles = plan_tiles(g.batch, g.out_h, layout.wq, tile_columns(like, g.col_rows))
        self.tiles = tiles
        largest = max((self.width(tile) for tile in tiles), default=0)
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
    ``col @ gy^T`` when gy is thin (at most THIN_ROWS rows, and fewer than the columns):
    OpenBLAS handles a thin right operand faster than a thin left one. Measured here (batch 4,
    the whole weight gradient, AVX-512 kernels), 64 channels at 128x128 ran in 18.5 ms
    against 23.5, at 32x32 1.5 against 2.0, 128 -> 64 at 64x64 9.9 against 12.8, 128 at
    32x32 4.1 against 4.6; at 256 rows the two GEMMs are within 10% and the transposing copy
    back (a strided copy, 1 ms for 2304 x 256) costs more than that. On the GPU (untimed there)
    it stays at fewer than 64 rows (GPU_THIN_ROWS). The first tile's product goes
    straight into the result, later ones into a scratch buffer added to it (a batched matmul
    with a transposed operand and no ``out`` is slower; fresh weight-sized temporaries cost
    page faults on every call).
    ``zero_garbage`` clears the extra columns of the wide layout before the weight gradient:
    they hold real pixels, and an inf there would turn ``inf * 0`` into NaN.
    """
    xp = backend.get_array_module(x)
    layout = PaddedLayout(g)
    source = layout.columns_source(layout.padded(x))
    y = None if W is None else xp.empty(g.out_shape, dtype=x.dtype)
    w = None if W is None else _grouped_weight(W, g)
    per_group, rows = g.out_channels // g.groups, g.col_rows // g.groups
    thin_rows = THIN_ROWS if backend.is_cpu_array(x) else GPU_THIN_ROWS
    transposed = per_group <= thin_rows and per_group < rows
    shape = None
    if gy is not None:
        shape = (g.groups, rows, per_group) if transposed else (g.groups, per_group, rows)

    def columns_pass(tiles):
        """y for these tiles, and their part of the weight-gradient sum (or None)."""
        buffers, gw = _TileBuffers(x, g, layout, tiles), None
        for tile in tiles:
            width = buffers.width(tile)
            col = im2col(source[tile.samples], layout, tile.rows, buffers.columns(tile))
            col_view = _gemm_view(col, g.groups, width)
            if w is not None:
                work = buffers.work(tile)
                xp.matmul(w, col_view, out=_gemm_view(work, g.groups, width))
                y[tile.samples, :, tile.r0 : tile.r1] = layout.cropped(work).swapaxes(0, 1)
            if shape is None:
                continue
            if zero_garbage and layout.wide:
                col[..., g.out_w :] = 0
            gy_view = _gemm_view(_gy_work(gy, tile, buffers), g.groups, width)
            product = xp.empty(shape, x.dtype) if gw is None else _scratch_product(x, shape)
            if transposed:
                xp.matmul(col_view, gy_view.swapaxes(1, 2), out=product)
            else:
                xp.matmul(gy_view, col_view.swapaxes(1, 2), out=product)
            gw = product if gw is None else xp.add(gw, product, out=gw)
        return gw

    shared = can_share_tiles(x, g.out_channels * g.col_rows // g.groups)
    columns = tile_columns(x, g.col_rows)
    tiles = planned_tiles(g.batch, g.out_h, layout.wq, columns, shared)
    partials = tile_parallel(columns_pass, tiles, shared)
    gw = None if shape is None else sum_partials(partials, shape, x)
    if gw is not None:
        gw = (xp.ascontiguousarray(gw.swapaxes(1, 2)) if transposed else gw).reshape(g.weight_shape)
    return y, gw
