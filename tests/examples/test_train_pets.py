"""examples/train_pets.py: flags, exit codes and messages, outputs, resume, no torch.

Runs go through ``main([...])`` in this process on a tiny synthetic set; the torch-free run
is a subprocess in which ``import torch`` fails; the README's main-job command is the slow
test.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minigrad import backend
from segmentation import training
from segmentation.data import make_synthetic_pets

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = (
    "history.json",
    "history.csv",
    "config.json",
    "test_metrics.json",
    "checkpoints/last.safetensors",
    "checkpoints/best.safetensors",
    "plots/curves.png",
    "plots/samples.png",
    "plots/roc.png",
)


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_pets = load_example("train_pets")


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    root = tmp_path_factory.mktemp("pets") / "data"
    return make_synthetic_pets(root, n_trainval=16, n_test=4, seed=1, size_range=(32, 40))


def tiny_flags(data, out) -> list[str]:
    return [
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--base-channels",
        "2",
        "--img-size",
        "32",
        "--batch-size",
        "4",
        "--num-workers",
        "0",
    ]


def check_outputs(out: Path, epochs: int) -> list:
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(epochs))
    for row in history:
        assert set(training.HISTORY_KEYS) <= set(row)
    test_metrics = json.loads((out / "test_metrics.json").read_text())
    assert {"miou", "dice", "pixel_acc", "per_class_iou"} <= set(test_metrics)
    return history


# ---- stopping with a message -------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "vit"], "argument --model: invalid choice: 'vit'"),
        (["--epochs", "abc"], "argument --epochs: invalid int value: 'abc'"),
        (["--num-classes", "4"], "argument --num-classes: invalid choice: 4"),
        (["--loss", "mse"], "argument --loss: invalid choice: 'mse'"),
        (["--lr", "-1"], "lr must be positive, got -1.0"),
        (["--epochs", "0"], "epochs must be positive, got 0"),
        (["--batch-size", "0"], "batch_size must be positive, got 0"),
        (["--val-fraction", "1.5"], "val_fraction must be in (0, 1), got 1.5"),
        (["--subset", "0"], "subset must be in (0, 1], got 0.0"),
        (["--num-workers", "-1"], "num_workers must be >= 0, got -1"),
        (["--model", "fcn", "--img-size", "48"], "img_size for 'fcn' must be a multiple of 32"),
        (["--model", "segnet", "--base-channels", "8"], "base_channels applies to"),
        (["--img-size", "8"], "at least 16, got 8"),
        (["--synthetic", "--synthetic-count", "-1", "4"], "n_trainval"),
        (["--resume", "nowhere.safetensors"], "nowhere.safetensors"),
        ([], "holds no Oxford-IIIT Pet dataset"),
    ],
)
def test_bad_settings_stop_with_a_message(flags, message, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["--data-dir", str(empty), "--out", str(tmp_path / "out"), *flags]
    assert train_pets.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_no_dataset_says_what_to_pass(tmp_path, capsys):
    assert train_pets.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("train_pets.py: error: ")
    assert "--download" in err and "--synthetic" in err


def test_gpu_without_cuda_stops_at_once(pets, tmp_path, capsys):
    """With the fake GPU off, 'gpu' is real CuPy, which reaches no device on this machine."""
    backend.use_fake_gpu(False)
    try:
        if backend.cuda_available():
            pytest.skip("a real CUDA device is present")
        code = train_pets.main(["--device", "gpu", *tiny_flags(pets, tmp_path / "out")])
        with pytest.raises(backend.DeviceError) as expected:
            backend.array_module("gpu")
    finally:
        backend.use_fake_gpu(True)
    assert code == 2
    err = capsys.readouterr().err
    assert str(expected.value) in err
    assert "needs" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_help_exits_zero(capsys):
    assert train_pets.main(["--help"]) == 0
    assert "--early-stopping PATIENCE" in capsys.readouterr().out


# ---- a run, its outputs and its resume ---------------------------------------------------
def test_run_then_resume_for_more_epochs(pets, tmp_path, capsys):
    """Two epochs with progress bars; the output lines; then --resume alone (the rest of the
    settings come from the checkpoint) with --epochs 3 adds a third epoch to the same --out."""
    out = tmp_path / "run"
    assert train_pets.main([*tiny_flags(pets, out), "--epochs", "2", "--lr", "0.01"]) == 0
    captured = capsys.readouterr()
    first = check_outputs(out, 2)
    lines = captured.out.splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and epoch_lines[1].startswith("epoch 2/2")
    for word in ("val_loss", "val_mIoU", "val_dice", "val_acc"):
        assert word in epoch_lines[0]
    assert f"plots: {out / 'plots'}" in lines
    assert f"checkpoints: {out / 'checkpoints'}" in lines
    assert "epoch 1/2" in captured.err and "img_s=" in captured.err and "loss=" in captured.err
    last = out / "checkpoints" / "last.safetensors"
    assert train_pets.main(["--resume", str(last), "--epochs", "3", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "epoch 3/3" in captured.out and "img_s=" not in captured.err
    history = check_outputs(out, 3)
    assert history[:2] == first
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 3 and config["lr"] == 0.01 and config["base_channels"] == 2


def test_resume_with_another_model_stops(pets, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_pets.main([*tiny_flags(pets, out), "--epochs", "1", "--quiet"]) == 0
    capsys.readouterr()
    last = out / "checkpoints" / "last.safetensors"
    assert train_pets.main(["--resume", str(last), "--base-channels", "4", "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "base_channels=4 (checkpoint: 2)" in err
    assert len(json.loads((out / "history.json").read_text())) == 1


def test_synthetic_generates_once_then_reuses(tmp_path, capsys):
    data = tmp_path / "synthetic"
    flags = [*tiny_flags(data, tmp_path / "run"), "--synthetic", "--epochs", "1", "--quiet"]
    small = ["--synthetic-count", "10", "3"]
    assert train_pets.main([*flags, *small]) == 0
    assert "generating 10 + 3 synthetic pets" in capsys.readouterr().out
    listed = (data / "annotations" / "trainval.txt").read_text().splitlines()
    assert len(listed) == 10
    before = {p.name: p.stat().st_mtime_ns for p in (data / "images").iterdir()}
    assert train_pets.main([*flags, "--out", str(tmp_path / "again")]) == 0
    assert "generating" not in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (data / "images").iterdir()} == before


def test_nan_loss_stops_with_a_message(pets, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training, "build_loss", lambda config, train: nan_loss)
    assert train_pets.main([*tiny_flags(pets, tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "training loss became" in err and "--clip-grad-norm" in err
    assert "Traceback" not in err


def nan_loss(logits, target):
    return logits.mean() * float("nan")


# ---- no torch ----------------------------------------------------------------------------
def test_main_job_runs_without_torch(pets, tmp_path):
    """train_pets.py and predict.py in a process where ``import torch`` fails: both run, and
    nothing from torch (nor scipy or sklearn) was imported."""
    out = tmp_path / "run"
    first_id = (pets / "annotations" / "test.txt").read_text().split()[0]
    image = pets / "images" / f"{first_id}.jpg"
    script = textwrap.dedent(
        f"""
        import runpy, sys
        sys.modules["torch"] = None
        for argv in ({[*tiny_flags(pets, out), "--epochs", "1", "--quiet"]!r},
                     ["--checkpoint", {str(out / "checkpoints" / "best.safetensors")!r},
                      {str(image)!r}, "--out", {str(tmp_path / "masks")!r}, "--viz"]):
            name = "train_pets" if argv[0] == "--data-dir" else "predict"
            sys.argv = [name + ".py", *argv]
            try:
                runpy.run_path({str(ROOT / "examples")!r} + "/" + name + ".py",
                               run_name="__main__")
            except SystemExit as exc:
                assert exc.code == 0, (name, exc.code)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "scipy", "sklearn")
                        and sys.modules[m] is not None)
        print("LOADED", loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout
    check_outputs(out, 1)
    assert (tmp_path / "masks" / f"{image.stem}_mask.png").is_file()


# ---- the README's main job ---------------------------------------------------------------
@pytest.mark.slow
def test_readme_main_job(tmp_path):
    """The README's command (data and out under tmp_path, fewer generated images) as a
    subprocess: exit 0, every output, a model that learned something."""
    data, out = tmp_path / "data" / "synthetic-pets", tmp_path / "runs" / "synthetic"
    command = [
        sys.executable,
        str(ROOT / "examples" / "train_pets.py"),
        "--synthetic",
        "--data-dir",
        str(data),
        "--model",
        "fast_unet",
        "--base-channels",
        "8",
        "--img-size",
        "64",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--out",
        str(out),
        "--synthetic-count",
        "96",
        "24",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    history = check_outputs(out, 3)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert np.isfinite([row["val_miou"] for row in history]).all()
    for line in ("plots: ", "checkpoints: ", "history: "):
        assert line in result.stdout
    assert sum(line.startswith("epoch ") for line in result.stdout.splitlines()) == 3
