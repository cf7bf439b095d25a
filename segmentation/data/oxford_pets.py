"""The Oxford-IIIT Pet dataset as distributed: index, decoding, targets and the breed table.

On disk (the real archives, and :func:`~segmentation.data.synthetic.make_synthetic_pets`)::

    root/images/<id>.jpg                JPEG mostly; some are PNG or GIF, grayscale or CMYK
    root/annotations/trimaps/<id>.png   1 pet, 2 background, 3 border
    root/annotations/list.txt           6 "#" header lines, then "id class_id species breed_id"
    root/annotations/trainval.txt       3,680 rows, same columns
    root/annotations/test.txt           3,669 rows

The index comes from the split file alone: the folders also hold ``._*`` junk, ``.mat`` files
and unlisted images. torchvision's twin is ``torchvision.datasets.OxfordIIITPet`` with
``target_types="segmentation"``; it looks under ``root/oxford-iiit-pet``, this class under
``root`` itself.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .download import download_url, extract_archive

BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"


@dataclass(frozen=True)
class Resource:
    """One archive of the distribution: file name (appended to the base URL), bytes, md5."""

    name: str
    size: int
    md5: str


RESOURCES = (
    Resource("images.tar.gz", 791_918_971, "5c4f3ee8e5d25df40f4fd59a7f44e54c"),
    Resource("annotations.tar.gz", 19_173_078, "95a8c909bbe2e81eed6a22bccdf3f68f"),
)

# (name in the file ids, species) in class-id order (class_id = position + 1). Cats are
# capitalised, dogs lower case; breed_id counts within a species, also in this order.
BREEDS = (
    ("Abyssinian", 1),
    ("american_bulldog", 2),
    ("american_pit_bull_terrier", 2),
    ("basset_hound", 2),
    ("beagle", 2),
    ("Bengal", 1),
    ("Birman", 1),
    ("Bombay", 1),
    ("boxer", 2),
    ("British_Shorthair", 1),
    ("chihuahua", 2),
    ("Egyptian_Mau", 1),
    ("english_cocker_spaniel", 2),
    ("english_setter", 2),
    ("german_shorthaired", 2),
    ("great_pyrenees", 2),
    ("havanese", 2),
    ("japanese_chin", 2),
    ("keeshond", 2),
    ("leonberger", 2),
    ("Maine_Coon", 1),
    ("miniature_pinscher", 2),
    ("newfoundland", 2),
    ("Persian", 1),
    ("pomeranian", 2),
    ("pug", 2),
    ("Ragdoll", 1),
    ("Russian_Blue", 1),
    ("saint_bernard", 2),
    ("samoyed", 2),
    ("scottish_terrier", 2),
    ("shiba_inu", 2),
    ("Siamese", 1),
    ("Sphynx", 1),
    ("staffordshire_bull_terrier", 2),
    ("wheaten_terrier", 2),
    ("yorkshire_terrier", 2),
)
SPECIES = ("Cat", "Dog")
LIST_HEADER = (
    "#Image CLASS-ID SPECIES BREED ID",
    "#ID: 1:37 Class ids",
    "#SPECIES: 1:Cat 2:Dog",
    "#BREED ID: 1-25:Cat 1:12:Dog",
    "#All images with 1st letter as captial are cat images",
    "#images with small first letter are dog images",
)


def class_name(breed: str) -> str:
    """torchvision's display name of a breed: "american_bulldog" -> "American Bulldog"."""
    return " ".join(part.title() for part in breed.split("_"))


def _breed_ids() -> tuple[int, ...]:
    """Each breed's breed_id column: 1-based, counted within its species, in class order."""
    counts = {1: 0, 2: 0}
    ids = []
    for _, species in BREEDS:
        counts[species] += 1
        ids.append(counts[species])
    return tuple(ids)


CLASSES = tuple(class_name(breed) for breed, _ in BREEDS)
BREED_IDS = _breed_ids()

SPLITS = ("trainval", "test")
TARGETS = ("trimap", "binary")
# Raw trimap value -> label; -1 marks values the trimap never holds.
_TRIMAP_LUT = np.full(256, -1, dtype=np.int64)
_TRIMAP_LUT[[1, 2, 3]] = [0, 1, 2]
_BINARY_LUT = np.full(256, -1, dtype=np.int64)
_BINARY_LUT[[1, 2, 3]] = [1, 0, 1]
_LUTS = {"trimap": _TRIMAP_LUT, "binary": _BINARY_LUT}
# What Pillow raises on files it cannot decode (truncated, garbled or of no known format).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError)


class BadSampleError(ValueError):
    """An image or trimap that cannot be used: undecodable, wrong values or shapes."""


@dataclass(frozen=True)
class Row:
    """One line of a split file: the id and its 1-based class, species and breed columns."""

    id: str
    class_id: int
    species: int
    breed_id: int


def read_split_file(path: str | os.PathLike) -> list[Row]:
    """Parse trainval.txt, test.txt or list.txt: skip "#" lines and blanks, check columns."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or line.startswith("#"):
            continue
        if len(fields) != 4 or not all(f.isdigit() for f in fields[1:]):
            raise ValueError(
                f"{path}, line {number}: expected 'id class_id species breed_id' "
                f"(an id and three integers), got {line!r}"
            )
        class_id, species, breed = map(int, fields[1:])
        if not 1 <= class_id <= len(BREEDS) or species not in (1, 2):
            raise ValueError(
                f"{path}, line {number}: class_id must be in 1..{len(BREEDS)} and species "
                f"1 or 2, got {class_id} and {species}"
            )
        rows.append(Row(fields[0], class_id, species, breed))
    return rows


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image by its content (not its extension) to RGB uint8 (H, W, 3).

    Grayscale, palette, CMYK, RGBA (alpha dropped, as torchvision does), PNG or GIF saved
    under .jpg: all come out RGB. EXIF orientation is ignored, as the trimaps were drawn on
    the stored pixels.

    Raises:
        FileNotFoundError: no such file.
        BadSampleError: the file is not an image Pillow can decode; names the file.
    """
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise
    except _DECODE_ERRORS as e:
        raise BadSampleError(f"{path}: cannot decode the image ({e})") from e


def decode_trimap(path: str | os.PathLike) -> np.ndarray:
    """Decode a trimap PNG to its raw values, uint8 (H, W), checked to be in {1, 2, 3}.

    Raises:
        FileNotFoundError: no such file.
        BadSampleError: undecodable, not single-channel, or values outside {1, 2, 3}, with
            the values found.
    """
    raw = _read_trimap(path)
    if (_TRIMAP_LUT[raw] < 0).any():
        raise BadSampleError(_bad_values_message(path, raw))
    return raw


def trimap_labels(path: str | os.PathLike, target: str = "trimap") -> np.ndarray:
    """Decode a trimap to the labels of ``target``, int64 (H, W); errors as decode_trimap."""
    raw = _read_trimap(path)
    labels = _LUTS[target][raw]
    if (labels < 0).any():
        raise BadSampleError(_bad_values_message(path, raw))
    return labels


def _read_trimap(path) -> np.ndarray:
    """A single-channel PNG's values as uint8 (H, W), not yet checked against {1, 2, 3}."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise BadSampleError(
                    f"{path}: a trimap must be single-channel (mode L or P), got mode {im.mode}"
                )
            raw = np.asarray(im)
    except (FileNotFoundError, BadSampleError):
        raise
    except _DECODE_ERRORS as e:
        raise BadSampleError(f"{path}: cannot decode the trimap ({e})") from e
    if raw.dtype != np.uint8:
        if raw.size and (raw.min() < 0 or raw.max() > 255):
            raise BadSampleError(_bad_values_message(path, raw))
        raw = raw.astype(np.uint8)
    return raw


def _bad_values_message(path, raw: np.ndarray) -> str:
    """Name the file and the values outside {1, 2, 3} it holds (the first ten)."""
    found = np.unique(raw)
    bad = [int(v) for v in found if v not in (1, 2, 3)]
    shown = str(bad[:10])[:-1] + (", ...]" if len(bad) > 10 else "]")
    return f"{path}: trimap values {shown} outside {{1 pet, 2 background, 3 border}}"


class OxfordIIITPet:
    """Oxford-IIIT Pet images and trimaps as a map-style dataset.

    ``ds[i]`` is ``(image, mask)``: uint8 (H, W, 3) RGB and int64 (H, W), each image at its
    own size; with ``transform``, ``transform(image, mask)`` (a joint transform, which
    returns the pair). Targets: "trimap" gives 0 pet, 1 background, 2 border; "binary"
    gives 1 for pet and border, 0 for background.

    Args:
        root: folder holding ``images/`` and ``annotations/``.
        split: "trainval" or "test".
        target: "trimap" or "binary".
        transform: callable ``(image, mask) -> (image, mask)``, or None.
        download: fetch and extract the two archives into ``root`` unless the dataset is
            there already.
        skip_bad: check every sample at construction (images decode, trimaps hold only
            1, 2, 3 and match the image's size) and leave out, with one warning, those that
            fail; ``ds.skipped`` lists them. Without it a listed file missing on disk raises
            at construction, and a bad file raises when read.
        mirror: base URL (or a local folder) to download from instead of :data:`BASE_URL`.

    Attributes:
        ids: the sample ids, e.g. "Abyssinian_100", in split-file order.
        classes: the 37 breed names as torchvision writes them ("American Bulldog").
        class_to_idx: name -> index into ``classes``.
        class_ids: each sample's breed as an index into ``classes`` (torchvision's
            ``_labels``: the file's class_id - 1).
        bin_classes, bin_class_to_idx: ["Cat", "Dog"] and its index map.
        species: each sample's species as an index into ``bin_classes`` (torchvision's
            ``_bin_labels``).
        skipped: (id, reason) of each sample left out by ``skip_bad``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "trainval",
        target: str = "trimap",
        transform: Callable | None = None,
        download: bool = False,
        skip_bad: bool = False,
        mirror: str | os.PathLike | None = None,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        self.root = Path(root)
        self.split = split
        self.target = target
        self.transform = transform
        if download and not dataset_exists(self.root):
            download_pets(self.root, mirror)
        self._check_exists(split)
        rows = read_split_file(self._split_file(split))
        self.skipped: list[tuple[str, str]] = []
        rows = self._validated(rows) if skip_bad else self._present(rows)
        self.ids = [row.id for row in rows]
        self.classes = list(CLASSES)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.class_ids = [row.class_id - 1 for row in rows]
        self.bin_classes = list(SPECIES)
        self.bin_class_to_idx = {name: i for i, name in enumerate(self.bin_classes)}
        self.species = [row.species - 1 for row in rows]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        """``(image uint8 (H, W, 3), mask int64 (H, W))``, or ``transform`` of that pair."""
        image = self.load_image(index)
        mask = self.load_mask(index)
        if mask.shape != image.shape[:2]:
            raise BadSampleError(
                f"{self.mask_path(index)}: trimap is {mask.shape[1]}x{mask.shape[0]}, its "
                f"image {self.image_path(index)} is {image.shape[1]}x{image.shape[0]}"
            )
        if self.transform is not None:
            return self.transform(image, mask)
        return image, mask

    def __repr__(self) -> str:
        return (
            f"OxfordIIITPet(root={str(self.root)!r}, split={self.split!r}, "
            f"target={self.target!r}, samples={len(self)})"
        )

    def image_path(self, index: int) -> Path:
        """The image file of sample ``index``: ``root/images/<id>.jpg``."""
        return self.root / "images" / f"{self.ids[index]}.jpg"

    def mask_path(self, index: int) -> Path:
        """The trimap file of sample ``index``: ``root/annotations/trimaps/<id>.png``."""
        return self.root / "annotations" / "trimaps" / f"{self.ids[index]}.png"

    def load_image(self, index: int) -> np.ndarray:
        """Sample ``index``'s image, RGB uint8 (H, W, 3), without the transform."""
        return decode_image(self.image_path(index))

    def load_mask(self, index: int) -> np.ndarray:
        """Sample ``index``'s mask as labels of ``target``, int64 (H, W), without transform."""
        return trimap_labels(self.mask_path(index), self.target)

    def _split_file(self, split: str) -> Path:
        return self.root / "annotations" / f"{split}.txt"

    def _check_exists(self, split: str) -> None:
        """Raise FileNotFoundError saying how to get the data when root holds none."""
        missing = [
            p
            for p in (self.root / "images", self.root / "annotations" / "trimaps")
            if not p.is_dir()
        ]
        if not self._split_file(split).is_file():
            missing.append(self._split_file(split))
        if missing:
            raise FileNotFoundError(
                f"no Oxford-IIIT Pet dataset under {self.root} ({', '.join(map(str, missing))} "
                "missing): pass download=True to fetch it, or write a synthetic one there "
                "with segmentation.data.make_synthetic_pets(root)"
            )

    def _present(self, rows: list[Row]) -> list[Row]:
        """``rows``, after checking that every listed file exists (a cheap stat each)."""
        missing = []
        for row in rows:
            for path in self._paths(row):
                if not path.is_file():
                    missing.append(str(path))
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise FileNotFoundError(
                f"{len(missing)} file(s) listed in {self._split_file(self.split)} are missing: "
                f"{shown}; pass skip_bad=True to leave those samples out"
            )
        return rows

    def _validated(self, rows: list[Row]) -> list[Row]:
        """The rows whose files pass :func:`check_sample`; one warning lists the others."""
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            problems = list(pool.map(lambda row: check_sample(*self._paths(row)), rows))
        kept = [row for row, problem in zip(rows, problems, strict=True) if problem is None]
        self.skipped = [(row.id, p) for row, p in zip(rows, problems, strict=True) if p is not None]
        if self.skipped:
            listing = "; ".join(f"{id_}: {why}" for id_, why in self.skipped)
            warnings.warn(
                f"OxfordIIITPet({self.split!r}) left out {len(self.skipped)} of {len(rows)} "
                f"samples under {self.root}: {listing}",
                stacklevel=3,
            )
        return kept

    def _paths(self, row: Row) -> tuple[Path, Path]:
        return (
            self.root / "images" / f"{row.id}.jpg",
            self.root / "annotations" / "trimaps" / f"{row.id}.png",
        )


def check_sample(image_path: Path, mask_path: Path) -> str | None:
    """Why a sample is unusable (a short reason naming the file), or None if it is fine.

    Cheap: JPEGs are decoded at 1/8 scale (the whole stream is still read, so a truncated
    file is found), other images and the trimap fully; only headers give the image size.
    """
    try:
        with Image.open(image_path) as im:
            size = im.size
            im.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            im.load()
        mask = decode_trimap(mask_path)
    except FileNotFoundError as e:
        return f"{e.filename}: no such file"
    except BadSampleError as e:
        return str(e)
    except _DECODE_ERRORS as e:
        return f"{image_path}: cannot decode the image ({e})"
    if mask.shape != (size[1], size[0]):
        return (
            f"{mask_path}: trimap is {mask.shape[1]}x{mask.shape[0]}, its image is "
            f"{size[0]}x{size[1]}"
        )
    return None


def dataset_exists(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds both split files and the images and trimaps folders."""
    root = Path(root)
    return (
        (root / "images").is_dir()
        and (root / "annotations" / "trimaps").is_dir()
        and all((root / "annotations" / f"{split}.txt").is_file() for split in SPLITS)
    )


def download_pets(root: str | os.PathLike, mirror: str | os.PathLike | None = None) -> Path:
    """Download (or resume) and verify the archives of :data:`RESOURCES`, extract into root.

    ``mirror`` replaces :data:`BASE_URL`: another http(s) base URL, or a local folder holding
    the archives. The archives stay in ``root``, so a second call only re-extracts.
    """
    root = Path(root)
    base = _base_url(mirror)
    for resource in RESOURCES:
        archive = download_url(
            base + resource.name, root / resource.name, md5=resource.md5, size=resource.size
        )
        extract_archive(archive, root)
    return root


def _base_url(mirror: str | os.PathLike | None) -> str:
    """The base URL, ending in "/", for ``mirror`` (None, a URL, or a local folder)."""
    if mirror is None:
        return BASE_URL
    text = os.fspath(mirror)
    if "://" not in text:
        folder = Path(text).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"mirror {text!r} is neither a URL (http://, https://, file://) nor a folder"
            )
        text = folder.as_uri()
    return text if text.endswith("/") else text + "/"
