"""The parts of :mod:`minigrad.testing.fake_cupy`, the CPU stand-in for CuPy; import that."""
