"""Benchmarks against PyTorch: `python -m benchmarks.layers`."""
