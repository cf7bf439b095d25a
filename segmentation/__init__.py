"""Segmentation on :mod:`minigrad` and :mod:`layers`: the U-Net family, losses, metrics and the
Oxford-IIIT Pet pipeline (to come, as in DESIGN.md)."""
