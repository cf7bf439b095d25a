"""Train a segmentation model on Oxford-IIIT Pet (or the synthetic pets) with minigrad.

    python examples/train_pets.py --device gpu --download            # the real dataset
    python examples/train_pets.py --synthetic --data-dir data/synthetic-pets --model fast_unet \\
        --base-channels 8 --img-size 64 --epochs 3 --batch-size 8 --out runs/synthetic

Per epoch: a progress bar with the loss and images per second, then one line with the
validation loss, mean IoU, Dice and pixel accuracy. Writes history.json/csv, config.json,
checkpoints/{last,best}.safetensors, plots/{curves,samples,roc}.png and test_metrics.json
into --out; --resume CHECKPOINT continues a run exactly where it stopped (Ctrl-C is safe:
the last finished epoch's checkpoint stays whole). Bad flag values, a data folder with no
dataset and a missing GPU stop at once with a message and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minigrad import backend  # noqa: E402
from segmentation import training  # noqa: E402
from segmentation.data.oxford_pets import OxfordIIITPet, dataset_exists  # noqa: E402
from segmentation.data.synthetic import make_synthetic_pets  # noqa: E402
from segmentation.models import MODELS  # noqa: E402

PROG = "train_pets.py"
SYNTHETIC_COUNT = (240, 60)
log = logging.getLogger(PROG)


def build_parser() -> argparse.ArgumentParser:
    d = training.TrainConfig()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--device", choices=["cpu", "gpu"], default=d.device)
    add("--data-dir", default=d.data_dir, help="the dataset folder (images/, annotations/)")
    add("--download", action="store_true", help="fetch the real dataset (800 MB) if absent")
    add("--synthetic", action="store_true", help="generate synthetic pets if absent")
    add(
        "--synthetic-count",
        type=int,
        nargs=2,
        default=SYNTHETIC_COUNT,
        metavar=("TRAINVAL", "TEST"),
        help="images per split of a generated synthetic set (default: %(default)s)",
    )
    add("--model", choices=list(MODELS), default=d.model)
    add("--base-channels", type=int, default=d.base_channels, help="width (unet, fast_unet)")
    add("--num-classes", type=int, choices=[3, 2], default=d.num_classes, help="3 trimap, 2 binary")
    add("--loss", choices=training.LOSSES, default=d.loss)
    add("--optimizer", choices=training.OPTIMIZERS, default=d.optimizer)
    add("--lr", type=float, default=d.lr)
    add("--weight-decay", type=float, default=d.weight_decay)
    add("--scheduler", choices=training.SCHEDULERS, default=d.scheduler)
    add("--epochs", type=int, default=d.epochs)
    add("--batch-size", type=int, default=d.batch_size)
    add("--img-size", type=int, default=d.img_size)
    add("--augment", action=argparse.BooleanOptionalAction, default=d.augment)
    add("--subset", type=float, default=d.subset, help="fraction of the data to use")
    add("--val-fraction", type=float, default=d.val_fraction)
    add("--early-stopping", type=int, default=d.early_stopping, metavar="PATIENCE")
    add("--clip-grad-norm", type=float, default=d.clip_grad_norm, metavar="MAX_NORM")
    add("--num-workers", type=int, default=d.num_workers)
    add("--seed", type=int, default=d.seed)
    add("--cache-dir", default=d.cache_dir, help="cache decoded, resized images here")
    add("--out", default=d.out)
    add(
        "--resume", metavar="CHECKPOINT", help="continue from e.g. OUT/checkpoints/last.safetensors"
    )
    add("--quiet", action="store_true", help="no progress bars")
    return p


def config_from(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The run's config: the flags; when resuming, the checkpoint's config with the flags
    given explicitly (those that differ from their defaults) on top."""
    names = {f for f in training.TrainConfig.__dataclass_fields__}
    values = {k: v for k, v in vars(args).items() if k in names}
    if args.resume:
        explicit = {k: v for k, v in values.items() if v != parser.get_default(k)}
        values = {**training.checkpoint_config(args.resume), **explicit}
    return training.TrainConfig.from_dict(values)


def prepare_data(args: argparse.Namespace, root: Path) -> None:
    """Generate the synthetic set or download the real one when asked and absent; a folder
    that still holds no dataset is a FileNotFoundError saying what to pass."""
    if dataset_exists(root):
        return
    if args.synthetic:
        n_trainval, n_test = args.synthetic_count
        log.info("generating %d + %d synthetic pets into %s", n_trainval, n_test, root)
        make_synthetic_pets(root, n_trainval=n_trainval, n_test=n_test, seed=args.seed)
    elif args.download:
        OxfordIIITPet(root, download=True)
    else:
        raise FileNotFoundError(
            f"{root} holds no Oxford-IIIT Pet dataset (images/ and annotations/ with "
            "trainval.txt and test.txt); pass --download for the real one or --synthetic to "
            "generate one"
        )


@contextlib.contextmanager
def console_logging():
    """Log lines of this script and of the segmentation package on stdout, for the call."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [logging.getLogger(name) for name in (PROG, "segmentation")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


def fail(message: str, code: int = 2) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the message
        return int(exc.code or 0)
    with console_logging():
        try:
            config = config_from(args, parser)
            config.validate()
            backend.array_module(config.device)
            prepare_data(args, Path(config.data_dir))
            run = training.prepare(config, resume=args.resume)
        except (ValueError, OSError, backend.DeviceError) as exc:
            return fail(str(exc))
        try:
            training.train(run, progress=not args.quiet)
        except KeyboardInterrupt:
            last = Path(config.out) / "checkpoints" / "last.safetensors"
            if last.exists():
                return fail(f"interrupted; continue with --resume {last}", 130)
            return fail("interrupted before the first epoch ended", 130)
        except FloatingPointError as exc:
            return fail(str(exc), 1)
        out = Path(config.out)
        log.info("plots: %s", out / "plots")
        log.info("checkpoints: %s", out / "checkpoints")
        log.info("history: %s; test metrics: %s", out / "history.json", out / "test_metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
