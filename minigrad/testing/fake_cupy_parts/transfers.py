"""Counting the copies between host and device that real CuPy would make.

Every host copy (``.get()``, ``float(x)``, ...) and every upload of host data is recorded in
:data:`transfers`, so a test can assert that a GPU code path never waits for the host.
"""

from __future__ import annotations

import contextlib


class TransferCounter:
    """Counts the copies between host and device memory that real CuPy would make.

    Attributes:
        to_host_calls: Number of device-to-host copies (``.get()``, ``float(x)``, ...).
        to_host_bytes: Bytes copied device-to-host.
        to_device_calls: Number of host-to-device copies (``asarray(host_data)``, ...).
        to_device_bytes: Bytes copied host-to-device.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Set every count back to zero."""
        self.to_host_calls = 0
        self.to_host_bytes = 0
        self.to_device_calls = 0
        self.to_device_bytes = 0

    def record_to_host(self, nbytes: int) -> None:
        """Count one device-to-host copy of ``nbytes`` bytes."""
        self.to_host_calls += 1
        self.to_host_bytes += int(nbytes)

    def record_to_device(self, nbytes: int) -> None:
        """Count one host-to-device copy of ``nbytes`` bytes."""
        self.to_device_calls += 1
        self.to_device_bytes += int(nbytes)

    def __repr__(self) -> str:
        return (
            f"TransferCounter(to_host_calls={self.to_host_calls}, "
            f"to_host_bytes={self.to_host_bytes}, to_device_calls={self.to_device_calls}, "
            f"to_device_bytes={self.to_device_bytes})"
        )


transfers = TransferCounter()


@contextlib.contextmanager
def count_transfers():
    """Reset :data:`transfers` and yield it, to count the copies made inside a ``with`` block.

    Yields:
        The module's :class:`TransferCounter`, counting from zero.
    """
    transfers.reset()
    yield transfers
