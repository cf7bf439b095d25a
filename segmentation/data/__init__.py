"""The Oxford-IIIT Pet pipeline: the dataset reader, downloads, the synthetic set."""

from .download import download_url, extract_archive
from .oxford_pets import OxfordIIITPet, decode_image
from .synthetic import make_synthetic_pets

__all__ = [
    "OxfordIIITPet",
    "decode_image",
    "download_url",
    "extract_archive",
    "make_synthetic_pets",
]
