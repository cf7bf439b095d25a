"""Data-loading benchmark: images per second at 128x128 through the DataLoader, with and
without the decoded-and-resized cache, against a plain Pillow decode-and-resize loop.

The data is a synthetic Oxford-IIIT Pet set in the real on-disk format (JPEG images, PNG
trimaps; ``make_synthetic_pets``, read by ``OxfordIIITPet``), with image sides drawn from
``--size-range`` (default 300-500 pixels, the real set's typical sizes), or the dataset in
``--data-dir``. Each case runs one full epoch, ``--repeat`` times after a warm-up pass that
puts the files in the page cache; the table shows the median.

    python -m benchmarks.loader
    python -m benchmarks.loader --n 512 --workers 0 2 4 --repeat 5 --json loader.json

Cases: "pillow loop" opens, decodes and resizes each image (bilinear) and trimap (nearest)
in one thread and nothing else; "loader eval" is the DataLoader with ``eval_transform``
(resize + normalise + batching); "loader train" adds the training augmentation (flip,
colour jitter); "cache build" is the first epoch through an empty ``CachedDataset``;
"+ cache" cases read a complete cache (no JPEG decoding).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import environment
from segmentation.data import transforms as T
from segmentation.data.cache import CachedDataset
from segmentation.data.loader import DataLoader


@dataclass
class Result:
    case: str
    workers: int
    images_per_second: float
    ms_per_image: float
    seconds: list[float]


def make_dataset(root: Path, n: int, size_range: tuple[int, int]):
    """A trainval split of ``n`` synthetic pets under ``root``, read by OxfordIIITPet."""
    from segmentation.data.oxford_pets import OxfordIIITPet
    from segmentation.data.synthetic import make_synthetic_pets

    make_synthetic_pets(root, n_trainval=n, n_test=0, seed=0, size_range=size_range)
    return OxfordIIITPet(root, split="trainval")


def pillow_loop(dataset, size: int) -> None:
    """The baseline: decode and resize each sample's files, one after the other."""
    for i in range(len(dataset)):
        with Image.open(dataset.image_path(i)) as im:
            np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
        with Image.open(dataset.mask_path(i)) as im:
            np.asarray(im.resize((size, size), Image.NEAREST))


def epoch(loader: DataLoader) -> None:
    for _ in loader:
        pass


def timed(run: Callable[[], None], repeat: int, prepare: Callable[[], None] | None = None):
    seconds = []
    for _ in range(repeat):
        if prepare is not None:
            prepare()
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return seconds


def result(case: str, workers: int, n: int, seconds: list[float]) -> Result:
    median = statistics.median(seconds)
    return Result(case, workers, n / median, 1e3 * median / n, [round(s, 4) for s in seconds])


def loader_case(case, dataset, args, workers, transform, shuffle=True) -> Result:
    """One full epoch through a DataLoader, timed ``args.repeat`` times."""
    loader = DataLoader(
        dataset, args.batch_size, shuffle=shuffle, num_workers=workers, transform=transform
    )
    return result(case, workers, len(dataset), timed(lambda: epoch(loader), args.repeat))


def cache_build_case(dataset, args, workers, transform, folder: Path) -> Result:
    """The first epoch through an empty CachedDataset (a new folder each time)."""
    seconds = []
    for k in range(args.repeat):
        cached = CachedDataset(dataset, args.size, folder / f"build-{workers}-{k}")
        loader = DataLoader(cached, args.batch_size, num_workers=workers, transform=transform)
        seconds += timed(lambda: epoch(loader), 1)  # noqa: B023 (called at once)
    return result("cache build", workers, len(dataset), seconds)


def run_cases(dataset, args, cache_root: Path) -> list[Result]:
    size = args.size
    baseline = timed(lambda: pillow_loop(dataset, size), args.repeat)
    results = [result("pillow loop", 0, len(dataset), baseline)]
    recipes = {"eval": T.eval_transform(size), "train": T.train_transform(size)}
    warm = CachedDataset(dataset, size, cache_root / "warm")
    epoch(DataLoader(warm, args.batch_size))
    for workers in args.workers:
        for name, transform in recipes.items():
            results.append(loader_case(f"loader {name}", dataset, args, workers, transform))
        results.append(cache_build_case(dataset, args, workers, recipes["eval"], cache_root))
        for name, transform in recipes.items():
            results.append(loader_case(f"loader {name} + cache", warm, args, workers, transform))
    return results


def print_table(results: list[Result], baseline: float) -> None:
    print(f"{'case':<24}{'workers':>8}{'images/s':>11}{'ms/image':>10}{'vs pillow loop':>16}")
    for r in results:
        ratio = r.images_per_second / baseline
        print(
            f"{r.case:<24}{r.workers:>8}{r.images_per_second:>11.0f}{r.ms_per_image:>10.2f}"
            f"{ratio:>15.2f}x"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256, help="images in the synthetic set")
    parser.add_argument("--size", type=int, default=128, help="output side (square)")
    parser.add_argument("--size-range", type=int, nargs=2, default=(300, 500))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeat", type=int, default=3, help="timed epochs per case")
    parser.add_argument("--data-dir", type=Path, help="an existing dataset (trainval split)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    print(environment.header())

    with tempfile.TemporaryDirectory(prefix="loader-bench-") as tmp:
        tmp = Path(tmp)
        if args.data_dir is not None:
            from segmentation.data.oxford_pets import OxfordIIITPet

            dataset = OxfordIIITPet(args.data_dir, split="trainval")
        else:
            dataset = make_dataset(tmp / "pets", args.n, tuple(args.size_range))
        pillow_loop(dataset, args.size)  # warm-up: the files into the page cache
        results = run_cases(dataset, args, tmp / "cache")
    print(
        f"{len(dataset)} images, output {args.size}x{args.size}, batch {args.batch_size}, "
        f"median of {args.repeat}"
    )
    print_table(results, results[0].images_per_second)
    if args.json is not None:
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        payload = {"config": config, "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
