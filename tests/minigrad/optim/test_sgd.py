"""SGD follows torch.optim.SGD step for step, with every option, and resumes bit for bit."""

import numpy as np
import pytest
import torch

from minigrad import optim

OPTIONS = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.3},
    {"momentum": 0.9, "nesterov": True},
    {"weight_decay": 0.1},
    {"maximize": True},
    {"momentum": 0.8, "dampening": 0.1, "weight_decay": 0.05, "maximize": True},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True},
]
IDS = ["plain", "momentum", "dampening", "nesterov", "decay", "maximize", "all", "nesterov-all"]


def _sign(options: dict) -> float:
    return -1.0 if options.get("maximize") else 1.0


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_sgd_follows_torch_for_200_steps(trajectory, device, options):
    trajectory(optim.SGD, torch.optim.SGD, device, lr=0.05, sign=_sign(options), **options)


@pytest.mark.parametrize("options", OPTIONS[-2:], ids=IDS[-2:])
def test_sgd_in_any_chunk_size(trajectory, chunk_bytes, options):
    trajectory(
        optim.SGD, torch.optim.SGD, "cpu", np.float64, steps=30, lr=0.05, sign=-1.0, **options
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [OPTIONS[0], OPTIONS[6]], ids=["plain", "all"])
def test_sgd_resumes_from_its_state_dict_bit_for_bit(resume, device, dtype, options):
    resume(optim.SGD, device, dtype, lr=0.05, sign=_sign(options), **options)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"lr": -1}, "Invalid learning rate: -1"),
        ({"momentum": -0.5}, "Invalid momentum value: -0.5"),
        ({"weight_decay": -1e-4}, "Invalid weight_decay value: -0.0001"),
        ({"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
        ({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "Nesterov momentum requires"),
    ],
)
def test_sgd_rejects_bad_hyperparameters_as_torch(kwargs, message):
    import minigrad as mg

    p = mg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        optim.SGD([p], **kwargs)
    with pytest.raises(ValueError, match=message):
        torch.optim.SGD([torch.zeros(2, requires_grad=True)], **kwargs)
