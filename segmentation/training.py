"""The train/eval loop of the main job: data, model, loss, optimizer, scheduler, metrics,
checkpoints, early stopping and the history, on top of the rest of the package.

``fit(config)`` trains ``config.model`` on the Oxford-IIIT Pet folder ``config.data_dir``
(the real dataset or the synthetic one) and writes into ``config.out``:

- ``history.json`` / ``history.csv``: one row per epoch (``epoch``, ``train_loss``,
  ``val_loss``, ``val_miou``, ``val_dice``, ``val_pixel_acc``, ``lr``, ``seconds``,
  ``images_per_s``);
- ``config.json``;
- ``checkpoints/last.safetensors`` after every epoch and ``checkpoints/best.safetensors``
  (best validation mean IoU), each the whole training state: model, optimizer, scheduler,
  epoch, RNG state, history and config, written atomically by :func:`minigrad.save` (a run
  killed during a write leaves the previous file whole);
- ``plots/curves.png``, ``plots/samples.png``, ``plots/roc.png``;
- ``test_metrics.json``: the best model on the test split.

``fit`` is :func:`prepare` (everything that can fail on bad settings or data, before any
training) followed by :func:`train`. A run resumed from a checkpoint continues exactly where
it stopped: the loader's order and augmentation depend only on (seed, epoch), and the
checkpoint restores the model, optimizer, scheduler, loop state and the generator behind
dropout, so on the CPU the resumed history equals the uninterrupted one bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import minigrad as mg
from layers.utils import clip_grad_norm_
from minigrad import backend, optim
from minigrad.optim import lr_scheduler
from segmentation import losses, metrics
from segmentation.checkpoints import (
    RunState,
    checkpoint_config,
    load_checkpoint,
    read_checkpoint,
    restore,
    save_checkpoint,
    write_history,
    write_json,
)
from segmentation.data.cache import CachedDataset
from segmentation.data.loader import DataLoader, Subset, random_split
from segmentation.data.oxford_pets import OxfordIIITPet
from segmentation.data.transforms import eval_transform, train_transform
from segmentation.models import MODELS
from segmentation.training_config import (
    HISTORY_KEYS,
    LOSSES,
    OPTIMIZERS,
    ROC_STRIDE,
    SCHEDULERS,
    TrainConfig,
    check_resumable,
)

log = logging.getLogger(__name__)

# The settings and checkpoint names are part of this module's interface (the examples and
# scripts use ``training.TrainConfig``, ``training.LOSSES``, ``training.checkpoint_config``).
__all__ = [
    "HISTORY_KEYS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULERS",
    "Run",
    "RunState",
    "TrainConfig",
    "build_datasets",
    "build_loaders",
    "build_loss",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "checkpoint_config",
    "evaluate",
    "finish",
    "fit",
    "load_checkpoint",
    "prepare",
    "read_checkpoint",
    "save_checkpoint",
    "train",
    "train_one_epoch",
]


# ---- building the parts ------------------------------------------------------------------
def build_model(config: TrainConfig):
    """``config.model`` for 3-channel images and ``config.num_classes`` classes, on the CPU."""
    kwargs = {"in_channels": 3, "num_classes": config.num_classes}
    if config.base_channels is not None:
        kwargs["base_channels"] = config.base_channels
    return MODELS[config.model](**kwargs)


def dataset_masks(dataset):
    """The masks of ``dataset`` one by one; for an OxfordIIITPet (or Subsets of one) read
    without decoding the images."""
    indices = range(len(dataset))
    while isinstance(dataset, Subset):
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if isinstance(dataset, OxfordIIITPet):
        return (dataset.load_mask(i) for i in indices)
    return (dataset[i][1] for i in indices)


def build_loss(config: TrainConfig, train_set=None):
    """The loss named by ``config.loss`` on ``config.device``; "weighted_ce" counts the
    training masks' pixels for seed 001's class weights (``train_set`` is required then)."""
    if config.loss == "weighted_ce":
        if train_set is None:
            raise ValueError("the weighted_ce loss needs the training set for its weights")
        weights = losses.class_weights_from_frequency(dataset_masks(train_set), config.num_classes)
        return losses.CrossEntropyLoss(weight=weights).to(config.device)
    parts = {
        "ce": losses.CrossEntropyLoss,
        "dice": losses.DiceLoss,
        "jaccard": losses.JaccardLoss,
        "focal": losses.FocalLoss,
    }
    names = config.loss.split("+")
    if len(names) == 1:
        return parts[names[0]]().to(config.device)
    return losses.ComboLoss([parts[name]() for name in names]).to(config.device)


def build_optimizer(config: TrainConfig, params):
    """``config.optimizer`` at ``config.lr`` and ``config.weight_decay`` (SGD with momentum
    0.9; everything else at PyTorch's defaults)."""
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
    """An epoch-stepped scheduler, or None: cosine over all epochs; step (x0.1 every third
    of the run); multistep (x0.1 at half and three quarters); plateau (x0.5 after 2 epochs
    without a lower validation loss)."""
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
    ``val_fraction``, each split first cut to ``subset`` (seeded). Bad samples are left out
    with a warning; an empty split is a ValueError."""
    target = "trimap" if config.num_classes == 3 else "binary"
    trainval = OxfordIIITPet(config.data_dir, "trainval", target, skip_bad=True)
    test = OxfordIIITPet(config.data_dir, "test", target, skip_bad=True)
    with warnings.catch_warnings():  # an empty split is the error below (or a dropped rest)
        warnings.simplefilter("ignore", UserWarning)
        if config.subset < 1:
            trainval = random_split(trainval, [config.subset, 1 - config.subset], config.seed)[0]
            test = random_split(test, [config.subset, 1 - config.subset], config.seed)[0]
        fractions = [1 - config.val_fraction, config.val_fraction]
        train, val = random_split(trainval, fractions, config.seed)
    for name, part in (("train", train), ("validation", val), ("test", test)):
        if len(part) == 0:
            raise ValueError(
                f"the {name} split of {config.data_dir} is empty (subset={config.subset}, "
                f"val_fraction={config.val_fraction}); use more data"
            )
    return train, val, test


def build_loaders(config: TrainConfig, train, val, test) -> tuple:
    """Train (shuffled, augmented, last partial batch dropped) and val/test (in order,
    deterministic resize) loaders; with ``config.cache_dir`` each split is read through a
    decoded-and-resized :class:`CachedDataset` there (filled during the first epoch; the
    batches are the same as without it)."""
    size = config.img_size
    if config.cache_dir is not None:
        train, val, test = (
            CachedDataset(part, size, config.cache_dir) for part in (train, val, test)
        )
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
@contextlib.contextmanager
def _closing(batches):
    """``batches``, closed on exit when it can be (a DataLoader's generator): if a step
    raises, the loader's threads stop at once rather than when the traceback is collected."""
    try:
        yield batches
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def train_one_epoch(
    model, loader, loss_fn, optimizer, config, progress: bool = True, desc: str = "train"
) -> dict:
    """One pass over ``loader`` with a progress bar (loss and images per second):
    ``{"train_loss": mean over images, "images_per_s": ...}``."""
    model.train()
    total, count, start = 0.0, 0, time.perf_counter()
    with (
        _closing(iter(loader)) as batches,
        tqdm(batches, total=len(loader), desc=desc, leave=False, disable=not progress) as bar,
    ):
        for batch, (images, masks) in enumerate(bar):
            x = mg.tensor(images, device=config.device)
            y = mg.tensor(masks, device=config.device)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"training loss became {value} at batch {batch}; lower --lr or set "
                    "--clip-grad-norm"
                )
            loss.backward()
            if config.clip_grad_norm:
                clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            optimizer.step()
            total += value * len(images)
            count += len(images)
            rate = count / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{total / count:.4f}", img_s=f"{rate:.1f}")
    seconds = time.perf_counter() - start
    return {"train_loss": total / max(count, 1), "images_per_s": count / max(seconds, 1e-9)}


def evaluate(model, loader, loss_fn, num_classes: int, device: str, roc_stride: int = 0):
    """Loss (mean over images) and confusion-matrix metrics over ``loader``, in eval mode
    without grad: ``loss``, ``miou``, ``dice`` (mean over classes present), ``pixel_acc``,
    ``per_class_iou``.

    With ``roc_stride`` > 0, every ``roc_stride``-th pixel's class probabilities are kept
    for ROC curves: ``scores`` (P, C) float32 and ``targets`` (P,) on the host."""
    model.eval()
    matrix = metrics.ConfusionMatrix(num_classes)
    total, count, pixels, scores, targets = 0.0, 0, 0, [], []
    with mg.no_grad():
        for images, masks in loader:
            x, y = mg.tensor(images, device=device), mg.tensor(masks, device=device)
            logits = model(x)
            total += loss_fn(logits, y).item() * len(images)
            count += len(images)
            matrix.update(logits.data.argmax(axis=1), y.data)
            if roc_stride:  # every roc_stride-th pixel of the whole set, whatever the batches
                keep = slice((-pixels) % roc_stride, None, roc_stride)
                probs = mg.functional.softmax(logits, dim=1).numpy()
                scores.append(probs.transpose(0, 2, 3, 1).reshape(-1, num_classes)[keep])
                targets.append(masks.reshape(-1)[keep])
                pixels += masks.size
    per_class_dice = backend.to_host(matrix.dice())
    result = {
        "loss": total / max(count, 1),
        "miou": float(matrix.mean_iou()),
        "dice": float(np.nanmean(per_class_dice)) if np.isfinite(per_class_dice).any() else 0.0,
        "pixel_acc": float(matrix.pixel_accuracy()),
        "per_class_iou": [float(v) for v in backend.to_host(matrix.iou())],
    }
    if roc_stride:
        result["scores"], result["targets"] = np.concatenate(scores), np.concatenate(targets)
    return result


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


# ---- the run -----------------------------------------------------------------------------
@dataclass
class Run:
    """A prepared run: the parts :func:`train` needs, built and checked by :func:`prepare`."""

    config: TrainConfig
    model: object
    optimizer: object
    scheduler: object
    loss_fn: object
    train_loader: DataLoader
    val_loader: DataLoader
    test_loader: DataLoader
    val_set: object
    state: RunState


def prepare(config: TrainConfig, resume=None) -> Run:
    """Check ``config``, read the data, build the parts and restore ``resume`` (a checkpoint
    path) into them. Everything that bad settings or data make fail, fails here, before
    any output is written: ValueError (settings, empty splits, a checkpoint of another run),
    OSError (missing files), DeviceError (no GPU)."""
    config.validate()
    backend.array_module(config.device)
    checkpoint = None
    if resume is not None:
        checkpoint = read_checkpoint(resume, config.device)
        check_resumable(config, checkpoint["config"], resume)
    mg.manual_seed(config.seed)
    train_set, val_set, test_set = build_datasets(config)
    loaders = build_loaders(config, train_set, val_set, test_set)
    model = build_model(config).to(config.device)
    optimizer = build_optimizer(config, model.parameters())
    scheduler = build_scheduler(config, optimizer)
    loss_fn = build_loss(config, train_set)
    state = RunState()
    if checkpoint is not None:
        state = restore(checkpoint, model, optimizer, scheduler)
    log.info(
        "%s: %s parameters; %d train, %d val, %d test images",
        config.model,
        f"{sum(p.numel() for p in model.parameters()):,}",
        len(train_set),
        len(val_set),
        len(test_set),
    )
    return Run(config, model, optimizer, scheduler, loss_fn, *loaders, val_set, state)


def _stopped_early(config: TrainConfig, state: RunState) -> bool:
    return bool(config.early_stopping) and state.stale_epochs >= config.early_stopping


def train(run: Run, progress: bool = True, stop_after: int | None = None) -> list:
    """Run the epochs ``run`` has left (stopping early after ``config.early_stopping`` epochs
    without a better validation mIoU), writing history and checkpoints after each, then
    :func:`finish`. ``stop_after`` ends the call after that many epochs, without
    :func:`finish`, as an interruption would. Returns the history."""
    config, state = run.config, run.state
    out = Path(config.out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    write_json(out / "config.json", asdict(config))
    epochs_run = 0
    for epoch in range(state.epoch + 1, config.epochs):
        if _stopped_early(config, state):
            break
        if stop_after is not None and epochs_run >= stop_after:
            return state.history
        _run_epoch(run, epoch, progress)
        epochs_run += 1
    if _stopped_early(config, state):
        log.info("early stopping: no better validation mIoU for %d epochs", state.stale_epochs)
    finish(run)
    return state.history


def _run_epoch(run: Run, epoch: int, progress: bool) -> None:
    """Train and validate one epoch, step the scheduler, write checkpoints and history."""
    config, state = run.config, run.state
    start = time.perf_counter()
    run.train_loader.set_epoch(epoch)
    lr = current_lr(run.optimizer)
    desc = f"epoch {epoch + 1}/{config.epochs}"
    trained = train_one_epoch(
        run.model, run.train_loader, run.loss_fn, run.optimizer, config, progress, desc
    )
    scores = evaluate(run.model, run.val_loader, run.loss_fn, config.num_classes, config.device)
    _step_scheduler(run.scheduler, scores["loss"])
    row = {
        "epoch": epoch,
        "train_loss": trained["train_loss"],
        "val_loss": scores["loss"],
        "val_miou": scores["miou"],
        "val_dice": scores["dice"],
        "val_pixel_acc": scores["pixel_acc"],
        "lr": lr,
        "seconds": time.perf_counter() - start,
        "images_per_s": trained["images_per_s"],
    }
    state.history.append(row)
    state.epoch = epoch
    improved = scores["miou"] > state.best_miou
    state.best_miou = max(state.best_miou, scores["miou"])
    state.stale_epochs = 0 if improved else state.stale_epochs + 1
    folder = Path(config.out) / "checkpoints"
    parts = (run.model, run.optimizer, run.scheduler, state, config)
    # best before last: a run killed between the two resumes from the previous last and
    # redoes this epoch, so best never lags behind the best_miou that last records.
    if improved:
        save_checkpoint(folder / "best.safetensors", *parts)
    save_checkpoint(folder / "last.safetensors", *parts)
    write_history(Path(config.out), state.history)
    log.info(_epoch_line(row, config.epochs))


def finish(run: Run) -> dict:
    """Evaluate the best checkpoint's weights on the test split; write test_metrics.json
    and the plots. Returns the test metrics."""
    from segmentation import viz

    config = run.config
    out = Path(config.out)
    best = out / "checkpoints" / "best.safetensors"
    if best.exists():
        run.model.load_state_dict(read_checkpoint(best, config.device)["model"])
    result = evaluate(
        run.model,
        run.test_loader,
        run.loss_fn,
        config.num_classes,
        config.device,
        roc_stride=ROC_STRIDE,
    )
    test_metrics = {k: result[k] for k in ("loss", "miou", "dice", "pixel_acc", "per_class_iou")}
    write_json(out / "test_metrics.json", test_metrics)
    viz.plot_curves(run.state.history, out / "plots" / "curves.png")
    viz.plot_roc(result["scores"], result["targets"], config.num_classes, out / "plots" / "roc.png")
    viz.plot_samples(run.model, run.val_set, config, out / "plots" / "samples.png")
    log.info(
        "test: mIoU %.4f  dice %.4f  pixel acc %.4f",
        test_metrics["miou"],
        test_metrics["dice"],
        test_metrics["pixel_acc"],
    )
    return test_metrics


def fit(config: TrainConfig, resume=None, progress: bool = True, stop_after: int | None = None):
    """:func:`prepare` then :func:`train`: train per ``config`` (resuming from the
    checkpoint ``resume``), writing the outputs into ``config.out``. Returns the history (a
    list of per-epoch dicts)."""
    return train(prepare(config, resume), progress=progress, stop_after=stop_after)
