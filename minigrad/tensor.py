"""``Tensor``: an array (numpy on "cpu", cupy on "gpu"), its gradient and the op that made it.

The operators and methods mirror ``torch.Tensor``; each one calls a function of
:mod:`minigrad.ops`, where the op and its backward live side by side.
"""

from __future__ import annotations

import numpy

from minigrad import autograd, backend

float32 = numpy.float32
float64 = numpy.float64
float16 = numpy.float16
int64 = numpy.int64
int32 = numpy.int32
uint8 = numpy.uint8
bool_ = numpy.bool_

_DEFAULT_FLOAT = numpy.dtype(numpy.float32)


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _default_dtype(value, array) -> numpy.dtype:
    """PyTorch's inference: Python floats become float32, ints int64, arrays keep their dtype."""
    if backend.is_cpu_array(value):
        return array.dtype
    if array.dtype.kind == "f":
        return _DEFAULT_FLOAT
    if array.dtype.kind in "iu":
        return numpy.dtype(numpy.int64)
    return array.dtype


def _to_array(data, dtype, device: str):
    """A new array on ``device`` holding ``data`` (a Tensor, numpy/cupy array, torch tensor,
    nested list or number); it never shares memory with ``data``, as ``torch.tensor``."""
    xp = backend.array_module(device)
    if isinstance(data, Tensor):
        data = data.data
    if _is_torch_tensor(data):
        data = data.detach().cpu().numpy()
    if backend.is_gpu_array(data):
        array = backend.to_device(data, device)
        fresh = array is not data
    else:
        host = numpy.asarray(data)
        if host.dtype == object:
            raise TypeError(f"tensor(): cannot build a tensor from {type(data).__name__} data")
        host = host.astype(dtype or _default_dtype(data, host), copy=False)
        array = host if xp is numpy else xp.asarray(host)
        fresh = array is not data
    if dtype is not None and array.dtype != numpy.dtype(dtype):
        return array.astype(dtype)
    return array if fresh else array.copy()


class Tensor:
    """A multi-dimensional array with reverse-mode autograd, as ``torch.Tensor``.

    Attributes:
        data: the numpy (cpu) or cupy (gpu) array.
        grad: a Tensor with the accumulated gradient, or None.
        requires_grad: whether ops on it are recorded for backward.
        grad_fn: the Function that produced it (None for leaves).
    """

    __array_priority__ = 1000  # numpy operators defer to Tensor's reflected operators

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        if device is None:
            source = data.data if isinstance(data, Tensor) else data
            device = backend.GPU if backend.is_gpu_array(source) else backend.CPU
        self.data = _to_array(data, dtype, backend.canonical_device(device))
        self.grad: Tensor | None = None
        self.grad_fn = None
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @classmethod
    def _wrap(cls, array, requires_grad: bool = False, grad_fn=None) -> Tensor:
        """A tensor around an existing array, without copying or checking (ops use this)."""
        t = cls.__new__(cls)
        t.data = numpy.asarray(array) if isinstance(array, numpy.generic) else array
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = requires_grad
        return t

    # ---- properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> numpy.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def xp(self):
        """The array module of this tensor's data."""
        return backend.get_array_module(self.data)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = numpy.array2string(
            backend.to_host(self.data), separator=", ", prefix="tensor(", precision=4
        )
        extras = [f"device='{self.device}'"] if self.device != backend.CPU else []
        if self.dtype not in (numpy.float32, numpy.int64, numpy.bool_):
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    # ---- autograd ---------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype.kind not in "fc":
            raise RuntimeError(
                f"only floating point tensors can require gradients, got dtype {self.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``, as ``torch.Tensor.backward``."""
        if not self.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    "grad can be implicitly created only for scalar outputs, "
                    f"got shape {self.shape}"
                )
            grad = self.xp.ones(self.data.shape, dtype=self.dtype)
        else:
            grad = gradient.data if isinstance(gradient, Tensor) else gradient
            grad = _to_array(grad, self.dtype, self.device)
            if tuple(grad.shape) != self.shape:
                raise RuntimeError(
                    f"backward: gradient has shape {tuple(grad.shape)}, expected {self.shape}"
                )
        autograd.run_backward(self, grad, retain_graph=retain_graph)

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data)

    def zero_(self) -> Tensor:
        self.data[...] = 0
        return self

    # ---- conversion -------------------------------------------------------------------
    def numpy(self) -> numpy.ndarray:
        """The values as a host numpy array (a copy for gpu tensors)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on a tensor that requires grad; use detach()")
        return backend.to_host(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): a tensor with {self.data.size} elements has no single value")
        return self.data.reshape(()).item()

    def tolist(self):
        return backend.to_host(self.data).tolist()

    def to(self, target=None, dtype=None) -> Tensor:
        """A copy on another device and/or dtype (``to("gpu")``, ``to(mg.float64)``)."""
        if target is not None and not isinstance(target, str):
            dtype, target = target, None
        same_device = target is None or backend.canonical_device(target) == self.device
        if same_device and (dtype is None or numpy.dtype(dtype) == self.dtype):
            return self
        from minigrad.ops.elementwise import to_copy

        return to_copy(self, device=target, dtype=dtype)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("gpu")

    def float(self) -> Tensor:
        return self.to(float32)

    def double(self) -> Tensor:
        return self.to(float64)

    def long(self) -> Tensor:
        return self.to(int64)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError("Boolean value of a tensor with more than one value is ambiguous")
        return bool(self.item())

    def __hash__(self) -> int:
        return id(self)


def tensor(data, dtype=None, device="cpu", requires_grad: bool = False) -> Tensor:
    """A new leaf tensor, as ``torch.tensor`` (Python floats -> float32, arrays keep dtype)."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, as ``torch.as_tensor``: a Tensor already of that dtype and device
    is returned as it is, anything else is converted."""
    if isinstance(data, Tensor):
        same_dtype = dtype is None or data.dtype == numpy.dtype(dtype)
        same_device = device is None or backend.canonical_device(device) == data.device
        if same_dtype and same_device:
            return data
        return data.to(device or data.device, dtype=dtype)
    return Tensor(data, dtype=dtype, device=device)


def _scalar_dtype(value, like: Tensor) -> numpy.dtype:
    """The dtype a Python scalar takes next to ``like`` (PyTorch's weak scalars)."""
    if isinstance(value, float) and like.dtype.kind not in "fc":
        return _DEFAULT_FLOAT
    if isinstance(value, int) and not isinstance(value, bool) and like.dtype.kind == "b":
        return numpy.dtype(numpy.int64)
    return like.dtype


def operand(value, like: Tensor) -> Tensor:
    """The other operand of a binary op with ``like``, as a tensor on ``like``'s device.

    Python and NumPy scalars take ``like``'s dtype (``x * 2`` stays float32, as in PyTorch)
    and are filled on the device, not uploaded. Arrays on another device raise.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, bool | int | float):
        return Tensor._wrap(like.xp.full((), value, dtype=_scalar_dtype(value, like)))
    if backend.is_array(value) and backend.device_of(value) != like.device:
        raise backend.DeviceError(
            f"expected all tensors on the same device, got a {backend.device_of(value)} array "
            f"and a {like.device} tensor"
        )
    return Tensor(value, device=like.device)


def _bind_operators() -> None:
    """Attach the operators and methods of ``torch.Tensor`` that call :mod:`minigrad.ops`."""
    from minigrad.ops import activation, elementwise, matmul, reduction, shape

    ew = elementwise

    def reflected(fn):
        return lambda self, other: fn(operand(other, self), self)

    methods = {
        "__add__": ew.add,
        "__radd__": reflected(ew.add),
        "__sub__": ew.sub,
        "__rsub__": reflected(ew.sub),
        "__mul__": ew.mul,
        "__rmul__": reflected(ew.mul),
        "__truediv__": ew.div,
        "__rtruediv__": reflected(ew.div),
        "__pow__": ew.pow,
        "__rpow__": reflected(ew.pow),
        "__matmul__": matmul.matmul,
        "__rmatmul__": reflected(matmul.matmul),
        "__neg__": ew.neg,
        "__abs__": ew.abs,
        "__eq__": lambda a, b: ew.compare("eq", a, b),
        "__ne__": lambda a, b: ew.compare("ne", a, b),
        "__lt__": lambda a, b: ew.compare("lt", a, b),
        "__le__": lambda a, b: ew.compare("le", a, b),
        "__gt__": lambda a, b: ew.compare("gt", a, b),
        "__ge__": lambda a, b: ew.compare("ge", a, b),
        "__getitem__": shape.index,
        "add": ew.add,
        "sub": ew.sub,
        "mul": ew.mul,
        "div": ew.div,
        "pow": ew.pow,
        "neg": ew.neg,
        "exp": ew.exp,
        "log": ew.log,
        "sqrt": ew.sqrt,
        "abs": ew.abs,
        "maximum": ew.maximum,
        "minimum": ew.minimum,
        "clamp": ew.clamp,
        "clip": ew.clamp,
        "relu": activation.relu,
        "sigmoid": activation.sigmoid,
        "tanh": activation.tanh,
        "softmax": activation.softmax,
        "log_softmax": activation.log_softmax,
        "sum": reduction.sum,
        "mean": reduction.mean,
        "var": reduction.var,
        "max": reduction.max,
        "min": reduction.min,
        "amax": reduction.amax,
        "argmax": reduction.argmax,
        "matmul": matmul.matmul,
        "reshape": shape.reshape,
        "view": shape.reshape,
        "permute": shape.permute,
        "transpose": shape.transpose,
        "flatten": shape.flatten,
        "squeeze": shape.squeeze,
        "unsqueeze": shape.unsqueeze,
        "expand": shape.expand,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(lambda self: shape.permute(self, tuple(reversed(range(self.ndim)))))


_bind_operators()
