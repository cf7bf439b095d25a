"""Predict masks with a trained checkpoint, at each image's original resolution.

    python examples/predict.py --checkpoint runs/pets/checkpoints/best.safetensors \\
        photo1.jpg photo2.png --out predictions --viz

Writes ``<name>_mask.png`` per image (class indices 0..C-1 as grey levels) and, with
``--viz``, ``<name>_overlay.png`` (the image tinted by class).
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


def load_model(checkpoint: str, device: str):
    """The model a training checkpoint holds, in eval mode, and its config."""
    config = training.TrainConfig.from_dict(training.checkpoint_config(checkpoint))
    model = training.build_model(config)
    model.load_state_dict(mg.load(checkpoint)["model"])
    return model.to(device).eval(), config


def predict(model, image: np.ndarray, img_size: int, device: str) -> np.ndarray:
    """Class indices (H, W) for an RGB uint8 image (H, W, 3): the model runs at its training
    size and the logits are resized bilinearly back to the image's size."""
    x, _ = eval_transform(img_size)(image, np.zeros(image.shape[:2], dtype=np.int64), None)
    with mg.no_grad():
        logits = model(mg.tensor(x[None], device=device))
        logits = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    return logits.numpy()[0].argmax(axis=0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--viz", action="store_true", help="also write overlays")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    args = p.parse_args(argv)
    try:
        backend.array_module(args.device)
        model, config = load_model(args.checkpoint, args.device)
    except (ValueError, OSError, backend.DeviceError) as exc:
        print(f"predict.py: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in map(Path, args.images):
        try:
            image = decode_image(path)
        except (ValueError, OSError) as exc:
            print(f"predict.py: skipping {path}: {exc}", file=sys.stderr)
            continue
        mask = predict(model, image, config.img_size, args.device)
        Image.fromarray(mask.astype(np.uint8)).save(out / f"{path.stem}_mask.png")
        if args.viz:
            Image.fromarray(viz.overlay(image, mask)).save(out / f"{path.stem}_overlay.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
