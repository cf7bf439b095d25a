"""The settings of a training run (:class:`TrainConfig`), their checks, and the settings a
resumed run must share with its checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, fields

from segmentation.models import MODELS

LOSSES = ("ce", "weighted_ce", "dice", "jaccard", "focal", "ce+dice", "focal+dice")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULERS = ("none", "cosine", "step", "multistep", "plateau")
WIDTH_MODELS = ("unet", "fast_unet")
# (divisor, smallest side) of each model's input: FCN's five stride-2 stages need 32; SegNet
# at its default depth 4 needs 2 ** (2 * 4 - 1) = 128; the U-Nets pad odd sizes.
SIZE_RULES = {
    "unet": (1, 16),
    "fast_unet": (1, 16),
    "resnet34_unet": (1, 32),
    "fcn": (32, 32),
    "segnet": (128, 128),
}
# Settings a resumed run must share with its checkpoint: they fix the weights' shapes, the
# optimizer and scheduler state's meaning (the saved param groups carry lr and weight decay),
# and which images are train, val and test. A scheduled run also keeps its epoch count,
# which its schedule was built for; an unscheduled one may be extended with more epochs.
RESUME_FIXED = (
    "lr",
    "weight_decay",
    "model",
    "base_channels",
    "num_classes",
    "optimizer",
    "scheduler",
    "seed",
    "subset",
    "val_fraction",
)
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
ROC_STRIDE = 7


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
    cache_dir: str | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first field with a value the run cannot use."""
        _check_types(self)
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
        for name in ("epochs", "batch_size", "img_size", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 < self.subset <= 1:
            raise ValueError(f"subset must be in (0, 1], got {self.subset!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        for name in ("weight_decay", "early_stopping", "clip_grad_norm", "num_workers", "seed"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.base_channels is not None:
            if self.model not in WIDTH_MODELS:
                raise ValueError(
                    f"base_channels applies to {WIDTH_MODELS} only, not to {self.model!r}"
                )
            if self.base_channels < 1:
                raise ValueError(f"base_channels must be positive, got {self.base_channels!r}")
        divisor, smallest = SIZE_RULES[self.model]
        if self.img_size < smallest or self.img_size % divisor:
            raise ValueError(
                f"img_size for {self.model!r} must be a multiple of {divisor} and at least "
                f"{smallest}, got {self.img_size}"
            )

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A config from a dict such as ``config.json``; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _check_types(config: TrainConfig) -> None:
    """ValueError naming a field whose value is not of its default's type (ints pass as
    floats; base_channels and cache_dir may be None); the CLI turns it into exit code 2."""
    for f in fields(config):
        value, default = getattr(config, f.name), f.default
        if f.name == "base_channels":
            ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
            expected = "int or None"
        elif f.name == "cache_dir":
            ok, expected = value is None or isinstance(value, str), "str or None"
        elif isinstance(default, bool):
            ok, expected = isinstance(value, bool), "bool"
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            expected = "float"
        else:
            ok = isinstance(value, type(default)) and not isinstance(value, bool)
            expected = type(default).__name__
        if not ok:
            raise ValueError(f"{f.name} must be {expected}, got {value!r}")


def check_resumable(config: TrainConfig, saved: dict, path) -> None:
    """ValueError naming each :data:`RESUME_FIXED` setting where ``config`` differs from the
    checkpoint ``path``'s config ``saved``."""
    fixed = RESUME_FIXED + (("epochs",) if saved.get("scheduler", "none") != "none" else ())
    changed = [
        f"{name}={getattr(config, name)!r} (checkpoint: {saved.get(name)!r})"
        for name in fixed
        if saved.get(name) != getattr(config, name)
    ]
    if changed:
        raise ValueError(f"cannot resume from {path} with other settings: {', '.join(changed)}")
