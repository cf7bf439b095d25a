"""Model benchmarks: one training step of each segmentation model against its PyTorch twin.

A step is forward, cross-entropy loss, backward and an Adam step, on a batch of 4 images of
3x128x128 in float32, both models holding the same weights. Rounds alternate: a block of
ours, then a block of PyTorch's (each framework alone, so neither meets the other's thread
pool still spinning), and each figure is the median over blocks. ``--memory`` measures the
peak memory of one step of each in a fresh subprocess (tracemalloc for NumPy, peak RSS growth
for both). ``--accuracy`` reports, for one step from the same weights, the norm-wise relative
error of each parameter gradient against the same step in float64 (geometric mean over
parameters), for ours and for PyTorch. ``--profile`` prints our step's time per op.

    python -m benchmarks.models
    python -m benchmarks.models --models fast_unet unet --repeat 5 --memory --json out.json
    python -m benchmarks.models --accuracy --seeds 3
    python -m benchmarks.models --profile --models unet
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import torch
import torch.nn.functional as TF

import minigrad as mg
import minigrad.functional as F
from benchmarks.layers import _rss_mib
from minigrad import optim
from segmentation import models
from tests.reference import models as twins

MODELS = {
    "fast_unet": "FastUNet",
    "unet": "UNet",
    "resnet34_unet": "ResNet34UNet",
    "fcn": "FCN",
    "segnet": "SegNet",
}


def make_pair(key: str, seed: int = 0, dtype=np.float32):
    """Our model and its twin with the twin's initial weights, both in ``dtype``."""
    name = MODELS[key]
    torch.manual_seed(seed)
    theirs = getattr(twins, name)()
    if dtype == np.float64:
        theirs = theirs.double()
    ours = getattr(models, name)().to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def make_batch(seed: int = 0, batch: int = 4, side: int = 128, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, side, side)).astype(dtype)
    y = rng.integers(0, 3, size=(batch, side, side))
    return x, y


class OurStep:
    """Forward, loss, backward and Adam step of our model on one fixed batch."""

    def __init__(self, model, x, y):
        self.model, self.x, self.y = model, mg.tensor(x), mg.tensor(y)
        self.opt = optim.Adam(model.parameters(), lr=1e-4)

    def __call__(self) -> float:
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss.item()


class TorchStep:
    """The same step for the twin, with torch's foreach Adam."""

    def __init__(self, model, x, y):
        self.model, self.x, self.y = model, torch.tensor(x), torch.tensor(y)
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=True)

    def __call__(self) -> float:
        self.opt.zero_grad()
        loss = TF.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss.item()


def _block(step, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def time_model(key: str, repeat: int, rounds: int) -> dict:
    """Median seconds per step of both frameworks over ``rounds`` alternating blocks."""
    ours_model, their_model = make_pair(key)
    x, y = make_batch()
    ours, theirs = OurStep(ours_model, x, y), TorchStep(their_model, x, y)
    ours(), theirs()
    ours_times, their_times = [], []
    for _ in range(rounds):
        ours_times += _block(ours, repeat)
        their_times += _block(theirs, repeat)
    ours_s, theirs_s = statistics.median(ours_times), statistics.median(their_times)
    return {
        "model": key,
        "minigrad_s": ours_s,
        "torch_s": theirs_s,
        "ratio": ours_s / theirs_s,
        "ratio_range": [min(ours_times) / max(their_times), max(ours_times) / min(their_times)],
    }


def memory_probe(key: str, framework: str) -> dict:
    """Peak memory (MiB) of one training step in this fresh process: the peak RSS growth
    over the memory held before the step, and for ours also tracemalloc's peak."""
    ours_model, their_model = make_pair(key)
    x, y = make_batch()
    step = OurStep(ours_model, x, y) if framework == "minigrad" else TorchStep(their_model, x, y)
    step()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _rss_mib("VmRSS")
    if framework == "minigrad":
        tracemalloc.start()
    step()
    result = {"rss_mib": _rss_mib("VmHWM") - before}
    if framework == "minigrad":
        result["tracemalloc_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result


def _memory_in_subprocess(key: str, framework: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.models", "--memory-probe", key, framework],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _gradients_ours(model, x, y) -> dict:
    model.zero_grad()
    F.cross_entropy(model(mg.tensor(x)), mg.tensor(y)).backward()
    return {k: p.grad.numpy().astype(np.float64) for k, p in model.named_parameters()}


def _gradients_torch(model, x, y) -> dict:
    model.zero_grad()
    TF.cross_entropy(model(torch.tensor(x)), torch.tensor(y)).backward()
    return {k: p.grad.double().numpy() for k, p in model.named_parameters()}


def _geometric_mean_error(grads: dict, exact: dict) -> float:
    logs = []
    for key, g in grads.items():
        scale = np.linalg.norm(exact[key])
        if scale > 0:
            logs.append(math.log(max(np.linalg.norm(g - exact[key]) / scale, 1e-300)))
    return math.exp(statistics.fmean(logs))


def _geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(max(v, 1e-300)) for v in values))


def accuracy(key: str, seed: int) -> dict:
    """Float32 gradient error against float64 (our float64 as the exact value for ours,
    PyTorch's for PyTorch's), geometric mean over parameters.

    The figure is bimodal: about 1e-6 when float32 takes every ReLU and max-pool decision as
    float64 does, 1e-4 to 1e-3 when a near-tie flips and reroutes a gradient; which seeds
    flip differs between the frameworks, so compare the geometric means over several seeds."""
    x64, y = make_batch(seed, batch=2, side=64, dtype=np.float64)
    ours32, theirs32 = make_pair(key, seed)
    ours64, theirs64 = make_pair(key, seed, np.float64)
    return {
        "model": key,
        "seed": seed,
        "minigrad": _geometric_mean_error(
            _gradients_ours(ours32, x64.astype(np.float32), y), _gradients_ours(ours64, x64, y)
        ),
        "torch": _geometric_mean_error(
            _gradients_torch(theirs32, x64.astype(np.float32), y),
            _gradients_torch(theirs64, x64, y),
        ),
    }


def profile_step(key: str) -> str:
    """Our step's profile table (time per op name and shape), from ``minigrad.debug``."""
    from minigrad import debug

    ours_model, _ = make_pair(key)
    step = OurStep(ours_model, *make_batch())
    step()
    with debug.profile() as prof:
        step()
    return prof.table(sort_by="total", row_limit=25)


def print_speed(rows: list) -> None:
    header = f"{'model':16s} {'minigrad s':>11s} {'torch s':>9s} {'ratio':>7s} {'range':>13s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        lo, hi = r["ratio_range"]
        print(
            f"{r['model']:16s} {r['minigrad_s']:11.3f} {r['torch_s']:9.3f} {r['ratio']:7.2f} "
            f"{lo:6.2f}-{hi:<6.2f}"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--repeat", type=int, default=3, help="steps per block")
    parser.add_argument("--rounds", type=int, default=2, help="blocks per framework")
    parser.add_argument("--memory", action="store_true", help="peak memory of one step")
    parser.add_argument("--accuracy", action="store_true", help="float32 gradient error")
    parser.add_argument("--seeds", type=int, default=6, help="weight seeds for --accuracy")
    parser.add_argument("--profile", action="store_true", help="our step's time per op")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "FRAMEWORK"))
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(*args.memory_probe)))
        return
    results: dict = {}
    if args.accuracy:
        results["accuracy"] = [accuracy(k, s) for k in args.models for s in range(args.seeds)]
        for r in results["accuracy"]:
            errors = f"minigrad {r['minigrad']:.2e}  torch {r['torch']:.2e}"
            print(f"{r['model']:16s} seed {r['seed']}: {errors}")
        for key in args.models:
            ours, theirs = (
                _geometric_mean([r[f] for r in results["accuracy"] if r["model"] == key])
                for f in ("minigrad", "torch")
            )
            summary = f"minigrad {ours:.2e}  torch {theirs:.2e}  ratio {ours / theirs:.2f}"
            print(f"{key:16s} over seeds: {summary}")
    if args.profile:
        for key in args.models:
            print(f"== {key}\n{profile_step(key)}")
    if not (args.accuracy or args.profile):
        results["speed"] = [time_model(k, args.repeat, args.rounds) for k in args.models]
        print_speed(results["speed"])
    if args.memory:
        results["memory"] = {
            k: {f: _memory_in_subprocess(k, f) for f in ("minigrad", "torch")} for k in args.models
        }
        for key, figures in results["memory"].items():
            ours, theirs = figures["minigrad"], figures["torch"]
            print(
                f"{key:16s} peak RSS growth: minigrad {ours['rss_mib']:.0f} MiB "
                f"(tracemalloc {ours['tracemalloc_mib']:.0f}), torch {theirs['rss_mib']:.0f} MiB, "
                f"ratio {ours['rss_mib'] / max(theirs['rss_mib'], 1e-9):.2f}"
            )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
