"""Predict masks with a trained checkpoint, at each image's original resolution.

    python examples/predict.py --checkpoint runs/pets/checkpoints/best.safetensors \\
        photo1.jpg photo2.png --out predictions --viz

Writes ``<name>_mask.png`` per image: 8-bit greyscale holding the class index of each
pixel (trimap: 0 pet, 1 background, 2 border; binary: 0 background, 1 pet), the same size as
the image; with ``--viz`` also ``<name>_overlay.png``, the image tinted by class. Images
that cannot be read are skipped with a message (exit code 1); a bad checkpoint, a missing
GPU or two images with one name stop at once (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad import backend  # noqa: E402
from segmentation import training, viz  # noqa: E402
from segmentation.data.oxford_pets import decode_image  # noqa: E402
from segmentation.data.transforms import eval_transform  # noqa: E402

PROG = "predict.py"


def load_model(checkpoint, device: str = "cpu"):
    """The model a training checkpoint holds, on ``device`` in eval mode, and its config."""
    saved = training.read_checkpoint(checkpoint)
    config = training.TrainConfig.from_dict(saved["config"])
    model = training.build_model(config)
    model.load_state_dict(saved["model"])
    return model.to(device).eval(), config


def predict(model, image: np.ndarray, img_size: int, device: str = "cpu") -> np.ndarray:
    """Class indices int64 (H, W) for an RGB uint8 image (H, W, 3): the model runs on the
    evaluation transform's (img_size, img_size) input, and its logits are resized
    bilinearly back to (H, W) before the argmax."""
    x, _ = eval_transform(img_size)(image, np.zeros(image.shape[:2], dtype=np.int64), None)
    with mg.no_grad():
        logits = model(mg.tensor(x[None], device=device))
        logits = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    return logits.numpy()[0].argmax(axis=0)


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _check_names(paths: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise ValueError(
                f"{seen[path.stem]} and {path} would both write {path.stem}_mask.png; "
                "rename one or predict them in separate runs"
            )
        seen[path.stem] = path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a train_pets.py checkpoint")
    p.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    p.add_argument("--out", required=True, help="folder for the masks (created)")
    p.add_argument("--viz", action="store_true", help="also write overlays")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the message
        return int(exc.code or 0)
    paths = [Path(p) for p in args.images]
    try:
        backend.array_module(args.device)
        _check_names(paths)
        model, config = load_model(args.checkpoint, args.device)
    except (ValueError, OSError, backend.DeviceError) as exc:
        return _fail(str(exc), 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skipped = 0
    for path in paths:
        try:
            image = decode_image(path)
        except (ValueError, OSError) as exc:
            print(f"{PROG}: skipping {path}: {exc}", file=sys.stderr)
            skipped += 1
            continue
        mask = predict(model, image, config.img_size, args.device)
        Image.fromarray(mask.astype(np.uint8)).save(out / f"{path.stem}_mask.png")
        if args.viz:
            tinted = viz.overlay(image, mask, config.num_classes)
            Image.fromarray(tinted).save(out / f"{path.stem}_overlay.png")
    print(f"{len(paths) - skipped} masks in {out}")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
