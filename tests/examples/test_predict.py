"""examples/predict.py: masks at each image's own resolution, overlays, and its errors.

The checkpoints are written by ``training.save_checkpoint`` from freshly built tiny models
(what predict reads does not depend on how long the model trained); the upsampling of the
logits to the image's size is checked against PyTorch's ``F.interpolate``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import minigrad as mg
from segmentation import training
from segmentation.data import decode_image, make_synthetic_pets
from segmentation.data.transforms import eval_transform

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("example_predict", ROOT / "examples" / "predict.py")
predict = importlib.util.module_from_spec(spec)
spec.loader.exec_module(predict)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three synthetic test images: landscape, portrait, and an odd one (PNG, greyscale or
    CMYK under a .jpg name), of different sizes."""
    root = tmp_path_factory.mktemp("pets") / "data"
    make_synthetic_pets(root, n_trainval=1, n_test=4, seed=2, size_range=(40, 72))
    ids = (root / "annotations" / "test.txt").read_text().split("\n")
    ids = [line.split()[0] for line in ids if line]
    paths = [root / "images" / f"{i}.jpg" for i in ids[:3]]
    assert len({decode_image(p).shape for p in paths}) == 3
    return paths


def write_checkpoint(path: Path, num_classes: int = 3, img_size: int = 32) -> training.TrainConfig:
    config = training.TrainConfig(
        base_channels=2, num_classes=num_classes, img_size=img_size, out=str(path.parent)
    )
    mg.manual_seed(7)
    model = training.build_model(config)
    optimizer = training.build_optimizer(config, model.parameters())
    training.save_checkpoint(path, model, optimizer, None, training.RunState(epoch=0), config)
    return config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "best.safetensors"
    write_checkpoint(path)
    return path


@pytest.mark.parametrize("num_classes", [3, 2])
def test_masks_at_each_images_resolution(num_classes, images, tmp_path, capsys):
    ckpt = tmp_path / "ckpt.safetensors"
    write_checkpoint(ckpt, num_classes)
    out = tmp_path / "masks"
    argv = ["--checkpoint", str(ckpt), *map(str, images), "--out", str(out), "--viz"]
    assert predict.main(argv) == 0
    assert f"3 masks in {out}" in capsys.readouterr().out
    model, config = predict.load_model(ckpt)
    for path in images:
        with Image.open(path) as im:
            size = im.size
        with Image.open(out / f"{path.stem}_mask.png") as im:
            assert im.mode == "L" and im.size == size
            mask = np.asarray(im)
        assert mask.max() < num_classes
        expected = predict.predict(model, decode_image(path), config.img_size)
        np.testing.assert_array_equal(mask, expected)
        with Image.open(out / f"{path.stem}_overlay.png") as im:
            assert im.mode == "RGB" and im.size == size


def test_upsampling_matches_torch(checkpoint, images):
    """predict = argmax of the logits at img_size, resized bilinearly (align_corners=False)
    to the image's size: compared with torch's interpolate on the same logits."""
    model, config = predict.load_model(checkpoint)
    for path in images:
        image = decode_image(path)
        x, _ = eval_transform(config.img_size)(image, np.zeros(image.shape[:2], np.int64), None)
        with mg.no_grad():
            logits = model(mg.tensor(x[None])).numpy()
        resized = torch.nn.functional.interpolate(
            torch.from_numpy(logits), size=image.shape[:2], mode="bilinear", align_corners=False
        )
        expected = resized[0].argmax(dim=0).numpy()
        got = predict.predict(model, image, config.img_size)
        assert got.shape == image.shape[:2]
        assert (got == expected).mean() > 0.999


def test_an_image_at_the_training_size_is_the_models_argmax(checkpoint, tmp_path):
    model, config = predict.load_model(checkpoint)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (config.img_size, config.img_size, 3), dtype=np.uint8)
    x, _ = eval_transform(config.img_size)(image, np.zeros(image.shape[:2], np.int64), None)
    with mg.no_grad():
        expected = model(mg.tensor(x[None])).numpy()[0].argmax(axis=0)
    np.testing.assert_array_equal(predict.predict(model, image, config.img_size), expected)


def test_gpu_gives_the_cpus_masks(checkpoint, images, device):
    cpu_model, config = predict.load_model(checkpoint, "cpu")
    model, _ = predict.load_model(checkpoint, device)
    image = decode_image(images[0])
    got = predict.predict(model, image, config.img_size, device)
    expected = predict.predict(cpu_model, image, config.img_size)
    assert (got == expected).mean() > 0.999


def test_unreadable_images_are_skipped(checkpoint, images, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    out = tmp_path / "masks"
    argv = ["--checkpoint", str(checkpoint), str(broken), str(images[0]), "--out", str(out)]
    assert predict.main(argv) == 1
    captured = capsys.readouterr()
    assert f"skipping {broken}" in captured.err and "Traceback" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == [f"{images[0].stem}_mask.png"]


def test_bad_checkpoints_and_names_stop(checkpoint, images, tmp_path, capsys):
    weights = tmp_path / "weights.safetensors"
    mg.save({"model": {}}, weights)
    twin = tmp_path / "other"
    twin.mkdir()
    (twin / images[0].name).write_bytes(images[0].read_bytes())
    cases = [
        (["--checkpoint", str(tmp_path / "none.safetensors"), str(images[0])], "none.safetensors"),
        (["--checkpoint", str(weights), str(images[0])], "not a training checkpoint"),
        (
            ["--checkpoint", str(checkpoint), str(images[0]), str(twin / images[0].name)],
            "would both write",
        ),
        (["--checkpoint", str(checkpoint)], "the following arguments are required: images"),
    ]
    for argv, message in cases:
        assert predict.main([*argv, "--out", str(tmp_path / "masks")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "masks").exists()


def test_load_model_restores_the_weights_and_config(checkpoint):
    model, config = predict.load_model(checkpoint)
    saved = training.read_checkpoint(checkpoint)
    assert config == training.TrainConfig.from_dict(saved["config"])
    assert not model.training
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), saved["model"][key].numpy(), err_msg=key)
