"""Pooling on cache-sized blocks of (N, C) planes, shared between the CPU threads.

NumPy ufuncs use one core and release the GIL, so on NumPy :func:`for_each_plane_block` cuts
the planes into blocks of about :data:`BLOCK_BYTES` (their temporaries stay in the L2 cache)
and runs them on worker threads; on CuPy each op runs once over the whole arrays.
"""

from __future__ import annotations

from minigrad import backend, parallel

BLOCK_BYTES = 1 << 19
"""Input bytes per block: small enough that a block's temporaries stay in the L2 cache."""


def _plane_blocks(batch: int, channels: int, planes_per_block: int) -> list[tuple]:
    """Index tuples that cut (batch, channels) into blocks of about ``planes_per_block`` planes."""
    if planes_per_block >= channels:
        step = planes_per_block // channels
        return [(slice(n, n + step),) for n in range(0, batch, step)]
    return [
        (slice(n, n + 1), slice(c, c + planes_per_block))
        for n in range(batch)
        for c in range(0, channels, planes_per_block)
    ]


def for_each_plane_block(kernel, arrays: tuple, plane_bytes: int) -> None:
    """Call ``kernel(*blocks)`` on matching blocks of (N, C, ...) arrays (None passes through).

    On the GPU the kernel runs once on the whole arrays. On the CPU the planes are cut into
    blocks of about :data:`BLOCK_BYTES` (``plane_bytes`` is the size of one plane of the
    largest input) so that each block's temporaries stay in cache, and the blocks are shared
    between the CPU threads (:func:`minigrad.parallel.run_in_parts`). The kernel writes its
    results into the output blocks.
    """
    first = arrays[0]
    if not backend.is_cpu_array(first) or first.ndim < 2:
        kernel(*arrays)
        return
    per_block = max(1, BLOCK_BYTES // max(plane_bytes, 1))
    blocks = _plane_blocks(first.shape[0], first.shape[1], per_block)
    if len(blocks) <= 1:
        kernel(*arrays)
        return

    def run(keys) -> None:
        for key in keys:
            kernel(*(None if a is None else a[key] for a in arrays))

    parallel.run_in_parts(run, blocks)
