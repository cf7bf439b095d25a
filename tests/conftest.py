"""Test set-up: hypothesis profiles, the device fixture, and GPU detection.

Every op test takes the ``device`` fixture and so runs on "cpu" and on "gpu": real CuPy when
a CUDA device is present (those cases carry the ``gpu`` marker, run them with
``pytest -m gpu``), otherwise the CPU stand-in ``minigrad.testing.fake_cupy``, which refuses
host/device mixing as CuPy does. Tests marked ``gpu`` on their own need a real GPU and are
skipped without one.
"""

import os

import pytest
from helpers import REAL_GPU
from hypothesis import HealthCheck, settings

from minigrad import backend

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true") else "dev")

if not REAL_GPU:
    backend.use_fake_gpu(True)

GPU_PARAM = (
    pytest.param("gpu", id="gpu", marks=pytest.mark.gpu)
    if REAL_GPU
    else pytest.param("gpu", id="gpu-fake")
)


@pytest.fixture(scope="session", params=[pytest.param("cpu", id="cpu"), GPU_PARAM])
def device(request):
    """The device an op test runs on: "cpu", then "gpu" (real CuPy, or the stand-in)."""
    return request.param


def pytest_collection_modifyitems(config, items):
    if REAL_GPU:
        return
    skip = pytest.mark.skip(reason="needs a real CUDA GPU (run `pytest -m gpu` on one)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
