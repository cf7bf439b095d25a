"""A training run's files: the checkpoint holding its whole state (model, optimizer,
scheduler, loop state, generator state and config) and the history and JSON outputs, each
written aside and renamed so that a killed run never leaves half a file."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import minigrad as mg
from minigrad import backend
from segmentation.training_config import HISTORY_KEYS


@dataclass
class RunState:
    """What the loop carries from epoch to epoch besides the model and optimizer: the last
    finished epoch, the best validation mIoU so far, epochs since it improved, the history."""

    epoch: int = -1
    best_miou: float = -math.inf
    stale_epochs: int = 0
    history: list = field(default_factory=list)


def save_checkpoint(path, model, optimizer, scheduler, state: RunState, config) -> None:
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


def read_checkpoint(path, device: str = "cpu") -> dict:
    """A :func:`save_checkpoint` file as a dict; ValueError if it is some other file."""
    checkpoint = mg.load(path, device=device)
    missing = [
        key
        for key in ("model", "optimizer", "scheduler", "epoch", "rng", "config")
        if not isinstance(checkpoint, dict) or key not in checkpoint
    ]
    if missing:
        raise ValueError(f"{path} is not a training checkpoint: it has no {missing} entries")
    return checkpoint


def load_checkpoint(path, model, optimizer=None, scheduler=None, device="cpu") -> RunState:
    """Restore a :func:`save_checkpoint` file into fresh objects, and the global generator's
    state; returns the loop state."""
    return restore(read_checkpoint(path, device), model, optimizer, scheduler)


def restore(checkpoint: dict, model, optimizer=None, scheduler=None) -> RunState:
    """:func:`load_checkpoint` from a checkpoint already read by :func:`read_checkpoint`."""
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
    return read_checkpoint(path)["config"]


def write_text(path: Path, text: str) -> None:
    """``path`` replaced by ``text`` atomically (written aside, then renamed), so a reader
    or a killed run never sees half a file."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


def write_json(path: Path, value) -> None:
    write_text(path, json.dumps(value, indent=2))


def write_history(out: Path, history: list) -> None:
    """``history.json`` (a list of per-epoch dicts) and ``history.csv`` (same rows)."""
    write_json(out / "history.json", history)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=HISTORY_KEYS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    write_text(out / "history.csv", table.getvalue())
