"""``pad`` with PyTorch's four modes: constant, reflect, replicate and circular.

``pad`` lists (left, right) amounts starting from the last dim; a negative amount crops.
Constant padding writes the input into a filled array. The other modes fill each padded side
of a dim from the input itself, and every side is one slice of it:

- reflect, mirrored about the edge without repeating it: ``x[left:0:-1]`` on the left;
- replicate, the edge value repeated: ``x[0:1]``, broadcast;
- circular, wrapped around: ``x[size - left:]`` on the left.

So the forward is a few slice copies per padded dim and the backward their adjoints (slice
additions, a sum for a replicated edge): no index arrays, no scatter, nothing to upload to a
GPU, and the cost is one pass over the output whatever the mode.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from minigrad import backend
from minigrad.autograd import Function
from minigrad.tensor import Tensor

MODES = ("constant", "reflect", "replicate", "circular")


class ConstantPad(Function):
    """Pad (or crop, for negative amounts) with a constant; the gradient is the inner window."""

    def forward(self, x, widths, value):
        xp = backend.get_array_module(x)
        y = xp.full(_padded_shape(x.shape, widths), value, dtype=x.dtype)
        self.src, self.dst = _pad_windows(x.shape, widths)
        self.shape = x.shape
        y[self.dst] = x[self.src]
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        gx[self.src] = gy[self.dst]
        return gx


def _padded_shape(shape: tuple, widths: tuple) -> tuple:
    return tuple(n + lo + hi for n, (lo, hi) in zip(shape, widths, strict=True))


def _kept(size: int, left: int, right: int) -> tuple[slice, slice]:
    """The input positions of one dim that survive its crops (negative amounts), and where
    they land in the output: (source slice, output slice)."""
    lo, hi = max(-left, 0), size - max(-right, 0)
    start = max(left, 0)
    return slice(lo, max(lo, hi)), slice(start, start + max(hi - lo, 0))


def _pad_windows(shape: tuple, widths: tuple) -> tuple[tuple, tuple]:
    """The slices of the input kept and where they land in the padded output, every dim."""
    windows = [_kept(n, lo, hi) for n, (lo, hi) in zip(shape, widths, strict=True)]
    return tuple(src for src, _ in windows), tuple(dst for _, dst in windows)


@dataclass(frozen=True)
class _Segment:
    """Output positions ``out`` of one dim filled from input positions ``src`` of that dim.

    ``kind`` is "copy" (same order), "reversed" (src read backwards) or "edge" (one input
    position, broadcast over all of ``out``).
    """

    out: slice
    src: slice
    kind: str


def _segments(size: int, left: int, right: int, mode: str) -> list:
    """How one dim of ``size`` padded by (left, right) in ``mode`` is filled from the input.

    Negative amounts crop, keeping input positions ``[lo, hi)`` (at least one, see
    :func:`_check_amounts`). PyTorch then mirrors and repeats the edges of the whole input (a
    crop on one side does not move the other side's edge) but wraps around the kept part
    only; the same rules here.
    """
    kept_src, kept_out = _kept(size, left, right)
    lo, hi = kept_src.start, kept_src.stop
    left, right = max(left, 0), max(right, 0)
    segments = [_Segment(kept_out, kept_src, "copy")]
    if left:
        src, kind = {
            "reflect": (slice(1, left + 1), "reversed"),
            "replicate": (slice(0, 1), "edge"),
            "circular": (slice(hi - left, hi), "copy"),
        }[mode]
        segments.append(_Segment(slice(0, left), src, kind))
    if right:
        src, kind = {
            "reflect": (slice(size - 1 - right, size - 1), "reversed"),
            "replicate": (slice(size - 1, size), "edge"),
            "circular": (slice(lo, lo + right), "copy"),
        }[mode]
        segments.append(_Segment(slice(kept_out.stop, kept_out.stop + right), src, kind))
    return segments


@dataclass(frozen=True)
class _PaddedDim:
    """One padded dim of an :class:`EdgePad`: its axis, input and output sizes, segments."""

    axis: int
    size: int
    out_size: int
    segments: tuple


def _along(axis: int, ndim: int, index: slice) -> tuple:
    """An index tuple applying ``index`` to ``axis`` only."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


class EdgePad(Function):
    """Reflect, replicate or circular padding: each padded side is one slice of the input.

    ``plan`` is a tuple of :class:`_PaddedDim`, in the order they are applied.
    """

    def forward(self, x, plan):
        xp = backend.get_array_module(x)
        self.plan = plan
        y = x
        for dim in plan:
            source, axis = y, dim.axis
            shape = list(source.shape)
            shape[axis] = dim.out_size
            y = xp.empty(tuple(shape), dtype=x.dtype)
            for s in dim.segments:
                part = source[_along(axis, source.ndim, s.src)]
                if s.kind == "reversed":
                    part = xp.flip(part, axis)
                y[_along(axis, y.ndim, s.out)] = part
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        g = gy
        for dim in reversed(self.plan):
            axis = dim.axis
            shape = list(g.shape)
            shape[axis] = dim.size
            gx = xp.zeros(tuple(shape), dtype=g.dtype)
            for s in dim.segments:
                part = g[_along(axis, g.ndim, s.out)]
                if s.kind == "reversed":
                    part = xp.flip(part, axis)
                elif s.kind == "edge":
                    part = part.sum(axis=axis, keepdims=True)
                gx[_along(axis, gx.ndim, s.src)] += part
            g = gx
        return g


def _widths(input: Tensor, pad) -> list:
    """(left, right) per dim of ``input`` from PyTorch's flat ``pad`` (last dim first)."""
    if isinstance(pad, str | bytes) or not hasattr(pad, "__len__"):
        raise TypeError(f"pad: pad must be a tuple or list of ints, got {pad!r}")
    for p in pad:
        if isinstance(p, bool) or not isinstance(p, numbers.Integral):
            raise TypeError(f"pad: every padding amount must be an int, got {p!r} in {pad!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(
            f"pad: expected an even number of amounts, at most 2 * ndim = {2 * input.ndim}, "
            f"got {pad}"
        )
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return widths


def _check_edge_padding(input: Tensor, pad, mode: str, value) -> None:
    """PyTorch's limits for the non-constant modes: 1 to 3 padded dims, each with one or two
    dims in front (batch and channels), no fill value, amounts the input can supply."""
    if value not in (None, 0):
        raise ValueError(f"pad: padding mode {mode!r} doesn't take a value argument, got {value}")
    dims = len(pad) // 2
    if dims not in (1, 2, 3) or input.ndim not in (dims + 1, dims + 2):
        raise ValueError(
            f"pad: {mode} padding of {dims} dims (pad of length {len(pad)}) needs a "
            f"{dims + 1}-d or {dims + 2}-d input (channels or batch and channels first), got "
            f"a {input.ndim}-d input of shape {input.shape}"
        )


def _check_amounts(shape: tuple, widths: list, mode: str) -> None:
    """Every padded side can be filled in ``mode`` (see :func:`_segments`)."""
    for axis, (size, (left, right)) in enumerate(zip(shape, widths, strict=True)):
        largest = max(left, right)
        if largest <= 0:
            continue
        kept = size - max(-left, 0) - max(-right, 0)
        if kept <= 0:
            raise ValueError(
                f"pad: {mode} padding ({left}, {right}) of dim {axis} keeps none of its {size} "
                f"entries to pad from (input shape {shape})"
            )
        if mode == "reflect" and largest >= size:
            raise ValueError(
                f"pad: reflect padding must be less than the size of dim {axis}: got padding "
                f"({left}, {right}) for size {size} (input shape {shape})"
            )
        if mode == "circular" and largest > kept:
            raise ValueError(
                f"pad: circular padding ({left}, {right}) of dim {axis} wraps around more than "
                f"once: at most the {kept} entries kept of its size {size} (input shape {shape})"
            )


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad (or crop) the trailing dims of ``input``, as ``torch.nn.functional.pad``.

    Args:
        input: a Tensor of any shape (1 to 3 trailing dims after 1 or 2 leading ones for the
            non-constant modes).
        pad: (left, right) amounts from the last dim backwards, e.g. (left, right, top,
            bottom) for images; negative amounts crop.
        mode: "constant", "reflect" (mirror without the edge), "replicate" (edge repeated)
            or "circular" (wrap around).
        value: the fill of constant padding (None means 0).

    Shapes:
        output: each padded dim grows by left + right.

    Raises:
        TypeError: ``pad`` not a tuple or list of ints.
        ValueError: an unknown mode, an odd or too long ``pad``, an amount the mode cannot
        fill (crops that leave nothing, reflect of the dim's size or more, circular of more
        than what the crops keep), a size that would be negative, a non-zero ``value`` for a
        non-constant mode.
    """
    if mode not in MODES:
        raise ValueError(f"pad: unknown padding mode {mode!r}, expected one of {MODES}")
    widths = _widths(input, pad)
    shape = _padded_shape(input.shape, widths)
    if any(n < 0 for n in shape):
        raise ValueError(
            f"pad: padding {tuple(pad)} makes a negative size {shape} from shape {input.shape}"
        )
    if mode == "constant":
        return ConstantPad.apply(input, widths=tuple(widths), value=0 if value is None else value)
    _check_edge_padding(input, pad, mode, value)
    _check_amounts(input.shape, widths, mode)
    plan = tuple(
        _PaddedDim(axis, n, shape[axis], tuple(_segments(n, lo, hi, mode)))
        for axis, (n, (lo, hi)) in reversed(list(enumerate(zip(input.shape, widths, strict=True))))
        if (lo, hi) != (0, 0)
    )
    return EdgePad.apply(input, plan=plan)
