"""Pooling: ``max_pool2d`` (with PyTorch's indices), ``max_unpool2d`` and ``avg_pool2d``.

The plain versions are :func:`minigrad.reference.max_pool2d_forward` and
:func:`minigrad.reference.max_unpool2d_forward` (with their backwards). Read in this order:

- :mod:`~minigrad.ops.pooling.geometry`: the arguments, checked, the output size, and the
  strided window of each kernel offset (Python loops only over kernel offsets, four for 2x2,
  never over batch or pixels; for 2x2 with stride 2 the windows are the four phases of the
  ``(N, C, H/2, 2, W/2, 2)`` view);
- :mod:`~minigrad.ops.pooling.blocks`: cache-sized blocks of planes on the CPU threads;
- :mod:`~minigrad.ops.pooling.max_pool`, :mod:`~minigrad.ops.pooling.avg_pool` and
  :mod:`~minigrad.ops.pooling.max_unpool`: one op each, its Function and the function users
  call.
"""

from minigrad.ops.pooling.avg_pool import AvgPool2d, avg_pool2d
from minigrad.ops.pooling.blocks import BLOCK_BYTES, for_each_plane_block
from minigrad.ops.pooling.blocks import _plane_blocks as _plane_blocks
from minigrad.ops.pooling.geometry import PoolGeometry, pool_geometry, pooled_size
from minigrad.ops.pooling.max_pool import MaxPool2d, max_pool2d
from minigrad.ops.pooling.max_unpool import MaxUnpool2d, max_unpool2d, unpooled_size

__all__ = [
    "BLOCK_BYTES",
    "AvgPool2d",
    "MaxPool2d",
    "MaxUnpool2d",
    "PoolGeometry",
    "avg_pool2d",
    "for_each_plane_block",
    "max_pool2d",
    "max_unpool2d",
    "pool_geometry",
    "pooled_size",
    "unpooled_size",
]
