"""The input gradient of a strided conv (the conv_transpose2d output) as stride-1 convs of gy.

With stride s, an input row h = s*a + r (r its *phase*) is reached only by the kernel offsets
i with ``r + pad - d*i`` divisible by s, each from output row ``a - e_i``,
``e_i = (d*i - r - pad) / s``:

    gx[s*a + r] = sum over those i of  W[i]^T gy[a - e_i].

Those offsets are every ``s/gcd(s, d)``-th one, so their shifts e_i step by ``d/gcd(s, d)``,
and the sum is a stride-1 correlation of gy with the phase's sub-kernel, flipped and with its
in/out channels swapped (:func:`~minigrad.ops.conv.reversed_kernel._reversed_weight`): a
conv2d. Each of the sy*sx phases (in rows and columns) is one such conv, run on the fast
stride-1 paths (the shifted windows, the pointwise GEMM), and its output is copied into its
strided view of gx. That replaces col2im's scatter of a column buffer kh*kw times the size
of gy by a copy of gx: measured here (batch 4, float32, 2 cores), conv_transpose2d with a
3x3 kernel and stride 2, 32 channels from 64x64 to 128x128, took 7.0 ms by col2im,
3.95 ms by the phases, and PyTorch 3.8 ms.
"""

from __future__ import annotations

import dataclasses
import math

from minigrad import backend
from minigrad.ops.conv.depthwise import _is_depthwise
from minigrad.ops.conv.reversed_kernel import _reversed_weight, _weight_bound
from minigrad.ops.im2col import ConvGeometry, PaddedLayout

MIN_CHANNELS = 32
MIN_PHASE_ELEMENTS = 1 << 16


def pays(g: ConvGeometry, gy) -> bool:
    """Whether the phases compute the input gradient of ``g`` on array ``gy``: a NumPy array,
    a strided dense conv (the depthwise path has its own), not :func:`_weight_bound` (its
    small image makes col2im cheap, as for every weight-bound conv), whose windows overlap
    (disjoint ones, as in a 2x2 stride-2 transposed conv, make col2im a plain copy), with
    at least MIN_CHANNELS input channels and MIN_PHASE_ELEMENTS values per sample in each
    phase's output (about ``C*Ho*Wo``), where the phases' convs are wide enough to beat
    col2im.

    Measured here (batch 4, float32, 2 cores, 3x3 kernel, stride 2; gx channels, gy side):
    32 at 64x64 3.95 ms against 7.0 by col2im (5.2 against 9.8 in a SegNet step), 64 at
    32x32 2.44 against 3.23; but 32 at 32x32 2.9 against 1.95 in the SegNet step, 64 at
    16x16 1.80 against 1.10, 128 at 8x8 2.96 against 0.92, and 3 channels (a stem's 7x7) at
    64x64 9.1 against 3.2.
    """
    return (
        backend.is_cpu_array(gy)
        and (g.sy, g.sx) != (1, 1)
        and not _is_depthwise(g)
        and not _weight_bound(g)
        and not PaddedLayout(g).disjoint
        and g.in_channels >= MIN_CHANNELS
        and g.in_channels * g.out_h * g.out_w >= MIN_PHASE_ELEMENTS
    )


class _Axis:
    """One axis of a phase: its kernel offsets, and the stride-1 conv that gathers it.

    For phase ``r`` of an input side ``size`` (rows ``r, r + s, ...``, ``length`` of them)
    and an output side ``out``: ``offsets`` are the kernel offsets it meets, in order,
    ``dilation`` the step of their shifts, and ``first``/``stop`` the rows of gy the conv
    reads, with ``pad`` zeros above them (and zeros below, implied by ``length``).
    """

    def __init__(self, kernel: int, stride: int, pad: int, dilation: int, out: int, size: int, r):
        self.offsets = [i for i in range(kernel) if (r + pad - dilation * i) % stride == 0]
        self.length = len(range(r, size, stride))
        self.dilation = dilation // math.gcd(stride, dilation)
        if not self.offsets:
            return
        lowest = -((dilation * self.offsets[-1] - r - pad) // stride)
        highest = lowest + self.length - 1 + (len(self.offsets) - 1) * self.dilation
        self.first, self.stop = max(0, lowest), min(out, highest + 1)
        self.pad = self.first - lowest

    @property
    def empty(self) -> bool:
        """No offset reaches this phase, or none of them reads a row of gy."""
        return not self.offsets or self.length == 0 or self.stop <= self.first


def grad_input(gy, W, g: ConvGeometry, conv):
    """gx (N, C, H, W) of a strided conv2d from gy (N, Co, Ho, Wo), one stride-1 conv per
    phase (see the module docstring), each run by ``conv(x, W, geometry)`` (the dispatcher's
    conv2d forward); a phase that no kernel offset reaches, or whose offsets read no row of
    gy, is zero."""
    xp = backend.get_array_module(gy)
    gx = xp.empty(g.in_shape, dtype=gy.dtype)
    for r in range(g.sy):
        rows = _Axis(g.kh, g.sy, g.pad_h, g.dy, g.out_h, g.in_h, r)
        for q in range(g.sx):
            cols = _Axis(g.kw, g.sx, g.pad_w, g.dx, g.out_w, g.in_w, q)
            target = gx[:, :, r :: g.sy, q :: g.sx]
            if rows.empty or cols.empty:
                target[...] = 0
                continue
            sub_g = _phase_geometry(g, rows, cols)
            sub_w = W[:, :, rows.offsets][:, :, :, cols.offsets]
            flipped = _reversed_weight(sub_w, dataclasses.replace(g, kh=sub_g.kh, kw=sub_g.kw))
            window = gy[:, :, rows.first : rows.stop, cols.first : cols.stop]
            target[...] = conv(window, flipped, sub_g)
    return gx


def _phase_geometry(g: ConvGeometry, rows: _Axis, cols: _Axis) -> ConvGeometry:
    """The stride-1 conv2d of a phase: gy's rows and columns that it reads (Co channels) to
    the phase's (C channels), with the sub-kernel flipped."""
    return ConvGeometry(
        g.batch,
        g.out_channels,
        rows.stop - rows.first,
        cols.stop - cols.first,
        g.in_channels,
        rows.length,
        cols.length,
        len(rows.offsets),
        len(cols.offsets),
        1,
        1,
        rows.pad,
        cols.pad,
        rows.dilation,
        cols.dilation,
        g.groups,
    )
