"""Benchmarks against PyTorch: `python -m benchmarks.layers`.

minigrad is imported first, so that OpenBLAS starts with its short worker spin
(:mod:`minigrad.blas`) as it does in the training scripts.
"""

import minigrad  # noqa: F401
