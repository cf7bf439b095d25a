"""The train/eval loop of the main job: data, model, loss, optimizer, scheduler, metrics,
checkpoints, early stopping and the history, on top of the rest of the package.

``run(config)`` trains ``config.model`` on the Oxford-IIIT Pet folder ``config.data_dir``
(the real dataset or the synthetic one) and writes into ``config.out``:

- ``history.json`` / ``history.csv``: one row per epoch (``epoch``, ``train_loss``,
  ``val_loss``, ``val_miou``, ``val_dice``, ``val_pixel_acc``, ``lr``, ``seconds``, ...);
- ``config.json``;
- ``checkpoints/last.safetensors`` after every epoch and ``checkpoints/best.safetensors``
  (best validation mean IoU), each the whole training state: model, optimizer, scheduler,
  epoch, RNG state, history and config, written atomically by :func:`minigrad.save`;
- ``plots/curves.png``, ``plots/samples.png``, ``plots/roc.png``;
- ``test_metrics.json``: the best model on the test split.

A run resumed from a checkpoint (``resume=``) continues exactly where it stopped: the
loader's order and augmentation depend only on (seed, epoch), and the checkpoint restores
the optimizer, scheduler and the generator behind dropout.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

import minigrad as mg
from layers.utils import clip_grad_norm_
from minigrad import backend, optim
from minigrad.optim import lr_scheduler
from segmentation import losses, metrics
from segmentation.data.loader import DataLoader, random_split
from segmentation.data.oxford_pets import OxfordIIITPet
from segmentation.data.transforms import eval_transform, train_transform
from segmentation.models import MODELS

log = logging.getLogger(__name__)

LOSSES = ("ce", "weighted_ce", "dice", "jaccard", "focal", "ce+dice", "focal+dice")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULERS = ("none", "cosine", "step", "multistep", "plateau")
WIDTH_MODELS = ("unet", "fast_unet")
HISTORY_KEYS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_miou",
    "val_dice",
    "val_pixel_acc",
    "lr",
    "seconds",
    "images_per_s",
)


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` and in every checkpoint."""

    data_dir: str = "data/oxford-iiit-pet"
    out: str = "runs/pets"
    device: str = "cpu"
    model: str = "fast_unet"
    base_channels: int | None = None
    num_classes: int = 3
    loss: str = "ce"
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "none"
    epochs: int = 10
    batch_size: int = 8
    img_size: int = 128
    augment: bool = True
    subset: float = 1.0
    val_fraction: float = 0.2
    early_stopping: int = 0
    clip_grad_norm: float = 0.0
    num_workers: int = 2
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the first field with a value the run cannot use."""
        choices = {
            "model": tuple(MODELS),
            "loss": LOSSES,
            "optimizer": OPTIMIZERS,
            "scheduler": SCHEDULERS,
            "num_classes": (2, 3),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        positive = ("epochs", "batch_size", "img_size", "lr")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 < self.subset <= 1:
            raise ValueError(f"subset must be in (0, 1], got {self.subset!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        for name in ("weight_decay", "early_stopping", "clip_grad_norm", "num_workers", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.base_channels is not None:
            if self.model not in WIDTH_MODELS:
                raise ValueError(
                    f"base_channels applies to {WIDTH_MODELS} only, not to {self.model!r}"
                )
            if self.base_channels < 1:
                raise ValueError(f"base_channels must be positive, got {self.base_channels!r}")
        divisor = _size_divisor(self)
        if self.img_size % divisor:
            raise ValueError(
                f"img_size {self.img_size} must be divisible by {divisor} for {self.model!r}"
            )

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _size_divisor(config: TrainConfig) -> int:
    if config.model == "fcn":
        return 32
    if config.model == "segnet":
        return MODELS["segnet"]().divisor
    return 1


# ---- building the parts ------------------------------------------------------------------
def build_model(config: TrainConfig):
    kwargs = {"in_channels": 3, "num_classes": config.num_classes}
    if config.base_channels is not None:
        kwargs["base_channels"] = config.base_channels
    return MODELS[config.model](**kwargs)


def build_loss(config: TrainConfig, train_set=None):
    """The loss named by ``config.loss``; "weighted_ce" counts the training masks' pixels
    for seed 001's class weights."""
    if config.loss == "weighted_ce":
        masks = (train_set[i][1] for i in range(len(train_set)))
        weights = losses.class_weights_from_frequency(masks, config.num_classes)
        weight = mg.tensor(np.asarray(weights, dtype=np.float32), device=config.device)
        return losses.CrossEntropyLoss(weight=weight)
    parts = {
        "ce": losses.CrossEntropyLoss,
        "dice": losses.DiceLoss,
        "jaccard": losses.JaccardLoss,
        "focal": losses.FocalLoss,
    }
    names = config.loss.split("+")
    if len(names) == 1:
        return parts[names[0]]()
    return losses.ComboLoss([parts[name]() for name in names], [1.0] * len(names))


def build_optimizer(config: TrainConfig, params):
    params = list(params)
    wd = config.weight_decay
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return optim.AdamW(params, lr=config.lr, weight_decay=wd)
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=wd)
    return optim.RMSprop(params, lr=config.lr, weight_decay=wd)


def build_scheduler(config: TrainConfig, optimizer):
    """An epoch-stepped scheduler, or None; "plateau" watches the validation loss."""
    epochs = config.epochs
    if config.scheduler == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if config.scheduler == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if config.scheduler == "multistep":
        milestones = sorted({max(1, epochs // 2), max(1, 3 * epochs // 4)})
        return lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if config.scheduler == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=2)
    return None


def build_datasets(config: TrainConfig) -> tuple:
    """(train, val, test) from the data folder: trainval split into train and val by
    ``val_fraction``, each split first cut to ``subset`` (seeded)."""
    target = "trimap" if config.num_classes == 3 else "binary"
    trainval = OxfordIIITPet(config.data_dir, "trainval", target, skip_bad=True)
    test = OxfordIIITPet(config.data_dir, "test", target, skip_bad=True)
    if config.subset < 1:
        trainval = random_split(trainval, [config.subset, 1 - config.subset], config.seed)[0]
        test = random_split(test, [config.subset, 1 - config.subset], config.seed)[0]
    train, val = random_split(trainval, [1 - config.val_fraction, config.val_fraction], config.seed)
    for name, part in (("train", train), ("validation", val), ("test", test)):
        if len(part) == 0:
            raise ValueError(
                f"the {name} split of {config.data_dir} is empty (subset={config.subset}, "
                f"val_fraction={config.val_fraction}); use more data"
            )
    return train, val, test


def build_loaders(config: TrainConfig, train, val, test) -> tuple:
    size = config.img_size
    common = {"batch_size": config.batch_size, "seed": config.seed}
    train_loader = DataLoader(
        train,
        shuffle=True,
        drop_last=len(train) > config.batch_size,
        num_workers=config.num_workers,
        transform=train_transform(size, augment=config.augment),
        **common,
    )
    evaluation = {"num_workers": config.num_workers, "transform": eval_transform(size)}
    return (
        train_loader,
        DataLoader(val, **common, **evaluation),
        DataLoader(test, **common, **evaluation),
    )


# ---- one epoch ---------------------------------------------------------------------------
def train_one_epoch(model, loader, loss_fn, optimizer, config, progress: bool = True) -> dict:
    """One pass over ``loader``: mean training loss and images per second."""
    model.train()
    total, count, start = 0.0, 0, time.perf_counter()
    bar = tqdm(loader, desc="train", leave=False, disable=not progress, unit="batch")
    for images, masks in bar:
        x = mg.tensor(images, device=config.device)
        y = mg.tensor(masks, device=config.device)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if config.clip_grad_norm:
            clip_grad_norm_(model.parameters(), config.clip_grad_norm)
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training loss became {value} at batch {count // config.batch_size}; "
                "lower --lr or set --clip-grad-norm"
            )
        total += value * len(images)
        count += len(images)
        bar.set_postfix(
            loss=f"{total / count:.4f}", img_s=f"{count / (time.perf_counter() - start):.1f}"
        )
    seconds = time.perf_counter() - start
    return {"train_loss": total / max(count, 1), "images_per_s": count / max(seconds, 1e-9)}


def evaluate(model, loader, loss_fn, num_classes: int, device: str, roc_stride: int = 0):
    """Loss and confusion-matrix metrics over ``loader`` in eval mode without grad.

    With ``roc_stride`` > 0, every ``roc_stride``-th pixel's class probabilities are kept
    for ROC curves (``result["scores"]``, ``result["targets"]``)."""
    model.eval()
    matrix = metrics.ConfusionMatrix(num_classes)
    total, count, scores, targets = 0.0, 0, [], []
    with mg.no_grad():
        for images, masks in loader:
            x, y = mg.tensor(images, device=device), mg.tensor(masks, device=device)
            logits = model(x)
            total += loss_fn(logits, y).item() * len(images)
            count += len(images)
            matrix.update(logits.data.argmax(axis=1), y.data)
            if roc_stride:
                probs = mg.functional.softmax(logits, dim=1).numpy()
                scores.append(probs.transpose(0, 2, 3, 1).reshape(-1, num_classes)[::roc_stride])
                targets.append(masks.reshape(-1)[::roc_stride])
    result = {
        "loss": total / max(count, 1),
        "miou": float(matrix.mean_iou()),
        "dice": float(np.nanmean(backend.to_host(matrix.dice()))),
        "pixel_acc": float(matrix.pixel_accuracy()),
        "per_class_iou": [float(v) for v in backend.to_host(matrix.iou())],
    }
    if roc_stride:
        result["scores"], result["targets"] = np.concatenate(scores), np.concatenate(targets)
    return result


# ---- checkpoints and outputs -------------------------------------------------------------
@dataclass
class RunState:
    """What the loop carries from epoch to epoch besides the model and optimizer."""

    epoch: int = -1
    best_miou: float = -math.inf
    stale_epochs: int = 0
    history: list | None = None


def save_checkpoint(path: Path, model, optimizer, scheduler, state: RunState, config) -> None:
    """The whole training state in one safetensors file, written atomically."""
    mg.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "epoch": state.epoch,
            "best_miou": state.best_miou,
            "stale_epochs": state.stale_epochs,
            "history": state.history,
            "rng": backend.get_rng_state(),
            "config": asdict(config),
        },
        path,
    )


def load_checkpoint(path, model, optimizer=None, scheduler=None, device="cpu") -> RunState:
    """Restore a :func:`save_checkpoint` file into fresh objects; returns the loop state."""
    checkpoint = mg.load(path, device=device)
    for key in ("model", "epoch", "config"):
        if key not in checkpoint:
            raise ValueError(f"{path} is not a training checkpoint: it has no {key!r} entry")
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None and checkpoint["scheduler"] is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    backend.set_rng_state(checkpoint["rng"])
    return RunState(
        checkpoint["epoch"],
        checkpoint["best_miou"],
        checkpoint["stale_epochs"],
        list(checkpoint["history"] or []),
    )


def checkpoint_config(path) -> dict:
    """The config a :func:`save_checkpoint` file was written with."""
    checkpoint = mg.load(path)
    if not isinstance(checkpoint, dict) or "config" not in checkpoint:
        raise ValueError(f"{path} is not a training checkpoint: it has no 'config' entry")
    return checkpoint["config"]


def write_history(out: Path, history: list) -> None:
    (out / "history.json").write_text(json.dumps(history, indent=2))
    with open(out / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_KEYS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def current_lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _step_scheduler(scheduler, val_loss: float) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()


def _epoch_line(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch'] + 1}/{epochs}  train_loss {row['train_loss']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_mIoU {row['val_miou']:.4f}  "
        f"val_dice {row['val_dice']:.4f}  val_acc {row['val_pixel_acc']:.4f}  "
        f"lr {row['lr']:.2e}  {row['seconds']:.1f}s  {row['images_per_s']:.1f} img/s"
    )


def fit(config: TrainConfig, resume=None, progress: bool = True, stop_after: int | None = None):
    """Train per ``config`` (resuming from the checkpoint ``resume``), writing the outputs
    into ``config.out``; ``stop_after`` ends the run after that many epochs of this call, as
    an interruption would. Returns the history (a list of per-epoch dicts)."""
    config.validate()
    backend.array_module(config.device)
    out = Path(config.out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    mg.manual_seed(config.seed)
    train, val, test = build_datasets(config)
    train_loader, val_loader, test_loader = build_loaders(config, train, val, test)
    model = build_model(config).to(config.device)
    optimizer = build_optimizer(config, model.parameters())
    scheduler = build_scheduler(config, optimizer)
    loss_fn = build_loss(config, train)
    state = RunState(history=[])
    if resume is not None:
        state = load_checkpoint(resume, model, optimizer, scheduler, config.device)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    log.info(
        "%s: %s parameters; %d train, %d val, %d test images",
        config.model,
        f"{sum(p.numel() for p in model.parameters()):,}",
        len(train),
        len(val),
        len(test),
    )
    epochs_run = 0
    for epoch in range(state.epoch + 1, config.epochs):
        if stop_after is not None and epochs_run >= stop_after:
            return state.history
        start = time.perf_counter()
        train_loader.set_epoch(epoch)
        lr = current_lr(optimizer)
        row = {
            "epoch": epoch,
            **train_one_epoch(model, train_loader, loss_fn, optimizer, config, progress),
        }
        scores = evaluate(model, val_loader, loss_fn, config.num_classes, config.device)
        _step_scheduler(scheduler, scores["loss"])
        row.update(
            val_loss=scores["loss"],
            val_miou=scores["miou"],
            val_dice=scores["dice"],
            val_pixel_acc=scores["pixel_acc"],
            lr=lr,
            seconds=time.perf_counter() - start,
        )
        state.history.append(row)
        state.epoch = epoch
        improved = scores["miou"] > state.best_miou
        state.best_miou = max(state.best_miou, scores["miou"])
        state.stale_epochs = 0 if improved else state.stale_epochs + 1
        save_checkpoint(
            out / "checkpoints" / "last.safetensors", model, optimizer, scheduler, state, config
        )
        if improved:
            save_checkpoint(
                out / "checkpoints" / "best.safetensors", model, optimizer, scheduler, state, config
            )
        write_history(out, state.history)
        log.info(_epoch_line(row, config.epochs))
        epochs_run += 1
        if config.early_stopping and state.stale_epochs >= config.early_stopping:
            log.info("early stopping: no better validation mIoU for %d epochs", state.stale_epochs)
            break
    finish(config, model, loss_fn, state, val, test_loader)
    return state.history


def finish(config: TrainConfig, model, loss_fn, state: RunState, val, test_loader) -> dict:
    """Evaluate the best checkpoint on the test split; write test_metrics.json and plots."""
    from segmentation import viz

    out = Path(config.out)
    best = out / "checkpoints" / "best.safetensors"
    if best.exists():
        load_checkpoint(best, model, device=config.device)
    result = evaluate(model, test_loader, loss_fn, config.num_classes, config.device, roc_stride=7)
    test_metrics = {k: result[k] for k in ("loss", "miou", "dice", "pixel_acc", "per_class_iou")}
    (out / "test_metrics.json").write_text(json.dumps(test_metrics, indent=2))
    viz.plot_curves(state.history, out / "plots" / "curves.png")
    viz.plot_roc(result["scores"], result["targets"], config.num_classes, out / "plots" / "roc.png")
    viz.plot_samples(model, val, config, out / "plots" / "samples.png")
    log.info(
        "test: mIoU %.4f  dice %.4f  pixel acc %.4f",
        test_metrics["miou"],
        test_metrics["dice"],
        test_metrics["pixel_acc"],
    )
    return test_metrics
