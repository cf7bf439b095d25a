"""10: one U-Net training step, seen through minigrad.debug.

A step is: forward (each op records one Function, which saves what its backward needs), the
loss, ``loss.backward()`` (the walk of 02, freeing each Function's saved arrays once it has
run), and ``opt.step()``. Here on a tiny U-Net (base_channels 4, 32x32 images):

- ``to_dot``: the graph, one node per Function, each parameter a named leaf;
- the memory each op keeps for backward, before the walk frees it;
- ``profile``: forward and backward time per op and shape, and a Chrome trace;
- ``detect_anomaly``: a NaN or Inf raises at the op that made it.

Run: python examples/internals/10_unet_training_step.py
"""

import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

import minigrad as mg
from minigrad import optim
from minigrad.debug import AnomalyError, detect_anomaly, profile, to_dot
from minigrad.debug.memory import format_bytes, saved_bytes
from segmentation.losses import CrossEntropyLoss
from segmentation.models import UNet


def graph_functions(tensor) -> list:
    """Every Function reachable from ``tensor``, once each."""
    order, seen = [tensor.grad_fn], {id(tensor.grad_fn)}
    for fn in order:
        for edge in fn.inputs:
            if edge.grad_fn is not None and id(edge.grad_fn) not in seen:
                seen.add(id(edge.grad_fn))
                order.append(edge.grad_fn)
    return order


def training_step(model, opt, x, target):
    with profile() as prof:
        opt.zero_grad()
        loss = CrossEntropyLoss()(model(x), target)
        fns = graph_functions(loss)
        dot = to_dot(loss, model.named_parameters())
        saved = Counter()
        for fn in fns:
            saved[fn.name] += saved_bytes(fn)
        loss.backward()
        opt.step()
    return loss, fns, dot, saved, prof


def main() -> None:
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = UNet(in_channels=3, num_classes=2, base_channels=4)
    params = list(model.parameters())
    print(f"UNet(base_channels=4): {sum(p.numel() for p in params):,} parameters")
    x = mg.tensor(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    target = mg.tensor(rng.integers(0, 2, (2, 32, 32)))
    opt = optim.Adam(params, lr=1e-3)
    before = [p.data.copy() for p in params]
    loss, fns, dot, saved, prof = training_step(model, opt, x, target)

    nodes = len(re.findall(r"^\s+fn\d+ \[shape=box", dot, flags=re.MULTILINE))
    print(f"loss {loss.item():.4f}; graph: {nodes} Functions, {Counter(f.name for f in fns)}")
    assert nodes == len(fns)
    for name, _ in model.named_parameters():  # every parameter is a named leaf
        assert f'"{name}\\n' in dot, name

    print("saved for backward, per op:")
    for name, n in saved.most_common():
        print(f"  {name:24s} {format_bytes(n):>10s}")
    print(f"  {'total':24s} {format_bytes(sum(saved.values())):>10s}")
    forward = [e for e in prof.events if e.phase == "forward"]
    assert sum(e.saved_bytes for e in forward) == sum(saved.values())  # profiler agrees
    assert all(fn.released and fn.saved == () for fn in fns)  # the walk freed all of it

    print(prof.table(sort_by="total", row_limit=8))
    backward = Counter(e.name for e in prof.events if e.phase == "backward")
    assert backward == Counter(fn.name for fn in fns)  # each node's backward ran once
    assert prof.op_time <= prof.wall_time
    with tempfile.TemporaryDirectory() as tmp:
        prof.export_chrome_trace(Path(tmp) / "trace.json")
        trace = json.loads((Path(tmp) / "trace.json").read_text())["traceEvents"]
    assert len(trace) == len(prof.events)
    print(f"Chrome trace: {len(trace)} events (open in chrome://tracing or ui.perfetto.dev)")

    changed = sum(not np.array_equal(b, p.data) for b, p in zip(before, params, strict=True))
    print(f"Adam moved {changed} of {len(params)} parameter tensors")
    assert changed == len(params)

    # NumPy only warns about 1 / 0 (silenced here); detect_anomaly raises, naming the op.
    zero = mg.tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly(), np.errstate(divide="ignore"):
        y = mg.sqrt(zero).sum()  # finite forward; its backward 1 / (2 sqrt(0)) is Inf
        try:
            y.backward()
        except AnomalyError as error:
            print("raised:", str(error).split(";")[0])
            assert (error.op, error.phase) == ("Sqrt", "backward")
        else:
            raise AssertionError("detect_anomaly missed the Inf gradient of sqrt(0)")


if __name__ == "__main__":
    main()
