"""Plots of a training run: loss and IoU curves, mask overlays and per-class ROC curves.

Each figure is a ``matplotlib.figure.Figure`` saved straight to a PNG file: no pyplot, so
importing this module neither needs a display nor changes the backend of a notebook.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import minigrad as mg
from segmentation import metrics
from segmentation.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform

CLASS_NAMES = {3: ("pet", "background", "border"), 2: ("background", "pet")}
PET, BACKGROUND, BORDER = (230, 80, 40), (40, 90, 200), (250, 220, 60)
PALETTES = {
    3: np.array([PET, BACKGROUND, BORDER], dtype=np.uint8),
    2: np.array([BACKGROUND, PET], dtype=np.uint8),
}


def plot_curves(history: list, path) -> None:
    """Training and validation loss (left), validation mean IoU and Dice (right), per epoch."""
    epochs = [row["epoch"] + 1 for row in history]
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    left.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    left.set(xlabel="epoch", ylabel="loss", title="Loss")
    left.legend()
    right.plot(epochs, [r["val_miou"] for r in history], "o-", label="mean IoU")
    right.plot(epochs, [r["val_dice"] for r in history], "s--", label="Dice")
    right.set(xlabel="epoch", ylabel="score", title="Validation mean IoU and Dice")
    right.legend()
    _save(fig, path)


def overlay(
    image: np.ndarray, mask: np.ndarray, num_classes: int = 3, alpha: float = 0.45
) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with each class of ``mask`` (H, W) tinted in its colour
    (:data:`PALETTES`: pet orange, background blue, border yellow)."""
    palette = PALETTES[num_classes]
    tint = palette[np.clip(mask, 0, len(palette) - 1)]
    return (image * (1 - alpha) + tint * alpha).astype(np.uint8)


def _denormalize(chw: np.ndarray) -> np.ndarray:
    rgb = chw.transpose(1, 2, 0) * np.asarray(IMAGENET_STD) + np.asarray(IMAGENET_MEAN)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def plot_samples(model, dataset, config, path, count: int = 4) -> None:
    """Image, true mask and predicted mask overlays for the first ``count`` samples."""
    transform = eval_transform(config.img_size)
    count = min(count, len(dataset))
    fig = Figure(figsize=(9, 3 * count))
    axes = fig.subplots(count, 3, squeeze=False)
    model.eval()
    for row in range(count):
        image, mask = transform(*dataset[row], None)
        with mg.no_grad():
            logits = model(mg.tensor(image[None], device=config.device))
        pred = logits.numpy()[0].argmax(axis=0)
        rgb = _denormalize(image)
        c = config.num_classes
        panels = (rgb, overlay(rgb, mask, c), overlay(rgb, pred, c))
        for ax, panel, title in zip(
            axes[row], panels, ("image", "true mask", "predicted"), strict=True
        ):
            ax.imshow(panel)
            ax.set_title(title)
            ax.axis("off")
    _save(fig, path)


def plot_roc(scores: np.ndarray, targets: np.ndarray, num_classes: int, path) -> None:
    """One-vs-rest ROC curve per class from pixel probabilities (P, C) and labels (P,); a
    class that is absent (or everywhere) has no curve."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    names = CLASS_NAMES.get(num_classes, [str(c) for c in range(num_classes)])
    for c in range(num_classes):
        positive = targets == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = metrics.roc_curve(scores[:, c], positive)
        ax.plot(fpr, tpr, label=f"{names[c]} (AUC {metrics.auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC per class")
    ax.legend(loc="lower right")
    _save(fig, path)


def _save(fig, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
