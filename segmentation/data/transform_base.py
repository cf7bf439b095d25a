"""The base of the joint transforms: :class:`Transform` (``t(image, mask, rng)``),
:class:`Compose`, and the checks every transform shares. The geometric transforms
(:mod:`segmentation.data.transforms`) and the photometric ones
(:mod:`segmentation.data.photometric`) both build on it."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np


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


def _rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


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
