"""What the convolution family shares: the padded layout, im2col, col2im, tiles and threads.

The input is zero-padded once into a flat buffer, one row of ``flat`` values per (sample,
channel) holding an (hp, wp) image. The *window* of kernel offset (i, j) is the part of that
buffer the offset sees, shaped like the output:

- stride 1 ("wide" layout): a contiguous slice of the flat buffer, viewed as (Ho, wp): each
  output row carries ``wp - Wo`` garbage columns, cropped at the end. Every copy and product
  is then one long vectorised loop, instead of one short loop per output row.
- with a stride: the strided view (Ho, Wo) of the padded image, or, for a kernel with many
  offsets per stride phase (:attr:`PaddedLayout.phased`), a plain (Ho, Wo) view of one of the
  image's phases (:class:`Phases`), copied out once.

``im2col`` copies the window of each kernel offset into a column buffer (C, kh, kw, n, R, wq):
on the CPU one strided copy of all the windows at once (:meth:`PaddedLayout.windows`), else
one copy per offset, never a loop over pixels or samples. Reshaped to (C*kh*kw, n*R*wq) it is
the right operand of one GEMM, with the samples side by side so that the GEMM is wide even for
small images (a GEMM of fewer than ~2,000 columns runs at half speed). ``col2im``, its adjoint,
adds each offset's columns back into the windows of a padded gradient buffer; in the wide
layout the columns' garbage entries must be zero (they are when the output gradient's are).
The plain versions, on the whole input with no tiles and no wide layout, are
:func:`minigrad.reference.im2col` and :func:`minigrad.reference.col2im`.

On the CPU the columns are built tile by tile (a few samples, or a band of output rows of one
sample) of at least :data:`MIN_TILE_COLUMNS` columns (and :data:`CPU_TILE_BYTES` bytes), so the
column buffer stays a fraction of the full im2col matrix while the GEMM stays wide; when the
threads share the tiles, each tile is a thread's share of that (:func:`shared_columns`).

:func:`parallel_over` splits memory-bound loops between threads (NumPy releases the GIL); the
depthwise conv uses it. A single im2col copy measured no faster threaded: it is bound by
memory, not by the core. What pays is sharing the *tiles* (:func:`tile_parallel`): each thread
takes its own tiles, im2col, GEMM, copies and all, with BLAS kept on the calling thread
(:func:`minigrad.cblas.single_threaded`), so one thread's copies overlap the other's GEMM
instead of both cores waiting on every copy between two-thread GEMMs. Measured here, the
forward of a 64-channel 3x3 conv at 128x128 (batch 4) ran in 18.4 ms instead of 22.5, 32
channels 7.9 instead of 9.7, 64 channels at 32x32 1.37 instead of 1.60.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from minigrad import backend, cblas, parallel

CPU_TILE_BYTES = 6 << 20
MIN_TILE_COLUMNS = 2048
GPU_TILE_BYTES = 512 << 20
MIN_PARALLEL_ELEMENTS = 1 << 16
MAX_CACHED_SCRATCH_BYTES = 64 << 20
MAX_SHARED_WEIGHT_RATIO = 2
MIN_OFFSETS_PER_PHASE = 4

_cache = threading.local()


@dataclass(frozen=True)
class ConvGeometry:
    """The sizes of one convolution, seen from the conv2d side: (N, C, H, W) -> (N, Co, Ho, Wo).

    ``pad_h``/``pad_w`` are the top/left zero padding; the bottom/right padding is implied by
    ``out_h``/``out_w``. The transposed convolution uses the geometry of the conv2d it is the
    adjoint of (its output is this geometry's input).
    """

    batch: int
    in_channels: int
    in_h: int
    in_w: int
    out_channels: int
    out_h: int
    out_w: int
    kh: int
    kw: int
    sy: int
    sx: int
    pad_h: int
    pad_w: int
    dy: int
    dx: int
    groups: int

    @property
    def in_shape(self) -> tuple:
        return (self.batch, self.in_channels, self.in_h, self.in_w)

    @property
    def out_shape(self) -> tuple:
        return (self.batch, self.out_channels, self.out_h, self.out_w)

    @property
    def weight_shape(self) -> tuple:
        return (self.out_channels, self.in_channels // self.groups, self.kh, self.kw)

    @property
    def col_rows(self) -> int:
        """C*kh*kw: the rows of one sample's column matrix (the GEMM reduction, all groups)."""
        return self.in_channels * self.kh * self.kw


class PaddedLayout:
    """Where the padded images live in a flat buffer, and the window each kernel offset sees.

    Buffers have any leading dims (samples, channels or planes) and a last dim of ``flat``.
    Work arrays (outputs in window layout) end in (Ho, wq); ``wq = wp`` in the wide layout.
    """

    def __init__(self, g: ConvGeometry):
        self.g = g
        self.wide = (g.sy, g.sx) == (1, 1)
        self.hp = max(g.pad_h + g.in_h, (g.out_h - 1) * g.sy + (g.kh - 1) * g.dy + 1)
        self.wp = max(g.pad_w + g.in_w, (g.out_w - 1) * g.sx + (g.kw - 1) * g.dx + 1)
        self.wq = self.wp if self.wide else g.out_w
        self.flat = self.hp * self.wp + ((g.kw - 1) * g.dx if self.wide else 0)

    @property
    def phased(self) -> bool:
        """Whether im2col reads this strided conv's windows from the image's phases
        (:class:`Phases`): when the kernel has MIN_OFFSETS_PER_PHASE offsets or more per
        phase of the stride (kh*kw against sy*sx; with a dilation some phases go unread).

        A strided window's copy reads every sy-th row and sx-th value; a phase's window is a
        plain view with rows of Wo adjacent values, and copying the phases out costs one
        pass over the input. Measured here (batch 4, float32, im2col of the whole input):
        ResNet's 7x7 stride-2 stem on 3 x 128x128 0.75 ms against 0.35 from phases, 5x5
        stride 2 on 16 x 64x64 0.55 against 0.39, 4x4 stride 2 0.35 against 0.27; with 2.25
        offsets per phase (3x3, stride 2) it is a wash at 8 channels and slower at 64 to 256
        (0.14 ms against 0.21 at 256 x 8x8), and at one (3x3, stride 3) 0.07 against 0.09.
        The stem's whole conv gains less (medians of five alternating runs): forward 2.27 ms
        against 2.42, weight gradient 2.36 against 2.52.
        """
        g = self.g
        return not self.wide and g.kh * g.kw >= MIN_OFFSETS_PER_PHASE * g.sy * g.sx

    def columns_source(self, padded):
        """What :func:`im2col` reads a padded buffer's windows from: its :class:`Phases` when
        :attr:`phased`, else the buffer itself."""
        return Phases(self, padded) if self.phased else padded

    @property
    def disjoint(self) -> bool:
        """True when no two kernel offsets' windows share a pixel (dilated kernel <= stride)."""
        g = self.g
        return g.dy * (g.kh - 1) < g.sy and g.dx * (g.kw - 1) < g.sx

    def image(self, buffer):
        """The (..., hp, wp) padded images of a buffer."""
        return buffer[..., : self.hp * self.wp].reshape(*buffer.shape[:-1], self.hp, self.wp)

    def interior(self, buffer):
        """The (..., H, W) unpadded part of a buffer."""
        g = self.g
        return self.image(buffer)[..., g.pad_h : g.pad_h + g.in_h, g.pad_w : g.pad_w + g.in_w]

    def padded(self, x):
        """A buffer holding ``x`` (..., H, W) zero-padded (``x`` itself when it needs none)."""
        xp = backend.get_array_module(x)
        if self.flat == self.g.in_h * self.g.in_w:
            return xp.ascontiguousarray(x).reshape(*x.shape[:-2], self.flat)
        buffer = xp.zeros((*x.shape[:-2], self.flat), dtype=x.dtype)
        self.interior(buffer)[...] = x
        return buffer

    def window(self, buffer, i: int, j: int, rows: tuple):
        """What kernel offset (i, j) sees for output rows ``rows``: a (..., R, wq) view."""
        g = self.g
        r = rows[1] - rows[0]
        top = rows[0] * g.sy + i * g.dy
        if self.wide:
            start = top * self.wp + j * g.dx
            return buffer[..., start : start + r * self.wp].reshape(*buffer.shape[:-1], r, self.wp)
        row_slice = slice(top, top + (r - 1) * g.sy + 1, g.sy)
        col_slice = slice(j * g.dx, j * g.dx + (g.out_w - 1) * g.sx + 1, g.sx)
        return self.image(buffer)[..., row_slice, col_slice]

    def windows(self, buffer, rows: tuple):
        """Every kernel offset's :meth:`window` at once, for a NumPy (n, C, flat) buffer: the
        (C, kh, kw, n, R, wq) strided view that :func:`im2col` copies out in one pass."""
        g, step = self.g, buffer.itemsize
        r = rows[1] - rows[0]
        sample, channel, value = buffer.strides
        if value != step:
            raise ValueError(
                f"windows: expected a buffer with a contiguous last axis, got {buffer.strides}"
            )
        shape = (buffer.shape[1], g.kh, g.kw, buffer.shape[0], r, self.wq)
        strides = (
            channel,
            g.dy * self.wp * step,
            g.dx * step,
            sample,
            g.sy * self.wp * step,
            g.sx * step,
        )
        start = buffer[..., rows[0] * g.sy * self.wp :]
        as_strided = backend.get_array_module(buffer).lib.stride_tricks.as_strided
        return as_strided(start, shape, strides, writeable=False)

    def cropped(self, work):
        """The (..., Ho, Wo) outputs of a work array: the garbage columns dropped."""
        return work[..., : self.g.out_w]

    def offsets(self) -> list:
        return [(i, j) for i in range(self.g.kh) for j in range(self.g.kw)]


class Phases:
    """The (sy, sx) phases of a strided conv's padded images: phase (a, b) holds the pixels
    at rows a, a + sy, ... and columns b, b + sx, ... as a contiguous (..., rows, cols) array.

    Kernel offset (i, j) reads phase ``(i*dy % sy, j*dx % sx)`` only, from row
    ``r0 + i*dy // sy`` and column ``j*dx // sx`` on: its window of output rows r0:r1 is a
    plain (..., R, Wo) view. Only the phases some offset reads are copied out. Indexing
    (``phases[samples]``) gives the phases of those samples.
    """

    def __init__(self, layout: PaddedLayout, padded, arrays: dict | None = None):
        self.layout = layout
        if arrays is None:
            g, xp = layout.g, backend.get_array_module(padded)
            image = layout.image(padded)
            wanted = {(i * g.dy % g.sy, j * g.dx % g.sx) for i, j in layout.offsets()}
            arrays = {
                (a, b): xp.ascontiguousarray(image[..., a :: g.sy, b :: g.sx]) for a, b in wanted
            }
        self.arrays = arrays

    def __getitem__(self, index) -> Phases:
        return Phases(self.layout, None, {key: a[index] for key, a in self.arrays.items()})

    def window(self, i: int, j: int, rows: tuple):
        """What kernel offset (i, j) sees for output rows ``rows``: a (..., R, Wo) view."""
        g = self.layout.g
        row, col = i * g.dy, j * g.dx
        phase = self.arrays[(row % g.sy, col % g.sx)]
        top, left = rows[0] + row // g.sy, col // g.sx
        return phase[..., top : top + rows[1] - rows[0], left : left + g.out_w]


def im2col(source, layout: PaddedLayout, rows: tuple, out):
    """Fill ``out`` (C, kh, kw, n, R, wq) with the windows of output rows ``rows``.

    A NumPy buffer is copied in one pass from the strided view of all the windows
    (:meth:`PaddedLayout.windows`): one call instead of one per kernel offset, faster (3x3,
    float32, a tile of 1 to 4 samples: 64 channels at 32x32, 2 samples, 139 us against 73;
    256 at 8x8, 4 samples, 118 against 78; 32 at 128x128, 1 sample, 434 against 288) and one
    release of the GIL instead of nine, which matters where two threads build their tiles'
    columns at once.

    Args:
        source: padded input (n, C, flat) of :class:`PaddedLayout` ``layout``, or its
            :class:`Phases` (:meth:`PaddedLayout.columns_source`).
        layout: the padded layout.
        rows: (first, stop) output rows of this tile, R = stop - first.
        out: the column buffer to fill.
    Returns:
        ``out``.
    """
    if not isinstance(source, Phases) and backend.is_cpu_array(source):
        out[...] = layout.windows(source, rows)
        return out
    for i, j in layout.offsets():
        if isinstance(source, Phases):
            window = source.window(i, j, rows)
        else:
            window = layout.window(source, i, j, rows)
        out[:, i, j] = window.swapaxes(0, 1)
    return out


def col2im(col, layout: PaddedLayout, rows: tuple, out):
    """Add the columns ``col`` (C, kh, kw, n, R, wq) of output rows ``rows`` into ``out``.

    The adjoint of :func:`im2col`: ``out`` (n, C, flat), a zeroed padded gradient buffer,
    receives at each padded pixel the sum of the column entries that were copied from it (a copy
    when the windows do not overlap, as in a 2x2 stride-2 transposed conv).
    """
    for i, j in layout.offsets():
        window = layout.window(out, i, j, rows)
        if layout.disjoint:
            window[...] = col[:, i, j].swapaxes(0, 1)
        else:
            window += col[:, i, j].swapaxes(0, 1)
    return out


@dataclass(frozen=True)
class Tile:
    """A block of the column matrix: samples n0:n1 and output rows r0:r1 of each."""

    n0: int
    n1: int
    r0: int
    r1: int

    @property
    def samples(self) -> slice:
        return slice(self.n0, self.n1)

    @property
    def rows(self) -> tuple:
        return (self.r0, self.r1)

    @property
    def size(self) -> tuple:
        """(samples, output rows) in this tile."""
        return (self.n1 - self.n0, self.r1 - self.r0)


def tile_columns(array, col_rows: int) -> int:
    """Columns per tile for a column matrix of ``col_rows`` rows of ``array``'s dtype.

    On the CPU: at least MIN_TILE_COLUMNS (for the GEMM's speed) and as many more as fit in
    CPU_TILE_BYTES (for the cache); on the GPU as many as fit in GPU_TILE_BYTES.
    """
    row_bytes = col_rows * array.dtype.itemsize
    if not backend.is_cpu_array(array):
        return max(1, GPU_TILE_BYTES // row_bytes)
    return max(1, MIN_TILE_COLUMNS, CPU_TILE_BYTES // row_bytes)


def plan_tiles(batch: int, out_h: int, row_columns: int, columns: int) -> list:
    """Cut (batch, out_h) into tiles of at most ``columns`` columns (``row_columns`` per row).

    Whole samples go together while one sample fits; otherwise each sample is cut into bands
    of rows (at least one row per tile). The first tile is the largest.
    """
    sample_columns = row_columns * out_h
    if sample_columns <= columns:
        step = columns // sample_columns
        return [Tile(n, min(n + step, batch), 0, out_h) for n in range(0, batch, step)]
    band = max(1, columns // row_columns)
    return [
        Tile(n, n + 1, r, min(r + band, out_h)) for n in range(batch) for r in range(0, out_h, band)
    ]


def scratch(like, size: int, slot: str):
    """A flat scratch array of ``size`` elements of ``like``'s dtype, reused between calls.

    On the CPU each thread keeps its largest buffer per slot (up to MAX_CACHED_SCRATCH_BYTES),
    since fresh memory costs a page fault per page on every call. The array is valid until the
    next request for the same slot in the same thread. On the GPU CuPy's memory pool already
    reuses memory, so this is a plain ``empty``.
    """
    xp = backend.get_array_module(like)
    nbytes = size * like.dtype.itemsize
    if not backend.is_cpu_array(like) or nbytes > MAX_CACHED_SCRATCH_BYTES:
        return xp.empty(size, dtype=like.dtype)
    buffers = _cache.__dict__.setdefault("buffers", {})
    key = (slot, like.dtype.str)
    if key not in buffers or buffers[key].size < size:
        buffers[key] = xp.empty(size, dtype=like.dtype)
    return buffers[key][:size]


def parallel_over(array, fn, items: list, work: int) -> None:
    """Run ``fn(chunk)`` over contiguous chunks of ``items``, in threads for large NumPy work.

    NumPy releases the GIL inside its loops, so memory-bound loops that write disjoint memory
    run on several cores. On the GPU (and for small work) ``fn`` runs once over all items.
    """
    threaded = backend.is_cpu_array(array) and work >= MIN_PARALLEL_ELEMENTS
    parallel.run_in_parts(fn, items, parts=parallel.THREADS if threaded else 1)


def can_share_tiles(like, weight_elements: int) -> bool:
    """Whether the CPU threads should share a conv's tiles (:func:`tile_parallel`): NumPy
    arrays, two threads or more, a BLAS that :func:`minigrad.cblas.single_threaded` can keep
    on its calling thread (else two threads' GEMMs would each start two more), and a weight
    at most MAX_SHARED_WEIGHT_RATIO times the input ``like``: each thread sums its own weight
    gradient, and with a large weight and a small image the extra sums cost more than the
    threads save. Measured here (Winograd, batch 4, both gradients): 128 channels at 64x64
    (input 14x the weight) 32.5 ms -> 23.8 shared, 512 at 16x16 (weight 4.5x the input)
    23.9 -> 24.9. In training steps (interleaved A/B, fastest / median step) the bound of 2
    beat the earlier 1/4, which kept 128 channels at 16x16 and 256 at 32x32 on one thread:
    ResNet34-U-Net 0.349 / 0.364 s against 0.361 / 0.370, UNet 1.07 / 1.16 against
    1.13 / 1.23."""
    return (
        backend.is_cpu_array(like)
        and parallel.THREADS > 1
        and weight_elements <= MAX_SHARED_WEIGHT_RATIO * like.size
        and cblas.can_run_single_threaded()
    )


def shared_columns(total: int, columns: int) -> int:
    """Columns per tile for ``total`` columns cut into tiles of at most ``columns``, when the
    threads share the tiles: a thread's share of that budget (their tiles are in the cache
    at once, so this may go below MIN_TILE_COLUMNS), evened out so that the tiles would come
    in a multiple of the thread count. :func:`plan_tiles` then rounds them to whole samples
    or row bands, so the threads' shares can still differ (5 samples of 64x64 in 5 tiles:
    3 against 2).

    Measured here (batch 4, both gradients of a 3x3 conv by im2col), shared tiles of half
    the budget ran 64 channels at 128x128 in 38.9 ms against 47.7 on one thread with BLAS on
    two, and 32 channels 11.3 against 15.4; tiles of the whole budget 40.2 and 12.6.
    """
    threads = parallel.THREADS
    if total <= 0:
        return columns
    share = max(1, columns // threads)
    count = threads * -(-total // (threads * share))
    return -(-total // count)


def tile_parallel(fn, tiles: list, shared: bool) -> list:
    """``[fn(part) for part in parts]`` over contiguous parts of ``tiles``, in part order.

    When ``shared`` (:func:`can_share_tiles`) and there are two tiles or more, there is one
    part per thread, each run on its own thread with BLAS single-threaded; otherwise one
    part holds all the tiles and runs inline. ``fn`` must write only its own tiles' outputs
    and return what the caller combines (a partial weight gradient, added in part order by
    :func:`sum_partials`, so the sum is the same from run to run).
    """
    count = min(parallel.THREADS, len(tiles)) if shared else 1
    if count <= 1:
        return [fn(tiles)]
    parts = [tiles[a:b] for a, b in parallel.even_ranges(len(tiles), count)]
    results = [None] * count

    def run(indexed) -> None:
        for index, part in indexed:
            results[index] = fn(part)

    with cblas.single_threaded():
        parallel.run_in_parts(run, list(enumerate(parts)), parts=count)
    return results


def planned_tiles(batch: int, out_h: int, row_columns: int, columns: int, shared: bool) -> list:
    """:func:`plan_tiles` of at most ``columns`` columns, or of a thread's share of that where
    the threads share the tiles (``shared``, :func:`can_share_tiles`; :func:`shared_columns`)."""
    if shared:
        columns = shared_columns(batch * out_h * row_columns, columns)
    return plan_tiles(batch, out_h, row_columns, columns)


def sum_partials(partials: list, shape, like):
    """The sum of the parts' weight gradients from :func:`tile_parallel`, added in part order
    (so the same from run to run); parts with no tiles give None, and none at all zeros of
    ``shape`` in ``like``'s dtype."""
    found = [part for part in partials if part is not None]
    if not found:
        return backend.get_array_module(like).zeros(shape, dtype=like.dtype)
    total = found[0]
    for part in found[1:]:
        total += part
    return total
