"""Optimizer benchmark: one step of each optimizer over a U-Net's parameters, against PyTorch.

The parameters are the shapes of a U-Net with base width 64 (3 -> 64 -> ... -> 1024 and back,
conv weights, transposed-conv weights and biases, batch-norm weights and biases): 64 arrays,
31.0M float32 values. Each case times ``optimizer.step()`` with fixed gradients, ours and
``torch.optim``'s with ``foreach=True`` in the same process, as the median of several steps
after warm-up (the first steps create the state), and prints the ratio ours/PyTorch (below
1 means we are faster). ``--rounds`` times the whole table several times and prints each
case's median ratio with its range. A reference row times a plain per-parameter NumPy Adam
(one whole-array op per line), the update most NumPy code writes.

    python -m benchmarks.optim
    python -m benchmarks.optim --rounds 3 --json optim.json
    python -m benchmarks.optim --cases Adam --base-channels 32
    python -m benchmarks.optim --torch-threads 1   # on a busy machine, torch's spinning threads
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import minigrad as mg
from benchmarks import environment
from benchmarks.layers import copy_bandwidth_gbs
from minigrad import backend, optim


def unet_shapes(base: int = 64, in_channels: int = 3, classes: int = 3) -> list[tuple]:
    """The parameter shapes of a U-Net (double 3x3 conv + batch norm blocks, 2x2 transposed
    convs with bias for upsampling, a 1x1 head): 31,037,763 values for ``base=64``."""
    shapes = []

    def double_conv(cin: int, cout: int) -> None:
        shapes.extend([(cout, cin, 3, 3), (cout,), (cout,), (cout, cout, 3, 3), (cout,), (cout,)])

    widths = [base * 2**i for i in range(5)]
    previous = in_channels
    for width in widths:
        double_conv(previous, width)
        previous = width
    for width in reversed(widths[:-1]):
        shapes.extend([(previous, width, 2, 2), (width,)])
        double_conv(2 * width, width)
        previous = width
    shapes.extend([(classes, previous, 1, 1), (classes,)])
    return shapes


@dataclass
class Case:
    """One optimizer and its hyperparameters, the same for both frameworks."""

    name: str
    optimizer: str
    kwargs: dict


CASES = [
    Case("SGD", "SGD", {"lr": 1e-3}),
    Case("SGD momentum", "SGD", {"lr": 1e-3, "momentum": 0.9}),
    Case("Adam", "Adam", {"lr": 1e-3}),
    Case("AdamW", "AdamW", {"lr": 1e-3}),
    Case("RMSprop", "RMSprop", {"lr": 1e-3}),
]


def _median_step_time(step: Callable, sync: Callable, repeat: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _plain_numpy_adam(params: list, grads: list, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """The textbook per-parameter Adam step in NumPy, one whole-array op at a time."""
    state = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    count = [0]

    def step() -> None:
        count[0] += 1
        t = count[0]
        for p, g, (m, v) in zip(params, grads, state, strict=True):
            m += (1 - b1) * (g - m)
            v *= b2
            v += (1 - b2) * g * g
            denom = np.sqrt(v) / (1 - b2**t) ** 0.5 + eps
            p -= lr / (1 - b1**t) * m / denom

    return step


def time_case(case: Case, arrays: list, grads: list, device: str, repeat: int, warmup: int):
    """Median seconds of one step, ours and PyTorch's (foreach), each timed in its own block
    (timed in turns, each would meet the other's threads still spinning)."""
    ours = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]
    for p, g in zip(ours, grads, strict=True):
        p.grad = mg.tensor(g, device=device)
    our_opt = getattr(optim, case.optimizer)(ours, **case.kwargs)
    ours_t = _median_step_time(our_opt.step, lambda: backend.synchronize(device), repeat, warmup)
    del our_opt, ours
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    for p, g in zip(theirs, grads, strict=True):
        p.grad = torch.tensor(g)
    their_opt = getattr(torch.optim, case.optimizer)(theirs, foreach=True, **case.kwargs)
    theirs_t = _median_step_time(their_opt.step, lambda: None, repeat, warmup)
    return {
        "case": case.name,
        "minigrad_s": ours_t,
        "torch_s": theirs_t,
        "ratio": ours_t / theirs_t,
    }


def time_plain_numpy(arrays: list, grads: list, repeat: int, warmup: int) -> dict:
    params = [a.copy() for a in arrays]
    seconds = _median_step_time(_plain_numpy_adam(params, grads), lambda: None, repeat, warmup)
    return {"case": "Adam, plain NumPy per parameter", "minigrad_s": seconds}


def combine_rounds(rounds: list) -> list:
    """One row per case: the median of each figure over the rounds and the ratio's range."""
    rows = []
    for same_case in zip(*rounds, strict=True):
        row = {"case": same_case[0]["case"]}
        for key in ("minigrad_s", "torch_s", "ratio"):
            if key in same_case[0]:
                row[key] = statistics.median(r[key] for r in same_case)
        if "ratio" in row:
            ratios = [r["ratio"] for r in same_case]
            row["ratio_range"] = [min(ratios), max(ratios)]
        rows.append(row)
    return rows


def print_table(rows: list) -> None:
    header = f"{'case':34s} {'minigrad ms':>12s} {'torch ms':>10s} {'ratio':>7s} {'range':>11s}"
    print(header)
    print("-" * len(header))
    for row in rows:
        line = f"{row['case']:34s} {row['minigrad_s'] * 1e3:12.1f}"
        if "torch_s" in row:
            line += f" {row['torch_s'] * 1e3:10.1f} {row['ratio']:7.2f}"
        if "ratio_range" in row:
            line += f" {row['ratio_range'][0]:5.2f}-{row['ratio_range'][1]:5.2f}"
        print(line)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or gpu (PyTorch runs on the CPU)")
    parser.add_argument("--repeat", type=int, default=7, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=1, help="time the table this many times")
    parser.add_argument("--cases", nargs="*", default=None, help="substrings of case names")
    parser.add_argument("--base-channels", type=int, default=64, help="U-Net width (64: 31M)")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    print(environment.header())
    chosen = [c for c in CASES if not args.cases or any(s in c.name for s in args.cases)]
    rng = np.random.default_rng(0)
    shapes = unet_shapes(args.base_channels)
    arrays = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    bandwidth_before = copy_bandwidth_gbs()
    rounds = []
    for _ in range(args.rounds):
        rows = [time_case(c, arrays, grads, args.device, args.repeat, args.warmup) for c in chosen]
        rows.append(time_plain_numpy(arrays, grads, args.repeat, args.warmup))
        rounds.append(rows)
    rows = combine_rounds(rounds)
    count = sum(a.size for a in arrays)
    print(
        f"device={args.device}  {len(arrays)} arrays, {count / 1e6:.1f}M float32 parameters  "
        f"torch threads={torch.get_num_threads()} (foreach=True)  median of {args.repeat} steps "
        f"after {args.warmup}, {args.rounds} round(s)  copy bandwidth {bandwidth_before:.1f} "
        f"GB/s before, {copy_bandwidth_gbs():.1f} after"
    )
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
