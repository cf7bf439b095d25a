"""Shape ops: reshape/view, permute/transpose, flatten, (un)squeeze, expand, cat, stack,
indexing (basic and advanced) and one_hot, with PyTorch's semantics (``pad`` lives in
:mod:`minigrad.ops.padding`)."""

from __future__ import annotations

import math

from minigrad import backend
from minigrad.autograd import Function
from minigrad.ops.arguments import normalize_dim, shape_arg
from minigrad.tensor import Tensor


def infer_shape(shape: tuple, numel: int, source: tuple) -> tuple:
    """Resolve one ``-1`` in ``shape``; raise naming both shapes when sizes don't match."""
    unknown = [i for i, n in enumerate(shape) if n == -1]
    if len(unknown) > 1:
        raise ValueError(f"reshape: only one dimension can be -1, got {shape}")
    known = math.prod(n for n in shape if n != -1)
    if unknown and known and numel % known == 0:
        shape = shape[: unknown[0]] + (numel // known,) + shape[unknown[0] + 1 :]
    if math.prod(shape) != numel or any(n < 0 for n in shape):
        raise ValueError(
            f"reshape: shape {shape} is invalid for a tensor of shape {source} ({numel} elements)"
        )
    return shape


class Reshape(Function):
    def forward(self, x, shape):
        self.source = x.shape
        return x.reshape(shape)

    def backward(self, gy):
        return gy.reshape(self.source)


class Permute(Function):
    def forward(self, x, dims):
        self.inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
        return x.transpose(dims)

    def backward(self, gy):
        return gy.transpose(self.inverse)


class Expand(Function):
    """A broadcast view; the autograd walk sums the gradient back to the input shape."""

    def forward(self, x, shape):
        return backend.get_array_module(x).broadcast_to(x, shape)

    def backward(self, gy):
        return gy


class Cat(Function):
    def forward(self, *xs, dim):
        self.dim = dim
        self.bounds = [0]
        for x in xs:
            self.bounds.append(self.bounds[-1] + x.shape[dim])
        return backend.get_array_module(xs[0]).concatenate(xs, axis=dim)

    def backward(self, gy):
        index = [slice(None)] * gy.ndim
        grads = []
        for start, stop in zip(self.bounds[:-1], self.bounds[1:], strict=True):
            index[self.dim] = slice(start, stop)
            grads.append(gy[tuple(index)])
        return tuple(grads)


class Index(Function):
    """``x[key]``; repeated integer indices sum their gradients (scatter-add)."""

    def forward(self, x, key, advanced):
        self.key, self.advanced, self.shape = key, advanced, x.shape
        return x[key]

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if self.advanced:
            backend.scatter_add(gx, self.key, gy)
        else:
            gx[self.key] = gy
        return gx


def reshape(input: Tensor, *shape) -> Tensor:
    shape = infer_shape(shape_arg(shape), input.numel(), input.shape)
    return Reshape.apply(input, shape=shape)


def permute(input: Tensor, *dims) -> Tensor:
    dims = shape_arg(dims)
    if len(dims) != input.ndim:
        raise ValueError(
            f"permute: got {len(dims)} dims {dims} for a tensor of shape {input.shape}"
        )
    dims = tuple(normalize_dim(d, input.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of 0..{input.ndim - 1}")
    return Permute.apply(input, dims=dims)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(input.ndim))
    a, b = (
        normalize_dim(dim0, input.ndim, "transpose"),
        normalize_dim(dim1, input.ndim, "transpose"),
    )
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(input, dims=tuple(dims))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return reshape(input, 1)
    start = normalize_dim(start_dim, input.ndim, "flatten")
    end = normalize_dim(end_dim, input.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = (
        input.shape[:start] + (math.prod(input.shape[start : end + 1]),) + input.shape[end + 1 :]
    )
    return reshape(input, shape)


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Drop size-1 dims (all of them, or those in ``dim``; other sizes are left, as in torch)."""
    if dim is None:
        dims = range(input.ndim)
    else:
        dims = [
            normalize_dim(d, input.ndim, "squeeze")
            for d in (dim if isinstance(dim, tuple | list) else (dim,))
        ]
    drop = {d for d in dims if input.ndim and input.shape[d] == 1}
    return reshape(input, tuple(n for i, n in enumerate(input.shape) if i not in drop))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    axis = normalize_dim(dim, input.ndim + 1, "unsqueeze")
    return reshape(input, input.shape[:axis] + (1,) + input.shape[axis:])


def expand(input: Tensor, *sizes) -> Tensor:
    """A broadcast view to ``sizes`` (-1 keeps a dim), as ``torch.Tensor.expand``."""
    sizes = shape_arg(sizes)
    extra = len(sizes) - input.ndim
    if extra < 0:
        raise ValueError(f"expand: {len(sizes)} sizes {sizes} for a tensor of shape {input.shape}")
    shape = []
    for i, n in enumerate(sizes):
        old = input.shape[i - extra] if i >= extra else None
        if n == -1:
            if old is None:
                raise ValueError(f"expand: -1 is not allowed for the new leading dim {i}")
            n = old
        if old is not None and old not in (1, n):
            raise ValueError(
                f"expand: the size {old} of dim {i - extra} of shape {input.shape} "
                f"cannot expand to {n} (target {sizes})"
            )
        shape.append(n)
    return Expand.apply(input, shape=tuple(shape))


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along ``dim``; all other sizes, the dtypes and devices must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(
                f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated"
            )
    axis = normalize_dim(dim, first.ndim, "cat")
    for i, t in enumerate(tensors[1:], start=1):
        if t.ndim != first.ndim or any(
            a != b for d, (a, b) in enumerate(zip(t.shape, first.shape, strict=True)) if d != axis
        ):
            raise ValueError(
                f"cat: sizes must match except in dim {dim}: tensor 0 has shape {first.shape}, "
                f"tensor {i} has shape {t.shape}"
            )
        if t.dtype != first.dtype:
            raise TypeError(f"cat: tensor 0 has dtype {first.dtype}, tensor {i} has {t.dtype}")
    return Cat.apply(*tensors, dim=axis)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join equal-shaped tensors along a new ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors[1:], start=1):
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"stack: all tensors need the same shape: tensor 0 has {tensors[0].shape}, "
                f"tensor {i} has {t.shape}"
            )
    axis = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, axis) for t in tensors], dim=axis)


def _index_part(part, x: Tensor):
    """One element of an index key as the array module understands it."""
    if isinstance(part, Tensor):
        if part.device != x.device:
            raise backend.DeviceError(
                f"index: a {part.device} index tensor cannot index a {x.device} tensor"
            )
        return part.data
    if isinstance(part, list) or backend.is_cpu_array(part) and getattr(part, "ndim", 0) > 0:
        return x.xp.asarray(part)
    return part


def _is_index_array(part) -> bool:
    return hasattr(part, "dtype") and getattr(part, "ndim", 0) > 0


def index(input: Tensor, key) -> Tensor:
    """``input[key]`` for ints, slices, None, Ellipsis, integer arrays and boolean masks."""
    parts = key if isinstance(key, tuple) else (key,)
    parts = tuple(_index_part(p, input) for p in parts)
    integer_arrays = any(_is_index_array(p) and p.dtype.kind in "iu" for p in parts)
    if integer_arrays:
        parts = _bool_masks_as_positions(parts)
    key = parts if isinstance(key, tuple) or len(parts) != 1 else parts[0]
    try:
        return Index.apply(input, key=key, advanced=integer_arrays)
    except IndexError as exc:
        raise IndexError(f"index: {exc} (tensor of shape {input.shape})") from None


def _bool_masks_as_positions(parts: tuple) -> tuple:
    """Replace boolean masks by their integer positions, so scatter-add sees one index kind."""
    out = []
    for p in parts:
        if _is_index_array(p) and p.dtype.kind == "b":
            out.extend(p.nonzero())
        else:
            out.append(p)
    return tuple(out)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding with a new last dim, as ``torch.nn.functional.one_hot``.

    ``num_classes=-1`` reads the largest class from the data (a host sync on the GPU, as in
    PyTorch). Classes are range-checked on the CPU only, to keep GPU steps free of syncs.
    """
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor, got dtype {tensor.dtype}")
    xp = tensor.xp
    if num_classes == -1:
        num_classes = int(tensor.data.max()) + 1 if tensor.numel() else 0
    if tensor.device == "cpu" and tensor.numel():
        low, high = int(tensor.data.min()), int(tensor.data.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"one_hot: class values must be in [0, {num_classes}), got values in "
                f"[{low}, {high}]"
            )
    classes = xp.arange(num_classes, dtype=xp.int64)
    return Tensor._wrap((tensor.data[..., None] == classes).astype(xp.int64))
