"""DataLoader (order, augmentation and batches the same whatever num_workers, errors, early
stop, prefetch), random_split and Subset (lengths against torch's rule), and CachedDataset
(hits skip the dataset, a stale or half-built cache is never trusted)."""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.data import transforms as T
from segmentation.data.cache import CachedDataset, dataset_fingerprint
from segmentation.data.loader import DataLoader, Subset, random_split, sample_rng


class ToyPets:
    """n samples of shape (h, w) (or a shape per index), content fixed by the index; counts
    __getitem__ calls, can fail at one index, sleep per sample, and records how many loads
    ran at once and whether each finished while the consumer was busy."""

    def __init__(self, n=10, shape=(12, 16), fail_at=None, error=ValueError, delay=0.0):
        self.n, self.shape, self.fail_at, self.error, self.delay = n, shape, fail_at, error, delay
        self.ids = [f"pet_{i}" for i in range(n)]
        self.transform = None
        self.calls = 0
        self.active = self.max_active = 0
        self.finished_while = []
        self.consumer_busy = False
        self._lock = threading.Lock()

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        with self._lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            if index == self.fail_at:
                raise self.error(f"bad file for sample {index}")
            h, w = self.shape(index) if callable(self.shape) else self.shape
            rng = np.random.default_rng(index)
            image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            mask = rng.integers(0, 3, size=(h, w)).astype(np.int64)
            return image, mask
        finally:
            with self._lock:
                self.active -= 1
                self.finished_while.append(self.consumer_busy)


def first_pixel_ids(loader):
    """The dataset index of each sample, read back from its untransformed image."""
    lookup = {ToyPets()[i][0][0, 0].tobytes(): i for i in range(10)}
    return [[lookup[img[0, 0].tobytes()] for img in images] for images, _ in loader]


def batches(loader):
    return [tuple(a.copy() for a in batch) for batch in loader]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            assert u.dtype == v.dtype
            np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------------ the loader


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 23), batch_size=st.integers(1, 8), drop_last=st.booleans())
def test_len_and_batch_sizes(n, batch_size, drop_last):
    loader = DataLoader(ToyPets(n), batch_size=batch_size, drop_last=drop_last, shuffle=True)
    sizes = [len(images) for images, _ in loader]
    expected = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(loader) == len(sizes) == expected
    assert all(s == batch_size for s in sizes[:-1] if sizes)
    assert sum(sizes) == (n - n % batch_size if drop_last else n)


def test_batches_are_stacked_arrays():
    loader = DataLoader(ToyPets(5), batch_size=2, transform=T.eval_transform((8, 10)))
    images, masks = next(iter(loader))
    assert images.shape == (2, 3, 8, 10) and images.dtype == np.float32
    assert masks.shape == (2, 8, 10) and masks.dtype == np.int64
    raw_images, raw_masks = next(iter(DataLoader(ToyPets(5), batch_size=4)))
    assert raw_images.shape == (4, 12, 16, 3) and raw_images.dtype == np.uint8
    np.testing.assert_array_equal(raw_masks[3], ToyPets()[3][1])


def test_order_without_shuffle_is_the_dataset_order():
    assert first_pixel_ids(DataLoader(ToyPets(), batch_size=3)) == [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7, 8],
        [9],
    ]


def test_shuffle_is_a_seeded_permutation_per_epoch():
    loader = DataLoader(ToyPets(), batch_size=4, shuffle=True, seed=3)
    epochs = [sum(first_pixel_ids(loader), []) for _ in range(3)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    assert loader.epoch == 3
    again = DataLoader(ToyPets(), batch_size=4, shuffle=True, seed=3)
    again.set_epoch(1)
    assert sum(first_pixel_ids(again), []) == epochs[1]
    other = DataLoader(ToyPets(), batch_size=4, shuffle=True, seed=4)
    assert sum(first_pixel_ids(other), []) != epochs[0]


def test_drop_last_drops_the_short_batch():
    loader = DataLoader(ToyPets(), batch_size=4, drop_last=True)
    assert first_pixel_ids(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("prefetch", [1, 3])
def test_batches_are_identical_whatever_num_workers(prefetch):
    def run(num_workers):
        loader = DataLoader(
            ToyPets(11),
            batch_size=3,
            shuffle=True,
            seed=5,
            num_workers=num_workers,
            transform=T.Compose(
                [
                    T.RandomResizedCrop((8, 12)),
                    T.RandomRotation(20),
                    T.RandomHorizontalFlip(),
                    T.ColorJitter(0.2, 0.2, 0.2, 0.1),
                    T.Normalize(),
                ]
            ),
            prefetch=prefetch,
        )
        return [batches(loader) for _ in range(2)]

    serial, threaded = run(0), run(2)
    for epoch in range(2):
        assert_same_batches(serial[epoch], threaded[epoch])
    with pytest.raises(AssertionError):
        assert_same_batches(serial[0], serial[1])


def test_augmentation_depends_on_the_sample_not_its_position():
    transform = T.train_transform((8, 12))
    plain = batches(DataLoader(ToyPets(6), batch_size=6, transform=transform, seed=1))[0]
    shuffled = DataLoader(ToyPets(6), batch_size=1, shuffle=True, transform=transform, seed=1)
    order = shuffled.batch_indices(0)
    for (images, _), index in zip(shuffled, order, strict=True):
        np.testing.assert_array_equal(images[0], plain[0][int(index[0])])


def test_each_sample_gets_the_generator_of_its_seed_epoch_and_index():
    transform = T.Compose([T.RandomRotation(40), T.ColorJitter(0.3, 0.3, 0.3, 0.2), T.Normalize()])
    loader = DataLoader(ToyPets(), batch_size=5, shuffle=True, seed=9, transform=transform)
    seen = set()
    for epoch in range(2):
        for (images, _), indices in zip(loader, loader.batch_indices(epoch), strict=True):
            for image, index in zip(images, indices, strict=True):
                rng = sample_rng(9, epoch, int(index))
                np.testing.assert_array_equal(image, transform(*ToyPets()[index], rng)[0])
                seen.add(float(sample_rng(9, epoch, int(index)).random()))
    assert len(seen) == 20


@pytest.mark.parametrize("num_workers", [0, 2])
def test_errors_in_samples_propagate_with_the_index(num_workers):
    loader = DataLoader(ToyPets(fail_at=5), batch_size=2, num_workers=num_workers)
    with pytest.raises(ValueError, match="sample 5 of ToyPets") as info:
        list(loader)
    assert info.value.sample_index == 5
    assert isinstance(info.value.__cause__, ValueError)
    assert "bad file for sample 5" in str(info.value)


def test_errors_that_cannot_be_rebuilt_become_runtime_errors():
    class Picky(Exception):
        def __init__(self, a, b):
            super().__init__(a, b)

    def broken(image, mask, rng):
        raise Picky(1, 2)

    loader = DataLoader(ToyPets(), transform=broken, num_workers=2)
    with pytest.raises(RuntimeError, match="sample 0 .*Picky") as info:
        next(iter(loader))
    assert isinstance(info.value.__cause__, Picky)


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("minigrad-loader")]


def test_early_break_shuts_the_threads_down():
    dataset = ToyPets(40, delay=0.01)
    loader = DataLoader(dataset, batch_size=2, num_workers=2, prefetch=2)
    start = time.perf_counter()
    for _ in loader:
        break
    assert time.perf_counter() - start < 5.0
    assert loader_threads() == []
    assert dataset.calls <= 2 * 3 + 2  # the first batch, the prefetched ones, the started ones
    it = iter(loader)
    next(it)
    it.close()
    assert loader_threads() == []


def test_prefetch_loads_while_the_consumer_computes():
    dataset = ToyPets(6, delay=0.02)
    loader = DataLoader(dataset, batch_size=1, num_workers=2, prefetch=2)
    for _ in loader:
        dataset.consumer_busy = True
        time.sleep(0.06)
        dataset.consumer_busy = False
    assert dataset.max_active == 2
    assert sum(dataset.finished_while) >= 3
    serial = ToyPets(6, delay=0.02)
    for _ in DataLoader(serial, batch_size=1):
        serial.consumer_busy = True
        serial.consumer_busy = False
    assert not any(serial.finished_while) and serial.max_active == 1


def test_mixed_shapes_name_the_batch():
    dataset = ToyPets(4, shape=lambda i: (8 + i, 8))
    with pytest.raises(ValueError, match="batch 0, field 0: samples have different shapes"):
        next(iter(DataLoader(dataset, batch_size=2)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": 1.5},
        {"num_workers": -1},
        {"seed": -1},
        {"prefetch": 0},
        {"transform": "resize"},
    ],
)
def test_bad_loader_arguments(kwargs):
    with pytest.raises((ValueError, TypeError)):
        DataLoader(ToyPets(), **kwargs)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(object())


# ------------------------------------------------------------- random_split, Subset


def test_random_split_seed_000_fractions():
    splits = random_split(ToyPets(100), [0.72, 0.2, 0.08], seed=0)
    assert [len(s) for s in splits] == [72, 20, 8]
    indices = [i for s in splits for i in s.indices]
    assert sorted(indices) == list(range(100))
    again = random_split(ToyPets(100), [0.72, 0.2, 0.08], seed=0)
    assert [s.indices for s in again] == [s.indices for s in splits]
    other = random_split(ToyPets(100), [0.72, 0.2, 0.08], seed=1)
    assert other[0].indices != splits[0].indices


def torch_split_lengths(n, fractions):
    """torch.utils.data.random_split's rule, as its source has it."""
    lengths = [math.floor(n * f) for f in fractions]
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    return lengths


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 400), cuts=st.lists(st.integers(1, 50), min_size=2, max_size=4))
def test_random_split_lengths_follow_torch(n, cuts):
    fractions = [c / sum(cuts) for c in cuts]
    if not math.isclose(sum(fractions), 1.0):
        return
    expected = torch_split_lengths(n, fractions)
    if 0 in expected:
        with pytest.warns(UserWarning, match="gets no samples"):
            splits = random_split(list(range(n)), fractions, seed=2)
    else:
        splits = random_split(list(range(n)), fractions, seed=2)
    assert [len(s) for s in splits] == expected
    assert sorted(i for s in splits for i in s.indices) == list(range(n))


def test_random_split_matches_torch_itself():
    torch = pytest.importorskip("torch")
    for n, fractions in [(7349, [0.72, 0.2, 0.08]), (13, [0.5, 0.3, 0.2]), (10, [0.34, 0.66])]:
        theirs = torch.utils.data.random_split(range(n), fractions)
        assert [len(s) for s in random_split(list(range(n)), fractions)] == [len(s) for s in theirs]


def test_random_split_counts_and_errors():
    splits = random_split(ToyPets(10), [6, 4], seed=0)
    assert [len(s) for s in splits] == [6, 4]
    assert set(splits[0].indices).isdisjoint(splits[1].indices)
    image, _ = splits[1][0]
    np.testing.assert_array_equal(image, ToyPets()[splits[1].indices[0]][0])
    for bad in ([6, 3], [0.5, 0.6], [-1, 11], [], [0.5, "x"]):
        with pytest.raises(ValueError):
            random_split(ToyPets(10), bad)


def test_subset_indexing():
    subset = Subset(ToyPets(), [4, 2])
    assert len(subset) == 2
    np.testing.assert_array_equal(subset[-1][1], ToyPets()[2][1])
    with pytest.raises(IndexError):
        subset[2]
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        Subset(ToyPets(), [3, 10])
    with pytest.raises(TypeError):
        Subset(ToyPets(), [0.5])


# ------------------------------------------------------------------------ the cache


def test_cache_hits_return_identical_arrays_and_skip_the_dataset(tmp_path):
    dataset = ToyPets(7)
    cached = CachedDataset(dataset, (6, 8), tmp_path)
    first = [cached[i] for i in range(7)]
    assert dataset.calls == 7 and cached.complete
    for i, (image, mask) in enumerate(first):
        expected = T.Resize((6, 8))(*ToyPets()[i])
        np.testing.assert_array_equal(image, expected[0])
        np.testing.assert_array_equal(mask, expected[1])
        assert image.dtype == np.uint8 and mask.dtype == np.int64
    second = [cached[i] for i in range(7)]
    reopened = CachedDataset(ToyPets(7), (6, 8), tmp_path)
    third = [reopened[i] for i in range(7)]
    assert dataset.calls == 7 and reopened.dataset.calls == 0
    for a, b, c in zip(first, second, third, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[0], c[0])
        np.testing.assert_array_equal(a[1], c[1])
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npy"] * 3


def test_cached_loader_gives_the_uncached_batches(tmp_path):
    transform = T.train_transform((6, 8))
    plain = batches(DataLoader(ToyPets(9), batch_size=4, shuffle=True, transform=transform))
    dataset = ToyPets(9)
    cached = CachedDataset(dataset, (6, 8), tmp_path)
    loader = DataLoader(cached, batch_size=4, shuffle=True, transform=transform, num_workers=2)
    assert_same_batches(batches(loader), plain)
    assert dataset.calls == 9 and cached.complete
    loader.set_epoch(0)
    assert_same_batches(batches(loader), plain)
    assert dataset.calls == 9


def test_stale_cache_gets_a_new_fingerprint(tmp_path):
    base = dataset_fingerprint(ToyPets(5), 8)
    assert dataset_fingerprint(ToyPets(5), 8) == base
    assert dataset_fingerprint(ToyPets(5), (8, 9)) != base
    renamed = ToyPets(5)
    renamed.ids = [f"cat_{i}" for i in range(5)]
    assert dataset_fingerprint(renamed, 8) != base
    binary = ToyPets(5)
    binary.target = "binary"
    assert dataset_fingerprint(binary, 8) != base
    assert dataset_fingerprint(Subset(ToyPets(5), [0, 1]), 8) != dataset_fingerprint(
        Subset(ToyPets(5), [0, 2]), 8
    )
    CachedDataset(ToyPets(5), 8, tmp_path)[0]
    other = ToyPets(5)
    other.ids = [f"cat_{i}" for i in range(5)]
    CachedDataset(other, 8, tmp_path)[0]
    assert other.calls == 1
    assert len(list(tmp_path.glob("*.images.npy"))) == 2


class FilePets(ToyPets):
    """A ToyPets whose samples name files on disk, as OxfordIIITPet does."""

    def __init__(self, root, n=3):
        super().__init__(n)
        self.root = root
        for i in range(n):
            for path in (self.image_path(i), self.mask_path(i)):
                if not path.exists():
                    path.write_bytes(b"x")

    def image_path(self, index):
        return self.root / f"{index}.jpg"

    def mask_path(self, index):
        return self.root / f"{index}.png"


def test_changed_files_change_the_fingerprint(tmp_path):
    dataset = FilePets(tmp_path)
    base = dataset_fingerprint(dataset, 8)
    stat = os.stat(dataset.mask_path(1))
    os.utime(dataset.mask_path(1), ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert dataset_fingerprint(dataset, 8) != base
    moved = FilePets(tmp_path / ".." / tmp_path.name)
    assert dataset_fingerprint(moved, 8) == dataset_fingerprint(FilePets(tmp_path), 8)


def test_unflushed_rows_are_rebuilt_after_a_crash(tmp_path):
    dataset = ToyPets(6)
    building = CachedDataset(dataset, 8, tmp_path, flush_every=100)
    for i in range(4):
        building[i]
    # A crash now: the rows are in the memory map but no flags vouch for them.
    survivor = CachedDataset(ToyPets(6), 8, tmp_path)
    assert survivor.num_filled == 0
    survivor[0]
    assert survivor.dataset.calls == 1
    building.flush()
    assert CachedDataset(ToyPets(6), 8, tmp_path).num_filled == 4
    building.close()


def test_unreadable_flags_or_data_mean_an_empty_cache(tmp_path):
    with CachedDataset(ToyPets(4), 8, tmp_path) as cache:
        [cache[i] for i in range(4)]
        prefix = cache.prefix
    flags = tmp_path / f"{prefix.name}.filled.npy"
    flags.write_bytes(b"\x93NUMPY garbage")
    assert CachedDataset(ToyPets(4), 8, tmp_path).num_filled == 0
    with CachedDataset(ToyPets(4), 8, tmp_path) as cache:
        [cache[i] for i in range(4)]
    images = tmp_path / f"{prefix.name}.images.npy"
    np.save(images, np.zeros((2, 8, 8, 3), np.uint8))
    rebuilt = CachedDataset(ToyPets(4), 8, tmp_path)
    assert rebuilt.num_filled == 0
    image, _ = rebuilt[1]
    np.testing.assert_array_equal(image, T.Resize((8, 8))(*ToyPets()[1])[0])


def test_cache_rejects_what_it_cannot_store(tmp_path):
    transformed = ToyPets(3)
    transformed.transform = T.eval_transform(8)
    with pytest.raises(ValueError, match="transform=None"):
        CachedDataset(transformed, 8, tmp_path)
    anonymous = ToyPets(3)
    del anonymous.ids
    with pytest.raises(TypeError, match="key="):
        CachedDataset(anonymous, 8, tmp_path)
    assert CachedDataset(anonymous, 8, tmp_path, key="toy-v1")[2][0].shape == (8, 8, 3)

    class WideMasks(ToyPets):
        def __getitem__(self, index):
            image, mask = super().__getitem__(index)
            return image, mask + 300

    with pytest.raises(ValueError, match="uint8"):
        CachedDataset(WideMasks(3), 8, tmp_path)[0]
