"""RMSprop follows torch.optim.RMSprop step for step, with every option, and resumes bit for
bit."""

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import optim

OPTIONS = [
    {},
    {"centered": True},
    {"momentum": 0.9},
    {"centered": True, "momentum": 0.5},
    {"weight_decay": 0.1},
    {"maximize": True},
    {"alpha": 0.3, "eps": 1e-3, "centered": True},
    {"alpha": 0.9, "centered": True, "momentum": 0.7, "weight_decay": 0.05, "maximize": True},
]
IDS = ["plain", "centered", "momentum", "centered-momentum", "decay", "maximize", "alpha", "all"]


def _sign(options: dict) -> float:
    return -1.0 if options.get("maximize") else 1.0


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_rmsprop_follows_torch_for_200_steps(trajectory, device, options):
    trajectory(optim.RMSprop, torch.optim.RMSprop, device, lr=0.01, sign=_sign(options), **options)


def test_rmsprop_in_any_chunk_size(trajectory, chunk_bytes):
    trajectory(
        optim.RMSprop, torch.optim.RMSprop, "cpu", np.float64, steps=30, sign=-1.0, **OPTIONS[-1]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [OPTIONS[0], OPTIONS[-1]], ids=["plain", "all"])
def test_rmsprop_resumes_from_its_state_dict_bit_for_bit(resume, device, dtype, options):
    resume(optim.RMSprop, device, dtype, sign=_sign(options), **options)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"lr": -1}, "Invalid learning rate: -1"),
        ({"eps": -1.0}, "Invalid epsilon value: -1.0"),
        ({"momentum": -0.1}, "Invalid momentum value: -0.1"),
        ({"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
        ({"alpha": -0.5}, "Invalid alpha value: -0.5"),
    ],
)
def test_rmsprop_rejects_bad_hyperparameters_as_torch(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.RMSprop([mg.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=message):
        torch.optim.RMSprop([torch.zeros(2, requires_grad=True)], **kwargs)
