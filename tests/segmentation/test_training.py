"""segmentation.training: the loop on a tiny FastUNet and a tiny synthetic pet set.

The claims: the loss falls; a run stopped after an epoch and resumed from last.safetensors
ends with the uninterrupted run's numbers bit for bit (and sabotaging any one restored part
breaks that, so the comparison can fail); a checkpoint write that dies leaves the previous
file whole and resumable; early stopping stops and stays stopped; every loss, optimizer and
scheduler choice is wired to what its name says; the outputs have the contract's names and
keys.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import asdict, replace

import numpy as np
import pytest
from PIL import Image

import minigrad as mg
from layers import Dropout, Sequential
from minigrad import backend, optim, serialization
from minigrad.optim import lr_scheduler
from segmentation import losses, metrics, training
from segmentation.data import make_synthetic_pets
from segmentation.data.loader import DataLoader, random_split
from segmentation.data.oxford_pets import OxfordIIITPet
from segmentation.data.transforms import eval_transform
from segmentation.models import FastUNet

EPOCHS = 3
VOLATILE = ("seconds", "images_per_s")


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    """24 trainval and 8 test synthetic pets, 32 to 48 pixels a side."""
    root = tmp_path_factory.mktemp("pets") / "data"
    return make_synthetic_pets(root, n_trainval=24, n_test=8, seed=3, size_range=(32, 48))


def tiny(pets, out, **changes) -> training.TrainConfig:
    config = training.TrainConfig(
        data_dir=str(pets),
        out=str(out),
        base_channels=4,
        img_size=32,
        epochs=EPOCHS,
        batch_size=4,
        lr=1e-2,
        scheduler="cosine",
        num_workers=0,
        seed=5,
    )
    return replace(config, **changes)


def stable(history: list) -> list:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in history]


def dropout_fast_unet(config):
    """The FastUNet followed by dropout, so that the global generator's state matters to the
    numbers and its restore is under test."""
    return Sequential(FastUNet(3, config.num_classes, config.base_channels), Dropout(0.2))


@pytest.fixture
def dropout_model(monkeypatch):
    monkeypatch.setattr(training, "build_model", dropout_fast_unet)


def fit_with_dropout(config, **kwargs):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "build_model", dropout_fast_unet)
        return training.fit(config, **kwargs)


@pytest.fixture(scope="module")
def baseline(pets, tmp_path_factory):
    """An uninterrupted 3-epoch run with dropout: its out folder and history."""
    out = tmp_path_factory.mktemp("baseline")
    return out, fit_with_dropout(tiny(pets, out), progress=False)


@pytest.fixture(scope="module")
def stopped(pets, tmp_path_factory):
    """The same run stopped after its first epoch, as an interruption would leave it."""
    out = tmp_path_factory.mktemp("stopped")
    history = fit_with_dropout(tiny(pets, out), progress=False, stop_after=1)
    assert len(history) == 1
    assert not (out / "test_metrics.json").exists()
    return out


def resume_copy(stopped, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(stopped, out)
    return out, out / "checkpoints" / "last.safetensors"


# ---- the loop learns and resumes exactly -------------------------------------------------
def test_loss_falls(baseline):
    _, history = baseline
    train_losses = [row["train_loss"] for row in history]
    val_losses = [row["val_loss"] for row in history]
    assert train_losses == sorted(train_losses, reverse=True), train_losses
    assert train_losses[-1] < 0.9 * train_losses[0], train_losses
    assert val_losses[-1] < val_losses[0], val_losses


def test_resume_gives_the_uninterrupted_numbers(pets, baseline, stopped, tmp_path, dropout_model):
    base_out, base_history = baseline
    out, last = resume_copy(stopped, tmp_path)
    # two loader threads here, none in the baseline: the batches must not depend on them
    history = training.fit(tiny(pets, out, num_workers=2), resume=last, progress=False)
    assert len(history) == EPOCHS
    assert stable(history) == stable(base_history)
    assert stable(json.loads((out / "history.json").read_text())) == stable(base_history)
    test_metrics = json.loads((out / "test_metrics.json").read_text())
    assert test_metrics == json.loads((base_out / "test_metrics.json").read_text())
    final = mg.load(out / "checkpoints" / "last.safetensors")
    expected = mg.load(base_out / "checkpoints" / "last.safetensors")
    for key, value in expected["model"].items():
        np.testing.assert_array_equal(final["model"][key].numpy(), value.numpy(), err_msg=key)


SABOTAGE = {
    "rng": (backend, "set_rng_state"),
    "optimizer": (optim.Optimizer, "load_state_dict"),
    "scheduler": (lr_scheduler.LRScheduler, "load_state_dict"),
}


@pytest.mark.parametrize("part", list(SABOTAGE))
def test_resume_without_a_restored_part_differs(
    part, pets, baseline, stopped, tmp_path, monkeypatch, dropout_model
):
    """The control of the test above: skip restoring one part and the numbers change (the
    scheduler's state shows in epoch 3's lr: epoch 2's comes with the optimizer's)."""
    owner, name = SABOTAGE[part]
    monkeypatch.setattr(owner, name, lambda *args: None)
    out, last = resume_copy(stopped, tmp_path)
    history = training.fit(tiny(pets, out), resume=last, progress=False, stop_after=2)
    assert len(history) == 3
    assert stable(history[:1]) == stable(baseline[1][:1])
    assert stable(history[1:]) != stable(baseline[1][1:])


def test_interrupted_checkpoint_write_keeps_the_previous_one(
    pets, baseline, tmp_path, monkeypatch, dropout_model
):
    """The disk fills up halfway through epoch 2's last.safetensors: the exception reaches
    the caller, epoch 1's file is still there, whole, and resumes to the baseline's end."""
    real_write = serialization._write_safetensors
    calls = []

    class FullDisk:
        def __init__(self, file):
            self.file, self.written = file, 0

        def write(self, data):
            if self.written > 4096:
                raise OSError(28, "No space left on device")
            self.written += memoryview(data).nbytes
            return self.file.write(data)

    def failing_write(file, arrays, metadata):
        calls.append(len(calls))
        if len(calls) == 3:  # epoch 1 wrote last and best; this is epoch 2's last
            return real_write(FullDisk(file), arrays, metadata)
        return real_write(file, arrays, metadata)

    monkeypatch.setattr(serialization, "_write_safetensors", failing_write)
    config = tiny(pets, tmp_path / "run")
    with pytest.raises(OSError, match="No space left"):
        training.fit(config, progress=False)
    folder = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best.safetensors", "last.safetensors"]
    last = training.read_checkpoint(folder / "last.safetensors")
    assert last["epoch"] == 0 and len(last["history"]) == 1
    monkeypatch.setattr(serialization, "_write_safetensors", real_write)
    history = training.fit(config, resume=folder / "last.safetensors", progress=False)
    assert stable(history) == stable(baseline[1])


@pytest.mark.parametrize("dies_at", [3, 4])
def test_a_run_killed_between_checkpoint_writes_resumes_to_the_baseline_best(
    pets, baseline, tmp_path, monkeypatch, dropout_model, dies_at
):
    """Whichever write of epoch 2 dies (best's or last's), the resumed run ends with the
    uninterrupted run's best.safetensors: best is written first, so last never records a
    best mIoU that best does not hold."""
    real_write = serialization._write_safetensors
    calls = []

    def dying_write(file, arrays, metadata):
        calls.append(len(calls))
        if len(calls) == dies_at:
            raise KeyboardInterrupt
        return real_write(file, arrays, metadata)

    monkeypatch.setattr(serialization, "_write_safetensors", dying_write)
    config = tiny(pets, tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        training.fit(config, progress=False)
    monkeypatch.setattr(serialization, "_write_safetensors", real_write)
    folder = tmp_path / "run" / "checkpoints"
    training.fit(config, resume=folder / "last.safetensors", progress=False)
    ours = training.read_checkpoint(folder / "best.safetensors")
    theirs = training.read_checkpoint(baseline[0] / "checkpoints" / "best.safetensors")
    assert ours["epoch"] == theirs["epoch"] and ours["best_miou"] == theirs["best_miou"]
    for key, value in theirs["model"].items():
        np.testing.assert_array_equal(ours["model"][key].numpy(), value.numpy(), err_msg=key)


def test_resume_refuses_a_new_learning_rate_or_a_longer_schedule(stopped, tmp_path):
    """The optimizer's saved groups would silently keep the old lr, and a cosine schedule
    was built for the old epoch count: both are refused, naming the setting."""
    _, last = resume_copy(stopped, tmp_path)
    saved = training.TrainConfig.from_dict(training.checkpoint_config(last))
    for change, name in (({"lr": 0.5}, "lr"), ({"epochs": EPOCHS + 2}, "epochs")):
        with pytest.raises(ValueError, match=rf"{name}="):
            training.fit(replace(saved, **change), resume=last, progress=False)


def test_cache_gives_the_same_batches(pets, baseline, tmp_path, monkeypatch):
    """With --cache-dir the first epoch fills the cache and matches the uncached run; a
    second run reads every image from the cache (decoding would fail) to the same numbers."""
    config = tiny(pets, tmp_path / "run", cache_dir=str(tmp_path / "cache"))
    history = fit_with_dropout(config, progress=False, stop_after=1)
    assert stable(history) == stable(baseline[1][:1])
    filled = sorted(p.name.split("-")[1] for p in (tmp_path / "cache").glob("*.filled.npy"))
    assert filled == ["20x32x32", "4x32x32"]  # train and val (test is read at the end)

    def no_decoding(self, index):
        raise AssertionError("decoded an image the cache holds")

    monkeypatch.setattr(OxfordIIITPet, "load_image", no_decoding)
    again = fit_with_dropout(
        replace(config, out=str(tmp_path / "again")), progress=False, stop_after=1
    )
    assert stable(again) == stable(history)


# ---- early stopping ----------------------------------------------------------------------
def test_early_stopping_stops_and_stays_stopped(pets, tmp_path, monkeypatch):
    """Validation mIoU 0.1, 0.3, 0.2, 0.25 with patience 2: the run ends after epoch 4 of
    10, best.safetensors holds epoch 2, and resuming trains nothing more."""
    real_evaluate = training.evaluate
    scripted = iter([0.1, 0.3, 0.2, 0.25])

    def evaluate(model, loader, loss_fn, num_classes, device, roc_stride=0):
        if roc_stride:  # the test split at the end
            return real_evaluate(model, loader, loss_fn, num_classes, device, roc_stride)
        m = next(scripted)
        return {"loss": 1 - m, "miou": m, "dice": m, "pixel_acc": m, "per_class_iou": [m] * 3}

    monkeypatch.setattr(training, "evaluate", evaluate)
    config = tiny(pets, tmp_path, epochs=10, early_stopping=2, scheduler="none")
    history = training.fit(config, progress=False)
    assert [row["val_miou"] for row in history] == [0.1, 0.3, 0.2, 0.25]
    folder = tmp_path / "checkpoints"
    assert training.read_checkpoint(folder / "best.safetensors")["epoch"] == 1
    assert training.read_checkpoint(folder / "last.safetensors")["stale_epochs"] == 2
    assert (tmp_path / "test_metrics.json").exists()
    again = training.fit(config, resume=folder / "last.safetensors", progress=False)
    assert len(again) == 4


# ---- outputs -----------------------------------------------------------------------------
def test_outputs_have_the_contract_names_and_keys(baseline):
    out, history = baseline
    rows = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in rows] == list(range(EPOCHS))
    for row in rows:
        assert set(row) == set(training.HISTORY_KEYS)
        assert all(math.isfinite(row[k]) for k in training.HISTORY_KEYS)
        assert 0 <= row["val_miou"] <= 1 and 0 <= row["val_pixel_acc"] <= 1
    assert [row["lr"] for row in rows] == pytest.approx(
        [1e-2 * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]
    )
    with open(out / "history.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [float(r["val_miou"]) for r in table] == [r["val_miou"] for r in rows]
    assert list(table[0]) == list(training.HISTORY_KEYS)
    config = json.loads((out / "config.json").read_text())
    assert config == asdict(training.TrainConfig.from_dict(config))
    assert config["out"] == str(out) and config["epochs"] == EPOCHS
    best_epoch = int(np.argmax([row["val_miou"] for row in rows]))
    for name, epoch in (("last", EPOCHS - 1), ("best", best_epoch)):
        checkpoint = training.read_checkpoint(out / "checkpoints" / f"{name}.safetensors")
        assert {"model", "optimizer", "scheduler", "epoch", "rng", "config"} <= set(checkpoint)
        assert checkpoint["epoch"] == epoch
        assert checkpoint["config"] == config
        assert checkpoint["history"] == rows[: epoch + 1]
        assert checkpoint["scheduler"]["last_epoch"] == epoch + 1
    for plot in ("curves", "samples", "roc"):
        with Image.open(out / "plots" / f"{plot}.png") as im:
            assert im.format == "PNG" and min(im.size) > 100
    test_metrics = json.loads((out / "test_metrics.json").read_text())
    assert {"miou", "dice", "pixel_acc", "per_class_iou"} <= set(test_metrics)
    assert len(test_metrics["per_class_iou"]) == 3
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary left


def test_binary_target(pets, tmp_path):
    config = tiny(pets, tmp_path, num_classes=2, epochs=1, loss="ce+dice")
    history = training.fit(config, progress=False)
    assert math.isfinite(history[0]["train_loss"])
    test_metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert len(test_metrics["per_class_iou"]) == 2
    train, _, _ = training.build_datasets(config)
    assert set(np.unique(np.concatenate([m.ravel() for m in training.dataset_masks(train)]))) == {
        0,
        1,
    }


def test_runs_on_each_device(pets, tmp_path, device):
    """One epoch on the device fixture's device (the fake GPU here): the same loss as on
    the CPU, to float32 accuracy, and the outputs written."""
    config = tiny(pets, tmp_path, epochs=1, device=device, loss="weighted_ce", clip_grad_norm=1.0)
    history = training.fit(config, progress=False)
    assert (tmp_path / "test_metrics.json").exists()
    if device != "cpu":
        cpu = training.fit(replace(config, device="cpu", out=str(tmp_path / "cpu")), progress=False)
        assert history[0]["train_loss"] == pytest.approx(cpu[0]["train_loss"], rel=1e-4)
        assert history[0]["val_loss"] == pytest.approx(cpu[0]["val_loss"], rel=1e-4)


# ---- the builders ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch(pets):
    """The training subset and one batch of four (32x32) from it."""
    dataset = OxfordIIITPet(pets, "trainval")
    train = random_split(dataset, [0.5, 0.5], seed=1)[0]
    loader = DataLoader(train, batch_size=4, transform=eval_transform(32))
    images, masks = next(iter(loader))
    return train, images, masks


def one_step(config, batch):
    """Build everything from ``config``, train one step on ``batch``; return the parts and
    the parameters before the step."""
    train, images, masks = batch
    mg.manual_seed(0)
    model = training.build_model(config)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    optimizer = training.build_optimizer(config, model.parameters())
    scheduler = training.build_scheduler(config, optimizer)
    loss_fn = training.build_loss(config, train)
    result = training.train_one_epoch(
        model, [(images, masks)], loss_fn, optimizer, config, progress=False
    )
    return model, before, optimizer, scheduler, loss_fn, result


def changed(before: list, model) -> list:
    """Per parameter: did it move away from ``before``?"""
    after = [p.detach().numpy() for p in model.parameters()]
    return [not np.array_equal(b, a) for b, a in zip(before, after, strict=True)]


def _parts(name: str, weight) -> list:
    table = {
        "ce": losses.CrossEntropyLoss(),
        "weighted_ce": losses.CrossEntropyLoss(weight=weight),
        "dice": losses.DiceLoss(),
        "jaccard": losses.JaccardLoss(),
        "focal": losses.FocalLoss(),
    }
    return [table[part] for part in name.split("+")]


@pytest.mark.parametrize("name", training.LOSSES)
def test_each_loss_is_what_its_name_says(name, batch):
    train, images, masks = batch
    config = training.TrainConfig(loss=name, base_channels=2, img_size=32, lr=1e-2)
    model, before, _, _, loss_fn, result = one_step(config, batch)
    assert math.isfinite(result["train_loss"])
    assert any(changed(before, model))
    weight = losses.class_weights_from_frequency([train[i][1] for i in range(len(train))], 3)
    logits = mg.tensor(np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32))
    expected = sum(part(logits, masks).item() for part in _parts(name, weight))
    assert loss_fn(logits, masks).item() == pytest.approx(expected, rel=1e-6)


OPTIMIZER_KINDS = {
    "adam": (optim.Adam, {"weight_decay": 1e-3}),
    "adamw": (optim.AdamW, {"weight_decay": 1e-3}),
    "sgd": (optim.SGD, {"momentum": 0.9, "weight_decay": 1e-3}),
    "rmsprop": (optim.RMSprop, {"weight_decay": 1e-3}),
}


@pytest.mark.parametrize("name", training.OPTIMIZERS)
def test_each_optimizer_is_what_its_name_says(name, batch):
    config = training.TrainConfig(
        optimizer=name, base_channels=2, img_size=32, lr=3e-3, weight_decay=1e-3
    )
    model, before, optimizer, _, _, result = one_step(config, batch)
    kind, settings = OPTIMIZER_KINDS[name]
    assert type(optimizer) is kind
    group = optimizer.param_groups[0]
    assert group["lr"] == 3e-3
    assert {k: group[k] for k in settings} == settings
    assert len(group["params"]) == len(before)
    assert math.isfinite(result["train_loss"])
    assert all(changed(before, model))


# lr after one epoch's step, for lr 0.01 and 3 epochs
LR_AFTER_ONE_EPOCH = {
    "none": 0.01,
    "cosine": 0.01 * (1 + math.cos(math.pi / 3)) / 2,
    "step": 0.001,  # step_size max(1, 3 // 3) = 1
    "multistep": 0.001,  # milestones {1, 2}
    "plateau": 0.01,  # patience 2
}


@pytest.mark.parametrize("name", training.SCHEDULERS)
def test_each_scheduler_steps_as_its_name_says(name, batch):
    config = training.TrainConfig(scheduler=name, base_channels=2, img_size=32, lr=0.01, epochs=3)
    _, _, optimizer, scheduler, _, result = one_step(config, batch)
    assert (scheduler is None) == (name == "none")
    training._step_scheduler(scheduler, result["train_loss"])
    assert training.current_lr(optimizer) == pytest.approx(LR_AFTER_ONE_EPOCH[name])


def test_plateau_watches_the_validation_loss(batch):
    config = training.TrainConfig(scheduler="plateau", base_channels=2, img_size=32, lr=0.01)
    _, _, optimizer, scheduler, _, _ = one_step(config, batch)
    for loss in (1.0, 1.0, 1.0, 1.0):
        training._step_scheduler(scheduler, loss)
    assert training.current_lr(optimizer) == pytest.approx(0.005)


def test_dataset_masks_match_indexing(batch, pets):
    train, _, _ = batch
    nested = random_split(train, [0.5, 0.5], seed=2)[1]
    for subset in (train, nested, OxfordIIITPet(pets, "test")):
        expected = [subset[i][1] for i in range(len(subset))]
        got = list(training.dataset_masks(subset))
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_evaluate_aggregates_over_uneven_batches(pets):
    """Batches of 3 over 8 images: the metrics equal those of all pixels at once, the loss
    the mean over images (all of one size, so the CE over all pixels)."""
    dataset = OxfordIIITPet(pets, "test")
    mg.manual_seed(0)
    model = FastUNet(3, 3, 2)
    loss_fn = losses.CrossEntropyLoss()
    result = training.evaluate(
        model, DataLoader(dataset, 3, transform=eval_transform(32)), loss_fn, 3, "cpu", 5
    )
    images, masks = next(iter(DataLoader(dataset, len(dataset), transform=eval_transform(32))))
    with mg.no_grad():
        logits = model.eval()(mg.tensor(images))
    pred = logits.numpy().argmax(axis=1)
    matrix = metrics.ConfusionMatrix(3)
    matrix.update(pred, masks)
    assert result["miou"] == pytest.approx(float(matrix.mean_iou()))
    assert result["pixel_acc"] == pytest.approx(float((pred == masks).mean()))
    assert result["per_class_iou"] == pytest.approx(list(matrix.iou()), nan_ok=True)
    assert result["loss"] == pytest.approx(loss_fn(logits, masks).item(), rel=1e-5)
    probs = mg.functional.softmax(logits, dim=1).numpy().transpose(0, 2, 3, 1).reshape(-1, 3)
    np.testing.assert_allclose(result["scores"], probs[::5], rtol=1e-6)
    np.testing.assert_array_equal(result["targets"], masks.reshape(-1)[::5])


# ---- settings ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model": "vit"}, "model"),
        ({"loss": "mse"}, "loss"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"scheduler": "warmup"}, "scheduler"),
        ({"num_classes": 4}, "num_classes"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"lr": float("nan")}, "lr"),
        ({"subset": 0.0}, "subset"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"num_workers": -1}, "num_workers"),
        ({"early_stopping": -2}, "early_stopping"),
        ({"epochs": 2.5}, "epochs"),
        ({"augment": "yes"}, "augment"),
        ({"model": "fcn", "base_channels": 8}, "base_channels"),
        ({"base_channels": 0}, "base_channels"),
        ({"model": "fcn", "img_size": 48}, "img_size"),
        ({"model": "segnet", "img_size": 64}, "img_size"),
        ({"img_size": 8}, "img_size"),
    ],
)
def test_validate_names_the_bad_field(changes, field):
    with pytest.raises(ValueError, match=rf"^{field} "):
        replace(training.TrainConfig(), **changes).validate()


def test_resume_refuses_other_settings(pets, stopped, tmp_path, dropout_model):
    out, last = resume_copy(stopped, tmp_path)
    with pytest.raises(ValueError, match=r"base_channels=8 \(checkpoint: 4\)"):
        training.prepare(tiny(pets, out, base_channels=8), resume=last)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        mg.save({"model": {}}, tmp_path / "weights.safetensors")
        training.prepare(tiny(pets, out), resume=tmp_path / "weights.safetensors")


def test_empty_split_is_a_clear_error(pets, tmp_path):
    with pytest.raises(ValueError, match="split .* is empty"):
        training.prepare(tiny(pets, tmp_path, subset=0.05))
