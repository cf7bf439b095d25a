"""Weight-bound convs (a small image, many channels) on compact pixel-major columns.

im2col's wide layout (:mod:`minigrad.ops.im2col`) gives each output row ``wp - Wo`` extra
columns: a quarter more GEMM work at 8x8 with a 3x3 kernel, half as much again at 4x4. A conv
whose weight outnumbers its input (:func:`~minigrad.ops.conv.reversed_kernel._weight_bound`:
ResNet34's 256 channels at 8x8 and 512 at 4x4) spends nearly all its time in its GEMMs, each
reading the large weight, so the extra columns cost their full share. Here the columns are
compact and *pixel-major*, ``col (N*Ho*Wo, C*kh*kw)``:

- the input is zero-padded once into channels-last images (N, hp, wp, C), and each kernel
  offset's window (N, Ho, Wo, C) is one copy whose inner loop runs over C contiguous
  channels (an NCHW compact copy would run over Wo = 4 or 8 values);
- the rows of ``col`` keep the weight's (c, i, j) order, so W (Co, C*kh*kw) is the other
  GEMM operand as it is, and the weight gradient comes out in W's layout: no weight-sized
  copy is ever made. BLAS reads ``col`` transposed through its flags.

Then ``y = W @ col^T``, ``gW = gy @ col`` and ``gcol = gy^T @ W``, added back into the
channels-last padded gradient (the adjoint of the copies) and transposed to (N, C, H, W).
The sums run over the same products as im2col's, in the order BLAS picks for these operand
layouts: the results agree with im2col's to rounding. Measured here (batch 4, float32, 2
cores; the input gradient and weight gradient one after the other), 512 channels at 4x4:
forward 1.31 ms against 1.74 by wide im2col, both gradients 2.38 against 3.50; 256 channels
at 8x8: 1.28 against 1.35 and 2.40 against 2.69. The columns have no extra entries, so no
inf in x can meet a zero it should not.
"""

from __future__ import annotations

from minigrad import backend
from minigrad.ops.im2col import ConvGeometry, PaddedLayout, scratch


def supported(g: ConvGeometry, array) -> bool:
    """Whether this path runs a weight-bound conv of geometry ``g`` on ``array``: a NumPy
    array (the GPU keeps the path it was measured on), a dense stride-1 conv (a strided one
    has no extra columns to save) with a kernel larger than 1x1."""
    return (
        backend.is_cpu_array(array)
        and g.groups == 1
        and (g.sy, g.sx) == (1, 1)
        and g.kh * g.kw > 1
        and min(g.batch, g.in_channels, g.out_channels, g.out_h, g.out_w) > 0
    )


def _padded_sides(g: ConvGeometry) -> tuple:
    """(hp, wp): the padded image's sides, wide enough for every window (im2col's own)."""
    layout = PaddedLayout(g)
    return layout.hp, layout.wp


def _windows(padded, g: ConvGeometry):
    """Each kernel offset's window of channels-last padded images (N, hp, wp, C): yields
    ((i, j), a (N, Ho, Wo, C) view)."""
    for i in range(g.kh):
        for j in range(g.kw):
            top, left = i * g.dy, j * g.dx
            yield (i, j), padded[:, top : top + g.out_h, left : left + g.out_w]


def _interior(padded, g: ConvGeometry):
    """The (N, H, W, C) unpadded part of channels-last padded images."""
    return padded[:, g.pad_h : g.pad_h + g.in_h, g.pad_w : g.pad_w + g.in_w]


def _columns(x, g: ConvGeometry):
    """x (N, C, H, W) as pixel-major columns (N*Ho*Wo, C*kh*kw), rows in W's (c, i, j) order,
    in a scratch buffer of this thread."""
    xp = backend.get_array_module(x)
    padded = xp.zeros((g.batch, *_padded_sides(g), g.in_channels), dtype=x.dtype)
    _interior(padded, g)[...] = x.transpose(0, 2, 3, 1)
    pixels = g.batch * g.out_h * g.out_w
    col = scratch(x, pixels * g.col_rows, "pixel columns")
    col6 = col.reshape(g.batch, g.out_h, g.out_w, g.in_channels, g.kh, g.kw)
    for (i, j), window in _windows(padded, g):
        col6[..., i, j] = window
    return col.reshape(pixels, g.col_rows)


def _channel_major(array):
    """(N, C, h, w) as a new (C, N*h*w) array: the GEMM operand of one channel per row."""
    xp = backend.get_array_module(array)
    n, c, h, w = array.shape
    return xp.ascontiguousarray(array.transpose(1, 0, 2, 3)).reshape(c, n * h * w)


def forward(x, W, g: ConvGeometry):
    """The conv2d of x (N, C, H, W) and W (Co, C, kh, kw): y (N, Co, Ho, Wo)."""
    xp = backend.get_array_module(x)
    out = xp.matmul(W.reshape(g.out_channels, g.col_rows), _columns(x, g).T)
    out = out.reshape(g.out_channels, g.batch, g.out_h, g.out_w)
    return xp.ascontiguousarray(out.transpose(1, 0, 2, 3))


def grad_weight(x, gy, g: ConvGeometry, out=None):
    """The weight gradient ``gy @ col`` (Co, C, kh, kw) of x and gy (N, Co, Ho, Wo), written
    into ``out`` (a C-contiguous array of the weight's shape) when given."""
    xp = backend.get_array_module(x)
    if out is not None and not out.flags.c_contiguous:
        raise ValueError("pixel_major.grad_weight: out must be C-contiguous")
    target = None if out is None else out.reshape(g.out_channels, g.col_rows)
    return xp.matmul(_channel_major(gy), _columns(x, g), out=target).reshape(g.weight_shape)


def grad_input(gy, W, g: ConvGeometry):
    """The input gradient gx (N, C, H, W): ``gcol = gy^T @ W``, each kernel offset's columns
    added back into its window of channels-last padded images."""
    xp = backend.get_array_module(gy)
    pixels = g.batch * g.out_h * g.out_w
    gcol = scratch(gy, pixels * g.col_rows, "pixel columns").reshape(pixels, g.col_rows)
    xp.matmul(_channel_major(gy).T, W.reshape(g.out_channels, g.col_rows), out=gcol)
    gcol6 = gcol.reshape(g.batch, g.out_h, g.out_w, g.in_channels, g.kh, g.kw)
    padded = xp.zeros((g.batch, *_padded_sides(g), g.in_channels), dtype=gy.dtype)
    for (i, j), window in _windows(padded, g):
        window += gcol6[..., i, j]
    return xp.ascontiguousarray(_interior(padded, g).transpose(0, 3, 1, 2))
