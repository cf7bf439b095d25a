"""The Oxford-IIIT Pet pipeline: the dataset reader, downloads, the synthetic set, joint
transforms, the loader and its decoded-image cache."""

from .cache import CachedDataset
from .download import download_url, extract_archive
from .loader import DataLoader, Subset, random_split
from .oxford_pets import OxfordIIITPet, decode_image
from .synthetic import make_synthetic_pets
from .transforms import (
    ColorJitter,
    Compose,
    GaussianBlur,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
    Resize,
    eval_transform,
    train_transform,
)

__all__ = [
    "CachedDataset",
    "ColorJitter",
    "Compose",
    "DataLoader",
    "GaussianBlur",
    "Normalize",
    "OxfordIIITPet",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "Subset",
    "decode_image",
    "download_url",
    "eval_transform",
    "extract_archive",
    "make_synthetic_pets",
    "random_split",
    "train_transform",
]
