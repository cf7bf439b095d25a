"""Joint image-and-mask transforms on NumPy arrays, seeded per sample.

Every transform takes and returns a pair ``(image, mask)``: the image uint8 ``(H, W, 3)``
(RGB), the mask an integer ``(H, W)`` array of class indices. Geometric transforms move both
with the same geometry (the image resampled bilinearly, the mask by nearest neighbour, so a
mask never gains values it did not have); the colour transforms of
:mod:`segmentation.data.photometric` (re-exported here) touch the image only; the base
:class:`Transform` and :class:`Compose` live in :mod:`segmentation.data.transform_base`.
:class:`Normalize` ends a pipeline: it turns the image into float32 ``(3, H, W)`` and the mask
into int64 ``(H, W)``, the layout the models and losses take.

Randomness comes from a NumPy ``Generator`` passed in per call, ``t(image, mask, rng)``, so
the caller decides what is reproducible: :class:`segmentation.data.loader.DataLoader` hands
each sample a generator derived from ``(seed, epoch, index)``, which makes a run's
augmentation the same whatever the number of workers. Called as ``t(image, mask)``, a
transform draws from a fresh unseeded generator, as torchvision's do.

Names, arguments, defaults and parameter draws follow ``torchvision.transforms``; where
torchvision works on PIL images or tensors, the numbers here follow its tensor definitions
(see each class). Training-time augmentation is :func:`train_transform`; evaluation must use
:func:`eval_transform`, which is deterministic.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
from PIL import Image

from segmentation.data.photometric import (
    ColorJitter,
    GaussianBlur,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    gaussian_kernel1d,
)
from segmentation.data.transform_base import (
    Compose,
    Transform,
    _positive_int,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Trimap masks after OxfordIIITPet's mapping: 0 pet, 1 background, 2 border.
TRIMAP_BACKGROUND = 1

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TRIMAP_BACKGROUND",
    "Transform",
    "Compose",
    "Resize",
    "RandomResizedCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RandomRotation",
    "Normalize",
    "train_transform",
    "eval_transform",
    "ColorJitter",
    "GaussianBlur",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "gaussian_kernel1d",
]


def _size_pair(size, name: str) -> tuple[int, int]:
    """``size`` as (height, width): an int means a square, a sequence is (h, w)."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        n = _positive_int(size, name)
        return n, n
    if isinstance(size, Sequence) and len(size) == 2:
        return _positive_int(size[0], f"{name}[0]"), _positive_int(size[1], f"{name}[1]")
    raise ValueError(f"{name} must be an int or a (height, width) pair, got {size!r}")


# ------------------------------------------------------------------------ PIL bridge


def _mask_to_pil(mask: np.ndarray) -> Image.Image:
    """The mask as a PIL image: mode "L" when its values fit in uint8, else "I" (int32)."""
    low, high = (int(mask.min()), int(mask.max())) if mask.size else (0, 0)
    if 0 <= low and high <= 255:
        return Image.fromarray(mask.astype(np.uint8, copy=False))
    if -(2**31) <= low and high < 2**31:
        return Image.fromarray(mask.astype(np.int32, copy=False))
    raise ValueError(f"mask values must fit in int32, got range [{low}, {high}]")


def _pil_to_mask(image: Image.Image, dtype) -> np.ndarray:
    return np.asarray(image).astype(dtype)


def _resize_pair(image, mask, size_hw):
    """Image bilinear and mask nearest to (h, w). PIL maps output pixel centres to the same
    input points in both modes, so the geometry is identical. An input already at (h, w) is
    returned as it is."""
    h, w = size_hw
    if image.shape[:2] == (h, w):
        return image, mask
    out_image = Image.fromarray(image).resize((w, h), Image.BILINEAR)
    out_mask = _mask_to_pil(mask).resize((w, h), Image.NEAREST)
    return np.asarray(out_image), _pil_to_mask(out_mask, mask.dtype)


# ----------------------------------------------------------------------- geometric


class Resize(Transform):
    """Resize image (bilinear, antialiased by PIL when shrinking) and mask (nearest).

    As ``torchvision.transforms.Resize``: ``size=(h, w)`` gives exactly that; an int ``size``
    matches the *smaller* edge to it and keeps the aspect ratio (the other edge is
    ``int(size * long / short)``), so images of different shapes stay different: use an
    (h, w) pair, or :func:`eval_transform`, to batch them. An input already at the target
    size is returned as it is.
    """

    def __init__(self, size):
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            self.size = _positive_int(size, "Resize size")
        else:
            self.size = _size_pair(size, "Resize size")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the output for an input of ``height`` x ``width``."""
        if isinstance(self.size, tuple):
            return self.size
        short, long = min(height, width), max(height, width)
        new_short, new_long = self.size, int(self.size * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)

    def apply(self, image, mask, rng):
        return _resize_pair(image, mask, self.output_size(*image.shape[:2]))


class RandomResizedCrop(Transform):
    """Crop a random area and aspect ratio, then resize it to ``size``: torchvision's rule.

    Up to 10 tries draw an area fraction ``s ~ U(scale)`` of the input area and an aspect
    ratio ``r = exp(U(log ratio))``; the crop is ``w = round(sqrt(s * A * r))``,
    ``h = round(sqrt(s * A / r))`` at a uniform position, the first that fits. If none fits,
    the central crop of the whole image clamped to the ratio range. The crop is then resized
    as torchvision does it, crop first (the resize filter sees nothing outside the crop):
    image bilinear, mask nearest. ``size`` is an int (square) or (h, w).
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0)):
        self.size = _size_pair(size, "RandomResizedCrop size")
        scale, ratio = tuple(map(float, scale)), tuple(map(float, ratio))
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomResizedCrop scale must be (min, max), 0 < min <= max: {scale}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomResizedCrop ratio must be (min, max), 0 < min <= max: {ratio}")
        self.scale, self.ratio = scale, ratio

    def crop_box(self, height: int, width: int, rng: np.random.Generator):
        """(top, left, h, w) of the crop for a ``height`` x ``width`` input."""
        area = height * width
        log_ratio = np.log(self.ratio)
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = round(math.sqrt(target_area * aspect))
            h = round(math.sqrt(target_area / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            h, w = height, round(height * self.ratio[1])
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def apply(self, image, mask, rng):
        top, left, h, w = self.crop_box(*image.shape[:2], rng)
        window = np.s_[top : top + h, left : left + w]
        return _resize_pair(image[window], mask[window], self.size)


class RandomHorizontalFlip(Transform):
    """Mirror image and mask left-right with probability ``p`` (one draw per call)."""

    def __init__(self, p: float = 0.5):
        self.p = _probability(p, "RandomHorizontalFlip p")

    def apply(self, image, mask, rng):
        if rng.random() < self.p:
            return image[:, ::-1], mask[:, ::-1]
        return image, mask


class RandomVerticalFlip(Transform):
    """Mirror image and mask top-bottom with probability ``p`` (one draw per call)."""

    def __init__(self, p: float = 0.5):
        self.p = _probability(p, "RandomVerticalFlip p")

    def apply(self, image, mask, rng):
        if rng.random() < self.p:
            return image[::-1], mask[::-1]
        return image, mask


def _probability(p, name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {p!r}")
    return float(p)


class RandomRotation(Transform):
    """Rotate image and mask by one angle ``~ U(-degrees, degrees)`` (or ``U(degrees)`` for a
    pair) counter-clockwise about the centre, keeping the size (torchvision's ``expand=False``).

    The image is resampled bilinearly and its uncovered corners get ``fill`` (an int or an RGB
    triple); the mask by nearest neighbour, its corners getting ``mask_fill``.

    ``mask_fill`` defaults to 1, the *background* class of the trimap target as
    ``OxfordIIITPet`` maps it (0 pet, 1 background, 2 border): the corners a rotation uncovers
    are not pet. With ``target="binary"`` background is 0, so pass ``mask_fill=0``; to keep
    the corners out of the loss, pass your loss's ``ignore_index``.
    """

    def __init__(self, degrees, fill=0, mask_fill: int = TRIMAP_BACKGROUND):
        if isinstance(degrees, numbers.Real) and not isinstance(degrees, bool):
            if degrees < 0:
                raise ValueError(f"RandomRotation degrees must be non-negative, got {degrees!r}")
            degrees = (-float(degrees), float(degrees))
        elif isinstance(degrees, Sequence) and len(degrees) == 2 and degrees[0] <= degrees[1]:
            degrees = (float(degrees[0]), float(degrees[1]))
        else:
            raise ValueError(f"RandomRotation degrees must be a number or (min, max): {degrees!r}")
        if isinstance(fill, Sequence):
            if len(fill) != 3:
                raise ValueError(f"RandomRotation fill must be an int or 3 values, got {fill!r}")
            fill = tuple(int(v) for v in fill)
        else:
            fill = int(fill)
        if isinstance(mask_fill, bool) or not isinstance(mask_fill, numbers.Integral):
            raise TypeError(f"RandomRotation mask_fill must be an int, got {mask_fill!r}")
        self.degrees, self.fill, self.mask_fill = degrees, fill, int(mask_fill)

    def apply(self, image, mask, rng):
        angle = float(rng.uniform(*self.degrees))
        rgb_fill = self.fill if isinstance(self.fill, tuple) else (self.fill,) * 3
        out_image = Image.fromarray(image).rotate(angle, Image.BILINEAR, fillcolor=rgb_fill)
        pil_mask = _mask_to_pil(mask)
        if pil_mask.mode == "L" and not 0 <= self.mask_fill <= 255:
            pil_mask = Image.fromarray(mask.astype(np.int32))
        out_mask = pil_mask.rotate(angle, Image.NEAREST, fillcolor=self.mask_fill)
        return np.asarray(out_image), _pil_to_mask(out_mask, mask.dtype)


# ---------------------------------------------------------------------- final step


class Normalize(Transform):
    """Last step: uint8 (H, W, 3) -> float32 (3, H, W) ``(x / 255 - mean) / std`` per channel,
    and the mask -> int64 (H, W); both contiguous. torchvision's ``ToTensor`` followed by its
    ``Normalize``, in one pass. Defaults: ImageNet's mean and std."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        if mean.shape != (3,) or std.shape != (3,):
            raise ValueError(f"Normalize mean and std must have 3 values, got {mean}, {std}")
        if np.any(std <= 0):
            raise ValueError(f"Normalize std must be positive, got {std}")
        self.mean, self.std = tuple(mean.tolist()), tuple(std.tolist())
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)[:, None, None]
        self._offset = (-mean / std).astype(np.float32)[:, None, None]

    def apply(self, image, mask, rng):
        out = np.empty((3, *image.shape[:2]), dtype=np.float32)
        np.multiply(image.transpose(2, 0, 1), self._scale, out=out)
        out += self._offset
        return out, np.ascontiguousarray(mask, dtype=np.int64)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


# --------------------------------------------------------------------------- recipes


def train_transform(size, augment: bool = True) -> Compose:
    """The training pipeline of seed 000's report: resize to ``size`` (int: square, or (h, w)),
    a horizontal flip with p = 0.5, ColorJitter(0.2, 0.2, 0.2, 0.1), Normalize (ImageNet).

    ``augment=False`` gives :func:`eval_transform`. Output: float32 (3, h, w), int64 (h, w).
    """
    if not augment:
        return eval_transform(size)
    return Compose(
        [
            Resize(_size_pair(size, "train_transform size")),
            RandomHorizontalFlip(0.5),
            ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1),
            Normalize(),
        ]
    )


def eval_transform(size) -> Compose:
    """Deterministic evaluation pipeline: resize to ``size`` (int: square, or (h, w)) and
    Normalize. Validation and test data must go through this, never through the augmenting
    one (seed 000 evaluated through its augmenting transform, and its ROC came out random)."""
    return Compose([Resize(_size_pair(size, "eval_transform size")), Normalize()])
