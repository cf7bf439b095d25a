"""Hand-written CUDA kernels, used only where they beat the ``xp`` version of an op.

Each kernel module holds its CUDA source as a string (compiled by CuPy on first use and cached
on disk by CuPy) and a thin wrapper; the ``xp`` implementation in :mod:`minigrad.ops` stays
the reference, and a ``gpu``-marked test compares the two. Every source in :data:`SOURCES`
is compiled with ``nvcc --ptx`` by the test suite whenever ``nvcc`` is on the PATH, and the
entry points named in :data:`ENTRIES` are looked for in the PTX.
"""

from minigrad.kernels import depthwise

SOURCES = {"depthwise": depthwise.SOURCE}
ENTRIES = {"depthwise": depthwise.ENTRIES}
