"""``Module.summary``: a torchsummary-style table built on forward hooks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from minigrad import backend
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor


@dataclass
class SummaryRow:
    """One leaf layer's call: its name, class, output shape and parameter count."""

    name: str
    kind: str
    output_shape: tuple
    params: int


@dataclass
class ModelSummary:
    """The rows of one summarized forward pass and the totals; ``str()`` is the table."""

    rows: list = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    input_shape: tuple = ()

    def __str__(self) -> str:
        width = max([28, *(len(f"{r.kind} ({r.name})") + 2 for r in self.rows)])
        rule = "-" * (width + 40)
        lines = [rule, f"{'Layer (type)':>{width}}  {'Output Shape':>24}  {'Param #':>12}"]
        lines.append("=" * len(rule))
        for r in self.rows:
            label = f"{r.kind} ({r.name})"
            lines.append(f"{label:>{width}}  {str(list(r.output_shape)):>24}  {r.params:>12,}")
        lines += [
            "=" * len(rule),
            f"Input shape: {list(self.input_shape)}",
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            rule,
        ]
        return "\n".join(lines)

    __repr__ = __str__


def _output_shape(output) -> tuple:
    """The shape of a layer's output (the first tensor of a tuple, as torchsummary)."""
    if isinstance(output, Tensor):
        return output.shape
    if isinstance(output, tuple | list) and output and isinstance(output[0], Tensor):
        return output[0].shape
    return ()


def summarize(model, input_size, batch_size: int, device, dtype) -> ModelSummary:
    """Run ``model`` once on zeros of ``(batch_size, *input_size)`` and tabulate its leaves."""
    if isinstance(input_size, int) or not all(isinstance(s, int) for s in input_size):
        raise TypeError(f"summary: input_size must be a tuple of ints, got {input_size!r}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else backend.CPU
    xp = backend.array_module(device)
    x = Tensor._wrap(xp.zeros((batch_size, *input_size), dtype=dtype))
    summary = ModelSummary(input_shape=x.shape)
    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]

    def recorder(name):
        def hook(module, args, output):
            count = sum(math.prod(p.shape) for p in module.parameters(recurse=False))
            row = SummaryRow(name, type(module).__name__, _output_shape(output), count)
            summary.rows.append(row)

        return hook

    handles = [m.register_forward_hook(recorder(n or type(m).__name__)) for n, m in leaves]
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    params = list(model.parameters())
    summary.total_params = sum(p.numel() for p in params)
    summary.trainable_params = sum(p.numel() for p in params if p.requires_grad)
    return summary


__all__ = ["ModelSummary", "SummaryRow", "summarize"]
