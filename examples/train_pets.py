"""Train a segmentation model on Oxford-IIIT Pet (or the synthetic pets) with minigrad.

    python examples/train_pets.py --device gpu                      # the real dataset
    python examples/train_pets.py --synthetic --data-dir data/synthetic-pets \\
        --base-channels 8 --img-size 64 --epochs 3                   # a few CPU minutes

Writes history, checkpoints, plots and the test metrics into --out; --resume CHECKPOINT
continues a run exactly where it stopped. Bad flag values and a data folder with no dataset
stop with a message and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minigrad import backend  # noqa: E402
from segmentation import training  # noqa: E402
from segmentation.data.oxford_pets import OxfordIIITPet, dataset_exists  # noqa: E402
from segmentation.data.synthetic import make_synthetic_pets  # noqa: E402
from segmentation.models import MODELS  # noqa: E402

SYNTHETIC_SIZE = {"n_trainval": 240, "n_test": 60}


def build_parser() -> argparse.ArgumentParser:
    defaults = training.TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--data-dir", default=defaults.data_dir)
    p.add_argument("--download", action="store_true", help="fetch the real dataset (800 MB)")
    p.add_argument("--synthetic", action="store_true", help="generate synthetic pets if absent")
    p.add_argument("--model", choices=list(MODELS), default=defaults.model)
    p.add_argument("--base-channels", type=int, default=None)
    p.add_argument("--num-classes", type=int, choices=[3, 2], default=3)
    p.add_argument("--loss", choices=training.LOSSES, default=defaults.loss)
    p.add_argument("--optimizer", choices=training.OPTIMIZERS, default=defaults.optimizer)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--scheduler", choices=training.SCHEDULERS, default=defaults.scheduler)
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--img-size", type=int, default=defaults.img_size)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--subset", type=float, default=defaults.subset)
    p.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    p.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE")
    p.add_argument("--clip-grad-norm", type=float, default=0.0)
    p.add_argument("--num-workers", type=int, default=defaults.num_workers)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", default=defaults.out)
    p.add_argument("--resume", metavar="CHECKPOINT")
    p.add_argument("--synthetic-count", type=int, nargs=2, metavar=("TRAINVAL", "TEST"))
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def config_from(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The run's config: the flags; when resuming, the checkpoint's config with the flags
    given explicitly (those that differ from their defaults) on top."""
    fields = training.TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields}
    if args.resume:
        explicit = {k: v for k, v in values.items() if v != parser.get_default(k)}
        values = {**training.checkpoint_config(args.resume), **explicit}
    return training.TrainConfig.from_dict(values)


def prepare_data(args: argparse.Namespace) -> None:
    """Generate the synthetic set or download the real one when asked and absent."""
    root = Path(args.data_dir)
    if dataset_exists(root):
        return
    if args.synthetic:
        counts = args.synthetic_count or (SYNTHETIC_SIZE["n_trainval"], SYNTHETIC_SIZE["n_test"])
        logging.info("generating synthetic pets into %s", root)
        make_synthetic_pets(root, n_trainval=counts[0], n_test=counts[1], seed=args.seed)
    elif args.download:
        OxfordIIITPet(root, download=True)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from(args, parser)
        config.validate()
        backend.array_module(config.device)
        prepare_data(args)
        if not dataset_exists(Path(config.data_dir)):
            raise FileNotFoundError(
                f"{config.data_dir} holds no Oxford-IIIT Pet dataset (images/ and "
                "annotations/); pass --download for the real one or --synthetic to generate one"
            )
    except (ValueError, OSError, backend.DeviceError) as exc:
        print(f"train_pets.py: error: {exc}", file=sys.stderr)
        return 2
    training.fit(config, resume=args.resume, progress=not args.quiet)
    out = Path(config.out)
    logging.info("plots: %s", out / "plots")
    logging.info("checkpoints: %s", out / "checkpoints")
    logging.info("history: %s, test metrics: %s", out / "history.json", out / "test_metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
