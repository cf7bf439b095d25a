"""Model benchmarks: one training step of each segmentation model against its PyTorch twin.

A step is forward, cross-entropy loss, backward and an Adam step, on a batch of 4 images of
3x128x128 in float32, both models holding the same weights. Rounds alternate: a block of
ours, then a block of PyTorch's (each framework alone, so neither meets the other's thread
pool still spinning), and each figure is the median over blocks, with the ratio of the
fastest steps beside it. ``--memory`` measures the peak memory of training each in a fresh
subprocess (:func:`memory_probe`: the peak RSS of the first steps above the RSS before them,
and the growth of step 2 with NumPy's tracemalloc peak). ``--profile`` prints our step's time
per op. Run under ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` (see
:mod:`benchmarks.environment`).

Both frameworks share the process's malloc. ``import minigrad`` has glibc keep freed memory
for reuse (:mod:`minigrad.malloc`), and PyTorch's step gains from it too: on 2 cores its
FastUNet step took 0.44-0.54 s with it against 0.64-0.76 s without (180-200k page faults a
step), its ResNet34-U-Net step 0.26-0.35 s against 0.30-0.36. So the ratios compare the two
under the same allocator; ``MINIGRAD_KEEP_FREED_MEMORY=0`` gives glibc's default to both
(the header says which ran).

``--accuracy`` reports, for one step of each model from the same weights (a batch of 2 images
of 3x64x64, 3x128x128 for SegNet, per weight seed), the norm-wise relative error of each
parameter gradient of the float32 step against a float64 step (geometric mean over
parameters), for ours and for PyTorch, each against its own float64, and the ratio ours /
PyTorch's, two ways:

- raw: against the float64 step as it runs. A ReLU input or a max-pool near-tie that rounds
  the other way in float32 takes another branch and reroutes a gradient (1e-4 to 1e-3 in that
  seed against about 1e-6), and which seeds flip is chance, per framework: the raw figure
  and its ratio measure branch luck as much as rounding.
- matched: against the float64 step made to take the float32 step's ReLU masks and max-pool
  indices (:class:`Decisions`), i.e. the float64 gradient of the very piecewise-linear branch
  float32 computed, so its exact value. This is the rounding error alone, the fair figure to
  compare between frameworks. The flips (decisions float64 would have taken otherwise) are
  counted too.

    python -m benchmarks.models
    python -m benchmarks.models --models fast_unet unet --repeat 5 --memory --json out.json
    python -m benchmarks.models --accuracy --seeds 3
    python -m benchmarks.models --profile --models unet
    python -m benchmarks.models --one-thread --models resnet34_unet

``--one-thread`` runs the speed figures with both frameworks on one thread
(:func:`benchmarks.environment.one_thread`): the work a step costs a core. Here (2 cores, two
runs) ours took 1.16-1.22x PyTorch's time per core for ResNet34-U-Net, 0.90-0.92x for UNet
and 0.69-0.70x for FastUNet, and lost in sharing the work: on two threads PyTorch's steps
ran 1.5-2.3x faster than on one, ours 1.1-1.6x (a hand-off of work to the second thread
and back costs 70-80 us on this virtual machine, and NumPy's passes need the GIL between
them), for ratios of 1.53-1.71, 1.04-1.13 and 1.06-1.10.
"""

from __future__ import annotations

import argparse
import contextlib
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
from benchmarks import environment
from benchmarks.layers import _rss_mib
from minigrad import optim
from segmentation import models
from tests.reference import models as twins
from tests.reference.decisions import Decisions, Minigrad, Torch

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
        "ratio_best": min(ours_times) / min(their_times),
        "ratio_range": [min(ours_times) / max(their_times), max(ours_times) / min(their_times)],
    }


MEMORY_STEPS = 3


def memory_probe(key: str, framework: str) -> dict:
    """Peak memory (MiB) of training in this fresh process, two ways.

    ``training_mib``: the peak RSS over the first MEMORY_STEPS steps above the RSS held
    before the first one (model, batch and imports): activations, gradients, optimizer state
    and every buffer the framework keeps. This is the figure to compare: memory an allocator
    keeps from one step for the next is counted once, whoever keeps it.

    ``step_growth_mib``: the peak RSS growth during step 2 over the RSS held before it, and
    for ours ``tracemalloc_mib``, the peak of NumPy's allocations during that step. The
    growth flatters a framework whose allocator kept step 1's memory (glibc does so for
    blocks below its mmap threshold): for a FastUNet it read 240-290 MiB for PyTorch against
    380-400 for us, while the training peak read 838 against 570.
    """
    ours_model, their_model = make_pair(key)
    x, y = make_batch()
    step = OurStep(ours_model, x, y) if framework == "minigrad" else TorchStep(their_model, x, y)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    baseline = _rss_mib("VmRSS")
    step()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _rss_mib("VmRSS")
    if framework == "minigrad":
        tracemalloc.start()
    step()
    result = {"step_growth_mib": _rss_mib("VmHWM") - before}
    if framework == "minigrad":
        result["tracemalloc_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    peak = _rss_mib("VmHWM")
    for _ in range(MEMORY_STEPS - 2):
        step()
        peak = max(peak, _rss_mib("VmHWM"))
    result["training_mib"] = peak - baseline
    return result


def _memory_in_subprocess(key: str, framework: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.models", "--memory-probe", key, framework],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _geometric_mean_error(grads: dict, exact: dict) -> float:
    """Geometric mean over parameters of ``|g - exact| / |exact|`` (Frobenius norms).

    Parameters whose exact gradient is zero up to float64 rounding (a norm at most 1e-10 of
    the largest one's) are left out: their true gradient is zero (a conv bias right before a
    batch norm, as in SegNet), so the ratio would be float32 noise over float64 noise."""
    norms = {key: np.linalg.norm(g) for key, g in exact.items()}
    floor = 1e-10 * max(norms.values())
    logs = [
        math.log(max(np.linalg.norm(g - exact[key]) / norms[key], 1e-300))
        for key, g in grads.items()
        if norms[key] > floor
    ]
    return math.exp(statistics.fmean(logs))


def _geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(max(v, 1e-300)) for v in values))


def framework_accuracy(framework, model32, model64, x64: np.ndarray, y: np.ndarray) -> dict:
    """Float32 gradient error of one framework, two ways, from models with equal weights.

    ``raw``: against the float64 step as it runs by itself. ``matched``: against the float64
    step with the float32 step's ReLU masks and max-pool indices imposed. ``flips``: how
    many of those decisions float64 would have taken the other way, per kind.
    """
    with Decisions(framework, model32) as taken:
        grads = taken.gradients(x64.astype(np.float32), y)
    with Decisions(framework, model64, imposed=taken) as matched:
        exact_matched = matched.gradients(x64, y)
    exact_raw = framework.gradients(model64, x64, y)
    return {
        "raw": _geometric_mean_error(grads, exact_raw),
        "matched": _geometric_mean_error(grads, exact_matched),
        "flips": dict(matched.flips),
    }


def _accuracy_side(model, least: int = 64) -> int:
    """The image side of ``--accuracy``: ``least``, or the next multiple of the model's
    ``divisor`` where it has one (FCN 32, SegNet 128 at its default depth)."""
    divisor = getattr(model, "divisor", 1)
    return -(-least // divisor) * divisor


def accuracy(key: str, seed: int) -> dict:
    """Float32 gradient error of one step, ours and PyTorch's, each against its own float64
    step from the same weights (norm-wise per parameter, geometric mean over parameters).

    ``minigrad`` / ``torch`` (the raw figure) compare with the float64 step as it runs. It
    is bimodal: about 1e-6 when float32 takes every ReLU and max-pool decision as float64
    does, 1e-4 to 1e-3 when a near-tie flips and reroutes a gradient; which seeds flip is
    chance, and differs between the frameworks. It measures branch luck more than rounding.

    ``minigrad_matched`` / ``torch_matched`` compare with the float64 step made to take the
    float32 step's decisions (:class:`Decisions`): the float64 gradient of the same
    piecewise-linear branch, i.e. the exact value of what float32 computed, so the figure is
    the rounding error alone, measured the same way for both frameworks. ``*_flips`` counts
    the decisions float64 would have taken otherwise (ReLU elements, max-pool outputs).
    """
    ours32, theirs32 = make_pair(key, seed)
    ours64, theirs64 = make_pair(key, seed, np.float64)
    x64, y = make_batch(seed, batch=2, side=_accuracy_side(ours32), dtype=np.float64)
    row = {"model": key, "seed": seed}
    for name, fw, m32, m64 in (
        ("minigrad", Minigrad, ours32, ours64),
        ("torch", Torch, theirs32, theirs64),
    ):
        figures = framework_accuracy(fw, m32, m64, x64, y)
        row[name], row[f"{name}_matched"] = figures["raw"], figures["matched"]
        row[f"{name}_flips"] = figures["flips"]
    return row


def print_accuracy(rows: list, keys: list) -> None:
    """Per seed both figures and flip counts, then per model the geometric means over
    seeds, their ratios (ours / PyTorch's) and the mean flip counts."""
    for r in rows:
        flips = [sum(r[f"{f}_flips"].values()) for f in ("minigrad", "torch")]
        print(
            f"{r['model']:16s} seed {r['seed']}: raw minigrad {r['minigrad']:.2e} torch "
            f"{r['torch']:.2e} | matched minigrad {r['minigrad_matched']:.2e} torch "
            f"{r['torch_matched']:.2e} | flips minigrad {flips[0]} torch {flips[1]}"
        )
    for key in keys:
        mine = [r for r in rows if r["model"] == key]
        print(f"{key:16s} over {len(mine)} seeds:")
        for label, suffix in (("raw", ""), ("matched", "_matched")):
            ours, theirs = (
                _geometric_mean([r[f + suffix] for r in mine]) for f in ("minigrad", "torch")
            )
            print(
                f"  {label:8s} minigrad {ours:.2e}  torch {theirs:.2e}  ratio {ours / theirs:.2f}"
            )
        for f in ("minigrad", "torch"):
            relu, pool = (
                statistics.fmean(r[f"{f}_flips"][k] for r in mine) for k in ("relu", "max_pool")
            )
            print(f"  flips    {f:8s} ReLU {relu:.1f}  max pool {pool:.1f} (mean per seed)")


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
    """The medians and their ratio, the ratio of the fastest steps (noise on a shared machine
    only adds time, so the fastest step of each is the least disturbed), and the range."""
    header = (
        f"{'model':16s} {'minigrad s':>11s} {'torch s':>9s} {'ratio':>7s} {'best':>6s} "
        f"{'range':>13s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        lo, hi = r["ratio_range"]
        print(
            f"{r['model']:16s} {r['minigrad_s']:11.3f} {r['torch_s']:9.3f} {r['ratio']:7.2f} "
            f"{r['ratio_best']:6.2f} {lo:6.2f}-{hi:<6.2f}"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--repeat", type=int, default=3, help="steps per block")
    parser.add_argument("--rounds", type=int, default=2, help="blocks per framework")
    parser.add_argument("--memory", action="store_true", help="peak memory of training")
    parser.add_argument("--accuracy", action="store_true", help="float32 gradient error")
    parser.add_argument("--seeds", type=int, default=6, help="weight seeds for --accuracy")
    parser.add_argument("--profile", action="store_true", help="our step's time per op")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument(
        "--one-thread", action="store_true", help="both frameworks on one thread (speed only)"
    )
    parser.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "FRAMEWORK"))
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(*args.memory_probe)))
        return
    results: dict = {}
    with environment.one_thread() if args.one_thread else contextlib.nullcontext():
        print(environment.header())
        if not (args.accuracy or args.profile):
            results["speed"] = [time_model(k, args.repeat, args.rounds) for k in args.models]
            print_speed(results["speed"])
    if args.accuracy:
        results["accuracy"] = [accuracy(k, s) for k in args.models for s in range(args.seeds)]
        print_accuracy(results["accuracy"], args.models)
    if args.profile:
        for key in args.models:
            print(f"== {key}\n{profile_step(key)}")
    if args.memory:
        results["memory"] = {
            k: {f: _memory_in_subprocess(k, f) for f in ("minigrad", "torch")} for k in args.models
        }
        for key, figures in results["memory"].items():
            ours, theirs = figures["minigrad"], figures["torch"]
            print(
                f"{key:16s} training peak: minigrad {ours['training_mib']:.0f} MiB, torch "
                f"{theirs['training_mib']:.0f} MiB, ratio "
                f"{ours['training_mib'] / max(theirs['training_mib'], 1e-9):.2f}; step 2 growth: "
                f"minigrad {ours['step_growth_mib']:.0f} (tracemalloc "
                f"{ours['tracemalloc_mib']:.0f}), torch {theirs['step_growth_mib']:.0f}"
            )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
