"""minigrad: a deep-learning engine from scratch on NumPy (CPU) and CuPy (GPU).

The public names mirror PyTorch: ``mg.tensor``, ``mg.zeros``, ``mg.no_grad()``, ``mg.cat``...
"""

from minigrad import blas, malloc

blas.prefer_short_spin()  # before anything below loads NumPy, and with it OpenBLAS
malloc.keep_freed_memory()

from minigrad.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minigrad.backend import (
    DeviceError,
    cuda_available,
    get_rng_state,
    manual_seed,
    set_rng_state,
)
from minigrad.creation import (
    arange,
    empty,
    full,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    zeros,
    zeros_like,
)
from minigrad.ops.activation import relu, sigmoid, softmax, tanh
from minigrad.ops.elementwise import (
    abs,
    clamp,
    exp,
    log,
    maximum,
    minimum,
    sqrt,
    where,
)
from minigrad.ops.matmul import matmul
from minigrad.ops.reduction import amax, argmax, max, mean, min, sum, var
from minigrad.ops.shape import (
    cat,
    expand,
    flatten,
    permute,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from minigrad.serialization import CheckpointError, load, save
from minigrad.tensor import (
    Tensor,
    as_tensor,
    bool_,
    float16,
    float32,
    float64,
    int32,
    int64,
    tensor,
    uint8,
)

__all__ = [
    "debug",
    "functional",
    "init",
    "optim",
    "CheckpointError",
    "DeviceError",
    "Tensor",
    "abs",
    "amax",
    "arange",
    "argmax",
    "as_tensor",
    "bool_",
    "cat",
    "clamp",
    "cuda_available",
    "empty",
    "enable_grad",
    "exp",
    "expand",
    "flatten",
    "float16",
    "float32",
    "float64",
    "full",
    "int32",
    "int64",
    "is_grad_enabled",
    "get_rng_state",
    "load",
    "log",
    "manual_seed",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "no_grad",
    "ones",
    "ones_like",
    "permute",
    "rand",
    "randint",
    "randn",
    "relu",
    "reshape",
    "save",
    "set_rng_state",
    "set_grad_enabled",
    "sigmoid",
    "softmax",
    "sqrt",
    "squeeze",
    "stack",
    "sum",
    "tanh",
    "tensor",
    "transpose",
    "uint8",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]

# The subpackages, as attributes (``mg.optim.Adam``, as ``torch.optim.Adam``); imported last
# because they import the names above.
from minigrad import debug, functional, init, optim  # noqa: E402
