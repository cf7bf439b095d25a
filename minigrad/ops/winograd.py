"""Winograd F(2x2, 3x3): 3x3 stride-1 convolutions with 2.25 times fewer multiplications.

The conv it computes is :func:`minigrad.reference.conv2d_forward` (and the weight gradient
:func:`minigrad.reference.conv2d_grad_weight`), with fewer multiplications:
Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2016). The output is cut
into 2x2 tiles; tile t of output channel k is

    Y_t[k] = A^T ( sum_c  U[k, c] * V_t[c] ) A,   U = G w G^T (4x4),   V_t = B^T d_t B (4x4),

where d_t is the 4x4 input patch under the tile and ``*`` multiplies elementwise. For each of the
16 positions (xi, nu) of the 4x4 transformed tile, the sum over c is one GEMM

    M[xi, nu] (Co, P) = U[xi, nu] (Co, C) @ V[xi, nu] (C, P)          (P = tiles, side by side)

so a conv costs 16 GEMMs of C*Co*P multiply-adds (im2col: 9 * 4 = 36 per 4 outputs) plus three
cheap transforms. B^T holds only 0 and +-1: after one copy that splits the input into its row
and column parities, the input transform is a few additions of contiguous runs (rows first,
then columns), block by block of channels so the intermediates stay in cache. The output
transform and its adjoint are one small GEMM each, (4, 16) and (16, 4), which read the
transformed planes once. G's 1/2 entries touch only the weights.

The gradients reuse the same pieces, as adjoints:

- input gradient: for stride 1 it is itself a 3x3 stride-1 conv (:mod:`minigrad.ops.conv`
  routes it back here with the reversed kernel);
- weight gradient: ``dU[xi, nu] = sum_P dM[xi, nu] @ V[xi, nu]^T`` with ``dM = A dY A^T`` per
  tile (the adjoint of the output transform), then ``dw = G^T dU G``.

F(2x2, 3x3) keeps float32 errors at the level of direct convolution (the larger F(4x4, 3x3)
tiles need fractions in B and lose about two digits). Like any fast algorithm it spreads an
inf in the input over the tiles around it (``inf * 0`` is NaN): on the CPU
:mod:`minigrad.ops.conv.nonfinite` checks the result and computes a non-finite one again by
im2col, so the inf and NaN land where PyTorch's do; on the GPU, where the check would wait for
the device, they may cover whole 2x2 tiles.

Work is cut into tiles of samples (or bands of tile rows) of at least MIN_TILE_COLUMNS GEMM
columns, capped by TILE_BYTES of transformed data on the CPU. The cap is wide because the 16
GEMMs of a tile run faster on more columns than the transformed data lose by leaving the
cache: measured here (batch 4, float32, forward / both gradients), 512 -> 256 channels at
32x32 ran in 22 / 42 ms with 32 MiB tiles against 29 / 57 with 8 MiB, 512 at 16x16 12 / 23
against 14 / 28, 1024 -> 512 at 16x16 24 / 48 against 29 / 55.
"""

from __future__ import annotations

import functools

from minigrad import backend
from minigrad.ops.im2col import (
    ConvGeometry,
    can_share_tiles,
    planned_tiles,
    scratch,
    sum_partials,
    tile_parallel,
)

# The 1-D transforms, as rows of coefficients over the phases of a tile.
INPUT_TRANSFORM = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))  # B^T
OUTPUT_TRANSFORM = ((1, 1, 1, 0), (0, 1, -1, -1))  # A^T
WEIGHT_TRANSFORM = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))  # G

MIN_CHANNELS = 128
WEIGHT, OUTPUT, REVERSED = range(3)  # the matrices of :func:`_matrices`
MIN_TILE_COLUMNS = 256
TILE_BYTES = 32 << 20
GPU_TILE_BYTES = 256 << 20
BLOCK_BYTES = 1 << 20


def supported(g: ConvGeometry) -> bool:
    """Whether F(2x2, 3x3) computes this conv, and pays: a 3x3 kernel, stride 1, dilation 1,
    and at least MIN_CHANNELS input and output channels per group (with fewer, the transforms
    cost more than the GEMMs they save; a depthwise conv has one).

    Measured with OpenBLAS's AVX-512 kernels (batch 4, forward / both gradients, ms): 64
    channels at 128x128 ran 41 / 64 by Winograd and 27 / 55 by im2col, 128 -> 64 at 64x64
    26 / 34 against 17 / 24, while 128 -> 128 at 64x64 (27 / 40 against 25 / 49) and every
    wider conv gain from it. (With the AVX2 kernels, whose GEMMs run at half that speed,
    64 channels already paid.)"""
    per_group = min(g.in_channels, g.out_channels) // g.groups
    return (g.kh, g.kw, g.sy, g.sx, g.dy, g.dx) == (3, 3, 1, 1, 1, 1) and per_group >= MIN_CHANNELS


class _Plan:
    """The tiling of one conv into 2x2 output tiles, (th, tw) per image, and GEMM tiles.

    Transformed tiles are kept in a "wide" layout (..., R, tw + 1): each row of tiles carries
    one garbage column, so that every transform step reads and writes long contiguous runs
    (NumPy is ten times slower on runs of 16 than on long ones). The GEMMs carry the garbage
    columns along; the output transform drops them.
    """

    def __init__(self, like, g: ConvGeometry):
        self.g, self.like = g, like
        self.xp = backend.get_array_module(like)
        self.on_cpu = backend.is_cpu_array(like)
        self.th, self.tw = -(-g.out_h // 2), -(-g.out_w // 2)
        self.wide = self.tw + 1
        self.shared = can_share_tiles(like, g.out_channels * g.in_channels * 9 // g.groups)
        self.tiles = planned_tiles(g.batch, self.th, self.wide, self._columns(), self.shared)

    def _columns(self) -> int:
        g = self.g
        column_bytes = 16 * max(g.in_channels, g.out_channels) * self.like.dtype.itemsize
        if not self.on_cpu:
            return max(1, GPU_TILE_BYTES // column_bytes)
        return max(MIN_TILE_COLUMNS, TILE_BYTES // column_bytes)

    def width(self, tile) -> int:
        """GEMM columns of a work tile: n * R * (tw + 1)."""
        n, r = tile.size
        return n * r * self.wide

    def buffer(self, channels: int, slot: str, tiles: list):
        """A flat scratch array (the calling thread's) for the transformed tiles of
        ``channels`` channels, sized for the largest of ``tiles`` and reused by each."""
        largest = max((self.width(tile) for tile in tiles), default=0)
        return scratch(self.like, 16 * channels * largest, slot)

    def domain(self, buffer, tile, channels: int):
        """``buffer`` as the (4, 4, channels, n, R, tw + 1) transformed tiles of ``tile``."""
        n, r = tile.size
        return buffer[: 16 * channels * n * r * self.wide].reshape(4, 4, channels, n, r, self.wide)

    def blocks(self, channels: int, tile, plane_bytes: int) -> list:
        """Slices of channels whose transform intermediates, ``plane_bytes`` per sample and
        channel, fit in BLOCK_BYTES (on the CPU; on the GPU one slice holds them all)."""
        if not self.on_cpu:
            return [slice(0, channels)]
        step = max(1, BLOCK_BYTES // max(1, tile.size[0] * plane_bytes))
        return [slice(c, min(c + step, channels)) for c in range(0, channels, step)]

    def phase_image(self, n: int, c: int, rows: int):
        """A zeroed (2, 2, c, n, rows, tw + 1) scratch for :func:`_split_phases`."""
        flat = scratch(self.like, 4 * c * n * rows * self.wide, "winograd image")
        flat[...] = 0
        return flat.reshape(2, 2, c, n, rows, self.wide)


def _combine(xp, coefficients, inputs, out) -> None:
    """``out = sum_k coefficients[k] * inputs[k]`` for a row of B^T: two coefficients of +-1,
    one of them +1, the others 0. One pass: ``a + b`` or ``a - b``, the positive term first."""
    (c0, a0), (c1, a1) = sorted(
        ((c, a) for c, a in zip(coefficients, inputs, strict=True) if c),
        key=lambda term: -term[0],
    )
    (xp.add if c1 > 0 else xp.subtract)(a0, a1, out=out)


def _parity_range(offset: int, size: int, count: int) -> tuple:
    """The i in [0, count) with ``offset + 2*i`` in [0, size): (slice of i, slice of sources)."""
    first = max(0, -(offset // 2))
    stop = min(count, -((offset - size) // 2))
    if stop <= first:
        return slice(0, 0), slice(0, 0)
    return slice(first, stop), slice(offset + 2 * first, offset + 2 * stop - 1, 2)


def _split_phases(source, row0: int, col0: int, image) -> None:
    """Deinterleave ``source`` (n, c, H, W) into ``image`` (2, 2, c, n, R, Wq), zeros outside:

    ``image[p, q, :, :, i, s] = source[:, :, row0 + 2i + p, col0 + 2s + q]``: the one strided
    copy of a transform; every later step reads contiguous runs.
    """
    h, w = source.shape[-2:]
    rows_count, cols_count = image.shape[-2:]
    for p in range(2):
        rows, source_rows = _parity_range(row0 + p, h, rows_count)
        for q in range(2):
            cols, source_cols = _parity_range(col0 + q, w, cols_count)
            image[p, q, :, :, rows, cols] = source[:, :, source_rows, source_cols].swapaxes(0, 1)


def _transform_phases(xp, image, transform, rows: int, target) -> None:
    """Apply a 1-D transform to the tiles of a phase image, along rows and then along columns.

    Phase k of tile t is entry ``2t + k``: parity ``k % 2`` of the image, shifted by ``k // 2``.
    The column step reads each column parity as one flat run, shifted by one element for
    k >= 2 (so the last column of each row, the garbage one, reads the next row).

    Args:
        image: (2, 2, c, n, R', Wq) from :func:`_split_phases` (row parity, column parity).
        transform: coefficient rows (outputs, phases) such as :func:`_combine` takes.
        rows: R, the tile rows.
        target: ``target(a, b)``, where output (a, b) goes: (c, n, R, Wq), contiguous.
    """
    _, _, c, n, _, wq = image.shape
    plane = c * n * rows * wq
    outputs, phases = len(transform), range(len(transform[0]))
    flat = scratch(image, outputs * 2 * plane + 1, "winograd rows")
    flat[-1] = 0
    buffer = flat[:-1].reshape(outputs, 2, c, n, rows, wq)
    for a, row in enumerate(transform):
        parts = [image[k % 2, :, :, :, k // 2 : k // 2 + rows] for k in phases]
        _combine(xp, row, parts, buffer[a])
    for a in range(outputs):
        starts = [(2 * a + k % 2) * plane + k // 2 for k in phases]
        parts = [flat[i : i + plane].reshape(c, n, rows, wq) for i in starts]
        for b, row in enumerate(transform):
            _combine(xp, row, parts, target(a, b))


@functools.lru_cache(maxsize=32)
def _matrices(xp, dtype, device) -> tuple:
    """(G (x) G, A^T (x) A^T, G (x) G with its columns reversed) in ``dtype`` on ``device``,
    built once: a fresh upload on every conv would be a host transfer per call.

    ``G (x) G`` (16, 9): row 4*xi + nu, column 3*i + j holds G[xi, i] * G[nu, j].
    ``A^T (x) A^T`` (4, 16): row 2*a + b, column 4*xi + nu holds A^T[a, xi] * A^T[b, nu].
    Reversing the 9 columns flips the kernel in both directions.
    """
    factors = (xp.asarray(m, dtype=dtype) for m in (WEIGHT_TRANSFORM, OUTPUT_TRANSFORM))
    weight, output = (xp.kron(m, m) for m in factors)
    return weight, output, xp.ascontiguousarray(weight[:, ::-1])


def _matrix(like, which: int):
    """Matrix ``which`` of :func:`_matrices` for the dtype and device of ``like``."""
    xp = backend.get_array_module(like)
    device = getattr(like.device, "id", None) if backend.is_gpu_array(like) else None
    return _matrices(xp, like.dtype, device)[which]


def transformed_weight(W, g: ConvGeometry, *, reversed_kernel: bool = False):
    """U = G w G^T for every (Co, C/groups) pair, as (16, groups, Co/groups, C/groups).

    One GEMM, (G (x) G) @ w as (9, Co*C/groups): it lands in the layout the batched GEMMs use.

    With ``reversed_kernel``, ``g`` is the reversed conv that computes the input gradient of
    the conv of weight W (:mod:`minigrad.ops.conv.reversed_kernel`): U is that of W with its
    kernel flipped and its in/out channels swapped within each group, made from W itself.
    The flip is G (x) G with its columns reversed, the swap a transposed view of the product
    (BLAS reads it as a transposed operand), so no reversed copy of W is made (a strided
    copy of 4 ms for a 512 x 1024 weight, and as much again for its gradient).
    """
    xp = backend.get_array_module(W)
    matrix = _matrix(W, REVERSED if reversed_kernel else WEIGHT)
    U = matrix @ xp.ascontiguousarray(W).reshape(-1, 9).T
    if not reversed_kernel:
        return U.reshape(16, g.groups, g.out_channels // g.groups, -1)
    U = U.reshape(16, g.groups, g.in_channels // g.groups, -1).swapaxes(2, 3)
    # CuPy's batched matmul would copy a transposed operand for every tile: copy it once.
    return U if backend.is_cpu_array(U) else xp.ascontiguousarray(U)


def _weight_from_domain(dU, g: ConvGeometry, *, reversed_kernel: bool = False):
    """dw = G^T dU G, the adjoint of :func:`transformed_weight`: (Co, C/groups, 3, 3).

    With ``reversed_kernel``, dU is the transposed gradient (16, groups, C/groups, Co/groups)
    of the reversed conv ``g``'s U, and dw that of the weight it was reversed from,
    (C, Co/groups, 3, 3) in ``g``'s terms."""
    if not reversed_kernel:
        return (dU.reshape(16, -1).T @ _matrix(dU, WEIGHT)).reshape(g.weight_shape)
    shape = (g.in_channels, g.out_channels // g.groups, 3, 3)
    return (dU.reshape(16, -1).T @ _matrix(dU, REVERSED)).reshape(shape)


def _transform_input(x, plan: _Plan, tile, V) -> None:
    """V (4, 4, C, n, R, tw + 1) = B^T d B for the 4x4 input patch of every 2x2 output tile.

    Channel block by block (in cache): the block's padded input is split into its four
    row/column parities, row-transformed into a scratch buffer, column-transformed into V.
    """
    g, xp = plan.g, plan.xp
    n, r = tile.size
    plane_bytes = 4 * (r + 1) * plan.wide * x.dtype.itemsize * 3
    for block in plan.blocks(g.in_channels, tile, plane_bytes):
        image = plan.phase_image(n, block.stop - block.start, r + 1)
        _split_phases(x[tile.samples, block], 2 * tile.r0 - g.pad_h, -g.pad_w, image)
        _transform_phases(xp, image, INPUT_TRANSFORM, r, lambda a, b, c=block: V[a, b, c])


def _transform_output(M, plan: _Plan, tile, y) -> None:
    """Y = A^T M A for every tile, its 2x2 outputs interleaved into y (N, Co, Ho, Wo).

    One GEMM, (A^T (x) A^T) (4, 16) @ M (16, Co*n*R*(tw + 1)): it reads M once, at memory
    speed, where elementwise passes would read it three times. Then each of the four output
    phases is copied to its rows and columns of y.
    """
    g, xp = plan.g, plan.xp
    n, r = tile.size
    wq = plan.wide
    flat_M = M.reshape(16, -1)
    tiles = scratch(M, 4 * flat_M.shape[1], "winograd tiles").reshape(2, 2, -1, n, r, wq)
    xp.matmul(_matrix(M, OUTPUT), flat_M, out=tiles.reshape(4, -1))
    out = y[tile.samples]
    for a in range(2):
        tile_rows, y_rows = _parity_range(2 * tile.r0 + a, g.out_h, r)
        for b in range(2):
            tile_cols, y_cols = _parity_range(b, g.out_w, wq)
            out[:, :, y_rows, y_cols] = tiles[a, b][:, :, tile_rows, tile_cols].swapaxes(0, 1)


def _transform_output_gradient(gy, plan: _Plan, tile, dM) -> None:
    """dM (4, 4, Co, n, R, tw + 1) = A dY A^T for every 2x2 tile (garbage columns zero).

    The adjoint of :func:`_transform_output`: the four phases of the output gradient, then
    one GEMM with the transpose of its matrix, (16, 4) @ (4, Co*n*R*(tw + 1)).
    """
    g, xp = plan.g, plan.xp
    n, r = tile.size
    phases = plan.phase_image(n, g.out_channels, r)
    _split_phases(gy[tile.samples], 2 * tile.r0, 0, phases)
    xp.matmul(_matrix(gy, OUTPUT).T, phases.reshape(4, -1), out=dM.reshape(16, -1))


def _gemm_operands(array, groups: int, width: int):
    """(4, 4, C, n, R, tw + 1) as the batched GEMM operand (16, groups, C/groups, width)."""
    return array.reshape(16, groups, -1, width)


def _transformed_inputs(x, plan: _Plan, tiles: list):
    """Yield (tile, V, M) for each of ``tiles``: V its transformed input, M room for the other
    operand of its GEMMs (the product, then the output gradient), both (4, 4, channels, n, R,
    tw + 1) views of two buffers every tile reuses."""
    g = plan.g
    V_buffer = plan.buffer(g.in_channels, "winograd V", tiles)
    M_buffer = plan.buffer(g.out_channels, "winograd M", tiles)
    for tile in tiles:
        V = plan.domain(V_buffer, tile, g.in_channels)
        _transform_input(x, plan, tile, V)
        yield tile, V, plan.domain(M_buffer, tile, g.out_channels)


def forward_and_grad_weight(x, W, gy, g: ConvGeometry, *, reversed_kernel: bool = False) -> tuple:
    """The 3x3 stride-1 conv2d of x (N, C, H, W) with W (Co, C/groups, 3, 3), (N, Co, Ho, Wo),
    and the weight gradient of that conv for output gradient gy (N, Co, Ho, Wo), (Co,
    C/groups, 3, 3): either None when its W or gy is None. One pass over the transformed tiles
    of x serves both (the input transform is the costly step, so a caller that needs both
    pays for it once). The CPU threads share the tiles (:func:`tile_parallel`); each part's
    first weight-domain product is a fresh array, later ones go into a reused buffer added to
    it (a fresh weight-sized temporary costs page faults), and the parts add up in order.

    With ``reversed_kernel``, ``g`` is a reversed conv (:func:`transformed_weight`): W is
    the weight it was reversed from, (C, Co/groups, 3, 3) in ``g``'s terms, and so is the
    weight gradient returned; both are used as they are, with no reversed copy. The weight
    gradient's GEMMs then run transposed, ``V @ dM^T`` (as fast for these shapes)."""
    xp = backend.get_array_module(x)
    plan = _Plan(x, g)
    y = U = None
    if W is not None:
        U = transformed_weight(W, g, reversed_kernel=reversed_kernel)
        y = xp.empty(g.out_shape, dtype=x.dtype)
    rows, cols = g.out_channels // g.groups, g.in_channels // g.groups
    shape = (16, g.groups, cols, rows) if reversed_kernel else (16, g.groups, rows, cols)

    def weight_product(m, v, out):
        """One part of dU: dM @ V^T, or its transpose V @ dM^T for a reversed kernel."""
        if reversed_kernel:
            return xp.matmul(v, m.swapaxes(2, 3), out=out)
        return xp.matmul(m, v.swapaxes(2, 3), out=out)

    def tiles_pass(tiles):
        """y for these tiles, and their part of dU (or None)."""
        dU = None
        for tile, V, M in _transformed_inputs(x, plan, tiles):
            width = plan.width(tile)
            v, m = _gemm_operands(V, g.groups, width), _gemm_operands(M, g.groups, width)
            if U is not None:
                xp.matmul(U, v, out=m)
                _transform_output(M, plan, tile, y)
            if gy is None:
                continue
            _transform_output_gradient(gy, plan, tile, M)
            if dU is None:
                dU = weight_product(m, v, xp.empty(shape, x.dtype))
            else:
                dU += weight_product(m, v, _scratch(x, shape, "winograd dU"))
        return dU

    partials = tile_parallel(tiles_pass, plan.tiles, plan.shared)
    if gy is None:
        return y, None
    dU = sum_partials(partials, shape, x)
    return y, _weight_from_domain(dU, g, reversed_kernel=reversed_kernel)


def _scratch(like, shape, slot: str):
    """A reused scratch array of ``shape``."""
    size = 1
    for side in shape:
        size *= side
    return scratch(like, size, slot).reshape(shape)
