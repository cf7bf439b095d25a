"""A stride-1 dense conv on the CPU as kh*kw GEMMs over shifted windows of one padded buffer.

The input is zero-padded once into a *stacked* buffer (C, N*hp*wp + reach): each channel's
row holds the N padded images one after another. Read from offset ``i*dy*wp + j*dx`` on, the
same row is what kernel offset (i, j) sees for every output pixel of every sample, in the wide
layout of :mod:`minigrad.ops.im2col` (each output row carries ``wp - Wo`` garbage columns, and
each sample ``hp - Ho`` garbage rows, cropped at the end). So the conv is

    Y_wide (Co, L) = sum over (i, j) of  W[:, :, i, j] (Co, C) @ X[:, off_ij : off_ij + L],

``L = (N-1)*hp*wp + Ho*wp``, each term one BLAS GEMM that adds into Y (:class:`cblas.BoundGemm`,
``beta=1``) and reads its window in place: no im2col copy, 9x the input, is ever written.

The sum also rounds better. One GEMM over im2col's columns adds C*kh*kw products in one
accumulator (576 for 64 channels); here each GEMM adds at most CHUNK_CHANNELS (channels are
cut into chunks when there are more), and the partial sums meet in the output. A float32
conv with 64 to 128 channels came out 1.6-2.1e-7 from float64 instead of 3.0-3.6e-7 by
im2col + GEMM or Winograd (PyTorch's oneDNN: 2.2e-7), and a UNet's float32 gradients
followed.
"""

from __future__ import annotations

import math

from minigrad import backend, cblas, parallel
from minigrad.ops.im2col import ConvGeometry, tile_parallel

CHUNK_CHANNELS = 128
MIN_CHANNELS = 8
MAX_CHANNELS = 256
MAX_WIDE_ELEMENTS = 1 << 24
MIN_RUN_COLUMNS = 256
MAX_RUN_BYTES = 3 << 19


def pays(g: ConvGeometry) -> bool:
    """Whether the shifted GEMMs run at least as fast as im2col + GEMM and Winograd: from
    MIN_CHANNELS to MAX_CHANNELS input channels, and a wide output of at most
    MAX_WIDE_ELEMENTS (a transient buffer the size of the output).

    It runs conv2d's forward and conv_transpose2d's (stride 1); conv2d's input gradient keeps
    off it (:func:`~minigrad.ops.conv.dispatch.conv_grad_input`). Measured here (batch 4,
    float32, 2 cores, forward, rotated A/B, since the output runs fit in the cache,
    :func:`_column_runs`), against the path taken otherwise: 64 -> 64 channels at 128x128
    24.7-26.9 ms against 25.1-29.5 by im2col, 128 -> 64 at 128x128 49.3 against 57.4, 32 ->
    64 at 128x128 14.1 against 15.6; 256 -> 128 at 16x16 4.3 against 4.5 by Winograd, 256 ->
    256 at 32x32 18.0 against 19.3; but 512 -> 512 at 16x16 21.5 against 18.6 by Winograd, and
    3 -> 64 at 64x64 2.23 against 1.93 by im2col (a GEMM over 3 channels per kernel offset).
    The weight gradient, one GEMM per kernel offset with a thin (Co, C) output, ran slower
    than im2col's or Winograd's in every case, so it stays theirs.
    """
    wide = g.out_channels * g.batch * StackedLayout(g).flat
    return MIN_CHANNELS <= g.in_channels <= MAX_CHANNELS and wide <= MAX_WIDE_ELEMENTS


def supported(g: ConvGeometry, x) -> bool:
    """Whether this path runs the conv of geometry ``g`` on array ``x``: a NumPy float32 or
    float64 array, a dense (ungrouped) stride-1 conv with a kernel larger than 1x1 and no
    empty side, and a CBLAS GEMM from NumPy's OpenBLAS (:func:`cblas.available`)."""
    return (
        backend.is_cpu_array(x)
        and min(g.batch, g.in_channels, g.out_channels, g.out_h, g.out_w) > 0
        and g.groups == 1
        and (g.sy, g.sx) == (1, 1)
        and g.kh * g.kw > 1
        and x.dtype.kind == "f"
        and cblas.available(x.dtype)
    )


class StackedLayout:
    """Where the padded images of (N, C, H, W) lie in the stacked buffer, and each window.

    ``hp``/``wp`` are the padded image's sides, ``flat = hp*wp`` one image, ``span`` the L
    columns of the output and of every window, ``row`` the length of one channel's row (the
    N images and ``reach`` more zeros, so that the farthest window ends inside it).

    Neighbours share their padding: a padded row holds its left zeros and its values, and a
    window that reads past its end reads the next row's left zeros instead of zeros of its
    own (likewise each image's top rows pad the image before it, and ``reach`` the last).
    So where the padding is no wider than the kernel reaches, ``wp`` is ``pad_w + W`` rather
    than ``2*pad_w + W`` (:func:`_padded_side`): a 3x3 conv at 16x16 computes 17*17 wide
    columns per image instead of 18*18, 11% fewer, and 6% fewer at 32x32.
    """

    def __init__(self, g: ConvGeometry):
        self.g = g
        self.hp = _padded_side(g.in_h, g.out_h, g.pad_h, (g.kh - 1) * g.dy)
        self.wp = _padded_side(g.in_w, g.out_w, g.pad_w, (g.kw - 1) * g.dx)
        self.flat = self.hp * self.wp
        self.span = (g.batch - 1) * self.flat + g.out_h * self.wp
        reach = (g.kh - 1) * g.dy * self.wp + (g.kw - 1) * g.dx
        self.row = g.batch * self.flat + reach

    def offset(self, i: int, j: int) -> int:
        """Where the window of kernel offset (i, j) starts in a channel's row."""
        return i * self.g.dy * self.wp + j * self.g.dx

    def offsets(self) -> list:
        return [self.offset(i, j) for i in range(self.g.kh) for j in range(self.g.kw)]

    def images(self, buffer):
        """The (rows, N, hp, wp) images of a (rows, >= N*flat) buffer."""
        g = self.g
        return buffer[:, : g.batch * self.flat].reshape(-1, g.batch, self.hp, self.wp)

    def stacked_input(self, x):
        """x (N, C, H, W) zero-padded into a new (C, row) buffer."""
        g, xp = self.g, backend.get_array_module(x)
        buffer = xp.zeros((g.in_channels, self.row), dtype=x.dtype)
        interior = self.images(buffer)[:, :, g.pad_h : g.pad_h + g.in_h]
        interior[..., g.pad_w : g.pad_w + g.in_w] = x.swapaxes(0, 1)
        return buffer

    def cropped_output(self, wide):
        """The (N, Co, Ho, Wo) outputs of a (Co, N*flat) wide buffer, as a new array."""
        g, xp = self.g, backend.get_array_module(wide)
        return xp.ascontiguousarray(self.images(wide)[:, :, : g.out_h, : g.out_w].swapaxes(0, 1))


def _padded_side(size: int, out: int, before: int, extent: int) -> int:
    """One side of the stacked layout's padded image, for an input side ``size`` padded by
    ``before`` zeros first, an output side ``out`` and a dilated kernel ``extent`` - 1.

    It must hold the ``before + size`` leading zeros and values and the ``out`` output
    positions, and the farthest read, ``out - 1 + extent``, must fall no further into the
    next image (or row) than its leading ``before`` zeros.
    """
    return max(before + size, out, out + extent - before)


def _channel_chunks(channels: int) -> list:
    """(first, stop) ranges cutting ``channels`` into equal chunks of at most CHUNK_CHANNELS."""
    return parallel.even_ranges(channels, math.ceil(channels / CHUNK_CHANNELS))


def forward(x, W, g: ConvGeometry):
    """The conv2d of x (N, C, H, W) and W (Co, C, kh, kw): y (N, Co, Ho, Wo).

    The output's columns are cut into runs (:func:`_column_runs`), an equal share per CPU
    thread, each thread running its runs' GEMMs with BLAS single-threaded
    (:func:`cblas.single_threaded`): a 3x3 conv of 128 channels at 16x16, batch 4, took
    1.47 ms instead of 1.76 with one two-thread GEMM per kernel offset, 64 channels at 32x32
    1.29 instead of 1.54.
    """
    xp = backend.get_array_module(x)
    layout = StackedLayout(g)
    stacked = layout.stacked_input(x)
    taps = xp.ascontiguousarray(W.transpose(2, 3, 0, 1))  # (kh, kw, Co, C)
    wide = xp.empty((g.out_channels, g.batch * layout.flat), dtype=x.dtype)
    c, co = g.in_channels, g.out_channels
    lds = (c, layout.row, layout.flat * g.batch)

    gemm = cblas.BoundGemm(taps, stacked, wide)
    offsets, chunks = layout.offsets(), _channel_chunks(c)

    def columns(runs) -> None:
        for first_column, stop_column in runs:
            beta = 0.0
            for tap, offset in enumerate(offsets):
                for first, stop in chunks:
                    where = (tap * co * c + first, first * layout.row + offset + first_column)
                    shape = (co, stop_column - first_column, stop - first)
                    gemm(shape, (*where, first_column), lds, beta)
                    beta = 1.0

    threads = _run_threads(layout.span)
    runs = _column_runs(layout.span, co * x.dtype.itemsize, threads)
    shares = [runs[a:b] for a, b in parallel.even_ranges(len(runs), threads)]  # one per thread
    tile_parallel(lambda part: columns([r for share in part for r in share]), shares, threads > 1)
    return layout.cropped_output(wide)


def _run_threads(span: int) -> int:
    """How many CPU threads share the ``span`` output columns: one where BLAS cannot be held
    on one thread per caller (:func:`cblas.can_run_single_threaded`), and none with fewer
    than MIN_RUN_COLUMNS each."""
    threads = parallel.THREADS if cblas.can_run_single_threaded() else 1
    return max(1, min(threads, span // MIN_RUN_COLUMNS))


def _column_runs(span: int, column_bytes: int, threads: int) -> list:
    """The (first, stop) runs of the ``span`` output columns: an equal number per thread
    (``threads`` of them), and as many as it takes for a run's output to fit in
    MAX_RUN_BYTES (``column_bytes`` per column).

    A run's output is read and written once per kernel offset: past the core's L2 cache each
    of those passes goes to L3 or memory. Measured here (batch 4, float32, 2 cores, forward,
    rotated A/B): 32 -> 32 channels at 128x128 10.3 ms in runs of 12288 columns against
    13.1 in one run per thread, 64 -> 32 at 128x128 18.4 against 24.6.
    """
    per_thread = max(1, math.ceil(span * column_bytes / (threads * MAX_RUN_BYTES)))
    return [(a, b) for a, b in parallel.even_ranges(span, threads * per_thread) if b > a]
