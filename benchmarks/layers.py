"""Layer-level microbenchmarks: minigrad against PyTorch, in the same process.

Each case times the forward pass and the forward+backward pass of one op, ours and
PyTorch's on the same inputs, as the median of several runs after warm-up, and prints the
ratio ours/PyTorch (below 1 means we are faster). ``--rounds`` times the whole
table several times and prints the median ratio of each case with its range. ``--memory``
also measures the peak memory of one forward+backward of each framework in a fresh
subprocess.

    python -m benchmarks.layers --device cpu
    python -m benchmarks.layers --rounds 3              # the table 3 times: medians and ranges
    python -m benchmarks.layers --cases conv3x3 bilinear --repeat 5 --json out.json --plot out.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as TF

import minigrad as mg
import minigrad.functional as F
from benchmarks import environment
from minigrad import backend


@dataclass
class Case:
    """One benchmark: input shapes (float arrays, plus fixed extras) and the two ops."""

    name: str
    make_inputs: Callable[[np.random.Generator], list]
    ours: Callable
    theirs: Callable


def _normal(*shape):
    return lambda rng: rng.standard_normal(shape).astype(np.float32)


def _inputs(*makers):
    return lambda rng: [make(rng) for make in makers]


def _pool_then_unpool_inputs(rng):
    x = rng.standard_normal((8, 64, 128, 128)).astype(np.float32)
    _, indices = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    pooled = TF.max_pool2d(torch.tensor(x), 2).numpy()
    return [pooled, indices.numpy()]


def _batch_norm(module, training: bool = True):
    def run(x, w, b):
        c = x.shape[1]
        if module is F:
            mean, var = mg.zeros(c, device=x.device), mg.ones(c, device=x.device)
        else:
            mean, var = torch.zeros(c), torch.ones(c)
        return module.batch_norm(x, mean, var, w, b, training=training)

    return run


CASES = [
    Case(
        "conv3x3 64->64 128x128",
        _inputs(_normal(8, 64, 128, 128), _normal(64, 64, 3, 3)),
        lambda x, w: F.conv2d(x, w, padding=1),
        lambda x, w: TF.conv2d(x, w, padding=1),
    ),
    Case(
        "conv3x3 256->256 32x32",
        _inputs(_normal(8, 256, 32, 32), _normal(256, 256, 3, 3)),
        lambda x, w: F.conv2d(x, w, padding=1),
        lambda x, w: TF.conv2d(x, w, padding=1),
    ),
    Case(
        "depthwise3x3 C=128 64x64",
        _inputs(_normal(8, 128, 64, 64), _normal(128, 1, 3, 3)),
        lambda x, w: F.conv2d(x, w, padding=1, groups=128),
        lambda x, w: TF.conv2d(x, w, padding=1, groups=128),
    ),
    Case(
        "pointwise1x1 128->128 64x64",
        _inputs(_normal(8, 128, 64, 64), _normal(128, 128, 1, 1)),
        lambda x, w: F.conv2d(x, w),
        lambda x, w: TF.conv2d(x, w),
    ),
    Case(
        "grouped3x3 g=4 128->128 32x32",
        _inputs(_normal(8, 128, 32, 32), _normal(128, 32, 3, 3)),
        lambda x, w: F.conv2d(x, w, padding=1, groups=4),
        lambda x, w: TF.conv2d(x, w, padding=1, groups=4),
    ),
    Case(
        "conv_transpose2d k2s2 512->256 16->32",
        _inputs(_normal(8, 512, 16, 16), _normal(512, 256, 2, 2)),
        lambda x, w: F.conv_transpose2d(x, w, stride=2),
        lambda x, w: TF.conv_transpose2d(x, w, stride=2),
    ),
    Case(
        "bilinear x2 C=128 32->64 align_corners=False",
        _inputs(_normal(8, 128, 32, 32)),
        lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
        lambda x: TF.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
    ),
    Case(
        "bilinear x2 C=128 32->64 align_corners=True",
        _inputs(_normal(8, 128, 32, 32)),
        lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
        lambda x: TF.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
    ),
    Case(
        "max_pool2d 2x2 indices C=64 128x128",
        _inputs(_normal(8, 64, 128, 128)),
        lambda x: F.max_pool2d(x, 2, return_indices=True)[0],
        lambda x: TF.max_pool2d(x, 2, return_indices=True)[0],
    ),
    Case(
        "max_unpool2d 2x2 C=64 64->128",
        _pool_then_unpool_inputs,
        lambda x, i: F.max_unpool2d(x, i, 2),
        lambda x, i: TF.max_unpool2d(x, i, 2),
    ),
    Case(
        "batch_norm train C=64 128x128",
        _inputs(_normal(8, 64, 128, 128), _normal(64), _normal(64)),
        _batch_norm(F),
        _batch_norm(TF),
    ),
]


def _to_ours(arrays, device):
    return [mg.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]


def _to_torch(arrays):
    return [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]


def _run_once(fn, inputs, backward: bool, sync: Callable[[], None]) -> float:
    for t in inputs:
        t.grad = None
    start = time.perf_counter()
    if backward:
        fn(*inputs).sum().backward()
    else:
        with torch.no_grad(), mg.no_grad():
            fn(*inputs)
    sync()
    return time.perf_counter() - start


def _median_time(fn, inputs, backward: bool, repeat: int, warmup: int, sync) -> float:
    for _ in range(warmup):
        _run_once(fn, inputs, backward, sync)
    return statistics.median(_run_once(fn, inputs, backward, sync) for _ in range(repeat))


def time_case(case: Case, device: str, repeat: int, warmup: int) -> dict:
    """Median seconds of forward and forward+backward for both frameworks, and the ratios.

    Each framework runs its block of repeats alone: timed in turns, each would meet the other's
    thread pool still spinning from its last call, and both slow down."""
    arrays = case.make_inputs(np.random.default_rng(0))
    ours, theirs = _to_ours(arrays, device), _to_torch(arrays)
    ours_sync = lambda: backend.synchronize(device)  # noqa: E731
    row = {"case": case.name}
    for label, backward in (("forward", False), ("forward+backward", True)):
        ours_t = _median_time(case.ours, ours, backward, repeat, warmup, ours_sync)
        theirs_t = _median_time(case.theirs, theirs, backward, repeat, warmup, lambda: None)
        row[label] = {"minigrad_s": ours_t, "torch_s": theirs_t, "ratio": ours_t / theirs_t}
    return row


def combine_rounds(rounds: list) -> list:
    """One row per case from several rounds of the whole table: the median of each figure,
    and the range of the ratio (``ratio_range``)."""
    rows = []
    for same_case in zip(*rounds, strict=True):
        row = {"case": same_case[0]["case"]}
        for label in ("forward", "forward+backward"):
            figures = [r[label] for r in same_case]
            ratios = [f["ratio"] for f in figures]
            row[label] = {
                key: statistics.median(f[key] for f in figures)
                for key in ("minigrad_s", "torch_s", "ratio")
            }
            row[label]["ratio_range"] = [min(ratios), max(ratios)]
        rows.append(row)
    return rows


def _rss_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure_memory(case_index: int, framework: str) -> float:
    """Peak RSS growth (MiB) of one forward+backward, in this (fresh) process.

    The kernel's peak counter is reset first (``clear_refs``), so the imports' peak does not
    hide the op's; the result is that peak minus the memory held just before the run.
    """
    case = CASES[case_index]
    arrays = case.make_inputs(np.random.default_rng(0))
    inputs = _to_ours(arrays, "cpu") if framework == "minigrad" else _to_torch(arrays)
    fn = case.ours if framework == "minigrad" else case.theirs
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _rss_mib("VmRSS")
    _run_once(fn, inputs, backward=True, sync=lambda: None)
    return _rss_mib("VmHWM") - before


def _memory_in_subprocess(case_index: int, framework: str) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.layers", "--memory-probe", str(case_index), framework],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def copy_bandwidth_gbs(megabytes: int = 32, repeat: int = 15) -> float:
    """Memory bandwidth of a large NumPy copy (GB/s read + written), median of ``repeat``.

    Printed before and after the cases: on a shared machine it drifts by a third or more, and
    our memory-bound ops drift with it, so it tells whether two tables are comparable.
    """
    source = np.ones(megabytes << 18, dtype=np.float32)
    target = np.empty_like(source)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(target, source)
        times.append(time.perf_counter() - start)
    return 2 * source.nbytes / statistics.median(times) / 1e9


def print_table(rows: list) -> None:
    ranged = "ratio_range" in rows[0]["forward"]
    header = f"{'case':44s} {'pass':17s} {'minigrad ms':>12s} {'torch ms':>10s} {'ratio':>7s}"
    header += f" {'range':>11s}" if ranged else ""
    print(header)
    print("-" * len(header))
    for row in rows:
        for label in ("forward", "forward+backward"):
            r = row[label]
            line = (
                f"{row['case']:44s} {label:17s} {r['minigrad_s'] * 1e3:12.2f} "
                f"{r['torch_s'] * 1e3:10.2f} {r['ratio']:7.2f}"
            )
            if ranged:
                line += f" {r['ratio_range'][0]:5.2f}-{r['ratio_range'][1]:5.2f}"
            print(line)
        if "memory_mib" in row:
            m = row["memory_mib"]
            print(
                f"{'':44s} {'peak memory MiB':17s} {m['minigrad']:12.1f} {m['torch']:10.1f} "
                f"{m['minigrad'] / max(m['torch'], 1e-9):7.2f}"
            )


def plot(rows: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["case"] for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.5))
    ax.barh(y - 0.2, [r["forward"]["ratio"] for r in rows], 0.4, label="forward")
    ax.barh(y + 0.2, [r["forward+backward"]["ratio"] for r in rows], 0.4, label="fwd+bwd")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("time ratio minigrad / PyTorch (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or gpu")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument(
        "--rounds", type=int, default=1, help="time the whole table this many times (medians)"
    )
    parser.add_argument("--cases", nargs="*", default=None, help="substrings of case names")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--plot", default=None, help="write a chart of the ratios (PNG)")
    parser.add_argument("--memory-probe", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(measure_memory(int(args.memory_probe[0]), args.memory_probe[1]))
        return
    print(environment.header())
    chosen = [
        (i, c)
        for i, c in enumerate(CASES)
        if not args.cases or any(s in c.name for s in args.cases)
    ]
    bandwidth_before = copy_bandwidth_gbs()
    rounds = [
        [time_case(case, args.device, args.repeat, args.warmup) for _, case in chosen]
        for _ in range(args.rounds)
    ]
    rows = rounds[0] if args.rounds == 1 else combine_rounds(rounds)
    if args.memory:
        for (i, _), row in zip(chosen, rows, strict=True):
            row["memory_mib"] = {fw: _memory_in_subprocess(i, fw) for fw in ("minigrad", "torch")}
    rounds_text = f", {args.rounds} rounds" if args.rounds > 1 else ""
    print(
        f"device={args.device}  torch threads={torch.get_num_threads()}  "
        f"median of {args.repeat} after {args.warmup} warm-up runs{rounds_text}  "
        f"copy bandwidth {bandwidth_before:.1f} GB/s before, {copy_bandwidth_gbs():.1f} after"
    )
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
