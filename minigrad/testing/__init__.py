"""Helpers for testing minigrad, such as the CPU stand-in for CuPy."""
