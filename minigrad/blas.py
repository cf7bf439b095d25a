"""How minigrad shares the CPU cores with OpenBLAS: a short spin for its worker threads.

After each GEMM, OpenBLAS's worker threads spin for 2^OPENBLAS_THREAD_TIMEOUT cycles before
they sleep (2^28 by default, about 0.1 s). A training step alternates GEMMs with
memory-bound NumPy passes (batch norm, ReLU, depthwise convs, im2col), which
:mod:`minigrad.parallel` splits over the same cores: while a worker spins, those passes
get one core of two (and so do the data loader's threads). With 2^4 cycles the workers
sleep at once. Measured on 2 cores, ``examples/train_pets.py`` with a FastUNet (base 16,
128x128, batch 8) trained at 26.8-27.9 images/s instead of 20.4-21.9; a UNet or
ResNet34-U-Net step, mostly GEMMs, changed by less than this machine's noise.

OpenBLAS reads the variable once, when NumPy loads it, so :func:`prefer_short_spin` can only
set it before NumPy is imported; ``import minigrad`` calls it first thing. A value the user
set is kept. This module imports nothing that loads NumPy.
"""

from __future__ import annotations

import os
import sys

SPIN_VARIABLE = "OPENBLAS_THREAD_TIMEOUT"
SHORT_SPIN = "4"


def prefer_short_spin() -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` to SHORT_SPIN unless it is set, while NumPy (and so
    OpenBLAS) is not loaded yet. Returns whether OpenBLAS will start with that setting."""
    if "numpy" in sys.modules:
        return False
    os.environ.setdefault(SPIN_VARIABLE, SHORT_SPIN)
    return os.environ[SPIN_VARIABLE] == SHORT_SPIN
