"""A decoded-and-resized cache: later epochs read uint8 arrays from a memory map instead of
decoding JPEGs.

``CachedDataset(dataset, size, cache_dir)`` wraps a dataset that returns raw samples
(uint8 (H, W, 3) image, integer (H, W) mask; no transform of its own). Sample ``i`` is
decoded by the dataset and resized (image bilinear, mask nearest: the geometry of
:func:`~segmentation.data.transforms.eval_transform`) the first time it is read, written to
row ``i`` of two ``.npy`` memory maps, images (N, h, w, 3) uint8 and masks (N, h, w) uint8,
and read from there afterwards. Filling is lazy: the first epoch builds the cache as it goes,
whatever its order and number of worker threads.

Which rows hold data is recorded in a third file, ``*.filled.npy`` (bool (N,)), replaced
atomically (written aside, flushed to disk, renamed) after the data it vouches for has been
flushed: a crash mid-build leaves a cache whose unflagged rows are simply built again, never
one believed complete. The file names carry a fingerprint of what the arrays depend on (the
dataset's sample ids, root, split and target, its files' sizes and modification times, the
size), so a changed dataset or size gets a new cache and a stale one is never read. Nothing
is pickled: the files are plain ``.npy`` opened with ``np.lib.format.open_memmap``.

The augmenting transforms then run on the cached, already resized, arrays (pass them as the
:class:`~segmentation.data.loader.DataLoader`'s ``transform``): ``Resize`` to the cached size
is a no-op, and a ``RandomResizedCrop`` crops the resized image rather than the original.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from pathlib import Path

import numpy as np

from .loader import Subset
from .transform_base import _check_sample
from .transforms import Resize, _size_pair

__all__ = ["CachedDataset", "dataset_fingerprint"]

_FORMAT_VERSION = 1


def _identity(dataset) -> dict:
    """What a dataset's samples depend on, as JSON-able data (see :func:`dataset_fingerprint`)."""
    if isinstance(dataset, Subset):
        return {"subset": dataset.indices, "of": _identity(dataset.dataset)}
    ids = getattr(dataset, "ids", None)
    if ids is None:
        raise TypeError(
            f"CachedDataset cannot fingerprint a {type(dataset).__name__}: it has no `ids` "
            "(one name per sample); pass key=... naming its samples and their version"
        )
    kind = type(dataset)
    ident = {"class": f"{kind.__module__}.{kind.__qualname__}", "ids": [str(i) for i in ids]}
    for name in ("root", "split", "target"):
        value = getattr(dataset, name, None)
        if value is not None:
            ident[name] = str(Path(value).resolve()) if name == "root" else str(value)
    if hasattr(dataset, "image_path") and hasattr(dataset, "mask_path"):
        ident["files"] = [_stat(dataset, i) for i in range(len(dataset))]
    return ident


def _stat(dataset, index: int) -> list[int]:
    """Size and modification time (ns) of sample ``index``'s image and mask files."""
    out = []
    for path in (dataset.image_path(index), dataset.mask_path(index)):
        st = os.stat(path)
        out += [st.st_size, st.st_mtime_ns]
    return out


def dataset_fingerprint(dataset, size, key=None) -> str:
    """A hex digest of everything the cached arrays of ``dataset`` at ``size`` depend on.

    With ``key`` (any JSON-able value that changes whenever the samples do) that key and
    ``len(dataset)``; otherwise the dataset's ``ids`` (required), its ``root`` (resolved),
    ``split`` and ``target`` when it has them, and, when it has ``image_path(i)`` and
    ``mask_path(i)``, the size and modification time of every file; a :class:`Subset` adds
    its indices to its dataset's.
    """
    h, w = _size_pair(size, "CachedDataset size")
    ident = {
        "format": _FORMAT_VERSION,
        "size": [h, w],
        "length": len(dataset),
        "dataset": _identity(dataset) if key is None else {"key": key},
    }
    blob = json.dumps(ident, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _leaf(dataset):
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


class CachedDataset:
    """``dataset`` resized to ``size`` (int: square, or (h, w)), cached as uint8 memory maps
    in ``cache_dir``.

    ``cached[i]`` is ``(image uint8 (h, w, 3), mask int64 (h, w))``, fresh arrays the caller
    may modify. Mask values must lie in [0, 255]. ``key`` replaces the automatic fingerprint
    (see :func:`dataset_fingerprint`); ``flush_every`` is how many new rows may be held before
    the filled flags are written (also written when the cache becomes complete, on
    :meth:`flush`/:meth:`close`, and when the object is collected). Thread-safe: the loader's
    workers may fill rows concurrently. One process should build a given cache at a time.
    """

    def __init__(self, dataset, size, cache_dir, key=None, flush_every: int = 256):
        if getattr(_leaf(dataset), "transform", None) is not None:
            raise ValueError(
                "CachedDataset needs the raw samples: build the dataset with transform=None "
                "and pass the transform to the DataLoader"
            )
        if len(dataset) == 0:
            raise ValueError("CachedDataset: the dataset is empty")
        self.dataset = dataset
        self.size = _size_pair(size, "CachedDataset size")
        self.fingerprint = dataset_fingerprint(dataset, self.size, key)
        n, (h, w) = len(dataset), self.size
        name = f"{type(_leaf(dataset)).__name__}-{n}x{h}x{w}-{self.fingerprint[:16]}"
        self.prefix = Path(cache_dir) / name
        self._resize = Resize(self.size)
        self._store = _Store(self.prefix, n, self.size, int(flush_every))
        self._finalizer = weakref.finalize(self, self._store.flush)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def num_filled(self) -> int:
        """How many samples are cached."""
        return self._store.num_filled

    @property
    def complete(self) -> bool:
        """True once every sample is cached (later reads never touch the dataset)."""
        return self._store.num_filled == len(self)

    def __getitem__(self, index: int):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"CachedDataset index {index} out of range for length {n}")
        index = int(index) % n
        cached = self._store.read(index)
        if cached is not None:
            return cached
        image, mask = self.dataset[index]
        _check_sample(image, mask, f"CachedDataset (sample {index} of the dataset)")
        image, mask = self._resize(image, mask)
        self._store.write(index, image, mask)
        return np.array(image), mask.astype(np.int64)

    def flush(self) -> None:
        """Flush the data to disk, then record which rows it fills."""
        self._store.flush()

    def close(self) -> None:
        """Flush and release the memory maps; the object is unusable afterwards."""
        self._finalizer()
        self._store.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return (
            f"CachedDataset({type(_leaf(self.dataset)).__name__}[{len(self)}], size={self.size}, "
            f"filled={self.num_filled}, prefix={str(self.prefix)!r})"
        )


class _Store:
    """The three files of one cache: images and masks memory maps and the filled flags."""

    def __init__(self, prefix: Path, n: int, size: tuple[int, int], flush_every: int):
        prefix.parent.mkdir(parents=True, exist_ok=True)
        h, w = size
        self.flags_path = Path(f"{prefix}.filled.npy")
        self.images, new_images = _open_array(Path(f"{prefix}.images.npy"), (n, h, w, 3))
        self.masks, new_masks = _open_array(Path(f"{prefix}.masks.npy"), (n, h, w))
        if new_images or new_masks:
            self.flags_path.unlink(missing_ok=True)
        self.filled = _load_flags(self.flags_path, n)
        self.num_filled = int(self.filled.sum())
        self.flush_every = max(1, flush_every)
        self.unsaved = 0
        self.lock = threading.Lock()

    def read(self, index: int):
        if not self.filled[index]:
            return None
        return np.array(self.images[index]), self.masks[index].astype(np.int64)

    def write(self, index: int, image: np.ndarray, mask: np.ndarray) -> None:
        if mask.size and (mask.min() < 0 or mask.max() > 255):
            raise ValueError(
                f"CachedDataset stores masks as uint8: sample {index} has values in "
                f"[{int(mask.min())}, {int(mask.max())}]"
            )
        self.images[index] = image
        self.masks[index] = mask
        with self.lock:
            if self.filled[index]:
                return
            self.filled[index] = True
            self.num_filled += 1
            self.unsaved += 1
            due = self.unsaved >= self.flush_every or self.num_filled == len(self.filled)
        if due:
            self.flush()

    def flush(self) -> None:
        """Snapshot the flags, flush the data rows they cover, then save the snapshot: saved
        flags only ever vouch for rows already on disk."""
        with self.lock:
            if self.images is None or self.unsaved == 0:
                return
            snapshot = self.filled.copy()
            self.unsaved = 0
        self.images.flush()
        self.masks.flush()
        _save_atomically(self.flags_path, snapshot)

    def release(self) -> None:
        self.images = self.masks = None


def _open_array(path: Path, shape: tuple) -> tuple[np.memmap, bool]:
    """(the uint8 ``.npy`` memory map at ``path``, whether it was created): created (aside,
    then renamed) when absent or when the file there is not a uint8 array of ``shape``."""
    if path.exists():
        try:
            array = np.lib.format.open_memmap(path, mode="r+")
            if array.shape == shape and array.dtype == np.uint8:
                return array, False
        except (ValueError, OSError):
            pass
        path.unlink()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    os.replace(tmp, path)
    return array, True


def _load_flags(path: Path, n: int) -> np.ndarray:
    """The saved filled flags, or all False when the file is missing, unreadable or of
    another shape (a cache that cannot prove a row is filled builds it again)."""
    try:
        flags = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return np.zeros(n, dtype=bool)
    if flags.shape != (n,) or flags.dtype != bool:
        return np.zeros(n, dtype=bool)
    return flags.copy()


def _save_atomically(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
