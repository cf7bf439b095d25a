"""Photometric transforms: colour jitter and Gaussian blur, on the image of a pair only.

:class:`ColorJitter` and :class:`GaussianBlur` take and return ``(image, mask)`` pairs like
every :class:`segmentation.data.transforms.Transform` (uint8 ``(H, W, 3)`` RGB image, integer
``(H, W)`` mask), drawing from the generator passed in; the mask passes through untouched.
The formulas are torchvision's tensor definitions, written out as functions on float
``(H, W, 3)`` images in ``[0, 255]``: ``adjust_brightness``, ``adjust_contrast``,
``adjust_saturation``, ``adjust_hue`` (through HSV, in closed form) and
``gaussian_kernel1d``. Each name is also importable from :mod:`segmentation.data.transforms`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from segmentation.data.transform_base import Transform, _positive_int

# ITU-R 601-2 luma, as torchvision's rgb_to_grayscale.
_LUMA = np.array([0.2989, 0.587, 0.114], dtype=np.float32)
# Channel offsets n of the closed-form HSV -> RGB, for R, G, B: (3, 1, 1).
_HSV_SECTOR_OFFSETS = np.array([5.0, 3.0, 1.0], dtype=np.float32)[:, None, None]

__all__ = [
    "ColorJitter",
    "GaussianBlur",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "gaussian_kernel1d",
]


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
