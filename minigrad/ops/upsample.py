"""Resizing: ``interpolate`` with modes "nearest" and "bilinear", on PyTorch's pixel grid.

Both modes are separable linear maps: the output is ``Ah @ X @ Aw^T`` for each (N, C) plane X,
with small interpolation matrices Ah (Ho, H) and Aw (Wo, W) that hold PyTorch's source
indices and weights. Bilinear runs exactly that, as one large GEMM and one batched GEMM
(ordered to keep the batched one small), and its backward is ``Ah^T @ G @ Aw``. Nearest
gathers rows and columns instead (exact, and any dtype), or repeats them for a 2x factor;
its backward is the same transposed product with one-hot matrices, or pairwise sums for 2x.
"""

from __future__ import annotations

import functools
import math
import numbers

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.arguments import is_int
from minigrad.tensor import Tensor

MODES = ("nearest", "bilinear")
_TORCH_ONLY_MODES = ("linear", "bicubic", "trilinear", "area", "nearest-exact", "lanczos")
_VECTORIZED_NEAREST_LIMIT = 128
"""PyTorch's CPU nearest kernel takes its "vectorized" path, with float32 source indices and
exact 1x/2x shortcuts, when ``Ho + Wo`` is at most this; above, its generic path."""


# --------------------------------------------------------------------------- source indices


def _opmath(xp, dtype):
    """The type PyTorch computes coordinates in: float64 for float64 data, else float32."""
    return xp.float64 if dtype == xp.float64 else xp.float32


def _scale(opmath, n_in: int, n_out: int, scale_factor: float | None):
    """PyTorch's ``compute_scales_value``: 1 / scale_factor when given, else in / out."""
    if scale_factor is not None and scale_factor > 0:
        return opmath(1.0 / scale_factor)
    return opmath(n_in) / opmath(n_out)


@functools.lru_cache(maxsize=128)
def nearest_source(xp, n_in: int, n_out: int, scale_factor: float | None, vectorized: bool, opmath):
    """The input index each output index copies along one axis, as PyTorch computes it.

    ``floor(dst * scale)`` clipped to ``n_in - 1``, with scale = 1 / scale_factor (when given)
    or n_in / n_out. PyTorch's vectorized path works in float32 and copies directly when
    ``n_out`` is ``n_in`` or ``2 * n_in``; its generic path works in ``opmath`` (float64 for
    float64 data) and rounds to float32 before the floor.
    """
    dst = xp.arange(n_out, dtype=xp.int64)
    if vectorized and n_out == n_in:
        return dst
    if vectorized and n_out == 2 * n_in:
        return dst >> 1
    opmath = xp.float32 if vectorized else opmath
    source = dst.astype(opmath) * _scale(opmath, n_in, n_out, scale_factor)
    return xp.minimum(xp.floor(source.astype(xp.float32)).astype(xp.int64), n_in - 1)


@functools.lru_cache(maxsize=128)
def linear_weights(
    xp, n_in: int, n_out: int, align_corners: bool, scale_factor: float | None, dtype
):
    """The (n_out, n_in) matrix of PyTorch's linear interpolation along one axis.

    align_corners: ``src = dst * (n_in - 1) / (n_out - 1)``; otherwise
    ``src = max((dst + 0.5) * scale - 0.5, 0)`` with scale as in :func:`nearest_source`.
    Output ``dst`` mixes inputs ``i0 = floor(src)`` and ``i1 = min(i0 + 1, n_in - 1)`` with
    weights ``1 - l`` and ``l = src - i0``; equal sizes copy.
    """
    if n_out == n_in:
        return xp.eye(n_in, dtype=dtype)
    opmath = _opmath(xp, dtype)
    dst = xp.arange(n_out, dtype=opmath)
    if align_corners:
        step = opmath(n_in - 1) / opmath(n_out - 1) if n_out > 1 else opmath(0)
        source = dst * step
    else:
        step = _scale(opmath, n_in, n_out, scale_factor)
        source = xp.maximum((dst + opmath(0.5)) * step - opmath(0.5), opmath(0))
    i0 = xp.minimum(xp.floor(source.astype(xp.float32)).astype(xp.int64), n_in - 1)
    lam = xp.clip(source - i0.astype(opmath), opmath(0), opmath(1))
    i1 = i0 + (i0 < n_in - 1)
    columns = xp.arange(n_in, dtype=xp.int64)
    first = (columns == i0[:, None]) * (1 - lam)[:, None]
    second = (columns == i1[:, None]) * lam[:, None]
    return (first + second).astype(dtype)


# --------------------------------------------------------------------------- separable maps


def separable_map(x, rows, cols):
    """``rows @ P @ cols^T`` for every (N, C) plane P of ``x``: one GEMM and one batched GEMM.

    Shapes: x (N, C, H, W), rows (Ho, H), cols (Wo, W) -> (N, C, Ho, Wo). The order with the
    smaller batched product goes first; the other pass is a single (N*C*rows, W) GEMM.
    """
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    ho, wo = rows.shape[0], cols.shape[0]
    planes = x.reshape(n * c, h, w)
    if 2 * ho * h * w + ho * w * wo <= h * w * wo + 2 * ho * h * wo:
        tall = xp.matmul(rows, planes).reshape(n * c * ho, w)
        out = tall @ cols.T
    else:
        wide = (planes.reshape(n * c * h, w) @ cols.T).reshape(n * c, h, wo)
        out = xp.matmul(rows, wide)
    return out.reshape(n, c, ho, wo)


class Bilinear(Function):
    """``Ah @ X @ Aw^T`` per plane; the backward is ``Ah^T @ G @ Aw``.

    The products run over every input row and column, so a non-finite input value makes its
    whole output plane NaN (0 * inf), where PyTorch's 4-tap sums keep it local.
    """

    def forward(self, x, rows, cols):
        self.rows, self.cols = rows, cols
        return separable_map(x, rows, cols)

    def backward(self, gy):
        return separable_map(gy, self.rows.T, self.cols.T)


class Nearest(Function):
    """Copy the source rows and columns (repeat them for 2x); the backward sums them back.

    ``source`` and ``backward_source`` hold, per axis, the index array or None for an exact
    2x repeat. PyTorch's backward always follows its vectorized index rule, even where its
    forward took the generic one (large outputs), so the two may differ.
    """

    def forward(self, x, source, backward_source):
        xp = backend.get_array_module(x)
        self.in_size, self.backward_source = x.shape[2:], backward_source
        y = x
        for axis, index in zip((2, 3), source, strict=True):
            y = xp.repeat(y, 2, axis=axis) if index is None else xp.take(y, index, axis=axis)
        return y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        (rows, cols), (h, w) = self.backward_source, self.in_size
        if rows is None and cols is None:
            pairs = gy[..., 0::2] + gy[..., 1::2]
            return pairs[..., 0::2, :] + pairs[..., 1::2, :]
        return separable_map(
            gy, _one_hot(xp, rows, h, gy.dtype).T, _one_hot(xp, cols, w, gy.dtype).T
        )


def _one_hot(xp, source, n_in: int, dtype):
    """The (n_out, n_in) 0/1 matrix that copies input ``source[o]`` to output ``o``
    (``source`` None: the 2x repeat)."""
    if source is None:
        source = xp.arange(2 * n_in, dtype=xp.int64) >> 1
    return (xp.arange(n_in, dtype=xp.int64) == source[:, None]).astype(dtype)


def _nearest_plan(xp, in_size, out_size, scales, vectorized: bool, opmath) -> tuple:
    """Per axis: None when output index ``dst`` copies input ``dst // 2``, else the indices.

    Decided from the sizes and factors alone, never from array data.
    """
    plan = []
    for n_in, n_out, scale in zip(in_size, out_size, scales, strict=True):
        exact_half = scale is None or scale == 2.0
        if n_out == 2 * n_in and (vectorized or exact_half):
            plan.append(None)
        else:
            plan.append(nearest_source(xp, n_in, n_out, scale, vectorized, opmath))
    return tuple(plan)


# --------------------------------------------------------------------------- arguments


def _spatial_pair(value, name: str) -> tuple:
    items = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(items) != 2:
        raise ValueError(
            f"interpolate: {name} must be a number or a sequence of 2 (one per spatial "
            f"dimension of a 4-D input), got {value!r}"
        )
    return items


def output_geometry(x: Tensor, size, scale_factor, recompute_scale_factor) -> tuple:
    """(out_size, scales) as PyTorch's ``interpolate`` derives them.

    With ``scale_factor`` the size is ``floor(in * scale_factor)``, and the factor itself
    sets the coordinate scale unless ``recompute_scale_factor`` is True (then in / out does).
    """
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    if size is not None and recompute_scale_factor:
        raise ValueError(
            "interpolate: recompute_scale_factor is not meaningful with an explicit size"
        )
    if size is not None:
        out_size = _spatial_pair(size, "size")
        if not all(is_int(n) for n in out_size):
            raise TypeError(f"interpolate: size must hold ints, got {size!r}")
        out_size = tuple(int(n) for n in out_size)
        scales = (None, None)
    else:
        factors = _spatial_pair(scale_factor, "scale_factor")
        if not all(isinstance(f, numbers.Real) and not isinstance(f, bool) for f in factors):
            raise TypeError(f"interpolate: scale_factor must hold numbers, got {scale_factor!r}")
        out_size = tuple(
            math.floor(n * float(f)) for n, f in zip(x.shape[2:], factors, strict=True)
        )
        scales = (None, None) if recompute_scale_factor else tuple(float(f) for f in factors)
    if min(out_size) <= 0:
        raise ValueError(
            f"interpolate: input and output sizes should be greater than 0, got input "
            f"{tuple(x.shape[2:])} and output {tuple(out_size)}"
        )
    return tuple(out_size), scales


def _check_mode(mode: str, align_corners) -> None:
    if mode in _TORCH_ONLY_MODES:
        raise NotImplementedError(
            f"interpolate: mode {mode!r} is not implemented; available modes are {MODES}"
        )
    if mode not in MODES:
        raise ValueError(f"interpolate: mode must be one of {MODES}, got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(
            "interpolate: align_corners option can only be set with the interpolating modes "
            f"(bilinear), got align_corners={align_corners!r} with mode='nearest'"
        )


def interpolate(
    input: Tensor,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dimensions, as ``torch.nn.functional.interpolate``.

    Args:
        input: (N, C, H, W) tensor (floating point for "bilinear").
        size: output (Ho, Wo), or one int for both.
        scale_factor: a number or a pair; the output size is ``floor(H * scale_factor)``.
            Give exactly one of ``size`` and ``scale_factor``.
        mode: "nearest" (``src = floor(dst * scale)``) or "bilinear".
        align_corners: bilinear only (default False). True maps corner pixel centres onto
            each other, ``src = dst * (H - 1) / (Ho - 1)``; False uses
            ``src = max((dst + 0.5) * scale - 0.5, 0)``.
        recompute_scale_factor: True computes the coordinate scale from the sizes (H / Ho)
            instead of using 1 / scale_factor.
        antialias: must be False (not implemented).

    Shapes:
        input (N, C, H, W) -> (N, C, Ho, Wo), with ``Ho = size[0]`` or
        ``Ho = floor(H * scale_factor[0])`` (likewise Wo).

    PyTorch computes nearest source indices in float32 (float64 data on its generic path,
    taken when Ho + Wo > 128); both rules are followed here, including PyTorch's backward,
    which always uses the float32 rule. Bilinear is two matrix products per plane: an inf or
    NaN in a plane turns that whole output plane NaN.

    Reference (bilinear): :func:`minigrad.reference.interpolate_bilinear` and
    :func:`minigrad.reference.interpolate_bilinear_backward`, the same two interpolation
    matrices. This op adds: the matrices built once per size and dtype (cached); the two
    products ordered so that the batched GEMM is the smaller one and the other is a single
    (N*C*rows, W) GEMM; PyTorch's coordinate arithmetic for float32 data (float32 source
    coordinates); ``scale_factor``. Nearest is its own spec: an index gather (a repeat for 2x)
    whose backward sums the copies back.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: input must be a Tensor, got {type(input).__name__}")
    _check_mode(mode, align_corners)
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not implemented")
    if input.ndim != 4 or min(input.shape[1:]) == 0:
        raise ValueError(
            f"interpolate: expected a non-empty 4-D input (N, C, H, W), got shape {input.shape}"
        )
    out_size, scales = output_geometry(input, size, scale_factor, recompute_scale_factor)
    xp, in_size = input.xp, tuple(input.shape[2:])
    if mode == "bilinear":
        if input.dtype.kind != "f":
            raise TypeError(
                f"interpolate: bilinear needs a floating-point input, got {input.dtype}"
            )
        corners = bool(align_corners)
        rows, cols = (
            linear_weights(xp, n_in, n_out, corners, scale, input.dtype)
            for n_in, n_out, scale in zip(in_size, out_size, scales, strict=True)
        )
        return Bilinear.apply(input, rows=rows, cols=cols)
    opmath = _opmath(xp, input.dtype)
    vectorized = sum(out_size) <= _VECTORIZED_NEAREST_LIMIT
    source = _nearest_plan(xp, in_size, out_size, scales, vectorized, opmath)
    backward_source = _nearest_plan(xp, in_size, out_size, scales, True, opmath)
    return Nearest.apply(input, source=source, backward_source=backward_source)
