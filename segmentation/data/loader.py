"""Batches of NumPy arrays from a map-style dataset: a seeded order, seeded augmentation, and
threads that decode ahead while the model computes.

A dataset is any object with ``__len__`` and ``__getitem__(i) -> (image, mask)``. The loader
is ``torch.utils.data.DataLoader`` reduced to what segmentation training needs, with two
differences that make runs reproducible:

- the order of epoch ``e`` is a permutation drawn from ``(seed, e)``, and the loader's
  ``transform`` gets, for dataset index ``i``, a generator drawn from ``(seed, e, i)``; so the
  batches of an epoch are the same bit for bit whatever ``num_workers`` is, and a run resumed
  at epoch ``e`` (``set_epoch(e)``) sees what the uninterrupted run saw;
- workers are threads, not processes: Pillow releases the GIL while decoding and resizing and
  NumPy while computing, so decoding overlaps the training step without pickling datasets.
"""

from __future__ import annotations

import collections
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

__all__ = ["DataLoader", "Subset", "random_split", "epoch_order", "sample_rng", "collate"]

# SeedSequence ignores trailing zeros ([s, e] and [s, e, 0] give the same stream), so each use
# of the seed starts with its own tag: the order of an epoch and the augmentation of a sample
# never share a stream, nor with random_split's default_rng(seed).
_ORDER_STREAM = 0x6F72646572
_SAMPLE_STREAM = 0x73616D706C


def epoch_order(length: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """Dataset indices in the order of ``epoch``: ``0..length-1``, or a permutation drawn
    from ``(seed, epoch)`` when ``shuffle``. int64 (length,)."""
    if not shuffle:
        return np.arange(length, dtype=np.int64)
    return np.random.default_rng([_ORDER_STREAM, seed, epoch]).permutation(length)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator the loader's transform gets for dataset ``index`` in ``epoch``."""
    return np.random.default_rng([_SAMPLE_STREAM, seed, epoch, index])


def _non_negative_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _check_dataset(dataset, where: str) -> None:
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(
            f"{where}: dataset must have __len__ and __getitem__, got {type(dataset).__name__}"
        )


class DataLoader:
    """Iterate a dataset in batches of stacked NumPy arrays.

    Args:
        dataset: ``len(dataset)`` and ``dataset[i] -> (image, mask)`` (any tuple of arrays).
        batch_size: samples per batch.
        shuffle: a new permutation each epoch, drawn from ``(seed, epoch)``.
        drop_last: drop the final batch when it is smaller than ``batch_size``.
        seed: non-negative int that fixes the order and the augmentation.
        num_workers: threads that load samples ahead; 0 loads in the calling thread. The
            batches are identical for every value.
        transform: ``transform(image, mask, rng)``, e.g. a
            :class:`~segmentation.data.transforms.Compose`, applied to each sample with the
            generator :func:`sample_rng` gives for ``(seed, epoch, index)``. Prefer it to the
            dataset's own ``transform``: the dataset calls that one without a seeded
            generator, so its random draws differ from run to run.
        prefetch: batches loaded ahead of the one being consumed (with ``num_workers > 0``).

    Iterating yields tuples of arrays, each field stacked along a new first axis: after
    ``train_transform``/``eval_transform`` that is images float32 (N, 3, H, W) and masks
    int64 (N, H, W). Each ``iter(loader)`` runs the current epoch (``loader.epoch``) and then
    advances it by one; ``set_epoch(e)`` chooses the next one, as when resuming a run.
    An error in a sample is raised in the caller, with the same type where possible, naming
    the sample index (also on the exception as ``.sample_index``); stopping early
    (``break``) shuts the threads down.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        num_workers: int = 0,
        transform: Callable | None = None,
        prefetch: int = 2,
    ):
        _check_dataset(dataset, "DataLoader")
        if _non_negative_int(batch_size, "DataLoader batch_size") == 0:
            raise ValueError("DataLoader batch_size must be a positive int, got 0")
        if _non_negative_int(prefetch, "DataLoader prefetch") == 0:
            raise ValueError("DataLoader prefetch must be a positive int, got 0")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader transform must be callable, got {transform!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = _non_negative_int(seed, "DataLoader seed")
        self.num_workers = _non_negative_int(num_workers, "DataLoader num_workers")
        self.transform = transform
        self.prefetch = int(prefetch)
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """The epoch the next ``iter(loader)`` runs."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run ``epoch`` (its order and augmentation)."""
        self._epoch = _non_negative_int(epoch, "DataLoader.set_epoch epoch")

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return math.ceil(n / self.batch_size)

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The dataset indices of each batch of ``epoch``, in order."""
        order = epoch_order(len(self.dataset), self.seed, epoch, self.shuffle)
        bounds = range(0, len(self) * self.batch_size, self.batch_size)
        return [order[start : start + self.batch_size] for start in bounds]

    def __iter__(self) -> Iterator[tuple]:
        epoch = self._epoch
        self._epoch += 1
        batches = self.batch_indices(epoch)
        if self.num_workers == 0:
            return self._serial(batches, epoch)
        return self._threaded(batches, epoch)

    def _load(self, index: int, epoch: int):
        """Sample ``index`` after the loader's transform; errors re-raised naming the index."""
        try:
            sample = self.dataset[index]
            if self.transform is not None:
                sample = self.transform(*sample, sample_rng(self.seed, epoch, index))
        except Exception as exc:
            raise _sample_error(exc, index, self.dataset) from exc
        return sample

    def _serial(self, batches, epoch):
        for number, indices in enumerate(batches):
            yield collate([self._load(int(i), epoch) for i in indices], number)

    def _threaded(self, batches, epoch):
        """Keep ``prefetch`` batches of per-sample jobs queued on the pool, hand them back in
        order; on exit (exhausted, ``break``, error) cancel what has not started and wait
        for what has."""
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="minigrad-loader")
        pending: collections.deque[list[Future]] = collections.deque()
        upcoming = iter(batches)

        def submit_next() -> None:
            indices = next(upcoming, None)
            if indices is not None:
                pending.append([pool.submit(self._load, int(i), epoch) for i in indices])

        try:
            for _ in range(self.prefetch):
                submit_next()
            number = 0
            while pending:
                futures = pending.popleft()
                submit_next()
                yield collate([f.result() for f in futures], number)
                number += 1
        finally:
            for futures in pending:
                for f in futures:
                    f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def __repr__(self) -> str:
        return (
            f"DataLoader(dataset={type(self.dataset).__name__}[{len(self.dataset)}], "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
            f"seed={self.seed}, num_workers={self.num_workers}, epoch={self._epoch})"
        )


def _sample_error(exc: Exception, index: int, dataset) -> Exception:
    """``exc`` re-made with a message naming the sample (its own type where that type can be
    built from one message, else RuntimeError), with ``.sample_index`` set."""
    message = (
        f"DataLoader: loading sample {index} of {type(dataset).__name__} failed: "
        f"{type(exc).__name__}: {exc}"
    )
    try:
        error = type(exc)(message)
    except Exception:
        error = RuntimeError(message)
    try:
        error.sample_index = index
    except AttributeError:
        error = RuntimeError(message)
        error.sample_index = index
    return error


def collate(samples: Sequence, batch_number: int = 0):
    """Stack a batch: a list of tuples of arrays -> a tuple of arrays, each with a new first
    axis (a list of arrays -> one array). Shapes must agree within each field."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(_stack([s[k] for s in samples], batch_number, k) for k in range(len(first)))
    return _stack(samples, batch_number, 0)


def _stack(arrays: list, batch_number: int, field: int) -> np.ndarray:
    shapes = sorted({np.shape(a) for a in arrays})
    if len(shapes) > 1:
        raise ValueError(
            f"DataLoader: batch {batch_number}, field {field}: samples have different shapes "
            f"{shapes}; resize them to one size (Resize((h, w)) or eval_transform(size))"
        )
    return np.stack(arrays)


class Subset:
    """The samples of ``dataset`` at ``indices``, in that order (``torch.utils.data.Subset``).

    ``subset[i]`` is ``dataset[indices[i]]``; ``.dataset`` and ``.indices`` as in PyTorch.
    """

    def __init__(self, dataset, indices: Sequence[int]):
        _check_dataset(dataset, "Subset")
        array = np.asarray(indices)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise TypeError(f"Subset indices must be a 1-D sequence of ints, got {_brief(array)}")
        n = len(dataset)
        if array.size and (array.min() < 0 or array.max() >= n):
            raise IndexError(
                f"Subset indices must lie in [0, {n}), got range "
                f"[{int(array.min())}, {int(array.max())}]"
            )
        self.dataset = dataset
        self.indices = [int(i) for i in array]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"Subset index must be an int, got {type(index).__name__}")
        n = len(self.indices)
        if not -n <= index < n:
            raise IndexError(f"Subset index {index} out of range for length {n}")
        return self.dataset[self.indices[index]]

    def __repr__(self) -> str:
        return f"Subset({type(self.dataset).__name__}, {len(self)} of {len(self.dataset)})"


def _brief(array: np.ndarray) -> str:
    return f"{array.dtype} array of shape {array.shape}"


def random_split(dataset, lengths: Sequence[float], seed: int = 0) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s.

    ``lengths`` are sample counts summing to ``len(dataset)``, or fractions summing to 1
    (seed 000's ``[0.72, 0.2, 0.08]``): as ``torch.utils.data.random_split``, each fraction
    gets ``floor(n * f)`` samples and the remainder is dealt one by one to the splits in turn,
    from the first. The permutation is ``np.random.default_rng(seed).permutation(n)``.
    """
    _check_dataset(dataset, "random_split")
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split lengths must not be empty")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0 for v in lengths):
        raise ValueError(f"random_split lengths must be non-negative numbers, got {lengths}")
    if math.isclose(sum(lengths), 1.0):
        lengths = _lengths_from_fractions(lengths, n)
    if any(not float(v).is_integer() for v in lengths) or sum(lengths) != n:
        raise ValueError(
            f"random_split lengths must be counts summing to len(dataset) = {n} or fractions "
            f"summing to 1, got {lengths}"
        )
    order = np.random.default_rng(_non_negative_int(seed, "random_split seed")).permutation(n)
    splits, start = [], 0
    for length in map(int, lengths):
        splits.append(Subset(dataset, order[start : start + length]))
        start += length
    return splits


def _lengths_from_fractions(fractions: list[float], n: int) -> list[int]:
    if any(f > 1 for f in fractions):
        raise ValueError(f"random_split fractions must lie in [0, 1], got {fractions}")
    lengths = [math.floor(n * f) for f in fractions]
    for k in range(n - sum(lengths)):
        lengths[k % len(lengths)] += 1
    for k, length in enumerate(lengths):
        if length == 0:
            warnings.warn(
                f"random_split: split {k} (fraction {fractions[k]}) gets no samples of {n}",
                stacklevel=3,
            )
    return lengths
