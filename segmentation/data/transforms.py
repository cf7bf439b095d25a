"""Joint image-and-mask transforms on NumPy arrays, seeded per sample.

Every transform takes and returns a pair ``(image, mask)``: the image uint8 ``(H, W, 3)``
(RGB), the mask an integer ``(H, W)`` array of class indices. Geometric transforms move both
with the same geometry (the image resampled bilinearly, the mask by nearest neighbour, so a
mask never gains values it did not have); colour transforms touch the image only.
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
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Trimap masks after OxfordIIITPet's mapping: 0 pet, 1 background, 2 border.
TRIMAP_BACKGROUND = 1
# ITU-R 601-2 luma, as torchvision's rgb_to_grayscale.
_LUMA = np.array([0.2989, 0.587, 0.114], dtype=np.float32)
# Channel offsets n of the closed-form HSV -> RGB, for R, G, B: (3, 1, 1).
_HSV_SECTOR_OFFSETS = np.array([5.0, 3.0, 1.0], dtype=np.float32)[:, None, None]

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
    "ColorJitter",
    "GaussianBlur",
    "Normalize",
    "train_transform",
    "eval_transform",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "gaussian_kernel1d",
]


# ---------------------------------------------------------------------------- checks


def _check_sample(image, mask, where: str) -> None:
    """Raise naming ``where`` unless image is uint8 (H, W, 3) and mask integer (H, W)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise TypeError(
            f"{where}: image must be a uint8 numpy array of shape (H, W, 3), got "
            f"{_describe(image)} (Normalize must be the last transform)"
        )
    if image.shape[2] != 3:
        raise ValueError(f"{where}: image must have 3 channels (H, W, 3), got {image.shape}")
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype.kind not in "iu":
        raise TypeError(
            f"{where}: mask must be an integer numpy array of shape (H, W), got {_describe(mask)}"
        )
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"{where}: mask shape {mask.shape} does not match image shape {image.shape[:2]}"
        )


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"{x.dtype} array of shape {x.shape}"
    return type(x).__name__


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _size_pair(size, name: str) -> tuple[int, int]:
    """``size`` as (height, width): an int means a square, a sequence is (h, w)."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        n = _positive_int(size, name)
        return n, n
    if isinstance(size, Sequence) and len(size) == 2:
        return _positive_int(size[0], f"{name}[0]"), _positive_int(size[1], f"{name}[1]")
    raise ValueError(f"{name} must be an int or a (height, width) pair, got {size!r}")


def _interval(value, name: str, center: float, bound: tuple[float, float], clip_at_zero: bool):
    """torchvision's ColorJitter argument rule: a number v means [center - v, center + v]
    (clipped at 0 for factors), a pair is taken as it is; a degenerate [center, center] means
    "off" (None)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}")
        low, high = center - float(value), center + float(value)
        if clip_at_zero:
            low = max(low, 0.0)
    elif isinstance(value, Sequence) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
    else:
        raise TypeError(f"{name} must be a number or a (min, max) pair, got {value!r}")
    if not bound[0] <= low <= high <= bound[1]:
        raise ValueError(f"{name} range must lie within {bound} with min <= max, got {value!r}")
    if low == high == center:
        return None
    return low, high


def _rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


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


# ------------------------------------------------------------------------ base types


class Transform:
    """Base class: ``t(image, mask, rng=None) -> (image, mask)``.

    Checks the pair (uint8 (H, W, 3) image, integer (H, W) mask of the same size), then calls
    :meth:`apply` with a generator (a fresh unseeded one when ``rng`` is None).
    """

    def __call__(self, image, mask, rng: np.random.Generator | None = None):
        _check_sample(image, mask, type(self).__name__)
        return self.apply(image, mask, _rng(rng))

    def apply(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        """Transform a checked pair; subclasses draw any randomness from ``rng``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose:
    """Chain transforms: ``Compose([t1, t2])(image, mask, rng)`` is
    ``t2(*t1(image, mask, rng), rng)``, all drawing from the one generator in turn.

    Each element is called as ``t(image, mask, rng)``. With ``rng=None`` a fresh unseeded
    generator is made once and shared by the chain.
    """

    def __init__(self, transforms: Sequence[Callable]):
        transforms = list(transforms)
        for k, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{k}] is not callable: {t!r}")
        self.transforms = transforms

    def __call__(self, image, mask, rng: np.random.Generator | None = None):
        rng = _rng(rng)
        for t in self.transforms:
            image, mask = t(image, mask, rng)
        return image, mask

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


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


# -------------------------------------------------------------------------- colour


def _grayscale(x: np.ndarray) -> np.ndarray:
    """Luma of a float (H, W, 3) image, (H, W, 1)."""
    return (x @ _LUMA)[..., None]


def _blend(x: np.ndarray, y, ratio: float) -> np.ndarray:
    """``ratio * x + (1 - ratio) * y`` clamped to [0, 255], in place in ``x``."""
    x *= ratio
    x += (1.0 - ratio) * y
    return np.clip(x, 0.0, 255.0, out=x)


def adjust_brightness(x: np.ndarray, factor: float) -> np.ndarray:
    """Blend with black: ``clamp(factor * x)``. Float (H, W, 3) in [0, 255], in place."""
    return _blend(x, 0.0, factor)


def adjust_contrast(x: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the mean luma (one number for the image). Float (H, W, 3), in place."""
    return _blend(x, float(_grayscale(x).mean()), factor)


def adjust_saturation(x: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's own luma, pixel by pixel. Float (H, W, 3), in place."""
    return _blend(x, _grayscale(x), factor)


def adjust_hue(x: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue by ``shift`` turns (in [-0.5, 0.5]) keeping saturation and value, as
    torchvision's RGB -> HSV, ``h = (h + shift) mod 1``, HSV -> RGB. Float (H, W, 3) in
    [0, 255] -> a new float32 array.

    The HSV -> RGB step is the closed form of torchvision's six-sector table: channel
    ``n`` in (5, 3, 1) for (R, G, B) is ``V - V S clip(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6 h) mod 6``, and ``V S`` is max - min of the input pixel.
    """
    r, g, b = np.moveaxis(x, 2, 0)
    maxc, minc = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    delta = maxc - minc
    safe = np.where(delta == 0, np.float32(1.0), delta)
    h6 = np.where(
        maxc == r,
        (g - b) / safe,
        np.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe),
    )
    h = _wrap(_wrap(h6 / 6.0 + 1.0, 1.0) + shift, 1.0)
    k = _wrap(_HSV_SECTOR_OFFSETS + 6.0 * h, 6.0)
    weight = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    out = maxc - delta * weight
    return np.ascontiguousarray(np.moveaxis(out, 0, 2), dtype=np.float32)


def _wrap(x: np.ndarray, period: float) -> np.ndarray:
    """``x mod period`` for a positive period (np.mod's result, several times faster)."""
    return x - period * np.floor(x / period)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue, in a random order; image only.

    As ``torchvision.transforms.ColorJitter``: a number v gives factors ``~ U(max(0, 1 - v),
    1 + v)`` (hue: a shift ``~ U(-v, v)``, v <= 0.5), a pair is the range itself, 0 turns
    the adjustment off. Each call draws the order (a permutation of the four) and then all
    four parameters. The formulas are torchvision's tensor ones (see ``adjust_*``): brightness
    blends with black, contrast with the mean luma ``0.2989 R + 0.587 G + 0.114 B``,
    saturation with the pixel's luma, hue rotates H in HSV; each result is clamped to
    [0, 255]. Unlike torchvision's uint8 path, which truncates to uint8 after every step, the
    steps run in float32 and the result is rounded once.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _interval(brightness, "brightness", 1.0, (0.0, math.inf), True)
        self.contrast = _interval(contrast, "contrast", 1.0, (0.0, math.inf), True)
        self.saturation = _interval(saturation, "saturation", 1.0, (0.0, math.inf), True)
        self.hue = _interval(hue, "hue", 0.0, (-0.5, 0.5), False)

    def draw(self, rng: np.random.Generator):
        """(order, [brightness, contrast, saturation, hue]): the order a permutation of 0..3,
        then one uniform draw for each adjustment that is on (None for those that are off)."""
        order = rng.permutation(4)
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        params = [rng.uniform(*r) if r is not None else None for r in ranges]
        return order, params

    def apply(self, image, mask, rng):
        order, params = self.draw(rng)
        if all(p is None for p in params):
            return image, mask
        adjust = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        x = image.astype(np.float32)
        for k in order:
            if params[k] is not None:
                x = adjust[k](x, params[k])
        return _to_uint8(x), mask


def _to_uint8(x: np.ndarray) -> np.ndarray:
    np.rint(x, out=x)
    return np.clip(x, 0, 255, out=x).astype(np.uint8)


class GaussianBlur(Transform):
    """Blur the image with a Gaussian of ``sigma ~ U(sigma)`` (or the fixed number); image only.

    As ``torchvision.transforms.GaussianBlur``: ``kernel_size`` is an odd int or (kx, ky)
    (width, height); the 1-D kernel is ``exp(-x^2 / (2 sigma^2))`` on
    ``x = -(k-1)/2 ... (k-1)/2``, normalised to sum 1; borders are reflected (no edge repeat);
    the result is rounded to uint8. Applied separably, rows then columns.
    """

    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        kx, ky = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        for name, k in (("kernel_size[0]", kx), ("kernel_size[1]", ky)):
            if _positive_int(k, f"GaussianBlur {name}") % 2 == 0:
                raise ValueError(f"GaussianBlur {name} must be odd, got {k}")
        if isinstance(sigma, numbers.Real):
            sigma = (float(sigma), float(sigma))
        sigma = tuple(map(float, sigma))
        if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError(
                f"GaussianBlur sigma must be > 0 or (min, max), 0 < min <= max: {sigma}"
            )
        self.kernel_size, self.sigma = (int(kx), int(ky)), sigma

    def apply(self, image, mask, rng):
        sigma = float(rng.uniform(*self.sigma))
        kx, ky = self.kernel_size
        x = image.astype(np.float32)
        x = _convolve_axis(x, gaussian_kernel1d(ky, sigma), axis=0)
        x = _convolve_axis(x, gaussian_kernel1d(kx, sigma), axis=1)
        return _to_uint8(x), mask


def gaussian_kernel1d(size: int, sigma: float) -> np.ndarray:
    """torchvision's ``_get_gaussian_kernel1d``: (size,) float32 weights summing to 1."""
    half = (size - 1) * 0.5
    x = np.linspace(-half, half, size)
    pdf = np.exp(-0.5 * (x / sigma) ** 2)
    return (pdf / pdf.sum()).astype(np.float32)


def _convolve_axis(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Correlate float (H, W, C) ``x`` with a 1-D kernel along ``axis``, reflect-padded."""
    half = len(kernel) // 2
    if half == 0:
        return x * kernel[0]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (half, half)
    padded = np.pad(x, pad, mode="reflect")
    n = x.shape[axis]
    out = np.zeros_like(x)
    for k, weight in enumerate(kernel):
        out += weight * padded.take(np.arange(k, k + n), axis=axis)
    return out


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
