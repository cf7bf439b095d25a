"""Module.summary against the same model in torch.nn: one row per leaf call with torch's
output shape and parameter count, totals equal to torch's sums of numel, modes restored."""

import numpy as np
import pytest
import torch

import layers as L
import minigrad as mg


def small_cnn(nn):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.ReLU()),
        nn.ConvTranspose2d(16, 4, 2, stride=2),
        nn.Dropout2d(0.2),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.Flatten(),
        nn.Linear(4 * 16 * 16, 10),
    )


def torch_rows(model, input_size, batch_size=1):
    """(name, class, output shape, own parameter count) of each leaf call, with torch hooks."""
    rows = []

    def hook(name):
        def record(module, args, output):
            count = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append((name, type(module).__name__, tuple(output.shape), count))

        return record

    for name, module in model.named_modules():
        if not list(module.children()):
            module.register_forward_hook(hook(name))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(batch_size, *input_size))
    return rows


def test_rows_and_totals_match_torch():
    ours, theirs = small_cnn(L), small_cnn(torch.nn)
    summary = ours.summary((3, 8, 8), batch_size=2)
    rows = [(r.name, r.kind, tuple(r.output_shape), r.params) for r in summary.rows]
    assert rows == torch_rows(theirs, (3, 8, 8), batch_size=2)
    total = sum(p.numel() for p in theirs.parameters())
    assert summary.total_params == summary.trainable_params == total
    assert summary.input_shape == (2, 3, 8, 8)
    text = str(summary)
    assert f"Total params: {total:,}" in text and "Non-trainable params: 0" in text
    assert "ConvTranspose2d (5)" in text and "[2, 4, 8, 8]" in text


def test_trainable_counts_and_shared_parameters():
    class Aliased(L.Module):
        def __init__(self):
            super().__init__()
            self.body = small_cnn(L)
            self.alias = self.body[9]  # shared: counted once in the totals

        def forward(self, x):
            return self.body(x)

    ours = Aliased()
    ours.body[0].requires_grad_(False)
    summary = ours.summary((3, 8, 8))
    assert len(summary.rows) == 11 and summary.rows[0].name == "body.0"
    frozen = 8 * 3 * 9 + 8
    total = sum(p.numel() for p in ours.parameters())
    assert summary.total_params == total == sum(p.numel() for p in small_cnn(torch.nn).parameters())
    assert summary.trainable_params == total - frozen
    assert f"Non-trainable params: {frozen:,}" in str(summary)


def test_modes_and_hooks_are_restored():
    ours = small_cnn(L)
    ours[1].eval()
    modes = [m.training for m in ours.modules()]
    running = ours[1].running_mean.numpy().copy()
    ours.summary((3, 8, 8))
    assert [m.training for m in ours.modules()] == modes
    assert all(not m._forward_hooks for m in ours.modules())
    np.testing.assert_array_equal(ours[1].running_mean.numpy(), running)  # eval: no update


def test_summary_of_a_leaf_on_the_device(device):
    layer = L.Conv2d(2, 4, 3).to(device)
    summary = layer.summary((2, 5, 5))
    assert [(r.name, r.output_shape, r.params) for r in summary.rows] == [
        ("Conv2d", (1, 4, 3, 3), 4 * 2 * 9 + 4)
    ]


def test_bad_input_size():
    with pytest.raises(TypeError, match="input_size must be a tuple of ints, got 3"):
        L.Linear(3, 2).summary(3)
    with pytest.raises(TypeError, match="input_size must be a tuple of ints"):
        L.Linear(3, 2).summary((3.0,))


def test_float64_model():
    model = L.Sequential(L.Linear(3, 2)).double()
    summary = model.summary((3,), dtype=mg.float64)
    assert summary.rows[0].output_shape == (1, 2)
